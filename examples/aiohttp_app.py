"""A web app whose handler awaits a generation through one shared orchestrator.

The orchestrator (and its client) is created once at startup and closed at cleanup, so every
request shares one connection pool, one ``max_in_flight`` budget and one status poller.

Run: ``python examples/aiohttp_app.py`` then ``curl -XPOST localhost:8080/generate -d '{"prompt": "a fox"}'``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from _common import vidgo_client
from aiohttp import web

from vidgo_async import InputValidationError, Orchestrator, TaskError, VidgoError

ORCHESTRATOR = web.AppKey("orchestrator", Orchestrator)


async def vidgo_context(app: web.Application) -> AsyncIterator[None]:
    """Open the client and the shared orchestrator at startup; close both at cleanup."""
    async with vidgo_client() as client, Orchestrator(client, max_in_flight=8) as orchestrator:
        app[ORCHESTRATOR] = orchestrator
        yield


async def generate(request: web.Request) -> web.Response:
    """POST {"prompt": ...}: generate a 5 s 720p clip and answer with its video URL."""
    body = await request.json()
    orchestrator = request.app[ORCHESTRATOR]
    try:
        task = await orchestrator.generate(
            "seedance-2",
            {"prompt": body.get("prompt"), "duration": 5, "resolution": "720p"},
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


def make_app() -> web.Application:
    """Build the application."""
    app = web.Application()
    app.cleanup_ctx.append(vidgo_context)
    app.router.add_post("/generate", generate)
    app.router.add_get("/progress", progress)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
