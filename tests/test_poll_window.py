"""Polls aimed by the expected window of durations when progress says nothing (pure)."""

from __future__ import annotations

import heapq
import itertools
import math
import random

import pytest

from vidgo_async import PollPolicy, Task, TaskStatus
from vidgo_async._fallback import DurationWindows
from vidgo_async._polling import (
    LATE_FRACTION,
    WINDOW_FLOOR,
    WINDOW_STEPS,
    PollState,
    PollTracker,
    window_step,
)

POLICY = PollPolicy(initial_delay=2, multiplier=1.5, max_interval=30, min_interval=1, jitter=0.2)
STEADY = PollPolicy(initial_delay=2, multiplier=1.5, max_interval=30, min_interval=1, jitter=0.0)


def no_progress_polls(
    duration: float, window: tuple[float, float] | None, seed: int = 7
) -> list[float]:
    """The poll times of one job of ``duration`` seconds that never reports progress."""
    state = PollState(POLICY, started_at=0.0, window=window)
    rng = random.Random(seed)
    now, times = 0.0, []
    while True:
        now += state.next_delay(now, rng=rng)
        times.append(now)
        if now >= duration:
            return times
        state.observe(now, None)


def test_first_poll_aims_at_the_window_start_within_the_hard_cap() -> None:
    """Before the window opens the wait is the time left to it, never over max_interval."""
    state = PollState(POLICY, started_at=100.0, window=(90.0, 300.0))
    assert state.next_delay(175.0, rng=random.Random(1)) == pytest.approx(15.0)
    assert state.next_delay(100.0, rng=random.Random(1)) == POLICY.max_interval


def test_before_the_window_a_wait_is_at_most_half_the_time_spent() -> None:
    """After the first poll, a wait before the window never exceeds half the time spent."""
    state = PollState(POLICY, started_at=0.0, window=(90.0, 300.0))
    state.observe(30.0, None)
    assert state.next_delay(30.0, rng=random.Random(1)) == pytest.approx(15.0)
    assert state.next_delay(80.0, rng=random.Random(1)) == pytest.approx(10.0)


def test_inside_the_window_polls_tighten_towards_its_end() -> None:
    """Inside the window each wait is shorter than the one before, down to the floor."""
    state = PollState(STEADY, started_at=0.0, window=(30.0, 300.0))
    delays = [state.next_delay(now, rng=random.Random(1)) for now in (30.0, 100.0, 200.0, 280.0)]
    assert delays == sorted(delays, reverse=True)
    assert len(set(delays)) == len(delays)
    assert delays[0] <= 300.0 / WINDOW_STEPS
    assert state.next_delay(299.0, rng=random.Random(1)) == pytest.approx(
        WINDOW_FLOOR * 300.0 / WINDOW_STEPS
    )


def test_inside_the_window_the_jitter_spreads_each_wait() -> None:
    """Each wait inside the window is its step ± the policy's jitter, and not all the same."""
    state = PollState(POLICY, started_at=0.0, window=(30.0, 270.0))
    step = window_step(100.0, 270.0)
    delays = [state.next_delay(100.0, rng=random.Random(seed)) for seed in range(50)]
    assert all(step * (1 - POLICY.jitter) <= d <= step * (1 + POLICY.jitter) for d in delays)
    assert max(delays) - min(delays) > step * POLICY.jitter


def test_window_step_grows_with_the_square_root_of_the_time_left() -> None:
    """Four times the time left to the window's end, twice the interval; scale-free."""
    assert window_step(200.0, 300.0) == pytest.approx(2 * window_step(275.0, 300.0))
    assert window_step(20.0, 30.0) == pytest.approx(window_step(200.0, 300.0) / 10)
    assert window_step(0.0, 300.0) == pytest.approx(300.0 / WINDOW_STEPS)
    assert window_step(300.0, 300.0) == pytest.approx(WINDOW_FLOOR * 300.0 / WINDOW_STEPS)


