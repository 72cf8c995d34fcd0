"""Tests for the slow fallback poll of jobs that expect a callback."""

from __future__ import annotations

import math

from vidgo_async import PollPolicy
from vidgo_async._fallback import DurationEstimator, fallback_schedule


def test_fallback_starts_after_twice_the_longest_interval_without_history() -> None:
    """With nothing learned yet, the first fallback poll waits 2 × max_interval, then stays flat."""
    first, slow = fallback_schedule(PollPolicy(max_interval=30), None)
    assert first == 60
    assert (slow.initial_delay, slow.max_interval, slow.multiplier) == (60, 60, 1.0)
    assert slow.use_progress is False


def test_fallback_waits_for_twice_the_learned_duration() -> None:
    """Once jobs took 200 s, the fallback waits 400 s; short jobs never pull it below 2 × max."""
    assert fallback_schedule(PollPolicy(max_interval=30), 200.0)[0] == 400
    assert fallback_schedule(PollPolicy(max_interval=30), 5.0)[0] == 60


def test_estimator_uses_the_median_of_recent_jobs() -> None:
    """The estimate is the median of the last window of durations; junk is ignored."""
    estimator = DurationEstimator(window=3)
    assert estimator.expected() is None
    for seconds in (1000.0, 10.0, 20.0, 30.0, -1.0, math.inf):
        estimator.observe(seconds)
    assert estimator.expected() == 20.0
