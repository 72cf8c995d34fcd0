"""Shared request-rate gates that slow down for a rate limit and recover on a clock.

One gate paces one kind of request for a whole orchestrator (one for submits, one for
status queries). A gate is a token bucket: grants are spaced ``1 / rate`` seconds apart, and
a grant that came late (a timer or a busy event loop woke the waiter after its turn) lets
the next ones catch up on the time lost, but never on more than ``_CATCH_UP`` seconds of it.
So the rate delivered is the rate configured even at 1 000/s, where every sleep overshoots
its 1 ms, while a burst is never more than ``1 + rate x _CATCH_UP`` grants. A gate whose
turn is longer than ``_CATCH_UP`` (20/s or slower) never catches up and never bursts: 5/s
stays grants spaced at least 200 ms apart. A gate never touches
``max_in_flight``: that bound is the user's (it caps spend), and only request *rates* adapt.

What a 429 (or a timeout) does:

- its ``Retry-After`` becomes the shared *not-before* time: nobody is granted before it;
- the rate is lowered only when the 429s show a rate limit: at least
  ``_MIN_THROTTLES`` of them, making up at least ``_LIMIT_SHARE`` of the last
  ``_SIGNAL_ANSWERS`` answers of the last ``_SIGNAL_WINDOW`` seconds. A steady trickle (1
  answer in 7 reaches 8 of 20 about once in 230 looks, and then costs seconds) is not a limit, and a
  server that refuses *everything* with a ``Retry-After`` is pausing, not limiting a rate:
  the not-before time already does what it asks, so neither lowers the rate;
- after a decrease the rate climbs back *linearly in time* to where it was within
  ``recovery_seconds``, however low it fell, so recovery never gets slower as the rate
  falls (the old per-success steps did: fewer grants, fewer successes, slower climb);
- the rate never falls below ``min_rate`` (:data:`DEFAULT_MIN_RATE`, see its reason).

A second clustered storm shows that the rate recovered to is above the server's limit:
from then on the gate recovers to what the server accepted, not to the old rate.

Shared with a fleet (:meth:`RateGate.share`): a grant also needs one of the grants the gate
took in a batch from a :class:`GrantSource` (the fleet's bucket in the database). The gate
keeps pacing locally; it goes to the source only when its batch is used up or stale, and
sizes the next batch to its own use (doubling while a batch lasts less than
``batch_seconds``, halving when one lasts four times that).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = [
    "DEFAULT_DECREASE_FACTOR",
    "DEFAULT_MIN_RATE",
    "DEFAULT_RECOVERY_SECONDS",
    "GrantSource",
    "RateGate",
]

logger = logging.getLogger("vidgo_async")

DEFAULT_DECREASE_FACTOR = 0.7
# The floor of an adapted rate. Retry-After holds already pause everyone for as long as the
# server asks, so the rate only has to stop a steady overrun, never to wait out an outage.
# A run of the documented 30-120 s jobs needs about max_in_flight / 30 status queries and
# far fewer submits per second: 1/s serves 30 jobs in flight, and a floor this high keeps
# recovery to any earlier rate within recovery_seconds.
DEFAULT_MIN_RATE = 1.0
# From the lowered rate back to the earlier one, linearly, in this many seconds.
DEFAULT_RECOVERY_SECONDS = 5.0
# The answers judged together when deciding whether 429s show a rate limit.
_SIGNAL_WINDOW = 2.0
_SIGNAL_ANSWERS = 20
_MIN_THROTTLES = 3
_LIMIT_SHARE = 0.4
# At most this many seconds lost to late wake-ups are granted back to a gate whose turn is
# shorter (faster than 1 / _CATCH_UP per second); slower gates keep their spacing exactly.
_CATCH_UP = 0.05
# The window over which the sent rate is measured when the gate has no ceiling.
_MEASURE_WINDOW = 1.0
# A burst at start-up is not a rate: measure over at least this span.
_MIN_MEASURE_SPAN = 0.5
# After a decrease the rate is at most this fraction of what the server accepted over the
# last window: just under its limit, so the gate does not keep knocking at it.
_BELOW_ACCEPTED = 0.95
# A window's times are trimmed once they grow to twice their size at the last trim (at least
# this many): an answer costs one list append, the trimming one bisect per doubling.
_TRIM_AT = 256


class _Times:
    """The times of events, to count those of the last ``span`` seconds.

    Recording costs one list append (times come from a monotonic clock, so the list is
    sorted); old times are dropped in bulk, by one bisect, when the list has doubled since
    the last trim or when the window is counted.
    """

    __slots__ = ("_times", "_trim_at", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self._times: list[float] = []
        self._trim_at = _TRIM_AT

    def add(self, now: float) -> None:
        """Record one event at ``now``."""
        times = self._times
        times.append(now)
        if len(times) >= self._trim_at:
            self._trim(now)

    def count(self, now: float) -> int:
        """The events of the ``span`` seconds up to ``now``."""
        self._trim(now)
        return len(self._times)

    def _trim(self, now: float) -> None:
        times = self._times
        del times[: bisect.bisect_right(times, now - self.span)]
        self._trim_at = max(_TRIM_AT, 2 * len(times))


class GateClock(Protocol):
    """What a gate needs of a clock (``vidgo_async._clock.Clock`` fits)."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class GrantSource(Protocol):
    """Where a shared gate takes its grants in batches (``_fleet_rates.FleetRate`` fits)."""

    max_batch: int

    async def take(self, wanted: int) -> tuple[int, float]:
        """Take up to ``wanted`` grants: return how many, or the seconds to wait for more."""
        ...


