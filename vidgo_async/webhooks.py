"""Receive Vidgo callbacks safely: capability URLs, verification by re-fetching, dedupe.

Vidgo POSTs a flat task object (the wrapped ``{code, data}`` form is accepted too) to the
job's callback URL, retries up to 5 times on timeouts, network errors and 5xx, and never
retries a 4xx. The body carries no proof of anything, so a callback is treated as a *hint*:

1. the URL carries a per-job random token (:class:`CallbackRegistry`): an unknown token is
   answered 404 before the body is even read; a token whose job has ended is answered 200
   (a late duplicate: a 4xx would be final and recorded as a failed delivery);
2. the body is parsed with a size limit (:func:`parse_callback`): 413 / 400 otherwise;
3. with a signing key (``[P]``, see ``_callback_signing``) an unsigned, stale or wrongly
   signed request is answered 401 and changes nothing;
4. the receiver answers 200 at once and, off the request path, re-fetches the task with an
   authenticated ``GET /api/generate/status/{task_id}``; only that fresh ``Task`` reaches the
   job's subscriber, once. File URLs are never taken from the body, and a signature never
   replaces the re-fetch.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from types import TracebackType

import anyio
import attrs
from aiohttp import web

from ._callback_http import (
    CallbackServer,
    ListenerLimits,
    ListenerStats,
    build_app,
    handle_request,
    listen,
)
from ._callback_signing import (
    DEFAULT_SIGNATURE_WINDOW,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackSigning,
    sign_callback,
)
from ._callback_verify import Verifier
from ._callbacks import (
    DEFAULT_MAX_CALLBACK_BYTES,
    NOT_FOUND_RESPONSE,
    OK_RESPONSE,
    CallbackResponse,
    ReceiverStats,
    RefusalLog,
    Subscriber,
    TaskFetcher,
    VerifiedCallback,
    json_response,
    parse_callback,
)
from ._config import to_seconds
from ._errors import (
    CallbackSignatureError,
    CallbackTooLargeError,
    InvalidCallbackError,
    UnknownCallbackTokenError,
    WebhookError,
)
from ._hosts import is_loopback_host
from ._models import Task
from ._tokens import DEFAULT_TOKEN_TTL, CallbackRegistry, CallbackToken, token_hash

__all__ = [
    "DEFAULT_MAX_CALLBACK_BYTES",
    "DEFAULT_SIGNATURE_WINDOW",
    "DEFAULT_TOKEN_TTL",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CallbackReceiver",
    "CallbackRegistry",
    "CallbackResponse",
    "CallbackServer",
    "CallbackSignatureError",
    "CallbackSigning",
    "CallbackToken",
    "CallbackTooLargeError",
    "InvalidCallbackError",
    "ListenerLimits",
    "ListenerStats",
    "ReceiverStats",
    "Subscriber",
    "TaskFetcher",
    "UnknownCallbackTokenError",
    "VerifiedCallback",
    "WebhookError",
    "parse_callback",
    "sign_callback",
    "token_hash",
]

logger = logging.getLogger("vidgo_async")


@attrs.define
class _RequestCounts:
    received: int = 0
    not_found: int = 0
    too_large: int = 0
    invalid: int = 0
    unsigned: int = 0
    late: int = 0


class CallbackReceiver:
    """Receive Vidgo callbacks for many jobs and deliver each verified outcome once.

    Use it as an async context manager: entering starts the verification workers, leaving
    stops them (pending verifications get ``shutdown_timeout`` seconds on a clean exit;
    jobs fall back to polling for anything dropped)::

        async with VidgoClient() as client, CallbackReceiver(client, "https://example.com/hooks/vidgo") as receiver:
            token = receiver.registry.new_token("clip-7")
            task = await client.submit("seedance-2", {...}, callback_url=receiver.registry.url_for(token))
            receiver.registry.set_task_id(token, task.task_id)
            outcome = await receiver.wait(token)   # a VerifiedCallback; outcome.task came from GET /status

    Args:
        client: verifies each callback with ``await client.get_task(task_id)``.
        base_url: the public base URL of the callbacks (see :class:`CallbackRegistry`).
        registry: share a registry (default: a new one).
        signing_key: check ``X-Webhook-Signature`` ([P]): a key, a list of keys while
            rotating, or a :class:`CallbackSigning`; unsigned, stale or wrong requests get
            401. ``None`` (default): no signature is required.
        allow_insecure_callbacks: accept a plain ``http`` base URL on a public host (the
            token travels in the URL; see :class:`CallbackRegistry`).
        max_body_bytes: larger bodies get 413.
        workers: verifications run at the same time at most.
        queue_size: callbacks waiting for verification at most; beyond it new callbacks get
            503 (Vidgo retries a 5xx later).
        max_verifications_per_token: status requests one token can trigger at most without
            resolving its job, so a leaked token cannot make the receiver hammer the API.
        verify_timeout: seconds one verification may take.
        shutdown_timeout: seconds a clean exit waits for queued verifications.
    """

    def __init__(
        self,
        client: TaskFetcher,
        base_url: str | None = None,
        *,
        registry: CallbackRegistry | None = None,
        signing_key: str | bytes | list[str | bytes] | CallbackSigning | None = None,
        allow_insecure_callbacks: bool = False,
        max_body_bytes: int = DEFAULT_MAX_CALLBACK_BYTES,
        workers: int = 4,
        queue_size: int = 1000,
        max_verifications_per_token: int = 8,
        verify_timeout: float | timedelta = 120.0,
        shutdown_timeout: float | timedelta = 5.0,
    ) -> None:
        if workers < 1 or queue_size < 1 or max_verifications_per_token < 1 or max_body_bytes < 1:
            raise ValueError(
                "workers, queue_size, max_verifications_per_token and max_body_bytes must be >= 1"
            )
        self._registry = (
            registry
            if registry is not None
            else CallbackRegistry(allow_insecure_callbacks=allow_insecure_callbacks)
        )
        if base_url is not None:
            self._registry.set_base_url(base_url)
        if signing_key is None or isinstance(signing_key, CallbackSigning):
            self._signing = signing_key
        else:
            keys = tuple(signing_key) if isinstance(signing_key, list) else signing_key
            self._signing = CallbackSigning(keys=keys)
        self._max_body_bytes = max_body_bytes
        self._verifier = Verifier(
            client,
            self._registry,
            workers=workers,
            queue_size=queue_size,
            max_verifications=max_verifications_per_token,
            verify_timeout=to_seconds(verify_timeout),
            shutdown_timeout=to_seconds(shutdown_timeout),
        )
        self._closed = False
        self._counts = _RequestCounts()
        self.log = RefusalLog(logger)

    @property
    def stats(self) -> ReceiverStats:
        """A snapshot of the counters of what the receiver saw (for tests and metrics)."""
        merged = {**attrs.asdict(self._counts), **attrs.asdict(self._verifier.counts)}
        merged["duplicates"] += self._counts.late  # late duplicates are duplicates too
        return ReceiverStats(**merged)

    @property
    def registry(self) -> CallbackRegistry:
        """The token registry: issue tokens and URLs with it."""
        return self._registry

    @property
    def max_body_bytes(self) -> int:
        """The largest callback body accepted, in bytes (larger ones get 413)."""
        return self._max_body_bytes

    @property
    def running(self) -> bool:
        """Whether the verification workers run (between entering and leaving)."""
        return self._verifier.running

    @property
    def route_path(self) -> str:
        """The aiohttp route template of the callbacks: ``<base path>/{token}``."""
        return f"{self._registry.base_path}/{{token}}"

    async def __aenter__(self) -> CallbackReceiver:
        if self._closed or self._verifier.running:
            raise RuntimeError("a CallbackReceiver can be entered once")
        await self._verifier.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose(_clean=exc_type is None)
        return None

    async def aclose(self, *, _clean: bool = True) -> None:
        """Stop the workers; idempotent. Later callbacks get 503."""
        self._closed = True
        await self._verifier.aclose(clean=_clean)

    async def join(self) -> None:
        """Wait until every accepted callback has been verified (and delivered, if it counts)."""
        await self._verifier.join()

    def is_known(self, token: str) -> bool:
        """Whether ``token`` (or a request path ending with it) belongs to a live job."""
        found = self._registry.find(self._registry.token_from_path(token))
        return found is not None and not found.ended

    async def handle(
        self, path_or_token: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> CallbackResponse:
        """Answer one callback request: the framework-neutral core of the receiver.

        Args:
            path_or_token: the request path (its last segment is the token) or the token.
            body: the raw request body.
            headers: the request headers (the signature headers, when signing is on).

        Returns:
            404 for an unknown token; 200 at once for a token whose job has ended; 413 for
            an oversized body, 400 for a malformed one, 401 for a bad signature (with a
            signing key); 503 when the receiver is not running or its queue is full; else
            200 at once (the verification happens later, off the request path).
        """
        self._counts.received += 1
        token = self._registry.token_from_path(path_or_token)
        found = self._registry.find(token)
        if found is None:
            self._counts.not_found += 1
            return NOT_FOUND_RESPONSE
        if found.ended or self._verifier.resolved(found.key):
            # A late duplicate: acknowledged, since a 4xx would be final for the sender.
            self._counts.late += 1
            return OK_RESPONSE
        try:
            claim = parse_callback(body, max_bytes=self._max_body_bytes)
            if self._signing is not None:
                self._signing.check(claim.task_id, headers or {})
        except WebhookError as exc:
            return self.refuse(exc)
        return self._accept(found, token, claim)

    def refuse(self, error: WebhookError) -> CallbackResponse:
        """Count and log (rate-limited) a refused callback; return its answer."""
        if isinstance(error, CallbackTooLargeError):
            self._counts.too_large += 1
            kind = "too_large"
        elif isinstance(error, CallbackSignatureError):
            self._counts.unsigned += 1
            kind = "bad_signature"
        else:
            self._counts.invalid += 1
            kind = "invalid_callback"
        self.log.note(kind, f"{error.status_code}: {error}", level=logging.INFO)
        return json_response(error.status_code, {"error": {"type": kind, "message": str(error)}})

    def refuse_oversized(self, size: int) -> CallbackResponse:
        """Answer a request that declares a body over the limit (before reading it)."""
        self._counts.received += 1
        return self.refuse(CallbackTooLargeError(size, self._max_body_bytes))

    def _accept(self, found: CallbackToken, token: str, claim: Task) -> CallbackResponse:
        offer = self._verifier.offer(found, token, claim)
        if offer == "ignored":
            self.log.note("ignored", f"a callback naming task {claim.task_id} changed nothing")
        elif offer == "stopped":
            self.log.note("not running", "503: the receiver is not running")
            return json_response(
                503, {"error": {"type": "unavailable", "message": "receiver not running"}}
            )
        elif offer == "full":
            self.log.note("busy", f"503: {self._verifier.queue_size} verifications queued")
            return json_response(
                503, {"error": {"type": "busy", "message": "try again"}}, **{"Retry-After": "1"}
            )
        return OK_RESPONSE

    async def wait(
        self,
        token: str,
        *,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 - like VidgoClient.wait
    ) -> VerifiedCallback:
        """Wait until a verified callback ends the token's job, and return it.

        Raises:
            UnknownCallbackTokenError: the token is (or becomes) unknown, forgotten or expired.
            TimeoutError: ``timeout`` seconds passed first.
        """
        found = self._registry.find(token)
        if found is None or found.ended:
            raise UnknownCallbackTokenError("this callback token is unknown, forgotten or expired")
        with anyio.fail_after(None if timeout is None else to_seconds(timeout)):
            return await self._verifier.wait(found)

    # -- aiohttp (bodies in _callback_http) ------------------------------------------

    async def aiohttp_handler(self, request: web.Request) -> web.StreamResponse:
        """Answer a callback in aiohttp; mount at :attr:`route_path` (needs ``{token}``).

        An unknown token is refused before the body is read, a declared or streamed body
        over the limit is cut off, then :meth:`handle` answers.
        """
        return await handle_request(self, request, log=self.log)

    def aiohttp_app(self, *, subapp: bool = False) -> web.Application:
        """Build an aiohttp application answering ``POST <base path>/{token}``.

        With ``subapp=True`` the route is ``POST /{token}``, for
        ``parent.add_subapp(receiver.registry.base_path, receiver.aiohttp_app(subapp=True))``.
        The application does not start the receiver: enter it (or use :meth:`serve`).
        """
        base_path = self._registry.base_path
        if subapp and not base_path:
            raise ValueError("the base URL has no path to mount a sub-application under")
        if "{" in base_path or "}" in base_path:
            raise ValueError(f"the base URL path {base_path!r} cannot hold '{{' or '}}'")
        route = "/{token}" if subapp else self.route_path
        return build_app(self, route, log=self.log)

    @contextlib.asynccontextmanager
    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: ListenerLimits | None = None,
    ) -> AsyncIterator[CallbackServer]:
        """Run the receiver's aiohttp server on ``host:port`` (the CLI's ``--listen``).

        Use as ``async with receiver.serve(host, port) as server``; it starts the receiver
        too when it is not running. Without a base URL, a loopback ``host`` gives
        ``http://host:port`` (for the emulator); public setups pass the URL their proxy or
        tunnel forwards here. ``limits`` bounds connections and read times
        (:class:`ListenerLimits`). The access log is off: request paths hold the tokens.
        """
        registry = self._registry
        if registry.base_url is None and not is_loopback_host(host):
            raise ValueError(
                f"listening on {host!r} needs the public callback base URL that reaches it: "
                "pass base_url= (for example the https URL of your tunnel or proxy)"
            )
        self.aiohttp_app()  # checks the base path before anything listens
        limits = limits if limits is not None else ListenerLimits()
        self.log = RefusalLog(logger, interval=limits.log_interval)
        stats = ListenerStats()
        async with contextlib.AsyncExitStack() as stack:
            if not self.running:
                await stack.enter_async_context(self)
            bound_port = await stack.enter_async_context(
                listen(
                    self, self.route_path, host, port, ssl_context=ssl_context,
                    limits=limits, log=self.log, stats=stats,
                )
            )  # fmt: skip
            if registry.base_url is None:
                url_host = f"[{host}]" if ":" in host else host
                scheme = "https" if ssl_context is not None else "http"
                registry.set_base_url(f"{scheme}://{url_host}:{bound_port}")
            base_url = registry.base_url
            assert base_url is not None  # noqa: S101 - set above, or before
            logger.info("callback receiver listening on %s:%d", host, bound_port)
            yield CallbackServer(host, bound_port, base_url, stats)
