"""Tests for the spend guard's pure parts (vidgo_async._spend)."""

from __future__ import annotations

import time

import pytest

from vidgo_async import Seedance2Input
from vidgo_async._jobs import GenerationRequest
from vidgo_async._spend import budget_problem, find_duplicates, parse_price, plan_batch


def _req(key: str, prompt: str, duration: int = 5, model: str = "seedance-2") -> GenerationRequest:
    data = {"prompt": prompt, "duration": duration, "resolution": "720p"}
    return GenerationRequest(model, data, key=key)


def test_parse_price_accepts_model_equals_number() -> None:
    """MODEL=CREDITS_PER_SECOND parses; anything else names the expected form."""
    assert parse_price("seedance-2=20") == ("seedance-2", 20.0)
    assert parse_price(" seedance-1.5-pro = 7.5") == ("seedance-1.5-pro", 7.5)
    for bad in ("seedance-2", "=3", "seedance-2=x", "seedance-2=-1", "seedance-2=nan"):
        with pytest.raises(ValueError, match="MODEL=CREDITS_PER_SECOND"):
            parse_price(bad)


def test_plan_sums_seconds_and_prices_per_model() -> None:
    """Video seconds are the sum of durations; credits are seconds times the given price."""
    requests = [_req("a", "x", 5), _req("b", "y", 10), _req("c", "z", 8, "seedance-1.5-pro")]
    requests.append(
        GenerationRequest(
            "seedance-2", Seedance2Input(prompt="typed", duration=4, resolution="480p"), key="d"
        )
    )
    plan = plan_batch(requests, {"seedance-2": 20})
    assert plan.jobs == 4
    assert plan.jobs_by_model == {"seedance-2": 3, "seedance-1.5-pro": 1}
    assert plan.seconds_by_model == {"seedance-2": 19.0, "seedance-1.5-pro": 8.0}
    assert plan.video_seconds == 27.0
    assert plan.credits_by_model == {"seedance-2": 380.0}
    assert plan.unpriced_models == ("seedance-1.5-pro",)
    assert plan.estimated_credits is None
    text = plan.describe()
    assert "Plan: 4 jobs, 27 s of video" in text
    assert "~380 credits" in text
    assert "--price seedance-1.5-pro=CREDITS_PER_SECOND" in text
    full = plan_batch(requests, {"seedance-2": 20, "seedance-1.5-pro": 10})
    assert full.estimated_credits == 460.0
    assert "estimated total: 460 credits" in full.describe()


def test_budget_problems() -> None:
    """A low balance or a ceiling below the estimate stops the batch with a fix."""
    plan = plan_batch([_req("a", "x", 5), _req("b", "y", 5)], {"seedance-2": 10})
    assert budget_problem(plan) is None
    assert budget_problem(plan, balance=100, max_credits=100) is None
    message = budget_problem(plan, balance=99)
    assert message is not None
    assert "balance is 99" in message
    message = budget_problem(plan, max_credits=50)
    assert message is not None
    assert "above --max-credits 50" in message
    unpriced = plan_batch([_req("a", "x")])
    message = budget_problem(unpriced, max_credits=1000)
    assert message is not None
    assert "missing: seedance-2" in message
    assert budget_problem(unpriced, balance=5) is None  # no estimate, some credits left
    assert budget_problem(unpriced, balance=0) is not None


def test_duplicates_and_identical_requests_are_found() -> None:
    """Repeated ids and requests that would create the same video are both reported."""
    requests = [
        _req("a", "sunrise"),
        _req("b", "sunset"),
        _req("a", "noon"),
        GenerationRequest(
            "seedance-2", {"resolution": "720p", "duration": 5, "prompt": "sunrise"}, key="c"
        ),
    ]
    repeated, identical = find_duplicates(requests)
    assert repeated == {"a": 2}
    assert identical == [["a", "c"]]
    assert find_duplicates([_req("a", "xxx"), _req("b", "yyy")]) == ({}, [])


def test_planning_a_thousand_jobs_is_fast() -> None:
    """Planning and duplicate detection for 1000 jobs take well under a second."""
    requests = [_req(f"k{n}", f"prompt {n}", 4 + n % 12) for n in range(1000)]
    started = time.perf_counter()
    plan = plan_batch(requests, {"seedance-2": 1})
    find_duplicates(requests)
    assert time.perf_counter() - started < 1.0
    assert plan.jobs == 1000
