"""Helpers shared by the tests that run VidgoClient against the emulator."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from vidgo_async import PollPolicy, RetryPolicy, VidgoClient
from vidgo_async._clock import Clock
from vidgo_async.testing import Emulator

TIME_SCALE = 0.01  # a "10 s" job takes 0.1 s of real time
POLL = PollPolicy().scaled(TIME_SCALE)  # first poll 20 ms, at most 0.3 s apart, grace 0.6 s
FAST_RETRY = RetryPolicy(initial_delay=0.01, max_delay=0.05)
FAST = {"prompt": "a red fox in the snow", "duration": 5, "resolution": "480p"}


class ScaledClock(Clock):
    """A real clock that records every requested sleep and sleeps only ``scale`` of it."""

    def __init__(self, scale: float = 0.01) -> None:
        super().__init__()
        self.scale = scale
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        """Record ``seconds`` and sleep a scaled fraction of it."""
        self.sleeps.append(seconds)
        await asyncio.sleep(max(0.0, seconds) * self.scale)


def scaled_emulator(*, seed: int, **kwargs: Any) -> Emulator:
    """Return an emulator with fast jobs (10 emulated s = 0.1 s) and a fixed seed."""
    kwargs.setdefault("job_seconds", 10)
    kwargs.setdefault("time_scale", TIME_SCALE)
    return Emulator(seed=seed, **kwargs)


def fast_client(emu: Emulator, **kwargs: Any) -> VidgoClient:
    """Return a client for ``emu`` with scaled polling and quick retries."""
    kwargs.setdefault("poll", POLL)
    kwargs.setdefault("retry", FAST_RETRY)
    return emu.client(**kwargs)


def listing(directory: Path) -> list[str]:
    """Return the sorted names in ``directory``."""
    return sorted(p.name for p in directory.iterdir())


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
