"""The CLI's event loop: uvloop when it is installed (``vidgo-async[speed]``), else asyncio.

uvloop cuts the client's CPU per request by about a tenth; it is never required. Set
``VIDGO_ASYNC_NO_UVLOOP=1`` to run on the standard asyncio loop anyway (e.g. to compare).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

__all__ = ["NO_UVLOOP_ENV", "backend_options", "run"]

T = TypeVar("T")

NO_UVLOOP_ENV = "VIDGO_ASYNC_NO_UVLOOP"


def backend_options() -> dict[str, Any]:
    """The asyncio backend's options: ``use_uvloop`` when uvloop can be imported."""
    if os.environ.get(NO_UVLOOP_ENV, "") not in ("", "0"):
        return {}
    return {"use_uvloop": True} if importlib.util.find_spec("uvloop") is not None else {}


def run(func: Callable[..., Awaitable[T]], *args: object) -> T:
    """Run ``func(*args)`` to completion on the CLI's event loop (like ``anyio.run``)."""
    return anyio.run(func, *args, backend="asyncio", backend_options=backend_options())