class RateGate:
    """Pace one kind of request, shared by every job of an orchestrator.

    Args:
        rate: the ceiling in requests per second; ``None`` means no ceiling (the gate then
            only paces after a rate limit showed, starting from the measured rate).
        clock: the clock to read and sleep on.
        name: a label for log lines (``"submit"``, ``"status"``).
        decrease_factor: the multiplicative decrease when 429s show a rate limit.
        recovery_seconds: how long the climb from a lowered rate back to the earlier one
            takes (linear in time).
        min_rate: the floor of the adapted rate (never above ``rate``).
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: GateClock,
        name: str = "requests",
        decrease_factor: float = DEFAULT_DECREASE_FACTOR,
        recovery_seconds: float = DEFAULT_RECOVERY_SECONDS,
        min_rate: float = DEFAULT_MIN_RATE,
    ) -> None:
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise ValueError(
                f"{name} rate must be a positive number per second or None (got {rate!r})"
            )
        if not 0 < decrease_factor < 1:
            raise ValueError(f"decrease_factor must be between 0 and 1 (got {decrease_factor!r})")
        if not (math.isfinite(recovery_seconds) and recovery_seconds > 0):
            raise ValueError(
                f"recovery_seconds must be a positive number of seconds (got {recovery_seconds!r})"
            )
        if not (math.isfinite(min_rate) and min_rate > 0):
            raise ValueError(f"min_rate must be a positive number per second (got {min_rate!r})")
        self.name = name
        self.ceiling = rate
        self._clock = clock
        self._decrease_factor = decrease_factor
        self._recovery = recovery_seconds
        self._min_rate = min(min_rate, rate) if rate is not None else min_rate
        self._lock = anyio.Lock()
        self._queued = 0  # callers holding or waiting for the lock
        self._next_free = -math.inf
        self._not_before = -math.inf
        # After a decrease: from ``_low`` at ``_decreased_at`` up to ``_target`` (``None``:
        # back to unpaced) over ``_recovery`` seconds.
        self._decreased_at: float | None = None
        self._low = 0.0
        self._sending = 0.0  # the rate sent when the gate was unpaced and first lowered
        self._target: float | None = rate
        # The last answers (time, throttled), judged only when a 429 comes (see on_throttle).
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=_SIGNAL_ANSWERS)
        # Grants (only an unpaced gate measures its rate) and successes of the last window.
        self._sent = _Times(_MEASURE_WINDOW)
        self._accepted = _Times(_MEASURE_WINDOW)
        self._first_grant: float | None = None
        self.grants = 0
        self.throttles = 0
        self.decreases = 0
        # Shared (``share``): grants held from the source's last batch, and its sizing.
        self._source: GrantSource | None = None
        self._held = 0
        self._held_until = -math.inf
        self._taken_at = -math.inf
        self._batch = 1
        self._starved = False
        self._batch_seconds = 0.25
        self._keep = 1.0

    def __repr__(self) -> str:
        return f"RateGate({self.name!r}, rate={self.rate!r}, ceiling={self.ceiling!r})"

    @property
    def rate(self) -> float | None:
        """The rate in force now (requests per second); ``None`` when unpaced."""
        return self._rate_at(self._clock.monotonic())

    @property
    def not_before(self) -> float:
        """The monotonic time before which nothing passes (after a ``Retry-After``)."""
        return self._not_before

    def hold_until(self, moment: float) -> None:
        """Let nothing pass before the monotonic time ``moment`` (e.g. a fleet's shared 429 hold)."""
        self._not_before = max(self._not_before, moment)

    def share(self, source: GrantSource, *, batch_seconds: float = 0.25, keep: float = 1.0) -> None:
        """Take every grant from ``source`` too (a fleet's shared rate), in adaptive batches.

        Args:
            source: where batches of grants come from.
            batch_seconds: a batch used up sooner than this makes the next one twice as big
                (up to ``source.max_batch``); one lasting four times this halves it.
            keep: seconds a batch's grants stay usable; older ones are dropped, so a
                process never spends a stale batch on top of the fleet's current rate.
        """
        if not (math.isfinite(batch_seconds) and batch_seconds > 0):
            raise ValueError(f"batch_seconds must be positive (got {batch_seconds!r})")
        if not (math.isfinite(keep) and keep > 0):
            raise ValueError(f"keep must be a positive number of seconds (got {keep!r})")
        self._source = source
        self._batch_seconds = batch_seconds
        self._keep = keep
        self._held = 0

    def _holding(self, now: float) -> bool:
        """Whether a shared gate holds a grant of its source's batch (unused and fresh).

        Asked only of a shared gate: an unshared one (``_source is None``) needs no grant.
        """
        return self._held > 0 and now < self._held_until

    async def _refill(self, source: GrantSource, now: float) -> float:
        """Take the next batch; return the seconds to wait when none was granted."""
        lasted = now - self._taken_at
        if self._starved:
            pass  # the source was empty: the batch's size says nothing about this gate's use
        elif self._held <= 0 and lasted < self._batch_seconds:
            self._batch = min(self._batch * 2, source.max_batch)
        elif lasted > 4 * self._batch_seconds:
            self._batch = max(1, self._batch // 2)
        granted, wait = await source.take(self._batch)
        taken = self._clock.monotonic()
        self._held = granted
        self._held_until = taken + self._keep
        self._starved = granted <= 0
        if granted > 0:
            self._taken_at = taken
        return wait

    def _rate_at(self, now: float) -> float | None:
        if self._decreased_at is None:
            return self.ceiling
        progress = (now - self._decreased_at) / self._recovery
        if progress >= 1.0:
            return self._target
        top = self._target if self._target is not None else self._sending
        return self._low + (max(top, self._low) - self._low) * max(progress, 0.0)

    async def acquire(self) -> float:
        """Wait for a turn and return the monotonic time it was granted.

        Pass the returned time to :meth:`on_throttle` so that answers to requests sent
        before the last decrease do not lower the rate again (one storm, one decrease).
        """
        # Fast path: nobody holds or waits for the lock and no wait is due. A cancelled
        # caller still gets its cancellation here, as it would from the lock.
        await anyio.lowlevel.checkpoint_if_cancelled()
        granted = self.try_grant()
        if granted is not None:
            return granted
        self._queued += 1
        try:
            async with self._lock:
                while True:
                    now = self._clock.monotonic()
                    ready = max(self._not_before, self._next_free)
                    if now < ready:
                        await self._clock.sleep(ready - now)
                        continue
                    source = self._source
                    if source is None or self._holding(now):
                        break
                    wait = await self._refill(source, now)
                    if wait > 0:
                        await self._clock.sleep(wait)
                return self._grant(now)
        finally:
            self._queued -= 1

    def try_grant(self) -> float | None:
        """Take a turn if one is free now, without waiting: its time, or ``None`` if none is.

        The grant :meth:`acquire` would make at once (nobody holds or waits for the lock, no
        wait is due), minus ``acquire``'s cancellation checkpoint: for callers about to
        await anyway (the poller's next request). On ``None``, ``await acquire()``.
        """
        if self._queued:
            return None  # someone holds or waits for the lock: turns go in order
        now = self._clock.monotonic()
        if (
            now < self._not_before
            or now < self._next_free
            or (self._source is not None and not self._holding(now))
        ):
            return None  # a wait is due, or the shared source's batch is used up or stale
        return self._grant(now)

    def _grant(self, now: float) -> float:
        """Account one turn granted at ``now`` (no wait is due) and return ``now``."""
        self._held -= 1
        self.grants += 1
        if self._first_grant is None:
            self._first_grant = now
        if self._decreased_at is None and self.ceiling is None:
            # Unpaced: no spacing to keep; the rate sent is measured for a first decrease.
            self._sent.add(now)
            return now
        rate = self._rate_at(now)
        interval = 0.0 if rate is None else 1.0 / rate
        next_free = self._next_free
        if next_free < now:
            # Late: a fast gate catches up on at most _CATCH_UP seconds of lost time; a
            # slow one (a turn longer than that) keeps its spacing exactly.
            next_free = now - min(now - next_free, _CATCH_UP) if interval < _CATCH_UP else now
        self._next_free = next_free + interval
        if self.ceiling is None:
            self._sent.add(now)  # it may recover to unpaced: a later decrease measures it
        return now

    def _measured_rate(self, now: float) -> float:
        """Grants per second over the last window (or since the first grant, if sooner)."""
        sent = self._sent.count(now)
        if not sent:
            return 0.0
        span = max(now - self._first_grant, 0.0) if self._first_grant is not None else 0.0
        window = min(_MEASURE_WINDOW, span) if span > 0 else _MEASURE_WINDOW
        return sent / max(window, _MIN_MEASURE_SPAN)

    def _accepted_rate(self, now: float) -> float:
        """Successes per second over the last window: what the server let through."""
        return self._accepted.count(now) / _MEASURE_WINDOW

    def on_success(self, now: float | None = None) -> None:
        """Record one answer that was not a 429 (``now``: the clock's reading, if at hand)."""
        if now is None:
            now = self._clock.monotonic()
        self._accepted.add(now)
        self._outcomes.append((now, False))

    def on_throttle(
        self, retry_after: float | None = None, *, issued_at: float | None = None
    ) -> None:
        """Record a 429 (or a timeout): hold everyone for ``retry_after``; maybe lower the rate.

        Args:
            retry_after: the server's requested wait in seconds, when it sent one.
            issued_at: when the throttled request was granted (from :meth:`acquire`); an
                answer to a request sent before the last decrease never lowers it again.
        """
        now = self._clock.monotonic()
        self.throttles += 1
        held = retry_after is not None and math.isfinite(retry_after) and retry_after > 0
        if retry_after is not None and held:
            self._not_before = max(self._not_before, now + retry_after)
        decreased = self._decreased_at
        if issued_at is not None and decreased is not None and issued_at <= decreased:
            return  # sent before the last decrease: that storm was already answered
        outcomes = self._outcomes
        outcomes.append((now, True))
        # The last _SIGNAL_ANSWERS answers (the deque keeps no more) of the signal window.
        recent = [throttled for when, throttled in outcomes if when > now - _SIGNAL_WINDOW]
        throttled = sum(recent)
        if throttled < _MIN_THROTTLES or throttled < _LIMIT_SHARE * len(recent):
            return  # a trickle, not a rate limit
        accepted = self._accepted_rate(now)
        if held and accepted == 0:
            return  # nothing gets through: a pause, which the not-before time honours
        self._decrease(now, accepted, retry_after)

    def _decrease(self, now: float, accepted: float, retry_after: float | None) -> None:
        current = self._rate_at(now)
        sending = current if current is not None else self._measured_rate(now)
        lowered = sending * self._decrease_factor
        if accepted > 0:
            # Never resume above what the server just let through: that is its limit.
            lowered = min(lowered, accepted * _BELOW_ACCEPTED)
        lowered = max(lowered, self._min_rate)
        if self._decreased_at is not None:
            # A second storm: the rate recovered to was above the limit; aim at what the
            # server accepted (or at the rate that ran into it) from now on.
            target = accepted if accepted > 0 else sending
            if self._target is not None:
                target = min(target, self._target)
            self._target = max(target, lowered)
        else:
            self._sending = sending
        self._low = lowered
        self._decreased_at = now
        self.decreases += 1
        self._outcomes.clear()
        # Space the next grant at the new rate from now, so the decrease takes effect at once.
        self._next_free = max(self._next_free, now + 1.0 / lowered)
        logger.info(
            "%s rate lowered to %.2f/s: 429s or timeouts show a rate limit%s; back to %s "
            "within %g s",
            self.name,
            lowered,
            "" if retry_after is None else f" (server asked for {retry_after:g} s)",
            "unpaced" if self._target is None else f"{self._target:.2f}/s",
            self._recovery,
        )
