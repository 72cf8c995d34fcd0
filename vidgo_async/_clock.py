"""The clock the client reads time and sleeps through, and a virtual one for tests.

Everything that waits (retries, polling, the not-found grace) goes through a ``Clock``,
so tests can swap in a :class:`VirtualClock` whose ``sleep`` returns at once after moving
virtual time forward: a "90 s" wait costs nothing and the schedule is still observable.
"""

from __future__ import annotations

import asyncio
import random
import time

__all__ = ["Clock", "VirtualClock"]


class Clock:
    """Real time: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``.

    Attributes:
        rng: the random source for jitter (seeded in tests for determinism).
    """

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        # The hot paths read the clock several times per request: unless a subclass reads
        # time its own way, each reading is the C function itself, not a method around it.
        if type(self).monotonic is Clock.monotonic:
            self.monotonic = time.monotonic  # type: ignore[method-assign]
        if type(self).time is Clock.time:
            self.time = time.time  # type: ignore[method-assign]

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards."""
        return time.monotonic()

    def time(self) -> float:
        """Return the current POSIX timestamp (for HTTP dates in ``Retry-After``)."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (zero or less still yields to the event loop)."""
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock(Clock):
    """A clock whose ``sleep`` advances virtual time instantly instead of waiting.

    Time only moves forward; concurrent sleepers add up, so elapsed virtual time is an
    upper bound of what a real run would take. ``sleeps``
    records every requested delay, for assertions on a retry or poll schedule.

    Args:
        start: the initial monotonic reading.
        wall_start: the initial POSIX timestamp returned by ``time()``.
        seed: seeds ``rng`` so jitter is reproducible.
    """

    def __init__(
        self, *, start: float = 0.0, wall_start: float = 1_700_000_000.0, seed: int | None = 0
    ) -> None:
        super().__init__(rng=random.Random(seed))  # noqa: S311 - test jitter
        self._now = float(start)
        self._wall_offset = float(wall_start) - float(start)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Return the virtual monotonic time."""
        return self._now

    def time(self) -> float:
        """Return the virtual POSIX timestamp (moves with ``monotonic``)."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` without sleeping."""
        if seconds > 0:
            self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the delay, jump virtual time past it and yield once to the loop."""
        delay = max(0.0, float(seconds))
        self.sleeps.append(delay)
        self._now += delay
        await asyncio.sleep(0)
