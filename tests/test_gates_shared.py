"""Tests for a gate that shares its rate: grants taken in adaptive batches from a source."""

from __future__ import annotations

import math

import pytest

from vidgo_async._clock import VirtualClock
from vidgo_async._gates import RateGate


class Bucket:
    """A token bucket on the virtual clock, as the fleet's row in the database behaves."""

    def __init__(self, clock: VirtualClock, rate: float, max_batch: int) -> None:
        self.clock = clock
        self.rate = rate
        self.max_batch = max_batch
        self.tokens = 0.0
        self.stamp = clock.monotonic()
        self.asked: list[int] = []

    async def take(self, wanted: int) -> tuple[int, float]:
        now = self.clock.monotonic()
        avail = min(float(self.max_batch), self.tokens + max(now - self.stamp, 0.0) * self.rate)
        self.stamp = max(self.stamp, now)
        granted = min(wanted, math.floor(avail))
        self.tokens = avail - granted
        self.asked.append(wanted)
        return granted, 0.0 if granted else max((wanted - self.tokens) / self.rate, 0.005)


async def test_two_gates_sharing_a_rate_take_at_most_the_rate_together() -> None:
    """Each gate alone may go 20/s; sharing 10/s they take 10/s together (+ the batches)."""
    clock = VirtualClock()
    bucket = Bucket(clock, rate=10.0, max_batch=4)
    gates = [RateGate(20.0, clock=clock, name="submit") for _ in range(2)]
    for gate in gates:
        gate.share(bucket)
    start = clock.monotonic()
    for _ in range(100):
        for gate in gates:
            await gate.acquire()
    elapsed = clock.monotonic() - start
    total = sum(gate.grants for gate in gates)
    assert total == 200
    # at most the rate, the bucket's depth and one batch held by each gate
    assert total <= 10.0 * elapsed + bucket.max_batch + 2 * bucket.max_batch
    assert total >= 0.9 * 10.0 * elapsed  # and the shared rate is mostly used, not wasted


async def test_batches_grow_with_use_so_the_source_is_asked_rarely() -> None:
    """A gate using its grants quickly doubles its batch up to the most the source gives."""
    clock = VirtualClock()
    bucket = Bucket(clock, rate=1000.0, max_batch=8)  # the fleet's rate is not the limit here
    gate = RateGate(100.0, clock=clock, name="status")
    gate.share(bucket, batch_seconds=0.25)
    for _ in range(200):
        await gate.acquire()
    asked = [n for n in bucket.asked if n > 1]
    assert asked[:3] == [2, 4, 8]
    assert bucket.asked[-5:] == [8] * 5
    assert len(bucket.asked) <= 200 / 8 + 8  # one take per batch, not one per grant


async def test_a_stale_batch_is_dropped_and_a_slow_user_takes_smaller_batches() -> None:
    clock = VirtualClock()
    bucket = Bucket(clock, rate=1000.0, max_batch=8)
    gate = RateGate(100.0, clock=clock, name="status")
    gate.share(bucket, batch_seconds=0.25, keep=1.0)
    while gate.grants < 20:
        await gate.acquire()
    asked = len(bucket.asked)
    assert bucket.asked[-1] == 8  # a full batch in use
    clock.advance(5.0)  # the grants left of it are stale now
    await gate.acquire()
    assert bucket.asked[asked:] == [4]  # asked again, for a halved batch


async def test_an_empty_source_makes_the_gate_wait_as_told() -> None:
    clock = VirtualClock()
    bucket = Bucket(clock, rate=2.0, max_batch=1)
    gate = RateGate(50.0, clock=clock, name="submit")
    gate.share(bucket)
    times = [await gate.acquire() for _ in range(5)]
    assert times[-1] - times[0] >= 4 / 2.0 - 1e-9  # 2/s shared beats 50/s local
    assert gate.grants == 5


def test_share_refuses_nonsense() -> None:
    clock = VirtualClock()
    gate = RateGate(5.0, clock=clock, name="submit")
    with pytest.raises(ValueError, match="batch_seconds"):
        gate.share(Bucket(clock, 1.0, 1), batch_seconds=0)
    with pytest.raises(ValueError, match="keep"):
        gate.share(Bucket(clock, 1.0, 1), keep=math.inf)
