"""The aiohttp side of the callback receiver: request handler, application and listener.

Kept apart from the framework-neutral core in ``webhooks`` (it only needs a
``CallbackEndpoint``), so that other frameworks only need ``CallbackReceiver.handle``.

The listener is exposed to the internet, so it is bounded on every axis: at most
``max_connections`` open connections (more are answered 503 and closed at once), a
deadline for the request headers and another for the body, one request per connection,
a body size limit, and a log that says one line per kind of refusal per interval, never a
traceback for a client that hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import attrs
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from ._callbacks import CallbackEndpoint, CallbackResponse, RefusalLog
from ._errors import InvalidCallbackError

__all__ = [
    "CallbackServer",
    "ListenerLimits",
    "ListenerStats",
    "build_app",
    "handle_request",
    "listen",
]

logger = logging.getLogger("vidgo_async")

_READ_CHUNK = 65536
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\n\r\n"
)


@attrs.frozen(kw_only=True)
class ListenerLimits:
    """Bounds of the callback listener (``CallbackReceiver.serve``).

    Args:
        max_connections: open connections at most; more are answered 503 and closed.
        header_timeout: seconds a connection has to send its request headers.
        body_timeout: seconds a request has to send its body (a callback is a few kB).
        log_interval: seconds between two log lines about the same kind of refusal.
    """

    max_connections: int = 256
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    log_interval: float = 60.0

    def __attrs_post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1 (got {self.max_connections})")
        if not (self.header_timeout > 0 and self.body_timeout > 0 and self.log_interval >= 0):
            raise ValueError("header_timeout and body_timeout must be > 0, log_interval >= 0")


@attrs.define
class ListenerStats:
    """Counters of the listener: connections taken, refused over the cap, timed out."""

    connections: int = 0
    over_capacity: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    hung_up: int = 0


@attrs.frozen
class CallbackServer:
    """A running callback server: where it listens, the base URL jobs are given, counters."""

    host: str
    port: int
    base_url: str
    stats: ListenerStats = attrs.field(factory=ListenerStats, eq=False)


def _to_aiohttp(answer: CallbackResponse) -> web.Response:
    response = web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    response.force_close()  # one request per connection: no idle keep-alive to hold
    return response


async def handle_request(
    endpoint: CallbackEndpoint,
    request: web.Request,
    *,
    body_timeout: float | None = None,
    log: RefusalLog | None = None,
    stats: ListenerStats | None = None,
) -> web.Response:
    """Answer one aiohttp callback request through ``endpoint``."""
    token = request.match_info.get("token") or request.path
    if not endpoint.is_known(token):
        # Refused (or, for an ended job, acknowledged) before reading the body: junk
        # costs no more than its headers.
        return _to_aiohttp(await endpoint.handle(token, b""))
    limit = endpoint.max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        return _to_aiohttp(endpoint.refuse_oversized(length))
    body = bytearray()
    try:
        with anyio.fail_after(body_timeout):
            while chunk := await request.content.read(_READ_CHUNK):
                body += chunk
                if len(body) > limit:
                    break  # enough to prove it is too large; parse_callback reports it
    except TimeoutError:
        if stats is not None:
            stats.body_timeouts += 1
        if log is not None:
            log.note("slow body", f"no complete body within {body_timeout} s")
        return _to_aiohttp(CallbackResponse(408, b"", {"Content-Length": "0"}))
    except (RequestPayloadError, HttpProcessingError):
        # A body aiohttp cannot decode (not the Content-Encoding it claims, broken chunked
        # framing): a malformed request like any other, refused with a 400, no traceback.
        error = InvalidCallbackError("the request body cannot be decoded as its headers declare")
        return _to_aiohttp(endpoint.refuse(error))
    except OSError:  # the client hung up mid-body (aiohttp's reset errors are OSErrors)
        if stats is not None:
            stats.hung_up += 1
        if log is not None:
            log.note("hung up", "the client closed the connection mid-body", level=logging.DEBUG)
        return _to_aiohttp(CallbackResponse(400, b"", {"Content-Length": "0"}))
    return _to_aiohttp(await endpoint.handle(token, bytes(body), request.headers))


def build_app(
    endpoint: CallbackEndpoint,
    route: str,
    *,
    body_timeout: float | None = None,
    log: RefusalLog | None = None,
    stats: ListenerStats | None = None,
    started: set[asyncio.BaseTransport] | None = None,
) -> web.Application:
    """Build an application answering ``POST route`` (``route`` ends with ``{token}``).

    ``started`` collects the transports whose request headers arrived (the listener's
    header deadline spares them); then every answer, 404 and 405 included, closes its
    connection, so that no idle keep-alive connection holds a slot.
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        return await handle_request(
            endpoint, request, body_timeout=body_timeout, log=log, stats=stats
        )

    @web.middleware
    async def one_request_per_connection(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if started is not None and request.transport is not None:
            started.add(request.transport)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # no route (404) or method (405)
            response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
        response.force_close()
        return response

    app = web.Application(
        client_max_size=endpoint.max_body_bytes + 1,
        middlewares=[one_request_per_connection] if started is not None else [],
    )
    app.router.add_post(route, handler)
    return app


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol, with a place in the connection cap and a header deadline.

    The place is taken in ``connection_made`` and given back in ``connection_lost``: asyncio
    calls them in pairs. With TLS it calls them only once the handshake has completed, so
    a failed handshake (plain text on the TLS port, a scanner) never holds a place; a slow
    one is cut off by ``ssl_handshake_timeout``. Over the cap the connection is answered
    503 and closed, and aiohttp never sees it.
    """

    def __init__(self, server: web.Server, listener: _Listener) -> None:
        self._server = server
        self._listener = listener
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        listener = self._listener
        if listener.slots <= 0:
            listener.refuse_busy(transport)
            return
        listener.slots -= 1
        listener.stats.connections += 1
        self._transport = transport
        listener.open.add(transport)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(listener.limits.header_timeout, self._headers_due)
        self._inner = self._server()
        self._inner.connection_made(transport)

    def _headers_due(self) -> None:
        transport = self._transport
        started = self._listener.started
        if transport is not None and transport not in started and not transport.is_closing():
            self._listener.stats.header_timeouts += 1
            self._listener.log.note(
                "slow headers",
                f"no request headers within {self._listener.limits.header_timeout} s",
            )
            transport.abort()  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._inner is None else self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        inner = self._inner
        if inner is None:  # refused over the cap: it never held a place
            return
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._listener.open.discard(self._transport)
            self._listener.started.discard(self._transport)
        self._listener.slots += 1
        inner.connection_lost(exc)


@attrs.define(eq=False)
class _Listener:
    limits: ListenerLimits
    log: RefusalLog
    stats: ListenerStats
    slots: int
    open: set[asyncio.BaseTransport] = attrs.Factory(set)
    started: set[asyncio.BaseTransport] = attrs.Factory(set)

    def factory(self, inner: web.Server) -> asyncio.Protocol:
        return _Guarded(inner, self)

    def refuse_busy(self, transport: asyncio.BaseTransport) -> None:
        """Over the cap: answer 503 and close without reading anything."""
        self.stats.over_capacity += 1
        self.log.note(
            "too many connections", f"{self.limits.max_connections} connections are open already"
        )
        assert isinstance(transport, asyncio.WriteTransport)  # noqa: S101 - a stream transport
        transport.write(_BUSY)
        transport.close()


@contextlib.asynccontextmanager
async def listen(
    endpoint: CallbackEndpoint,
    route: str,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    limits: ListenerLimits,
    log: RefusalLog,
    stats: ListenerStats,
) -> AsyncIterator[int]:
    """Serve ``POST route`` of ``endpoint`` on ``host:port`` within ``limits``; yield the port.

    The access log is off: request paths hold the tokens.
    """
    listener = _Listener(limits=limits, log=log, stats=stats, slots=limits.max_connections)
    app = build_app(
        endpoint,
        route,
        body_timeout=limits.body_timeout,
        log=log,
        stats=stats,
        started=listener.started,
    )
    # lingering_time=0: after an early answer (408, 413) the rest of a body is not awaited.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, lingering_time=0)
    await runner.setup()
    inner = runner.server
    assert inner is not None  # noqa: S101 - set by setup()
    try:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: listener.factory(inner),
            host,
            port,
            ssl=ssl_context,
            # A handshake holds no slot (see _Guarded); a slow one ends as slow headers would.
            ssl_handshake_timeout=limits.header_timeout if ssl_context is not None else None,
            reuse_address=True,
        )
        try:
            yield int(server.sockets[0].getsockname()[1])
        finally:
            server.close()
            await runner.shutdown()
            for transport in list(listener.open):
                transport.abort()  # type: ignore[attr-defined]
            await server.wait_closed()
    finally:
        await runner.cleanup()