def test_min_interval_bounds_the_tightest_polls() -> None:
    """Near the window's end the floor never undercuts the policy's min_interval."""
    policy = PollPolicy(min_interval=5, max_interval=30, jitter=0.2)
    state = PollState(policy, started_at=0.0, window=(30.0, 300.0))
    assert all(state.next_delay(299.0, rng=random.Random(seed)) >= 5.0 for seed in range(50))


def test_a_job_outlasting_its_window_costs_a_bounded_number_of_polls() -> None:
    """Up to the window's end at most 2 × WINDOW_STEPS polls; then max_interval at the most."""
    assert len(no_progress_polls(300.0, (30.0, 300.0))) <= 2 * WINDOW_STEPS
    hour = no_progress_polls(3600.0, (30.0, 300.0))
    assert len(hour) <= 2 * WINDOW_STEPS + 3600.0 / POLICY.max_interval
    late = [b - a for a, b in itertools.pairwise(hour) if a > 1000.0]
    assert late
    assert all(gap == POLICY.max_interval for gap in late)


def test_past_the_window_the_interval_stretches_with_the_time_spent() -> None:
    """A job running far past its window costs ever fewer polls, bounded by max_interval."""
    state = PollState(POLICY, started_at=0.0, window=(30.0, 60.0))
    delay = state.next_delay(400.0, rng=random.Random(3))
    assert delay >= LATE_FRACTION * 400.0 * (1 - POLICY.jitter)
    assert state.next_delay(5000.0, rng=random.Random(3)) == POLICY.max_interval


def fixed_6_s(durations: list[float]) -> tuple[int, float]:
    """(polls, total lag) of a poller every 6 s from the submit over jobs of ``durations``."""
    polls = sum(math.ceil(d / 6.0) for d in durations)
    return polls, sum(math.ceil(d / 6.0) * 6.0 - d for d in durations)


def test_over_30_to_300_s_jobs_a_window_beats_a_fixed_6_s_poller() -> None:
    """Across jobs spread over a known window, fewer polls than every 6 s, and less lag."""
    durations = [30.0 + 270.0 * (i + 0.5) / 100 for i in range(100)]
    ours = [no_progress_polls(d, (30.0, 300.0), seed=i) for i, d in enumerate(durations)]
    fixed_polls, fixed_lag = fixed_6_s(durations)
    assert sum(len(times) for times in ours) < fixed_polls
    lag = sum(times[-1] - d for times, d in zip(ours, durations, strict=True))
    assert lag < 0.9 * fixed_lag


def batch_without_progress(durations: list[float], seed: int) -> tuple[int, float]:
    """(polls, total lag) of a batch submitted at once, its window learned as its jobs end.

    The orchestrator's way on the simulated clock: seeded by the documented 90–300 s, each
    job re-aimed by the window learned so far at each of its polls.
    """
    documented = (90.0, 300.0)
    windows = DurationWindows()
    rng = random.Random(seed)
    states = [PollState(POLICY, started_at=0.0, window=documented) for _ in durations]
    due = [(state.next_delay(0.0, rng=rng), i) for i, state in enumerate(states)]
    heapq.heapify(due)
    polls, lag = 0, 0.0
    while due:
        now, i = heapq.heappop(due)
        polls += 1
        if now >= durations[i]:
            lag += now - durations[i]
            windows.observe("kind", now)
            continue
        state = states[i]
        state.window = windows.window("kind", documented)
        state.observe(now, None)
        heapq.heappush(due, (now + state.next_delay(now, rng=rng), i))
    return polls, lag


