"""The transport: one aiohttp session, the ``{code, data}`` envelope, the error map, retries.

The transport knows nothing of models: it returns the envelope's ``data`` as plain JSON
and raises the error tree of ``_errors``. aiohttp's exceptions are translated to that tree
in exactly one place, :func:`translate_exception`; what an answer means is decided in
``_answers``, and whether and when to send again in ``_retry`` (a submit that may have
created a task is never repeated unless ``RetryPolicy.retry_ambiguous_submits``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._answers import AnswerMemo, RawAnswer, Response, interpret
from ._backoff import parse_retry_after
from ._clock import Clock
from ._config import DEFAULT_MAX_JSON_BYTES, RetryPolicy, Timeout
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
)
from ._hosts import is_loopback_host
from ._retry import RetryBudget, may_have_created, outcome_unknown, retry_delay
from ._version import __version__

__all__ = [
    "USER_AGENT",
    "RawBody",
    "Transport",
    "client_timeout",
    "normalise_base_url",
    "translate_exception",
]

logger = logging.getLogger("vidgo_async")

T = TypeVar("T")

USER_AGENT = (
    f"vidgo-async/{__version__} Python/{platform.python_version()} aiohttp/{aiohttp.__version__}"
)
_CHUNK_SIZE = 64 * 1024


def normalise_base_url(url: str, *, allow_insecure: bool = False) -> str:
    """Check a base URL and return it without a trailing slash.

    Raises:
        ValueError: not an absolute http(s) URL, carries credentials, a query or a
            fragment, or is plain ``http`` to a non-loopback host without ``allow_insecure``.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"base_url must be an absolute https URL (got {url!r})")
    text = url.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"base_url is not a valid URL (got {text!r})") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"base_url must be an absolute https URL with a host (got {text!r})")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "base_url must not contain credentials; pass the key as api_key= or VIDGO_API_KEY"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment (got {text!r})")
    if parts.scheme == "http" and not allow_insecure and not is_loopback_host(host):
        raise ValueError(
            f"base_url {text!r} uses plain http, so the API key would travel in clear. "
            "HINT: use https, or pass allow_insecure=True if you really mean it."
        )
    return text.rstrip("/")


def client_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    """Map a ``Timeout`` to aiohttp's: connect bounds pool wait + connect, read the gap between bytes."""
    return aiohttp.ClientTimeout(
        total=timeout.total,
        connect=timeout.connect,
        sock_connect=timeout.connect,
        sock_read=timeout.read,
    )


