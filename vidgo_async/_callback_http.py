"""The aiohttp side of the callback receiver: the request handler, the app and the server.

Kept apart from the framework-neutral core in ``webhooks`` so that the core stays small
and other frameworks only need :meth:`CallbackReceiver.handle`.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import attrs
from aiohttp import web

from ._errors import CallbackTooLargeError
from ._hosts import is_loopback_host

if TYPE_CHECKING:
    from ._callbacks import CallbackResponse
    from .webhooks import CallbackReceiver

__all__ = ["CallbackServer", "build_app", "handle_request", "serve"]

logger = logging.getLogger("vidgo_async")

_READ_CHUNK = 65536


@attrs.frozen
class CallbackServer:
    """A running callback server: where it listens and the base URL jobs are given."""

    host: str
    port: int
    base_url: str


def _to_aiohttp(answer: CallbackResponse) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


async def handle_request(receiver: CallbackReceiver, request: web.Request) -> web.Response:
    """Answer one aiohttp callback request through ``receiver``."""
    token = request.match_info.get("token") or request.path
    registry = receiver.registry
    if registry._lookup(registry.token_from_path(token)) is None:
        # Refused before reading the body: junk costs no more than its headers.
        return _to_aiohttp(await receiver.handle(token, b""))
    limit = receiver.max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        receiver.stats.received += 1
        return _to_aiohttp(receiver._refusal(CallbackTooLargeError(length, limit)))
    body = bytearray()
    while chunk := await request.content.read(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            break  # enough to prove it is too large; parse_callback reports it
    return _to_aiohttp(await receiver.handle(token, bytes(body), request.headers))


def build_app(receiver: CallbackReceiver, *, subapp: bool = False) -> web.Application:
    """Build the aiohttp application of ``receiver`` (see ``CallbackReceiver.aiohttp_app``)."""
    base_path = receiver.registry.base_path
    if subapp and not base_path:
        raise ValueError("the base URL has no path to mount a sub-application under")
    if "{" in base_path or "}" in base_path:
        raise ValueError(f"the base URL path {base_path!r} cannot hold '{{' or '}}'")
    app = web.Application(client_max_size=receiver.max_body_bytes + 1)
    app.router.add_post("/{token}" if subapp else receiver.route_path, receiver.aiohttp_handler)
    return app


@contextlib.asynccontextmanager
async def serve(
    receiver: CallbackReceiver,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[CallbackServer]:
    """Run ``receiver`` on ``host:port`` (see ``CallbackReceiver.serve``)."""
    registry = receiver.registry
    if registry.base_url is None and not is_loopback_host(host):
        raise ValueError(
            f"listening on {host!r} needs the public callback base URL that reaches it: "
            "pass base_url= (for example the https URL of your tunnel or proxy)"
        )
    async with contextlib.AsyncExitStack() as stack:
        if not receiver.running:
            await stack.enter_async_context(receiver)
        runner = web.AppRunner(build_app(receiver), access_log=None, handle_signals=False)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        if registry.base_url is None:
            url_host = f"[{host}]" if ":" in host else host
            scheme = "https" if ssl_context is not None else "http"
            registry.set_base_url(f"{scheme}://{url_host}:{bound_port}")
        base_url = registry.base_url
        assert base_url is not None  # noqa: S101 - set above, or before
        logger.info("callback receiver listening on %s:%d", host, bound_port)
        yield CallbackServer(host, bound_port, base_url)
