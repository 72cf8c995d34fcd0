"""Tests of the retry rules: what is sent again, after how long, and the retry budget."""

from __future__ import annotations

import random

import pytest

from vidgo_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmitOutcomeUnknownError,
)
from vidgo_async._retry import (
    RetryBudget,
    may_have_created,
    outcome_unknown,
    retry_delay,
    retryable,
)


def test_retry_budget_accounting() -> None:
    """5 tokens per retry, 10 per timeout retry, +1 per first-try success, capped at capacity."""
    budget = RetryBudget()
    assert budget.tokens == 500
    assert budget.try_acquire()
    assert budget.tokens == 495
    assert budget.try_acquire(timeout=True)
    assert budget.tokens == 485
    budget.record_success()
    assert budget.tokens == 486
    for _ in range(100):
        budget.record_success()
    assert budget.tokens == 500


def test_retry_budget_empties() -> None:
    """An empty budget refuses retries and reports exhausted."""
    budget = RetryBudget(capacity=12)
    assert budget.try_acquire()
    assert budget.try_acquire()
    assert budget.exhausted
    assert not budget.try_acquire()
    assert budget.tokens == 2


SENT = APIConnectionError("reset", request_sent=True)
NOT_SENT = APIConnectionError("refused", request_sent=False)
TIMED_OUT = APITimeoutError("read timeout")
SERVER = ServerError("boom", status_code=503)
LIMITED = RateLimitError("slow down")
BAD = BadRequestError("no", status_code=400)


@pytest.mark.parametrize(
    ("exc", "get", "submit", "created"),
    [
        (NOT_SENT, True, True, False),
        (SENT, True, False, True),
        (TIMED_OUT, True, False, True),
        (SERVER, True, False, True),
        (LIMITED, True, True, False),
        (BAD, False, False, False),
    ],
)
def test_the_retry_table(exc: APIError, get: bool, submit: bool, created: bool) -> None:
    """A GET retries transient failures; a submit only what provably created nothing."""
    policy = RetryPolicy()
    assert retryable(exc, idempotent=True, policy=policy) is get
    assert retryable(exc, idempotent=False, policy=policy) is submit
    assert may_have_created(exc) is created


def test_retry_ambiguous_submits_makes_every_transient_submit_failure_retryable() -> None:
    """The opt-in accepts at-least-once submits: a sent-then-lost submit is retried."""
    policy = RetryPolicy(retry_ambiguous_submits=True)
    assert all(retryable(e, idempotent=False, policy=policy) for e in (SENT, TIMED_OUT, SERVER))
    assert not retryable(BAD, idempotent=False, policy=policy)


def test_retry_delay_honours_retry_after_with_a_small_spread() -> None:
    """A server wait is slept through plus at most a tenth, each retry paid from the budget."""
    rng = random.Random(7)
    for _ in range(200):
        budget = RetryBudget()
        delay = retry_delay(
            LIMITED, 1, 3.0, idempotent=False, policy=RetryPolicy(), budget=budget, rng=rng
        )
        assert delay is not None
        assert 3.0 <= delay <= 3.3
        assert budget.tokens == budget.capacity - budget.retry_cost


@pytest.mark.parametrize(
    ("attempt", "retry_after", "budget", "why"),
    [
        (3, None, RetryBudget(), "attempts used up"),
        (1, 10_000.0, RetryBudget(), "server wait above max_retry_after"),
        (1, None, RetryBudget(capacity=4), "budget empty"),
    ],
)
def test_retry_delay_is_none_when_not_retrying(
    attempt: int, retry_after: float | None, budget: RetryBudget, why: str
) -> None:
    """No retry past the attempts, above the longest server wait, or on an empty budget."""
    policy = RetryPolicy(max_attempts=3)
    delay = retry_delay(
        SERVER,
        attempt,
        retry_after,
        idempotent=True,
        policy=policy,
        budget=budget,
        rng=random.Random(1),
    )
    assert delay is None, why


def test_outcome_unknown_carries_the_submitted_body() -> None:
    """A submit that may have created a task becomes SubmitOutcomeUnknownError with its body."""
    body = {"model": "seedance-2", "input": {"prompt": "a cat"}}
    error = outcome_unknown(body, SENT)
    assert isinstance(error, SubmitOutcomeUnknownError)
    assert error.model == "seedance-2"
    assert error.payload == body
    assert error.cause is SENT