def translate_exception(exc: BaseException, *, method: str, url: str) -> APIConnectionError:
    """Turn an aiohttp or timeout exception into the error tree (the one place that does).

    ``request_sent`` is ``False`` only when the request provably never left: the
    connection could not be opened (refused, DNS, TLS handshake, connect timeout).
    """
    host = urlsplit(url).netloc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(
            f"Timed out connecting to {host}.", method=method, url=url, request_sent=False
        )
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return APITimeoutError(
            f"Timed out waiting for data from {host} (read timeout).", method=method, url=url
        )
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(
            f"The request to {host} exceeded its total time limit.", method=method, url=url
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(
            f"Could not connect to {host}: {exc.os_error.strerror or exc.os_error}.",
            method=method,
            url=url,
            request_sent=False,
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return APIConnectionError(
            f"{host} closed the connection before answering.", method=method, url=url
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"The answer from {host} was cut off.", method=method, url=url)
    if isinstance(exc, aiohttp.ClientOSError):
        return APIConnectionError(
            f"The connection to {host} broke: {exc.strerror or exc}.", method=method, url=url
        )
    return APIConnectionError(
        f"Error talking to {host}: {type(exc).__name__}: {exc}.", method=method, url=url
    )


class _Secret:
    """Hold the API key so that no repr, ``vars()`` dump or debugger shows it.

    The request headers carry the key too, so they live here, built once: every API
    call sends the same ones.
    """

    __slots__ = ("body_headers", "headers", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self.headers = {
            "Authorization": f"Bearer {value}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        self.body_headers = {**self.headers, "Content-Type": "application/json"}

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


@attrs.frozen
class RawBody:
    """A request body that is not JSON (e.g. a multipart upload): its bytes and content type.

    Bytes, not a stream: a retry sends the same body again.
    """

    data: bytes
    content_type: str


class Transport:
    """Send API requests: headers, timeouts, envelope, error mapping and retries.

    Args:
        api_key: sent as ``Authorization: Bearer`` on API calls only, never logged.
        base_url: a checked base URL (see :func:`normalise_base_url`).
        timeout: the default per-request limits.
        retry: the default retry policy.
        clock: time, sleep and randomness.
        session: a user's session, used and left open; otherwise one is created lazily.
        max_json_bytes: the largest answer body read.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: Timeout,
        retry: RetryPolicy,
        clock: Clock,
        session: aiohttp.ClientSession | None = None,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    ) -> None:
        self._api_key = _Secret(api_key)
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry
        self.clock = clock
        self.max_json_bytes = max_json_bytes
        self.retry_budget = RetryBudget()
        # aiohttp's form of the default ``timeout``, built once (see _client_timeout).
        self._default_timeout = (timeout, client_timeout(timeout))
        self._session = session
        self._owns_session = session is None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Transport base_url={self.base_url!r}>"

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called."""
        return self._closed

    def _client_timeout(self, timeout: Timeout | None) -> aiohttp.ClientTimeout:
        """Return aiohttp's form of ``timeout`` (default: ``self.timeout``), reusing the default's."""
        if timeout is None:
            timeout = self.timeout
        default, mapped = self._default_timeout
        if timeout is default:
            return mapped
        if timeout is self.timeout:
            # ``timeout`` was reassigned after construction: map (and keep) the new default.
            self._default_timeout = (timeout, client_timeout(timeout))
            return self._default_timeout[1]
        return client_timeout(timeout)

    def check_open(self) -> None:
        """Raise if ``aclose`` was called (every API call checks it first)."""
        if self._closed:
            raise RuntimeError(
                "This VidgoClient is closed. HINT: create a new client, or keep using it "
                "inside its `async with` block."
            )

    async def open(self) -> aiohttp.ClientSession:
        """Return the session, creating the pooled one on first use."""
        self.check_open()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, enable_cleanup_closed=False),
                timeout=client_timeout(self.timeout),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport created it (idempotent)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def _headers(self, *, with_body: bool) -> dict[str, str]:
        """Return the request headers (shared, built once: aiohttp copies them, never mutates)."""
        secret = self._api_key
        return secret.body_headers if with_body else secret.headers

    async def _read_capped(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """Stream the body up to the cap; ``(first cap bytes, True)`` when it is larger."""
        cap = self.max_json_bytes
        length = response.content_length
        if length is not None and length > cap:
            return b"", True
        buffer = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_SIZE):
            buffer += chunk
            if len(buffer) > cap:
                return bytes(buffer[:cap]), True
        return bytes(buffer), False

    async def _attempt(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None,
        timeout: Timeout | None,
        content: RawBody | None = None,
    ) -> RawAnswer:
        """Send one request and read its answer (``timeout=None``: the default limits)."""
        session = self._session
        if session is None or self._closed:
            session = await self.open()
        url = self.base_url + path
        secret = self._api_key
        if content is not None:
            data = content.data
            headers = {**secret.headers, "Content-Type": content.content_type}
        elif json_body is None:
            data = None
            headers = secret.headers
        else:
            data = json.dumps(json_body).encode("utf-8")
            headers = secret.body_headers
        default_timeout, mapped_timeout = self._default_timeout
        if timeout is not None or default_timeout is not self.timeout:
            mapped_timeout = self._client_timeout(timeout)
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug:
            logger.debug("vidgo request %s %s", method, url)
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=mapped_timeout,
                allow_redirects=False,
            ) as response:
                # aiohttp's own read-only, case-insensitive view: no copy needed.
                response_headers = response.headers
                # What ``response.content_length`` computes, without the property's frame.
                length = response_headers.get("Content-Length")
                if (
                    length is not None
                    and int(length) <= self.max_json_bytes
                    and "Content-Encoding" not in response_headers
                ):
                    # The parser stops at Content-Length, so one read cannot pass the cap.
                    # A compressed body is streamed: inflated, it could be far larger.
                    body, truncated = await response.read(), False
                else:
                    body, truncated = await self._read_capped(response)
                if truncated:
                    # Drop the connection rather than drain a body we refused to read.
                    response.close()
                raw = RawAnswer(
                    response.status,
                    response.reason or "",
                    body,
                    truncated,
                    response_headers,
                    method,
                    url,
                    # The usual answer has no Retry-After: nothing to parse, no clock to read.
                    None
                    if type(response_headers) is CIMultiDictProxy
                    and "retry-after" not in response_headers
                    and "retry-after-ms" not in response_headers
                    else self._retry_after(response_headers),
                )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if not isinstance(exc, aiohttp.ClientResponseError):
                raise translate_exception(exc, method=method, url=url) from exc
            # aiohttp's response errors (a malformed answer) keep the request's headers, the
            # API key among them: the error raised is neither chained to one nor keeps it as
            # its context (raised below, once this handler is left).
            failure = translate_exception(exc, method=method, url=url)
        else:
            if debug:
                logger.debug("vidgo response %s %s -> %d", method, url, raw.status)
            return raw
        raise failure

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Parse the server's wait from an answer's headers (once per answer)."""
        if (
            isinstance(headers, CIMultiDictProxy | CIMultiDict)
            and "retry-after" not in headers
            and "retry-after-ms" not in headers
        ):
            return None  # the usual answer: nothing to parse, no clock to read
        return parse_retry_after(headers, now=self.clock.time())

    async def send_once(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        timeout: Timeout | None = None,
    ) -> Response:
        """Send one request without retries; return the decoded answer or raise its error."""
        raw = await self._attempt(method, path, json_body, timeout)
        return interpret(raw, self.base_url, self.max_json_bytes)

    async def send_once_memo(
        self, path: str, memo: AnswerMemo[T], read: Callable[[Response], T]
    ) -> T:
        """GET ``path`` once (no retries) and return ``read`` of the decoded answer.

        An answer byte-identical to the one ``memo`` holds (same HTTP status, body and poll
        hint: so the same envelope, data and hint) is not decoded, checked or read again:
        ``memo``'s value comes back. A poll asks the same thing again and again, and the
        answer is often unchanged (a queued task, a running one between progress steps).
        Only answers that were read successfully are remembered.
        """
        raw = await self._attempt("GET", path, None, None)
        value = memo.value
        if (
            value is not None
            and raw.body == memo.body
            and raw.status == memo.status
            and raw.retry_after == memo.retry_after
            and not raw.truncated
        ):
            return value
        value = read(interpret(raw, self.base_url, self.max_json_bytes))
        memo.body, memo.status, memo.retry_after = raw.body, raw.status, raw.retry_after
        memo.value = value
        return value

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        content: RawBody | None = None,
        read: None = None,
        give_up_at: float | None = None,
    ) -> Response: ...

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        content: RawBody | None = None,
        read: Callable[[Response], T],
        give_up_at: float | None = None,
    ) -> T: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        content: RawBody | None = None,
        read: Callable[[Response], Any] | None = None,
        give_up_at: float | None = None,
    ) -> Any:
        """Send a request with the retry rules; see the module docstring.

        ``content`` is a non-JSON body (a multipart upload), sent instead of ``json_body``.
        ``read``: what to return of the answer instead of the ``Response`` itself, made in
        this frame (a caller that only reads the answer needs no coroutine of its own); an
        ``APIResponseValidationError`` it raises is an answer that cannot be read.
        ``give_up_at``: the caller's deadline (the clock's monotonic time); no attempt
        starts at or after it; the error that would have been retried is raised instead.

        Raises:
            SubmitOutcomeUnknownError: a non-idempotent request may have been executed.
            APIStatusError, APIConnectionError, APIResponseValidationError: otherwise.
        """
        policy = retry or self.retry
        ambiguous: APIError | None = None
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                raw = await self._attempt(method, path, json_body, timeout, content)
                retry_after = raw.retry_after
                response = interpret(raw, self.base_url, self.max_json_bytes)
            except APIResponseValidationError as exc:
                if idempotent:
                    raise
                # A 2xx whose body cannot be read: the task was most likely created.
                raise outcome_unknown(json_body, exc) from exc
            except (APIConnectionError, APIStatusError) as exc:
                if not idempotent and may_have_created(exc):
                    ambiguous = exc
                if isinstance(exc, RateLimitError):
                    retry_after = exc.retry_after
                delay = retry_delay(
                    exc,
                    attempt,
                    retry_after,
                    idempotent=idempotent,
                    policy=policy,
                    budget=self.retry_budget,
                    rng=self.clock.rng,
                )
                if (
                    delay is not None
                    and give_up_at is not None
                    and self.clock.monotonic() + delay >= give_up_at
                ):
                    logger.info(
                        "vidgo not retrying %s %s: the next attempt would start after the "
                        "caller's deadline (%s)",
                        method,
                        path,
                        exc,
                    )
                    delay = None
                if delay is not None:
                    logger.info(
                        "vidgo retrying %s %s in %.2f s (attempt %d of %d) after: %s",
                        method,
                        path,
                        delay,
                        attempt + 1,
                        policy.max_attempts,
                        exc,
                    )
                    await self.clock.sleep(delay)
                    if give_up_at is None or self.clock.monotonic() < give_up_at:
                        continue
                    # The wait ran past the deadline (a busy event loop): no attempt now.
                if ambiguous is not None:
                    raise outcome_unknown(json_body, ambiguous) from exc
                raise
            if attempt == 1:
                budget = self.retry_budget
                if budget.tokens != budget.capacity:  # a full bucket has nothing to refund
                    budget.record_success()
            if read is None:
                return response
            try:
                return read(response)
            except APIResponseValidationError as exc:
                if idempotent:
                    raise
                # A 2xx without what the caller needs (a task id): most likely created.
                raise outcome_unknown(json_body, exc) from exc
