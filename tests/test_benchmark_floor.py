"""The scale benchmark's lag floor: what a client that knew every end could do at the cap."""

from __future__ import annotations

import pytest

from benchmarks.scale import floor_lags, job_seconds


def test_ends_apart_cost_nothing_and_ends_together_wait_their_turn() -> None:
    # Two 10 s jobs ending 5 s apart: each is seen at its end.
    assert floor_lags([[100.0, 10.0], [105.0, 10.0]], rate=1.0) == [0.0, 0.0]
    # Three ending together at 2/s: the second waits 0.5 s, the third 1 s.
    assert floor_lags([[50.0, 10.0]] * 3, rate=2.0) == pytest.approx([0.0, 0.05, 0.1])


def test_job_lengths_spread_over_the_window() -> None:
    lengths = [job_seconds(i, (90.0, 300.0)) for i in range(1000)]
    assert min(lengths) >= 90.0
    assert max(lengths) < 300.0
    # Every tenth of the window holds about a tenth of the jobs.
    for tenth in range(10):
        low = 90.0 + 21.0 * tenth
        share = sum(low <= x < low + 21.0 for x in lengths) / len(lengths)
        assert share == pytest.approx(0.1, abs=0.01)
