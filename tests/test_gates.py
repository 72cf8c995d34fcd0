"""Tests for the shared rate gates: Retry-After holds, clustered decreases, timed recovery."""

from __future__ import annotations

import itertools

import anyio
import anyio.lowlevel
import pytest

from vidgo_async._clock import VirtualClock
from vidgo_async._gates import DEFAULT_MIN_RATE, DEFAULT_RECOVERY_SECONDS, RateGate


async def grant_times(gate: RateGate, clock: VirtualClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        times.append(await gate.acquire())
    return times


async def test_grants_are_spaced_at_the_rate() -> None:
    """A 5/s gate never grants two turns closer than 0.2 s (no bursts)."""
    clock = VirtualClock()
    gate = RateGate(5.0, clock=clock, name="status")
    times = await grant_times(gate, clock, 20)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.2 - 1e-9
    assert times[-1] - times[0] == pytest.approx(19 * 0.2)


async def test_unpaced_gate_does_not_sleep() -> None:
    """Without a ceiling and without a 429 a gate grants at once."""
    clock = VirtualClock()
    gate = RateGate(None, clock=clock)
    await grant_times(gate, clock, 50)
    assert clock.sleeps == []
    assert gate.rate is None


def storm(gate: RateGate, clock: VirtualClock, *, accepted: int, refused: int) -> None:
    """One second of answers: ``accepted`` then ``refused`` ones, each sent 0.1 s before."""
    step = 1.0 / (accepted + refused)
    for n in range(accepted + refused):
        clock.advance(step)
        if n < accepted:
            gate.on_success()
        else:
            gate.on_throttle(None, issued_at=clock.monotonic() - 0.1)


async def test_retry_after_holds_everyone_without_lowering_the_rate() -> None:
    """One 429 with Retry-After pushes the shared not-before time; one 429 is not a rate limit."""
    clock = VirtualClock()
    gate = RateGate(10.0, clock=clock)
    issued = await gate.acquire()
    gate.on_throttle(3.0, issued_at=issued)
    assert gate.not_before == pytest.approx(issued + 3.0)
    assert gate.rate == pytest.approx(10.0)
    granted = await gate.acquire()
    assert granted >= issued + 3.0
    assert gate.decreases == 0


async def test_a_steady_trickle_of_429s_never_lowers_the_rate() -> None:
    """1 answer in 7 a 429 (issue 11.3) for 2 000 answers: the rate stays where it was."""
    clock = VirtualClock()
    gate = RateGate(20.0, clock=clock)
    for n in range(2000):
        issued = await gate.acquire()
        if n % 7 == 6:
            gate.on_throttle(None, issued_at=issued)
        else:
            gate.on_success()
    assert gate.throttles == 2000 // 7
    assert gate.decreases == 0
    assert gate.rate == pytest.approx(20.0)


async def test_a_refuse_everything_pause_holds_but_does_not_lower_the_rate() -> None:
    """25 submit 429s in a row with Retry-After and nothing accepted: a pause, not a rate."""
    clock = VirtualClock()
    gate = RateGate(None, clock=clock)
    for _ in range(25):
        issued = await gate.acquire()
        gate.on_throttle(1.0, issued_at=issued)
    assert gate.rate is None
    assert gate.decreases == 0
    assert clock.sleeps == [pytest.approx(1.0)] * 24  # each retry waited out the Retry-After


async def test_clustered_429s_lower_the_rate_just_under_what_the_server_accepted() -> None:
    """A rate limit (10 accepted, 10 refused in a second) lowers the rate to 0.95 x accepted."""
    clock = VirtualClock()
    gate = RateGate(40.0, clock=clock)
    storm(gate, clock, accepted=10, refused=10)
    assert gate.decreases == 1
    assert gate.rate == pytest.approx(0.95 * 10, rel=0.15)


async def test_one_storm_lowers_the_rate_once() -> None:
    """Answers to requests sent before the decrease do not lower the rate again."""
    clock = VirtualClock()
    gate = RateGate(10.0, clock=clock)
    tickets = [await gate.acquire() for _ in range(8)]
    for ticket in tickets:
        gate.on_throttle(None, issued_at=ticket)
    assert gate.decreases == 1
    assert gate.rate == pytest.approx(7.0)


async def test_unpaced_gate_starts_pacing_from_the_measured_rate_and_returns_to_unpaced() -> None:
    """An unpaced gate meeting a rate limit paces at 0.7 x what it sent, then unpaces again."""
    clock = VirtualClock()
    gate = RateGate(None, clock=clock)
    for _ in range(10):
        await gate.acquire()
        clock.advance(0.05)  # 20 grants per second
    for _ in range(3):
        gate.on_throttle(None)
    assert gate.rate == pytest.approx(0.7 * 20, rel=0.25)
    clock.advance(DEFAULT_RECOVERY_SECONDS)
    assert gate.rate is None


@pytest.mark.parametrize("ceiling", [2.0, 50.0, 1000.0])
async def test_recovery_takes_the_same_time_however_low_the_rate_fell(ceiling: float) -> None:
    """Back to the ceiling linearly within recovery_seconds, from any depth (issue 11.3)."""
    clock = VirtualClock()
    gate = RateGate(ceiling, clock=clock, recovery_seconds=4.0, min_rate=0.5)
    for _ in range(3):
        gate.on_throttle(None)
    low = gate.rate
    assert low is not None
    assert low == pytest.approx(max(0.7 * ceiling, 0.5))
    clock.advance(2.0)
    assert gate.rate == pytest.approx((low + ceiling) / 2)
    clock.advance(2.0)
    assert gate.rate == pytest.approx(ceiling)
    clock.advance(100.0)
    assert gate.rate == pytest.approx(ceiling)


async def test_a_second_storm_recovers_to_what_the_server_accepted() -> None:
    """Recovering into the limit again shows where it is: the gate stops climbing past it."""
    clock = VirtualClock()
    gate = RateGate(40.0, clock=clock, recovery_seconds=2.0)
    storm(gate, clock, accepted=8, refused=8)
    clock.advance(3.0)
    assert gate.rate == pytest.approx(40.0)
    storm(gate, clock, accepted=8, refused=8)
    assert gate.decreases == 2
    clock.advance(3.0)
    assert gate.rate == pytest.approx(8.0, rel=0.2)


async def test_accepted_rate_only_counts_the_last_second() -> None:
    """Successes older than the measuring window do not hold the rate up."""
    clock = VirtualClock()
    gate = RateGate(100.0, clock=clock)
    for _ in range(50):
        gate.on_success()
    clock.advance(2.5)
    for _ in range(4):
        gate.on_success()
    for _ in range(3):
        gate.on_throttle(None)
    assert gate.rate == pytest.approx(max(0.95 * 4, DEFAULT_MIN_RATE))


async def test_rate_never_falls_below_the_floor() -> None:
    """Repeated storms stop at the minimum rate (never below it, even with nothing accepted)."""
    clock = VirtualClock()
    gate = RateGate(10.0, clock=clock, min_rate=2.0)
    for _ in range(20):
        clock.advance(0.1)
        for _ in range(3):
            gate.on_throttle(None)
        assert gate.rate is not None
        assert gate.rate >= 2.0
    assert gate.rate == pytest.approx(2.0, abs=0.5)


def test_invalid_settings_are_refused() -> None:
    """A non-positive rate or a bad factor, recovery or floor is a clear ValueError."""
    clock = VirtualClock()
    with pytest.raises(ValueError, match="rate"):
        RateGate(0.0, clock=clock)
    with pytest.raises(ValueError, match="decrease_factor"):
        RateGate(1.0, clock=clock, decrease_factor=1.5)
    with pytest.raises(ValueError, match="recovery_seconds"):
        RateGate(1.0, clock=clock, recovery_seconds=0)
    with pytest.raises(ValueError, match="min_rate"):
        RateGate(1.0, clock=clock, min_rate=-1)


class _ManualClock:
    """A clock whose sleepers wait until the test moves time and wakes them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeping = 0
        self._wake = anyio.Event()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeping += 1
        try:
            await self._wake.wait()
        finally:
            self.sleeping -= 1

    def wake_all(self, now: float) -> None:
        self.now = now
        self._wake.set()
        self._wake = anyio.Event()


async def _settle() -> None:
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


async def test_a_paced_gate_whose_turn_has_come_grants_without_sleeping() -> None:
    """A due turn is granted at once and spaces the next one exactly like a waited turn."""
    clock = VirtualClock()
    gate = RateGate(2.0, clock=clock)
    assert await gate.acquire() == 0.0
    clock.advance(0.6)
    assert await gate.acquire() == pytest.approx(0.6)
    assert clock.sleeps == []
    assert await gate.acquire() == pytest.approx(1.1)
    assert clock.sleeps == [pytest.approx(0.5)]
    assert gate.grants == 3


async def test_a_free_turn_does_not_overtake_a_waiter() -> None:
    """A caller arriving while another waits for its turn queues behind it, free turn or not."""
    clock = _ManualClock()
    gate = RateGate(1.0, clock=clock)
    assert await gate.acquire() == 0.0
    order: list[tuple[str, float]] = []

    async def take(name: str) -> None:
        order.append((name, await gate.acquire()))

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(take, "b")
        await _settle()
        assert clock.sleeping == 1  # b holds the gate, waiting for t = 1
        clock.now = 2.0  # a turn is free now, but b is first in line
        task_group.start_soon(take, "c")
        await _settle()
        assert order == []
        clock.wake_all(2.0)
        await _settle()
        assert order == [("b", 2.0)]
        assert clock.sleeping == 1  # c now waits for its own turn, 1 s after b's
        clock.wake_all(3.0)
    assert order == [("b", 2.0), ("c", 3.0)]
    assert gate.grants == 3


async def test_a_cancelled_caller_gets_no_turn_even_when_one_is_free() -> None:
    """Cancellation is honoured on the lock-free path too: no grant is counted."""
    gate = RateGate(None, clock=VirtualClock())
    with anyio.CancelScope() as scope:
        scope.cancel()
        await gate.acquire()
        pytest.fail("acquire() returned in a cancelled scope")
    assert scope.cancelled_caught
    assert gate.grants == 0


class OversleepingClock(VirtualClock):
    """A virtual clock whose every sleep wakes ``late`` seconds after it was asked to."""

    def __init__(self, late: float) -> None:
        super().__init__()
        self.late = late

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        self.advance(self.late)


@pytest.mark.parametrize(("rate", "late"), [(1000.0, 0.0008), (200.0, 0.003), (50.0, 0.01)])
async def test_late_wake_ups_do_not_lower_the_delivered_rate(rate: float, late: float) -> None:
    """A waiter woken late (timers, a busy loop) catches up: the rate delivered is the rate.

    Without catching up, a 1 000/s gate whose 1 ms sleeps each overshoot by 0.8 ms delivers
    556/s: the gap a busy event loop made in the scale benchmark's status polls.
    """
    clock = OversleepingClock(late)
    gate = RateGate(rate, clock=clock, name="status")
    times = await grant_times(gate, clock, int(rate * 2))
    delivered = (len(times) - 1) / (times[-1] - times[0])
    assert delivered == pytest.approx(rate, rel=0.03)


@pytest.mark.parametrize("rate", [1000.0, 100.0, 19.0, 5.0])
async def test_catching_up_never_bursts_more_than_the_catch_up_window(rate: float) -> None:
    """After an idle second a gate grants at most ``1 + rate x 0.05`` turns back to back.

    At 20/s and below that is a single turn: a 5/s gate never grants two turns closer than
    0.2 s.
    """
    clock = VirtualClock()
    gate = RateGate(rate, clock=clock, name="status")
    await gate.acquire()
    clock.advance(1.0)
    start = clock.monotonic()
    burst = 0
    while await gate.acquire() == start:
        burst += 1
    assert burst == (1 + int(rate * 0.05 + 1e-9) if rate > 20 else 1)


async def test_a_late_slow_gate_keeps_its_spacing() -> None:
    """A 5/s gate whose waiters wake 30 ms late still spaces every grant by 0.2 s or more."""
    clock = OversleepingClock(0.03)
    gate = RateGate(5.0, clock=clock, name="submit")
    times = await grant_times(gate, clock, 20)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2 - 1e-9


async def test_measured_and_accepted_rates_hold_through_thousands_of_answers() -> None:
    """The windows drop old times in bulk: rates after many answers count the last second."""
    clock = VirtualClock()
    gate = RateGate(None, clock=clock)
    for _ in range(3000):  # 3 s at 1 000 answers a second, then 200 a second for 1 s
        await gate.acquire()
        gate.on_success()
        clock.advance(0.001)
    for _ in range(200):
        await gate.acquire()
        gate.on_success()
        clock.advance(0.005)
    for _ in range(8):  # 8 of the last 20 answers: a rate limit
        gate.on_throttle(None)
    # 0.7 x the 200/s sent, never above 0.95 x the 200/s accepted over the last second.
    assert gate.rate == pytest.approx(0.7 * 200, rel=0.02)
    assert gate.decreases == 1


async def test_a_turn_is_taken_without_waiting_only_when_nobody_waits() -> None:
    """try_grant takes a free turn; it gives none while a wait is due or a caller waits."""
    clock = _ManualClock()
    gate = RateGate(1.0, clock=clock)
    assert gate.try_grant() == 0.0
    assert gate.try_grant() is None  # the next turn is 1 s away
    clock.now = 1.0
    assert gate.try_grant() == 1.0
    gate.on_throttle(5.0)  # Retry-After: nobody before t = 6
    clock.now = 3.0
    assert gate.try_grant() is None
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(gate.acquire)
        await _settle()
        assert clock.sleeping == 1
        clock.now = 7.0  # the hold is over, but a caller is in line first
        assert gate.try_grant() is None
        clock.wake_all(7.0)
    assert gate.grants == 3
