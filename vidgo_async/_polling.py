"""The poll schedule: when to ask for a task's status next. Pure, no I/O.

Without usable progress the interval grows geometrically (``initial_delay`` ×
``multiplier`` up to ``max_interval``, ±``jitter``). When the API reports a rising
``progress``, the finish time is estimated from the rate of progress and the next poll is
aimed just past it, so a job is usually seen finished within ``min_interval`` of its end
with a handful of queries. While the progress has not yet risen between two readings, the
rate is measured from the submit, queue time included, so the estimate can run long; the
next poll then comes no later than the time since the submit, to take a second reading
and a true rate (at most one extra query, on short jobs). A server hint (a ``Retry-After`` on a status answer) wins,
clamped to ``[min_interval, MAX_SERVER_HINT]``.
"""

from __future__ import annotations

import random

import attrs

from ._backoff import full_jitter
from ._config import PollPolicy

__all__ = ["MAX_SERVER_HINT", "PollState"]

MAX_SERVER_HINT = 60.0
# How far past the estimated finish a poll is aimed, as a fraction of the time left:
# a little late costs lag, a little early costs one more (short) poll.
_AIM_MARGIN = 0.04
# The smallest backoff base after failed queries, for policies scaled down to nothing.
_MIN_BACKOFF_BASE = 0.001


@attrs.define(slots=True)
class PollState:
    """The schedule of one task: feed it observations, ask it for the next delay.

    Times are seconds on any monotonic clock; ``started_at`` is when the task was
    submitted (or first watched).
    """

    policy: PollPolicy
    started_at: float
    polls: int = 0
    first_progress: int = 0
    first_progress_at: float | None = None
    last_progress: int = 0
    last_progress_at: float | None = None

    def observe(self, now: float, progress: int | None) -> None:
        """Record one status answer seen at ``now`` with its ``progress`` (if any)."""
        self.polls += 1
        if progress is None or progress <= 0 or progress >= 100:
            return
        if self.first_progress_at is None:
            self.first_progress = progress
            self.first_progress_at = now
        if progress >= self.last_progress:
            self.last_progress = progress
            self.last_progress_at = now

    def estimated_remaining(self, now: float) -> float | None:
        """Seconds until the task should finish, from the progress seen; ``None`` if unknown."""
        return self._estimate(now)[0]

    def _estimate(self, now: float) -> tuple[float | None, bool]:
        """Return (seconds left or ``None``, whether the rate rests on one reading only)."""
        if not self.policy.use_progress or self.last_progress_at is None:
            return None, False
        assert self.first_progress_at is not None  # noqa: S101 - both are set together
        progress_span = self.last_progress - self.first_progress
        time_span = self.last_progress_at - self.first_progress_at
        single = not (progress_span > 0 and time_span > 0)
        if not single:
            rate = progress_span / time_span
        else:
            elapsed = self.last_progress_at - self.started_at
            if elapsed <= 0:
                return None, single
            rate = self.last_progress / elapsed
        if rate <= 0:
            return None, single
        remaining = (100 - self.last_progress) / rate - (now - self.last_progress_at)
        return max(0.0, remaining), single

    def geometric_delay(self) -> float:
        """The un-jittered interval after ``polls`` queries, ignoring progress."""
        policy = self.policy
        exponent = min(self.polls, 64)
        return min(policy.max_interval, policy.initial_delay * policy.multiplier**exponent)

    def failure_delay(self, errors: int, *, rng: random.Random | None = None) -> float:
        """Return the wait after ``errors`` failed status queries in a row.

        Full-jitter backoff on the error count, never quicker than the regular schedule
        and never slower than ``max_interval``.
        """
        policy = self.policy
        backoff = full_jitter(
            errors,
            base=max(policy.initial_delay, policy.min_interval, _MIN_BACKOFF_BASE),
            cap=policy.max_interval,
            rng=rng,
        )
        return min(max(policy.min_interval, backoff, self.geometric_delay()), policy.max_interval)

    def next_delay(
        self, now: float, *, rng: random.Random | None = None, hint: float | None = None
    ) -> float:
        """Return how long to wait before the next status query."""
        policy = self.policy
        draw = (rng or random).random()
        if hint is not None and hint > 0:
            return min(max(hint, policy.min_interval, 0.0), MAX_SERVER_HINT)
        remaining, single = self._estimate(now)
        if remaining is not None:
            # Aim just past the estimated finish; a little jitter, only upwards.
            delay = remaining * (1.0 + _AIM_MARGIN + draw * policy.jitter / 4)
            if single:
                # One reading measured from the submit (queue time included) overshoots:
                # come back by the time already spent, for a second reading and a true rate.
                delay = min(delay, now - self.started_at)
        else:
            delay = self.geometric_delay() * (1.0 + policy.jitter * (2.0 * draw - 1.0))
        return min(max(delay, policy.min_interval), policy.max_interval)
