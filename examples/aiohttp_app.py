"""A web app whose handler awaits a generation through one shared orchestrator.

The orchestrator (and its client) is created once at startup and closed at cleanup, so every
request shares one connection pool, one ``max_in_flight`` budget and one status poller.

The app also mounts the callback receiver: each generation gets its own callback URL under
``VIDGO_CALLBACK_BASE_URL`` (the public https URL of this app's ``/hooks/vidgo``, e.g. through
a tunnel), a verified callback ends the generation at once, and polling is only a slow
fallback. Against the emulator the callbacks come to ``http://127.0.0.1:8080/hooks/vidgo``.

Run: ``python examples/aiohttp_app.py [--port 8080]`` then
``curl -XPOST localhost:8080/generate -d '{"prompt": "a fox"}'``. A body that is not a JSON
object with a string ``prompt`` gets a 400 with a JSON error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from _common import vidgo_client
from aiohttp import web

from vidgo_async import InputValidationError, Orchestrator, TaskError, VidgoError
from vidgo_async.webhooks import CallbackReceiver

ORCHESTRATOR = web.AppKey("orchestrator", Orchestrator)
RECEIVER = web.AppKey("receiver", CallbackReceiver)


def vidgo_context(
    callback_base_url: str | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Open the client, the callback receiver and the shared orchestrator at startup; close them at cleanup."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with vidgo_client() as client, contextlib.AsyncExitStack() as stack:
            receiver = None
            if callback_base_url is not None:
                receiver = CallbackReceiver(client, callback_base_url)
                app[RECEIVER] = await stack.enter_async_context(receiver)  # its verifiers run
            orchestrator = Orchestrator(client, max_in_flight=8, receiver=receiver)
            app[ORCHESTRATOR] = await stack.enter_async_context(orchestrator)
            yield

    return context


async def vidgo_callback(request: web.Request) -> web.StreamResponse:
    """POST /hooks/vidgo/{token}: Vidgo's callback; answered at once, verified by re-fetching."""
    return await request.app[RECEIVER].aiohttp_handler(request)


async def generate(request: web.Request) -> web.Response:
    """POST {"prompt": ...}: generate a 5 s 720p clip and answer with its video URL."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        return web.json_response(
            {"error": 'the body must be a JSON object with a string "prompt"'}, status=400
        )
    orchestrator = request.app[ORCHESTRATOR]
    try:
        task = await orchestrator.generate(
            "seedance-2",
            {"prompt": body["prompt"], "duration": 5, "resolution": "720p"},
        )
    except InputValidationError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except TaskError as exc:
        return web.json_response({"error": str(exc), "task_id": exc.task.task_id}, status=502)
    except VidgoError as exc:
        return web.json_response({"error": str(exc)}, status=503)
    return web.json_response({"task_id": task.task_id, "video_url": task.file_urls[0]})


async def progress(request: web.Request) -> web.Response:
    """GET: how many generations are queued, in flight and done."""
    snapshot = request.app[ORCHESTRATOR].snapshot()
    return web.json_response(
        {"queued": snapshot.queued, "in_flight": snapshot.in_flight, "done": snapshot.done}
    )


def make_app(callback_base_url: str | None = None) -> web.Application:
    """Build the application; with a callback base URL, mount the receiver at its path."""
    app = web.Application()
    app.cleanup_ctx.append(vidgo_context(callback_base_url))
    app.router.add_post("/generate", generate)
    app.router.add_get("/progress", progress)
    if callback_base_url is not None:
        path = urlsplit(callback_base_url).path.rstrip("/")
        app.router.add_post(path + "/{token}", vidgo_callback)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve POST /generate on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8080, help="the port (default 8080)")
    port = parser.parse_args().port
    base_url = os.environ.get("VIDGO_CALLBACK_BASE_URL")
    if base_url is None and not os.environ.get("VIDGO_API_KEY"):
        base_url = f"http://127.0.0.1:{port}/hooks/vidgo"  # the emulator calls back on loopback
    # No access log: callback paths hold the tokens, which are capabilities.
    web.run_app(make_app(base_url), host="127.0.0.1", port=port, access_log=None)
