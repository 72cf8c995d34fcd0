"""The slow fallback poll of a job that expects a callback.

With callbacks, the verification fetch is the status request a job normally costs; polling
only covers callbacks that never come. So the first fallback poll waits for about twice the
job's expected duration (never less than twice the policy's longest interval) and the later
ones stay that far apart.

The expected duration is learned from this batch: the median time from submit to end of the
jobs that ended so far. The request's ``duration`` field is the *video's* length, not the
time the generation takes, so it says little about when to look; until a job has ended, the
policy's longest interval is the only guide.
"""

from __future__ import annotations

import statistics
from collections import deque

import attrs

from ._config import PollPolicy

__all__ = ["DurationEstimator", "fallback_schedule"]

_WINDOW = 64  # recent jobs only: generation times drift with the platform's load


class DurationEstimator:
    """Learn how long jobs take (submit to end) from the last few that ended."""

    def __init__(self, window: int = _WINDOW) -> None:
        self._samples: deque[float] = deque(maxlen=window)

    def observe(self, seconds: float) -> None:
        """Record one job's submit-to-end time (negative or non-finite values are ignored)."""
        if seconds >= 0 and seconds != float("inf"):
            self._samples.append(seconds)

    def expected(self) -> float | None:
        """Return the median recent duration, or ``None`` before any job ended."""
        return statistics.median(self._samples) if self._samples else None


def fallback_schedule(policy: PollPolicy, expected: float | None) -> tuple[float, PollPolicy]:
    """Return (first delay, policy) of the fallback poll for a job awaiting its callback.

    The first poll comes after ``max(2 × max_interval, 2 × expected)``; later polls keep
    that spacing (no geometric ramp, no progress-based early polls), so a job whose callback
    arrives in time costs no poll at all.
    """
    interval = max(2 * policy.max_interval, 2 * (expected or 0.0))
    slow = attrs.evolve(
        policy,
        initial_delay=interval,
        max_interval=interval,
        multiplier=1.0,
        use_progress=False,
    )
    return interval, slow
