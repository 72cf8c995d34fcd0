"""The transport: one aiohttp session, the ``{code, data}`` envelope, the error map, retries.

The transport knows nothing of models: it returns the envelope's ``data`` as plain JSON
and raises the error tree of ``_errors``. aiohttp's exceptions are translated to that tree
in exactly one place, :func:`translate_exception`.

Retry rules (see ``RetryPolicy``): a GET is repeated on connection errors, timeouts and
the retryable statuses. A submit (``idempotent=False``) costs money and the API has no
idempotency key, so it is repeated only when it provably created nothing (the connection
could not be opened, or a 429); any other failure after the request may have reached the
server is raised as ``SubmitOutcomeUnknownError`` unless ``retry_ambiguous_submits``.
Every retry spends tokens from the client's :class:`RetryBudget`, so a hard outage does
not turn into a retry storm.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._backoff import full_jitter, parse_retry_after
from ._clock import Clock
from ._config import DEFAULT_MAX_JSON_BYTES, RetryPolicy, Timeout
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    ServerError,
    SubmitOutcomeUnknownError,
    status_error_class,
)
from ._hosts import is_loopback_host
from ._version import __version__

__all__ = [
    "USER_AGENT",
    "AnswerMemo",
    "RawBody",
    "Response",
    "RetryBudget",
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
# json.loads(text) is this scanner at index 0 plus whitespace and trailing-data checks.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SNIPPET_LENGTH = 200
# A Retry-After slept through gets up to this fraction on top, so that clients told the
# same value do not all come back in the same millisecond.
_RETRY_AFTER_SPREAD = 0.1


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


@attrs.define
class RetryBudget:
    """A token bucket shared by every retry of one client (after botocore).

    Each retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout) and each
    request that succeeds on its first try gives ``success_refund`` back. An empty bucket
    means "stop retrying": during an outage the client fails fast instead of multiplying
    its load on the server.
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_cost: int = 10
    success_refund: int = 1
    tokens: int = attrs.field(default=-1)

    def __attrs_post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    @property
    def exhausted(self) -> bool:
        """Whether the bucket can no longer pay for an ordinary retry."""
        return self.tokens < self.retry_cost

    def try_acquire(self, *, timeout: bool = False) -> bool:
        """Take the cost of one retry; ``False`` (and nothing taken) when the bucket is too low."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def record_success(self) -> None:
        """Refund a token for a request that succeeded on its first try."""
        self.tokens = min(self.capacity, self.tokens + self.success_refund)


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


class Response:
    """One decoded answer: the envelope's ``data``, the HTTP status and the headers.

    ``headers`` are matched case-insensitively; ``retry_after`` is the server's
    ``Retry-After`` (or ``retry-after-ms``) in seconds, when it sent a usable one.
    A plain slotted class, built on every request (no frozen attrs ``__init__``); read it,
    never change it.
    """

    __slots__ = ("data", "headers", "retry_after", "status")

    def __init__(
        self,
        status: int,
        data: Any,
        headers: Mapping[str, str],
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.data = data
        self.headers = headers
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Response(status={self.status!r}, data={self.data!r}, retry_after={self.retry_after!r})"


class AnswerMemo(Generic[T]):
    """The last answer of one repeated query and what its reader made of it.

    See :meth:`Transport.send_once_memo`: an answer byte-identical to this one (same HTTP
    status, body and poll hint) is not decoded, checked or read again.
    """

    __slots__ = ("body", "retry_after", "status", "value")

    def __init__(self) -> None:
        self.body: bytes | None = None
        self.status = 0
        self.retry_after: float | None = None
        self.value: T | None = None


@attrs.frozen
class RawBody:
    """A request body that is not JSON (e.g. a multipart upload): its bytes and content type.

    Bytes, not a stream: a retry sends the same body again.
    """

    data: bytes
    content_type: str


class _RawResponse:
    """One answer as read off the wire (a plain slotted class: built on every request)."""

    __slots__ = ("body", "headers", "method", "reason", "retry_after", "status", "truncated", "url")

    def __init__(
        self,
        status: int,
        reason: str,
        body: bytes,
        truncated: bool,
        headers: Mapping[str, str],
        method: str,
        url: str,
        retry_after: float | None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.truncated = truncated
        self.headers = headers
        self.method = method
        self.url = url
        self.retry_after = retry_after


def _html_title(text: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return " ".join(match.group(1).split()) if match else None


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_LENGTH else flat[: _SNIPPET_LENGTH - 3] + "..."


def _detail_message(detail: object) -> str | None:
    """Render a FastAPI ``detail`` (a string or a list of ``{loc, msg}``) as one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail[:10]:
            if isinstance(item, Mapping):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else None
                msg = str(item.get("msg", item))
                parts.append(f"{where}: {msg}" if where else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts) or None
    return None


