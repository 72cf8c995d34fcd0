"""Tests for the shared AIMD rate gates."""

from __future__ import annotations

import itertools

import anyio
import anyio.lowlevel
import pytest

from vidgo_async._clock import VirtualClock
from vidgo_async._gates import RateGate


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


async def test_throttle_holds_everyone_for_retry_after_and_lowers_the_rate() -> None:
    """A 429 with Retry-After pushes the shared not-before time and multiplies the rate by 0.7."""
    clock = VirtualClock()
    gate = RateGate(10.0, clock=clock)
    issued = await gate.acquire()
    gate.on_throttle(3.0, issued_at=issued)
    assert gate.rate == pytest.approx(7.0)
    granted = await gate.acquire()
    assert granted >= issued + 3.0


async def test_one_storm_lowers_the_rate_once() -> None:
    """Answers to requests sent before the last decrease do not lower the rate again."""
    clock = VirtualClock()
    gate = RateGate(10.0, clock=clock)
    tickets = [await gate.acquire() for _ in range(5)]
    for ticket in tickets:
        gate.on_throttle(None, issued_at=ticket)
    assert gate.rate == pytest.approx(7.0)
    later = await gate.acquire()
    gate.on_throttle(None, issued_at=later)  # within a second of the decrease: same window
    assert gate.rate == pytest.approx(7.0)
    clock.advance(1.5)
    later = await gate.acquire()
    gate.on_throttle(None, issued_at=later)
    assert gate.rate == pytest.approx(4.9)


async def test_successes_ramp_back_to_the_ceiling_never_above() -> None:
    """Every 20 successes add one step, up to the configured ceiling."""
    clock = VirtualClock()
    gate = RateGate(10.0, clock=clock, increase_step=1.0)
    gate.on_throttle(None)
    assert gate.rate == pytest.approx(7.0)
    for _ in range(19):
        gate.on_success()
    assert gate.rate == pytest.approx(7.0)
    gate.on_success()
    assert gate.rate == pytest.approx(8.0)
    for _ in range(20 * 10):
        gate.on_success()
    assert gate.rate == pytest.approx(10.0)


async def test_unpaced_gate_starts_pacing_from_the_measured_rate() -> None:
    """An unpaced gate that meets a 429 paces at 0.7 × what it was sending."""
    clock = VirtualClock()
    gate = RateGate(None, clock=clock)
    for _ in range(10):
        await gate.acquire()
        clock.advance(0.05)  # 20 grants per second
    gate.on_throttle(None)
    assert gate.rate is not None
    assert gate.rate == pytest.approx(0.7 * 20, rel=0.25)


async def test_throttle_resumes_just_under_what_the_server_accepted() -> None:
    """After a 429 the rate is no higher than 0.95 × the successes of the last second."""
    clock = VirtualClock()
    gate = RateGate(None, clock=clock)
    for _ in range(40):
        await gate.acquire()  # sending 40/s ...
        clock.advance(0.025)
    for _ in range(10):
        gate.on_success()  # ... of which the server accepted 10 in the last second
    gate.on_throttle(None)
    assert gate.rate == pytest.approx(0.95 * 10)


async def test_accepted_rate_only_counts_the_last_second() -> None:
    """Successes older than the measuring window do not hold the rate up."""
    clock = VirtualClock()
    gate = RateGate(100.0, clock=clock)
    for _ in range(50):
        gate.on_success()
    clock.advance(2.0)
    for _ in range(4):
        gate.on_success()
    gate.on_throttle(None)
    assert gate.rate == pytest.approx(0.95 * 4)


async def test_rate_never_falls_below_the_floor() -> None:
    """Repeated decreases stop at the minimum rate."""
    clock = VirtualClock()
    gate = RateGate(1.0, clock=clock, min_rate=0.5)
    for _ in range(20):
        clock.advance(1.5)
        gate.on_throttle(None)
    assert gate.rate == pytest.approx(0.5)


def test_invalid_settings_are_refused() -> None:
    """A non-positive rate or a bad factor is a clear ValueError."""
    clock = VirtualClock()
    with pytest.raises(ValueError, match="rate"):
        RateGate(0.0, clock=clock)
    with pytest.raises(ValueError, match="decrease_factor"):
        RateGate(1.0, clock=clock, decrease_factor=1.5)


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
