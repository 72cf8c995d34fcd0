"""Tests for the queue of jobs whose poll records are not made yet."""

from __future__ import annotations

import math

from vidgo_async._arrivals import Arrivals


def test_jobs_come_out_oldest_first_once_their_first_poll_nears() -> None:
    """A job is taken half a lead before its first poll may come, never sooner."""
    arrivals: Arrivals[str] = Arrivals(lead=2.0)
    assert arrivals.earliest() == math.inf
    arrivals.add("a", 10.0)
    arrivals.add("b", 10.5)
    arrivals.add("c", 13.0)
    assert len(arrivals) == 3
    assert "b" in arrivals
    assert arrivals.earliest() == 12.0  # a's time + the lead
    assert arrivals.take_due(10.9, limit=10) == []  # a's first poll is over a lead away
    assert arrivals.take_due(11.5, limit=10) == [("a", 10.0), ("b", 10.5)]
    assert "a" not in arrivals
    assert len(arrivals) == 1
    assert arrivals.earliest() == 15.0
    assert arrivals.take_due(100.0, limit=10) == [("c", 13.0)]
    assert not arrivals
    assert arrivals.earliest() == math.inf


def test_a_take_is_limited() -> None:
    """One take makes at most ``limit`` records; the rest wait for the next take."""
    arrivals: Arrivals[int] = Arrivals(lead=1.0)
    for n in range(10):
        arrivals.add(n, float(n) / 100)
    assert [job for job, _ in arrivals.take_due(5.0, limit=4)] == [0, 1, 2, 3]
    assert [job for job, _ in arrivals.take_due(5.0, limit=4)] == [4, 5, 6, 7]
    assert [job for job, _ in arrivals.take_due(5.0, limit=4)] == [8, 9]


def test_a_dropped_job_is_never_taken_and_a_requeued_one_comes_at_its_new_time() -> None:
    """Dropping leaves a stale place that is skipped; queued again, a job has its new time."""
    arrivals: Arrivals[str] = Arrivals(lead=1.0)
    arrivals.add("gone", 0.0)
    arrivals.add("again", 0.1)
    arrivals.add("kept", 0.2)
    assert arrivals.pop("gone") == 0.0
    assert arrivals.pop("gone") is None
    assert arrivals.pop("again") == 0.1
    arrivals.add("again", 5.0)
    assert arrivals.take_due(1.0, limit=10) == [("kept", 0.2)]
    assert arrivals.take_due(5.4, limit=10) == []
    assert arrivals.take_due(5.5, limit=10) == [("again", 5.0)]
    assert len(arrivals) == 0
    assert arrivals.pop("never") is None
