"""Tests of the poll schedule (T11): growth, jitter, hints, progress, bounds."""

from __future__ import annotations

import itertools
import random

import pytest

from vidgo_async import PollPolicy
from vidgo_async._polling import MAX_SERVER_HINT, PollState


def _simulate(policy: PollPolicy, job_seconds: float, *, progress: bool) -> list[float]:
    """Return poll times for a job that runs ``job_seconds`` (progress linear when reported)."""
    rng = random.Random(3)
    state = PollState(policy, started_at=0.0)
    now = state.next_delay(0.0, rng=rng)
    times = []
    while True:
        times.append(now)
        if now >= job_seconds:
            return times
        state.observe(now, int(100 * now / job_seconds) if progress else None)
        now += state.next_delay(now, rng=rng)
        assert len(times) < 1000, "busy loop"


def test_ten_minute_job_without_progress_takes_at_most_30_polls() -> None:
    """Without progress a 10 min job is polled at most 30 times, never < 1 s apart (T11)."""
    times = _simulate(PollPolicy(), 600, progress=False)
    assert len(times) <= 30
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 1.0 for gap in gaps)
    assert all(gap <= 30.0 for gap in gaps)


def test_progress_aims_polls_at_the_finish() -> None:
    """With progress the job is seen finished soon after its end with few polls."""
    times = _simulate(PollPolicy(), 600, progress=True)
    assert len(times) <= 30
    assert times[-1] - 600 <= 30.0


def test_intervals_grow_geometrically_within_jitter() -> None:
    """Un-jittered intervals are 2 s ×1.5 up to 30 s; each draw stays within ±20 %."""
    policy = PollPolicy()
    state = PollState(policy, started_at=0.0)
    rng = random.Random(1)
    expected = 2.0
    for _ in range(12):
        delay = state.next_delay(0.0, rng=rng)
        assert expected * 0.8 - 1e-9 <= delay <= min(expected * 1.2, 30.0) + 1e-9
        state.observe(0.0, None)
        expected = min(30.0, expected * 1.5)


@pytest.mark.parametrize(
    ("hint", "expected"), [(0.0, None), (0.001, 1.0), (10.0, 10.0), (1e9, MAX_SERVER_HINT)]
)
def test_server_hint_is_clamped(hint: float, expected: float | None) -> None:
    """A server hint wins, clamped to [min_interval, 60 s]; a zero hint is ignored (T11)."""
    state = PollState(PollPolicy(), started_at=0.0)
    delay = state.next_delay(0.0, rng=random.Random(0), hint=hint)
    if expected is None:
        assert 1.0 <= delay <= 30.0
    else:
        assert delay == expected


def test_scaled_policy_scales_the_schedule() -> None:
    """A policy scaled by 0.001 gives millisecond schedules."""
    state = PollState(PollPolicy().scaled(0.001), started_at=0.0)
    assert state.next_delay(0.0, rng=random.Random(0)) <= 0.0025


def _simulate_queued(
    policy: PollPolicy, queued: float, running: float, seed: int
) -> tuple[int, float]:
    """Return (polls, lag) for a job that waits ``queued`` s at progress 0, then runs linearly."""
    rng = random.Random(seed)
    state = PollState(policy, started_at=0.0)
    end = queued + running
    now = state.next_delay(0.0, rng=rng)
    polls = 0
    while True:
        polls += 1
        if now >= end:
            return polls, now - end
        progress = 0 if now < queued else int(100 * (now - queued) / running)
        state.observe(now, progress)
        now += state.next_delay(now, rng=rng)
        assert polls < 1000, "busy loop"


def test_one_reading_is_checked_again_within_the_time_already_spent() -> None:
    """A rate from a single reading (queue time included) is not trusted beyond the time since submit."""
    state = PollState(PollPolicy(), started_at=0.0)
    state.observe(10.0, 10)
    # The single-reading estimate is 90 s; the second reading comes after at most 10 s.
    assert state.estimated_remaining(10.0) == 90.0
    assert 1.0 <= state.next_delay(10.0, rng=random.Random(0)) <= 10.0
    # Once the progress has risen between two readings, the true rate decides again.
    state.observe(20.0, 11)
    assert state.next_delay(20.0, rng=random.Random(0)) == 30.0


@pytest.mark.parametrize("queued", [3.0, 5.0, 10.0])
def test_queued_30_second_job_is_seen_finished_promptly(queued: float) -> None:
    """A 30 s job that first sat in the queue is seen finished within 15 % of its run, in few polls."""
    for seed in range(20):
        polls, lag = _simulate_queued(PollPolicy(), queued, 30.0, seed)
        assert lag <= 0.15 * 30.0
        assert polls <= 8


@pytest.mark.parametrize("errors", [1, 2, 5, 60])
def test_failure_delay_backs_off_within_the_schedule_bounds(errors: int) -> None:
    """After failed queries the wait is never below the schedule or min_interval, never above max_interval."""
    policy = PollPolicy()
    state = PollState(policy, started_at=0.0)
    rng = random.Random(errors)
    for _ in range(200):
        delay = state.failure_delay(errors, rng=rng)
        assert max(policy.min_interval, state.geometric_delay()) <= delay <= policy.max_interval
    state.polls = 30  # deep into the schedule: the wait sits at the cap
    assert state.failure_delay(errors, rng=rng) == policy.max_interval


def test_a_one_reading_estimate_turns_urgent_halfway_to_its_end() -> None:
    """One reading counts the queue as running time, so its end can only be late.

    50 % after 10 s from the submit: the estimate says 10 s more, but with any queue time
    the job ends sooner, so its polls go first (when behind) once half of that passed.
    """
    policy = PollPolicy(min_interval=1.0)
    state = PollState(policy, started_at=0.0)
    state.observe(10.0, 50)
    assert state.urgent_from(10.0) == pytest.approx(10.0 + 5.0 - 1.0)
    assert state.urgent_from(13.0) == pytest.approx(14.0)  # the same moment, asked later
    # A second reading measures the true rate: urgent just before the estimated end.
    state.observe(12.0, 60)
    assert state.urgent_from(12.0) == pytest.approx(12.0 + 8.0 - 1.0)


def test_without_progress_a_poll_turns_urgent_where_the_window_opens() -> None:
    """No progress: urgent from the expected window's start; no window: never known."""
    policy = PollPolicy(use_progress=False)
    assert PollState(policy, started_at=5.0, window=(90.0, 300.0)).urgent_from(6.0) == 95.0
    assert PollState(policy, started_at=5.0).urgent_from(6.0) is None
