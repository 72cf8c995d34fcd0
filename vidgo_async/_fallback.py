"""The slow fallback poll of a job that expects a callback.

With callbacks, the verification fetch is the status request a job normally costs; polling
only covers callbacks that never come. So the first fallback poll waits for about twice the
job's expected duration (never less than twice the policy's longest interval), and each
later one waits twice as long as the one before (up to eight times the first wait): a job
that runs longer than expected costs one more status request, not one per interval.

The expected duration is learned from this batch: the median time from submit to end of the
jobs that ended so far. The request's ``duration`` field is the *video's* length, not the
time the generation takes, so it says little about when to look; until a job has ended, the
policy's longest interval is the only guide.
"""

from __future__ import annotations

import random
import statistics
from collections import deque

import attrs

from ._config import PollPolicy

__all__ = ["DurationEstimator", "DurationWindows", "fallback_schedule"]

_WINDOW = 64  # recent jobs only: generation times drift with the platform's load
_GROWTH = 2.0  # each fallback poll that finds the job running doubles the next wait
_MAX_GROWTH = 8.0  # ... up to this many times the first wait
_TRUSTED = 8  # jobs of one kind ended before their soonest end replaces the seed's


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


class DurationWindows:
    """Learn the (soonest, latest) submit-to-end time per kind of job, to aim polls by.

    A kind is whatever key the caller picks (the orchestrator: model, resolution, video
    duration). The window starts as the ``seed`` (the documented range); the jobs seen end
    widen it, and once ``_TRUSTED`` of a kind ended, its soonest is the soonest seen. The
    latest never drops below the seed's: the jobs that end first in a batch are the short
    ones, and the ones still running are not in the sample yet.
    """

    def __init__(self, window: int = _WINDOW) -> None:
        self._window = window
        self._samples: dict[object, deque[float]] = {}
        self._spans: dict[object, tuple[float, float]] = {}  # kind -> (shortest, longest)

    def observe(self, kind: object, seconds: float) -> None:
        """Record one ``kind`` of job's submit-to-end time (nonsense values are ignored)."""
        if seconds >= 0 and seconds != float("inf"):
            samples = self._samples.get(kind)
            if samples is None:
                samples = self._samples[kind] = deque(maxlen=self._window)
            samples.append(seconds)
            self._spans[kind] = (min(samples), max(samples))

    def window(self, kind: object, seed: tuple[float, float] | None) -> tuple[float, float] | None:
        """Return the expected (soonest, latest) seconds of a ``kind`` of job, if known.

        Without a seed (no documented range), a kind needs ``_TRUSTED`` ended jobs first.
        Cheap: asked again at every poll, so a batch's first endings re-aim the rest.
        """
        span = self._spans.get(kind)
        if span is None:
            return seed
        shortest, longest = span
        trusted = len(self._samples[kind]) >= _TRUSTED
        if seed is None:
            return span if trusted else None
        soonest = shortest if trusted else min(shortest, seed[0])
        return soonest, max(longest, seed[1])


def fallback_schedule(
    policy: PollPolicy, expected: float | None, *, rng: random.Random | None = None
) -> tuple[float, PollPolicy]:
    """Return (first delay, policy) of the fallback poll for a job awaiting its callback.

    The first poll comes after ``first = max(2 × max_interval, 2 × expected)`` (stretched by
    up to a quarter of ``jitter`` with ``rng``, never shortened, so that jobs submitted
    together do not all poll at once). Later polls wait ``2 × first``, ``4 × first``... up
    to ``8 × first``, without jitter below those waits and without progress-based early
    polls, so a job whose callback arrives in time costs no poll at all, and a job that
    runs up to three times longer than the first wait costs one.
    """
    interval = max(2 * policy.max_interval, 2 * (expected or 0.0))
    slow = attrs.evolve(
        policy,
        initial_delay=interval,
        max_interval=interval * _MAX_GROWTH,
        min_interval=min(policy.min_interval, interval),
        multiplier=_GROWTH,
        jitter=0.0,
        use_progress=False,
    )
    first = interval if rng is None else interval * (1.0 + policy.jitter * rng.random() / 4)
    return first, slow
