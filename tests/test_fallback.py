"""Tests for the slow fallback poll of jobs that expect a callback."""

from __future__ import annotations

import math
import random

from vidgo_async import PollPolicy
from vidgo_async._fallback import DurationEstimator, fallback_schedule
from vidgo_async._polling import PollState


def test_fallback_starts_after_twice_the_longest_interval_without_history() -> None:
    """With nothing learned yet, the first fallback poll waits 2 × max_interval."""
    first, slow = fallback_schedule(PollPolicy(max_interval=30), None)
    assert first == 60
    assert (slow.initial_delay, slow.multiplier, slow.jitter) == (60, 2.0, 0.0)
    assert slow.use_progress is False


def test_fallback_waits_for_twice_the_learned_duration() -> None:
    """Once jobs took 200 s, the fallback waits 400 s; short jobs never pull it below 2 × max."""
    assert fallback_schedule(PollPolicy(max_interval=30), 200.0)[0] == 400
    assert fallback_schedule(PollPolicy(max_interval=30), 5.0)[0] == 60


def test_later_fallback_polls_double_their_wait_up_to_eight_times_the_first() -> None:
    """A job still running at each fallback poll is asked again after 2, 4, 8, 8... × first."""
    first, slow = fallback_schedule(PollPolicy(max_interval=30), None)
    state = PollState(slow, started_at=0.0)
    now, delays = first, []
    for _ in range(5):
        state.observe(now, 50)  # progress is ignored: no early polls
        delay = state.next_delay(now, rng=random.Random(1))
        delays.append(delay)
        now += delay
    assert delays == [120, 240, 480, 480, 480]


def test_jitter_only_stretches_the_first_fallback_wait() -> None:
    """With a random source the first wait spreads upwards, never below 2 × expected."""
    policy = PollPolicy(max_interval=30, jitter=0.2)
    rng = random.Random(3)
    firsts = [fallback_schedule(policy, 100.0, rng=rng)[0] for _ in range(200)]
    assert min(firsts) >= 200
    assert max(firsts) <= 200 * 1.05
    assert len(set(firsts)) > 1


def test_estimator_uses_the_median_of_recent_jobs() -> None:
    """The estimate is the median of the last window of durations; junk is ignored."""
    estimator = DurationEstimator(window=3)
    assert estimator.expected() is None
    for seconds in (1000.0, 10.0, 20.0, 30.0, -1.0, math.inf):
        estimator.observe(seconds)
    assert estimator.expected() == 20.0
