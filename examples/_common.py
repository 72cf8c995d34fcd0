"""Shared by the examples: a client for the real API when VIDGO_API_KEY is set, else the emulator."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from vidgo_async import VidgoClient

# The emulator plays Seedance-like 30-120 s jobs 50x faster; its client polls at that pace.
EMULATOR_TIME_SCALE = 0.02


@contextlib.asynccontextmanager
async def vidgo_client() -> AsyncIterator[VidgoClient]:
    """Yield a client for the real API when ``VIDGO_API_KEY`` is set, else for a local emulator."""
    if os.environ.get("VIDGO_API_KEY"):
        async with VidgoClient() as client:
            yield client
        return
    from vidgo_async.testing import Emulator

    emulator = Emulator(job_seconds=(30, 120), time_scale=EMULATOR_TIME_SCALE)
    async with emulator, emulator.client() as client:
        yield client