def _describe_error_body(body: object, text: str, reason: str) -> tuple[str, str | None]:
    """Return (message, error type) from any error body: unified, FastAPI, plain or HTML."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            message = error.get("message")
            error_type = error.get("type")
            return (
                str(message) if message is not None else reason,
                error_type if isinstance(error_type, str) else None,
            )
        if isinstance(error, str):
            return error, None
        detail = _detail_message(body.get("detail"))
        if detail:
            return detail, None
        for key in ("message", "msg"):
            if isinstance(body.get(key), str):
                return str(body[key]), None
        return reason, None
    if text.strip():
        title = _html_title(text)
        shown = title if title else _snippet(text)
        return f"{reason} (non-JSON answer: {shown})", None
    return reason, None


def _decode(raw: bytes) -> tuple[object, str]:
    """Return (parsed JSON or None, text); ``None`` also when the body is not JSON.

    JSON nested deeper than Python's parser goes (``RecursionError``, a body of a few kB)
    is not readable JSON either: an unreadable answer, never an error outside the tree.
    """
    text = raw.decode("utf-8", errors="replace")
    try:
        # The usual body is one JSON value from its first to its last character: the C
        # scanner alone reads it, without json.loads' layers. Anything else (whitespace
        # around it, trailing data, no JSON at all) goes through json.loads, which decides.
        value, end = _scan_json(text, 0)
        if end == len(text):
            return value, text
    except (StopIteration, ValueError):
        pass
    except RecursionError:
        return None, text
    try:
        # An empty or blank body is not JSON either: json.loads raises for it.
        return json.loads(text), text
    except (ValueError, RecursionError):
        return None, text


def _as_status_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _error_for(
    status: int,
    body: object,
    text: str,
    raw: _RawResponse,
    retry_after: float | None,
) -> APIStatusError:
    reason = raw.reason or f"HTTP {status}"
    message, error_type = _describe_error_body(body, text, reason)
    shown_body: object = body if body is not None else _snippet(text)
    request_id = raw.headers.get("x-request-id") or raw.headers.get("request-id")
    cls = status_error_class(status)
    fields: dict[str, Any] = {
        "status_code": status,
        "error_type": error_type,
        "body": shown_body,
        "method": raw.method,
        "url": raw.url,
        "request_id": request_id,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **fields)
    return cls(message, **fields)


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
    ) -> _RawResponse:
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
                raw = _RawResponse(
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
            raise translate_exception(exc, method=method, url=url) from exc
        if debug:
            logger.debug("vidgo response %s %s -> %d", method, url, raw.status)
        return raw

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Parse the server's wait from an answer's headers (once per answer)."""
        if (
            isinstance(headers, CIMultiDictProxy | CIMultiDict)
            and "retry-after" not in headers
            and "retry-after-ms" not in headers
        ):
            return None  # the usual answer: nothing to parse, no clock to read
        return parse_retry_after(headers, now=self.clock.time())

    def _interpret(self, raw: _RawResponse) -> Response:
        """Unwrap the envelope of an answer or raise the matching error."""
        retry_after = raw.retry_after
        if 300 <= raw.status < 400:
            location = raw.headers.get("Location") or raw.headers.get("location") or "?"
            raise APIStatusError(
                f"The API answered with a redirect to {_snippet(location)!r}, which was not "
                "followed: API calls never follow redirects, so the key never leaves "
                f"{self.base_url}. HINT: check base_url.",
                status_code=raw.status,
                method=raw.method,
                url=raw.url,
            )
        if raw.status >= 400 or raw.status < 200:
            body, text = (None, "") if raw.truncated else _decode(raw.body)
            raise _error_for(raw.status, body, text, raw, retry_after)
        if raw.truncated:
            raise APIResponseValidationError(
                f"The API answer is larger than {self.max_json_bytes} bytes; it was not read.",
                method=raw.method,
                url=raw.url,
            )
        body, text = _decode(raw.body)
        if type(body) is not dict and not isinstance(body, Mapping):
            raise APIResponseValidationError(
                f"The API answered HTTP {raw.status} with a body that is not a JSON object: "
                f"{_snippet(text)!r}",
                body=body if body is not None else _snippet(text),
                method=raw.method,
                url=raw.url,
            )
        code = body.get("code")
        if type(code) is not int:
            code = _as_status_code(code)
        if code is not None and code >= 400:
            raise _error_for(code, body, text, raw, retry_after)
        if "data" in body:
            return Response(raw.status, body["data"], raw.headers, retry_after)
        if "code" in body:
            raise APIResponseValidationError(
                "The API answer has a code but no data.", body=body, method=raw.method, url=raw.url
            )
        # Tolerate an unwrapped object (the platform's docs show both shapes).
        return Response(raw.status, body, raw.headers, retry_after)

    async def send_once(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        timeout: Timeout | None = None,
    ) -> Response:
        """Send one request without retries; return the decoded answer or raise its error."""
        return self._interpret(await self._attempt(method, path, json_body, timeout))

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
        value = read(self._interpret(raw))
        memo.body, memo.status, memo.retry_after = raw.body, raw.status, raw.retry_after
        memo.value = value
        return value

    def _retryable(self, exc: APIError, *, idempotent: bool, policy: RetryPolicy) -> bool:
        if isinstance(exc, APIConnectionError):
            return idempotent or not exc.request_sent or policy.retry_ambiguous_submits
        if isinstance(exc, APIStatusError) and exc.status_code in policy.retry_statuses:
            if idempotent or isinstance(exc, RateLimitError):
                return True
            return policy.retry_ambiguous_submits
        return False

    @staticmethod
    def _ambiguous(exc: APIError) -> bool:
        """Whether a failed submit may have created a task."""
        if isinstance(exc, APIConnectionError):
            return exc.request_sent
        return isinstance(exc, ServerError)

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
    ) -> Any:
        """Send a request with the retry rules; see the module docstring.

        ``content`` is a non-JSON body (a multipart upload), sent instead of ``json_body``.
        ``read``: what to return of the answer instead of the ``Response`` itself, made in
        this frame (a caller that only reads the answer needs no coroutine of its own); an
        ``APIResponseValidationError`` it raises is an answer that cannot be read.

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
                response = self._interpret(raw)
            except APIResponseValidationError as exc:
                if idempotent:
                    raise
                # A 2xx whose body cannot be read: the task was most likely created.
                raise _outcome_unknown(json_body, exc) from exc
            except (APIConnectionError, APIStatusError) as exc:
                if not idempotent and self._ambiguous(exc):
                    ambiguous = exc
                if isinstance(exc, RateLimitError):
                    retry_after = exc.retry_after
                delay = self._retry_delay(exc, attempt, retry_after, idempotent, policy)
                if delay is None:
                    raise self._final_error(exc, ambiguous, json_body) from exc
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
                continue
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
                raise _outcome_unknown(json_body, exc) from exc

    def _retry_delay(
        self,
        exc: APIError,
        attempt: int,
        retry_after: float | None,
        idempotent: bool,
        policy: RetryPolicy,
    ) -> float | None:
        """Return the wait before the next attempt, or ``None`` when not retrying."""
        if attempt >= policy.max_attempts:
            return None
        if not self._retryable(exc, idempotent=idempotent, policy=policy):
            return None
        if retry_after is not None and retry_after > policy.max_retry_after:
            return None
        if not self.retry_budget.try_acquire(timeout=isinstance(exc, APITimeoutError)):
            logger.warning("vidgo retry budget exhausted: not retrying %s %s", exc.method, exc.url)
            return None
        if retry_after is not None:
            return retry_after * (1.0 + _RETRY_AFTER_SPREAD * self.clock.rng.random())
        return full_jitter(
            attempt, base=policy.initial_delay, cap=policy.max_delay, rng=self.clock.rng
        )

    @staticmethod
    def _final_error(
        exc: APIError, ambiguous: APIError | None, json_body: Mapping[str, Any] | None
    ) -> BaseException:
        if ambiguous is not None:
            return _outcome_unknown(json_body, ambiguous)
        return exc


def _outcome_unknown(
    json_body: Mapping[str, Any] | None, cause: BaseException
) -> SubmitOutcomeUnknownError:
    """The error of a request that may have created something (its body as the payload)."""
    payload = dict(json_body or {})
    return SubmitOutcomeUnknownError(str(payload.get("model", "?")), payload, cause)
