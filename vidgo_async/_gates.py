"""Shared request-rate gates with additive-increase / multiplicative-decrease (AIMD).

One gate paces one kind of request for a whole orchestrator (one for submits, one for
status queries). A gate is a token bucket of depth one: grants are spaced at least
``1 / rate`` seconds apart, so a rate of 5/s never bursts. A 429 or a timeout lowers the
rate to ``0.7 ×`` what was being sent and pushes a shared *not-before* time (the server's
``Retry-After``) that every waiter honours; every ``increase_every`` successes raise it one
step again, up to the configured ceiling. A gate never touches ``max_in_flight``: that
bound is the user's (it caps spend), and only request *rates* adapt.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["DEFAULT_DECREASE_FACTOR", "DEFAULT_INCREASE_EVERY", "RateGate"]

logger = logging.getLogger("vidgo_async")

DEFAULT_DECREASE_FACTOR = 0.7
DEFAULT_INCREASE_EVERY = 20
DEFAULT_MIN_RATE = 0.1
# The window over which the sent rate is measured when the gate has no ceiling.
_MEASURE_WINDOW = 1.0
# A burst at start-up is not a rate: measure over at least this span.
_MIN_MEASURE_SPAN = 0.5
# At most one decrease per this many seconds (servers count requests per second).
_DECREASE_COOLDOWN = 0.5
# After a 429 the rate is set at most this fraction of what the server accepted over the
# last window: just under its limit, so the gate does not keep knocking at it.
_BELOW_ACCEPTED = 0.95
# Without a ceiling the additive step is this fraction of the rate the server accepted.
_STEP_FRACTION = 0.05


class GateClock(Protocol):
    """What a gate needs of a clock (``vidgo_async._clock.Clock`` fits)."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RateGate:
    """Pace one kind of request, shared by every job of an orchestrator.

    Args:
        rate: the ceiling in requests per second; ``None`` means no ceiling (the gate then
            only paces after the server has pushed back, starting from the measured rate).
        clock: the clock to read and sleep on.
        name: a label for log lines (``"submit"``, ``"status"``).
        decrease_factor: the multiplicative decrease on a 429 or timeout.
        increase_every: successes per additive step back up.
        increase_step: requests per second added per step; defaults to a tenth of the
            ceiling (or of the rate measured at the first 429 when there is no ceiling).
        min_rate: the floor of the adapted rate.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: GateClock,
        name: str = "requests",
        decrease_factor: float = DEFAULT_DECREASE_FACTOR,
        increase_every: int = DEFAULT_INCREASE_EVERY,
        increase_step: float | None = None,
        min_rate: float = DEFAULT_MIN_RATE,
    ) -> None:
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise ValueError(
                f"{name} rate must be a positive number per second or None (got {rate!r})"
            )
        if not 0 < decrease_factor < 1:
            raise ValueError(f"decrease_factor must be between 0 and 1 (got {decrease_factor!r})")
        if increase_every < 1:
            raise ValueError(f"increase_every must be at least 1 (got {increase_every!r})")
        self.name = name
        self.ceiling = rate
        self._rate = rate
        self._clock = clock
        self._decrease_factor = decrease_factor
        self._increase_every = increase_every
        self._increase_step = increase_step
        self._min_rate = min(min_rate, rate) if rate is not None else min_rate
        self._lock = anyio.Lock()
        self._next_free = -math.inf
        self._not_before = -math.inf
        self._successes = 0
        self._step = increase_step or (max(rate * 0.1, self._min_rate) if rate is not None else 1.0)
        self._last_decrease = -math.inf
        self._recent: deque[float] = deque()
        self._accepted: deque[float] = deque()
        self._first_grant: float | None = None
        self.grants = 0
        self.throttles = 0

    def __repr__(self) -> str:
        return f"RateGate({self.name!r}, rate={self._rate!r}, ceiling={self.ceiling!r})"

    @property
    def rate(self) -> float | None:
        """The rate in force now (requests per second); ``None`` when unpaced."""
        return self._rate

    @property
    def not_before(self) -> float:
        """The monotonic time before which nothing passes (after a ``Retry-After``)."""
        return self._not_before

    async def acquire(self) -> float:
        """Wait for a turn and return the monotonic time it was granted.

        Pass the returned time to :meth:`on_throttle` so that answers to requests sent
        before the last decrease do not lower the rate again (one storm, one decrease).
        """
        # Fast path: nobody holds or waits for the lock and no wait is due (an unpaced gate
        # that was never throttled, or a paced one whose next turn has come). The grant is
        # the one the locked path would make; only the lock's yield is skipped. A cancelled
        # caller still gets its cancellation here, as it would from the lock.
        await anyio.lowlevel.checkpoint_if_cancelled()
        if not self._lock.locked():
            now = self._clock.monotonic()
            if now >= self._not_before and now >= self._next_free:
                return self._grant(now)
        async with self._lock:
            while True:
                now = self._clock.monotonic()
                ready = max(self._not_before, self._next_free)
                if now >= ready:
                    break
                await self._clock.sleep(ready - now)
            return self._grant(now)

    def _grant(self, now: float) -> float:
        """Account one turn granted at ``now`` (no wait is due) and return ``now``."""
        rate = self._rate
        interval = 0.0 if rate is None else 1.0 / rate
        next_free = self._next_free
        self._next_free = (next_free if next_free > now else now) + interval
        self.grants += 1
        if self.ceiling is None:
            if self._first_grant is None:
                self._first_grant = now
            recent = self._recent
            recent.append(now)
            while recent and recent[0] <= now - _MEASURE_WINDOW:
                recent.popleft()
        return now

    def _measured_rate(self, now: float) -> float:
        """Grants per second over the last window (or since the first grant, if sooner)."""
        recent = self._recent
        while recent and recent[0] <= now - _MEASURE_WINDOW:
            recent.popleft()
        if not recent:
            return 0.0
        span = max(now - self._first_grant, 0.0) if self._first_grant is not None else 0.0
        window = min(_MEASURE_WINDOW, span) if span > 0 else _MEASURE_WINDOW
        return len(recent) / max(window, _MIN_MEASURE_SPAN)

    def _accepted_rate(self, now: float) -> float:
        """Successes per second over the last window: what the server let through."""
        accepted = self._accepted
        while accepted and accepted[0] <= now - _MEASURE_WINDOW:
            accepted.popleft()
        return len(accepted) / _MEASURE_WINDOW

    def on_success(self) -> None:
        """Count one success; every ``increase_every`` of them raise the rate one step."""
        now = self._clock.monotonic()
        accepted = self._accepted
        accepted.append(now)
        while accepted[0] <= now - _MEASURE_WINDOW:
            accepted.popleft()
        if self._rate is None:
            return
        self._successes += 1
        if self._successes < self._increase_every:
            return
        self._successes = 0
        raised = self._rate + self._step
        if self.ceiling is not None and raised >= self.ceiling:
            raised = self.ceiling
        self._rate = raised

    def on_throttle(
        self, retry_after: float | None = None, *, issued_at: float | None = None
    ) -> None:
        """Record a 429 (or a timeout): hold everyone for ``retry_after`` and lower the rate.

        Args:
            retry_after: the server's requested wait in seconds, when it sent one.
            issued_at: when the throttled request was granted (from :meth:`acquire`); a
                request sent before the last decrease only extends the hold.
        """
        now = self._clock.monotonic()
        self.throttles += 1
        self._successes = 0
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            self._not_before = max(self._not_before, now + retry_after)
        if issued_at is not None and issued_at <= self._last_decrease:
            return
        if now - self._last_decrease < _DECREASE_COOLDOWN:
            # Rate limits count per second: the 429s of one window are one signal.
            return
        current = self._rate
        first = current is None
        if current is None:
            current = max(self._measured_rate(now), self._min_rate / self._decrease_factor)
        lowered = current * self._decrease_factor
        accepted = self._accepted_rate(now)
        if accepted > 0:
            # Never resume above what the server just let through: that is its limit.
            lowered = min(lowered, accepted * _BELOW_ACCEPTED)
        lowered = max(lowered, self._min_rate)
        if first and self._increase_step is None:
            # Additive, not proportional: a step that shrank with the rate would let a
            # steady trickle of 429s drive the rate down to the floor.
            self._step = max(lowered * _STEP_FRACTION, self._min_rate)
        self._rate = lowered
        self._last_decrease = now
        # Space the next grant at the new rate from now, so the decrease takes effect at once.
        self._next_free = max(self._next_free, now + 1.0 / lowered)
        logger.info(
            "%s rate lowered to %.2f/s after a 429 or timeout%s",
            self.name,
            lowered,
            "" if retry_after is None else f" (server asked for {retry_after:g} s)",
        )
