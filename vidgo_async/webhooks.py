"""Receive Vidgo callbacks safely: capability URLs, verification by re-fetching, dedupe.

Vidgo's callbacks are unsigned and may be wrapped (``{code, data}``) or bare, repeated
(three retries) or lost. So a callback is treated as a *hint*:

1. the URL carries a per-job random token (:class:`CallbackRegistry`): an unknown token is
   answered 404 before the body is even read;
2. the body is parsed with a size limit (:func:`parse_callback`): 413 / 400 otherwise;
3. the receiver answers 200 at once and, off the request path, re-fetches the task with an
   authenticated ``GET /api/generate/status/{task_id}``; only that fresh ``Task`` reaches the
   job's subscriber, once. File URLs are never taken from the body.

:class:`CallbackReceiver` holds the framework-neutral core (:meth:`CallbackReceiver.handle`)
and an aiohttp integration (:meth:`~CallbackReceiver.aiohttp_app`,
:meth:`~CallbackReceiver.aiohttp_handler`, :meth:`~CallbackReceiver.serve`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import ssl
from collections.abc import Mapping
from datetime import timedelta
from types import TracebackType

import anyio
import attrs
from aiohttp import web
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import _callback_http
from ._callback_http import CallbackServer
from ._callbacks import (
    DEFAULT_MAX_CALLBACK_BYTES,
    NOT_FOUND_RESPONSE,
    OK_RESPONSE,
    CallbackResponse,
    ReceiverStats,
    Subscriber,
    TaskFetcher,
    VerifiedCallback,
    json_response,
    parse_callback,
)
from ._config import to_seconds
from ._errors import (
    CallbackTooLargeError,
    InvalidCallbackError,
    UnknownCallbackTokenError,
    VidgoError,
    WebhookError,
)
from ._models import Task
from ._tokens import DEFAULT_TOKEN_TTL, CallbackRegistry, _Entry

__all__ = [
    "DEFAULT_MAX_CALLBACK_BYTES",
    "DEFAULT_TOKEN_TTL",
    "CallbackReceiver",
    "CallbackRegistry",
    "CallbackResponse",
    "CallbackServer",
    "CallbackTooLargeError",
    "InvalidCallbackError",
    "ReceiverStats",
    "Subscriber",
    "TaskFetcher",
    "UnknownCallbackTokenError",
    "VerifiedCallback",
    "WebhookError",
    "parse_callback",
]

logger = logging.getLogger("vidgo_async")


@attrs.frozen
class _Delivery:
    entry: _Entry
    task_id: str
    key: tuple[str, str]


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
        max_body_bytes: larger bodies get 413.
        workers: verifications run at the same time at most.
        queue_size: callbacks waiting for verification at most; beyond it new callbacks get
            503 (Vidgo retries after 1, 2 and 4 s).
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
        self._client = client
        self._registry = registry if registry is not None else CallbackRegistry()
        if base_url is not None:
            self._registry.set_base_url(base_url)
        self._max_body_bytes = max_body_bytes
        self._workers = workers
        self._queue_size = queue_size
        self._max_verifications = max_verifications_per_token
        self._verify_timeout = to_seconds(verify_timeout)
        self._shutdown_timeout = to_seconds(shutdown_timeout)
        self._send: MemoryObjectSendStream[_Delivery] | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._outstanding = 0
        self._idle: anyio.Event | None = None
        self.stats = ReceiverStats()

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
        return self._send is not None

    @property
    def route_path(self) -> str:
        """The aiohttp route template of the callbacks: ``<base path>/{token}``."""
        return f"{self._registry.base_path}/{{token}}"

    async def __aenter__(self) -> CallbackReceiver:
        if self._closed or self._send is not None:
            raise RuntimeError("a CallbackReceiver can be entered once")
        send, receive = anyio.create_memory_object_stream[_Delivery](self._queue_size)
        async with contextlib.AsyncExitStack() as stack:
            task_group = await stack.enter_async_context(anyio.create_task_group())
            for _ in range(self._workers):
                task_group.start_soon(self._worker, receive.clone())
            receive.close()
            self._task_group = task_group
            self._exit_stack = stack.pop_all()
        self._send = send
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
        send, self._send = self._send, None
        stack, self._exit_stack = self._exit_stack, None
        if send is None or stack is None:
            return
        send.close()  # the workers finish what is queued, then end
        if self._task_group is not None:
            if _clean:
                self._task_group.cancel_scope.deadline = (
                    anyio.current_time() + self._shutdown_timeout
                )
            else:
                self._task_group.cancel_scope.cancel()
        try:
            await stack.aclose()
        finally:
            # Whatever was still queued is dropped: jobs fall back to polling.
            self._outstanding = 0
            if self._idle is not None:
                self._idle.set()
                self._idle = None

    async def handle(
        self, path_or_token: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> CallbackResponse:
        """Answer one callback request: the framework-neutral core of the receiver.

        Args:
            path_or_token: the request path (its last segment is the token) or the token.
            body: the raw request body.
            headers: the request headers (unused today: Vidgo sends no signature).

        Returns:
            404 for an unknown token, 413 for an oversized body, 400 for a malformed one,
            503 when the receiver is not running or its queue is full, else 200 at once (the
            verification happens later, off the request path).
        """
        self.stats.received += 1
        entry = self._registry._lookup(self._registry.token_from_path(path_or_token))
        if entry is None:
            self.stats.not_found += 1
            return NOT_FOUND_RESPONSE
        try:
            claim = parse_callback(body, max_bytes=self._max_body_bytes)
        except WebhookError as exc:
            return self._refusal(exc)
        return self._accept(entry, claim)

    def _refusal(self, exc: WebhookError) -> CallbackResponse:
        if isinstance(exc, CallbackTooLargeError):
            self.stats.too_large += 1
        else:
            self.stats.invalid += 1
        logger.info("callback refused with %d: %s", exc.status_code, exc)
        kind = "too_large" if isinstance(exc, CallbackTooLargeError) else "invalid_callback"
        return json_response(exc.status_code, {"error": {"type": kind, "message": str(exc)}})

    def _accept(self, entry: _Entry, claim: Task) -> CallbackResponse:
        """Queue a verification unless the claim is resolved, foreign or already queued."""
        if entry.done:
            self.stats.duplicates += 1
            return OK_RESPONSE
        if entry.task_id is not None and claim.task_id != entry.task_id:
            # The token belongs to another task: a forgery or a mix-up, never an adoption.
            self.stats.ignored += 1
            logger.warning(
                "callback for job %r names task %s, but the job's task is %s; ignored",
                entry.job_ref,
                claim.task_id,
                entry.task_id,
            )
            return OK_RESPONSE
        key = (claim.task_id, claim.status.value)
        if key in entry.pending:
            self.stats.duplicates += 1
            return OK_RESPONSE
        if entry.verifications >= self._max_verifications:
            self.stats.ignored += 1
            logger.warning(
                "callback for job %r ignored: %d verifications did not resolve it",
                entry.job_ref,
                entry.verifications,
            )
            return OK_RESPONSE
        if self._send is None:
            self.stats.busy += 1
            logger.warning("callback refused with 503: the receiver is not running")
            return json_response(
                503, {"error": {"type": "unavailable", "message": "receiver not running"}}
            )
        try:
            self._send.send_nowait(_Delivery(entry, claim.task_id, key))
        except anyio.WouldBlock:
            self.stats.busy += 1
            logger.warning("callback refused with 503: %d verifications queued", self._queue_size)
            return json_response(
                503, {"error": {"type": "busy", "message": "try again"}}, **{"Retry-After": "1"}
            )
        entry.pending.add(key)
        entry.verifications += 1
        self._outstanding += 1
        self.stats.accepted += 1
        return OK_RESPONSE

    async def _worker(self, receive: MemoryObjectReceiveStream[_Delivery]) -> None:
        async with receive:
            async for delivery in receive:
                try:
                    await self._verify(delivery)
                finally:
                    self._outstanding -= 1
                    if self._outstanding == 0 and self._idle is not None:
                        self._idle.set()
                        self._idle = None

    async def join(self) -> None:
        """Wait until every accepted callback has been verified (and delivered, if it counts)."""
        while self._outstanding > 0:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    async def _verify(self, delivery: _Delivery) -> None:
        """Re-fetch the claimed task and deliver it if it resolves (or reveals) the job."""
        entry = delivery.entry
        self.stats.verifications += 1
        try:
            with anyio.fail_after(self._verify_timeout):
                task = await self._client.get_task(delivery.task_id)
        except (VidgoError, TimeoutError) as exc:
            # The job's fallback poll covers it; a later delivery is verified afresh.
            self.stats.verification_errors += 1
            logger.warning(
                "callback for job %r: verifying task %s failed (%s); polling continues",
                entry.job_ref,
                delivery.task_id,
                exc,
            )
            return
        finally:
            entry.pending.discard(delivery.key)
        if entry.done or self._registry._lookup(entry.token) is not entry:
            return
        if task.task_id != delivery.task_id or (
            entry.task_id is not None and entry.task_id != task.task_id
        ):
            self.stats.ignored += 1
            return
        adopted = entry.task_id is None
        if not (task.is_terminal or adopted or not task.status.is_known):
            self.stats.unconfirmed += 1
            logger.info(
                "callback for task %s claimed %r, but the API says %r; nothing changed",
                task.task_id,
                delivery.key[1],
                task.status.value,
            )
            return
        if adopted:
            entry.task_id = task.task_id
            self.stats.adopted += 1
            logger.info("job %r: a callback revealed its task %s", entry.job_ref, task.task_id)
        event = VerifiedCallback(
            token=entry.token, job_ref=entry.job_ref, task=task, adopted=adopted
        )
        if task.is_terminal:
            entry.done = True
            entry.result = event
            for waiter in entry.waiters:
                waiter.set()
            entry.waiters.clear()
        self.stats.delivered += 1
        await self._notify(entry.subscriber, event)

    async def _notify(self, subscriber: Subscriber | None, event: VerifiedCallback) -> None:
        if subscriber is None:
            return
        try:
            outcome = subscriber(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # A subscriber's bug must not stop the receiver from serving other jobs.
            logger.exception("callback subscriber for job %r raised", event.job_ref)

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
        entry = self._registry._require(token)
        if entry.result is None:
            event = anyio.Event()
            entry.waiters.append(event)
            try:
                with anyio.fail_after(None if timeout is None else to_seconds(timeout)):
                    await event.wait()
            finally:
                if event in entry.waiters:
                    entry.waiters.remove(event)
        if entry.result is None:
            raise UnknownCallbackTokenError("the callback token was forgotten or expired")
        return entry.result

    # -- aiohttp (bodies in _callback_http) ------------------------------------------

    async def aiohttp_handler(self, request: web.Request) -> web.StreamResponse:
        """Answer a callback in aiohttp; mount at :attr:`route_path` (needs ``{token}``).

        An unknown token is refused before the body is read, a declared or streamed body
        over the limit is cut off, then :meth:`handle` answers.
        """
        return await _callback_http.handle_request(self, request)

    def aiohttp_app(self, *, subapp: bool = False) -> web.Application:
        """Build an aiohttp application answering ``POST <base path>/{token}``.

        With ``subapp=True`` the route is ``POST /{token}``, for
        ``parent.add_subapp(receiver.registry.base_path, receiver.aiohttp_app(subapp=True))``.
        The application does not start the receiver: enter it (or use :meth:`serve`).
        """
        return _callback_http.build_app(self, subapp=subapp)

    def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> contextlib.AbstractAsyncContextManager[CallbackServer]:
        """Run the receiver's aiohttp server on ``host:port`` (the CLI's ``--listen``).

        Use as ``async with receiver.serve(host, port) as server``; it starts the receiver
        too when it is not running. Without a base URL, a loopback ``host`` gives
        ``http://host:port`` (for the emulator); public setups pass the URL their proxy or
        tunnel forwards here. The access log is off: request paths hold the tokens.
        """
        return _callback_http.serve(self, host, port, ssl_context=ssl_context)