def test_a_batch_learning_its_window_beats_a_fixed_6_s_poller() -> None:
    """30–300 s jobs without progress, all at once: < 0.95 × the polls and lag of every 6 s."""
    polls = lag = fixed_polls = fixed_lag = 0.0
    for seed in range(4):
        durations = [30.0 + 270.0 * (i + 0.5) / 90 for i in range(90)]
        random.Random(seed).shuffle(durations)
        ours = batch_without_progress(durations, seed)
        fixed = fixed_6_s(durations)
        polls, lag = polls + ours[0], lag + ours[1]
        fixed_polls, fixed_lag = fixed_polls + fixed[0], fixed_lag + fixed[1]
    assert polls < 0.95 * fixed_polls
    assert lag < 0.95 * fixed_lag


def test_progress_wins_over_the_window() -> None:
    """With a rising progress the poll is aimed at the estimated finish, not the window."""
    state = PollState(POLICY, started_at=0.0, window=(200.0, 300.0))
    state.observe(10.0, 10)
    state.observe(20.0, 20)
    assert state.next_delay(20.0, rng=random.Random(1)) == POLICY.max_interval
    assert state.estimated_remaining(20.0) == pytest.approx(80.0)


def test_urgent_from_the_window_or_the_progress() -> None:
    """A job is worth polling first once past its window's start or nearly done by progress."""
    windowed = PollState(POLICY, started_at=0.0, window=(50.0, 100.0))
    assert windowed.urgent_from(10.0) == 50.0
    assert PollState(POLICY, started_at=0.0).urgent_from(1000.0) is None
    progressed = PollState(POLICY, started_at=0.0)
    progressed.observe(10.0, 10)
    progressed.observe(20.0, 20)
    # 1 % a second from 20 % at 20 s: the end at 100 s, urgent min_interval before it.
    assert progressed.urgent_from(20.0) == pytest.approx(100.0 - POLICY.min_interval)


def test_tracker_urgent_from_follows_the_schedule() -> None:
    """PollTracker.urgent_from is its schedule's: the window's start here."""
    tracker = PollTracker("t-1", POLICY, started_at=0.0, window=(60.0, 120.0))
    tracker.start(0.0, Task(task_id="t-1", status=TaskStatus.RUNNING))
    assert tracker.urgent_from(10.0) == 60.0


def test_duration_windows_start_from_the_seed_and_learn() -> None:
    """The seed until jobs end; the soonest seen once enough ended; latest never below seed."""
    windows = DurationWindows()
    seed = (90.0, 300.0)
    assert windows.window("k", seed) == seed
    windows.observe("k", 40.0)
    assert windows.window("k", seed) == (40.0, 300.0)
    for seconds in (150.0, 160.0, 170.0, 180.0, 190.0, 200.0, 210.0):
        windows.observe("k", seconds)
    assert windows.window("k", seed) == (40.0, 300.0)
    windows.observe("k", 500.0)
    assert windows.window("k", seed) == (40.0, 500.0)
    windows.observe("k", float("inf"))
    windows.observe("k", -1.0)
    assert windows.window("k", seed) == (40.0, 500.0)
    assert windows.window("other", seed) == seed


def test_duration_windows_without_a_seed_need_enough_jobs() -> None:
    """A kind with no documented range gets a window only after enough jobs ended."""
    windows = DurationWindows()
    for seconds in (10.0, 20.0, 30.0):
        windows.observe("image", seconds)
    assert windows.window("image", None) is None
    for seconds in (11.0, 12.0, 13.0, 14.0, 15.0):
        windows.observe("image", seconds)
    assert windows.window("image", None) == (10.0, 30.0)


def test_expected_duration_is_checked_and_scaled() -> None:
    """The seed window must be two positive seconds in order; scaled() scales it."""
    assert PollPolicy().expected_duration == (90.0, 300.0)
    assert PollPolicy().scaled(0.1).expected_duration == pytest.approx((9.0, 30.0))
    with pytest.raises(ValueError, match="expected_duration"):
        PollPolicy(expected_duration=(300.0, 90.0))
    with pytest.raises(ValueError, match="expected_duration"):
        PollPolicy(expected_duration=(1.0, 2.0, 3.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected_duration"):
        PollPolicy(expected_duration=(0.0, 2.0))
