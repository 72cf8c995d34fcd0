"""Helpers shared by the client's tests: URLs, envelopes, a virtual-clock client, loopback servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses
from yarl import URL

from vidgo_async import RetryPolicy, VidgoClient
from vidgo_async._clock import VirtualClock

API = "https://api.vidgo.ai"
SUBMIT_URL = f"{API}/api/generate/submit"
BALANCE_URL = f"{API}/api/user/balance"
KEY = "sk-test-key-123"
SEEDANCE = {"prompt": "a red fox in the snow", "duration": 5, "resolution": "720p"}


def status_url(task_id: str) -> str:
    """Return the status URL of ``task_id`` on the default base URL."""
    return f"{API}/api/generate/status/{task_id}"


def envelope(data: Any, code: int = 200) -> dict[str, Any]:
    """Wrap ``data`` in the API's ``{code, data}`` envelope."""
    return {"code": code, "data": data}


def task_data(task_id: str = "t1", status: str = "running", **extra: Any) -> dict[str, Any]:
    """Return a status-shaped task object."""
    return {"task_id": task_id, "status": status, "created_time": "2026-04-17T10:30:00", **extra}


def error_body(code: int, message: str = "boom", error_type: str = "x_error") -> dict[str, Any]:
    """Return the unified error body."""
    return {"code": code, "error": {"message": message, "type": error_type}}


def make_client(clock: VirtualClock | None = None, **kwargs: Any) -> VidgoClient:
    """Return a client on the default base URL with a virtual clock (no real sleeping)."""
    kwargs.setdefault("retry", RetryPolicy())
    return VidgoClient(kwargs.pop("api_key", KEY), _clock=clock or VirtualClock(), **kwargs)


def calls(mocked: aioresponses, method: str, url: str) -> list[Any]:
    """Return the requests aioresponses recorded for ``method url``."""
    return list(mocked.requests.get((method, URL(url)), []))


def call_count(mocked: aioresponses) -> int:
    """Return how many requests aioresponses saw in total."""
    return sum(len(v) for v in mocked.requests.values())


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestServer]:
    """Run ``app`` on 127.0.0.1 with a free port for the duration of the block."""
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


def base_of(server: TestServer) -> str:
    """Return the ``http://127.0.0.1:<port>`` base URL of a test server."""
    return str(server.make_url("")).rstrip("/")
