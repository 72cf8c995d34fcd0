"""Tests of the one decision table for status answers (``PollTracker``): T07, T08, T12, T13."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidgo_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    ServerError,
    Task,
    TaskFailedError,
    TaskLostError,
    TaskNotFoundError,
    TaskStatus,
    UnknownStatusError,
    WaitTimeoutError,
)
from vidgo_async._polling import (
    MAX_SERVER_HINT,
    MAX_UNREADABLE_ANSWERS,
    PollTracker,
    StepKind,
    clamp_hint,
    settle,
)


def _task(status: str, progress: int | None = None) -> Task:
    return Task(task_id="t1", status=TaskStatus(status), progress=progress)


def _tracker(**kwargs: object) -> PollTracker:
    policy = kwargs.pop("policy", PollPolicy())
    assert isinstance(policy, PollPolicy)
    return PollTracker(
        "t1",
        policy,
        started_at=0.0,
        rng=random.Random(1),
        **kwargs,  # type: ignore[arg-type]
    )


def _status_error(cls: type[APIStatusError], code: int) -> APIStatusError:
    return cls("boom", status_code=code)


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        ("finished", StepKind.DONE, None),
        ("failed", StepKind.FAILED, TaskFailedError),
        ("not_started", StepKind.AGAIN, None),
        ("running", StepKind.AGAIN, None),
        ("cancelled", StepKind.LOST, UnknownStatusError),
        ("expired", StepKind.LOST, UnknownStatusError),
        ("paused", StepKind.LOST, UnknownStatusError),
        ("", StepKind.LOST, UnknownStatusError),
    ],
)
def test_status_table(status: str, kind: StepKind, error: type[Exception] | None) -> None:
    """Each status word maps to one step; only ``failed`` from the API is a failure (T12)."""
    step = _tracker().on_task(_task(status), 5.0)
    assert step.kind is kind
    if error is None:
        assert step.error is None
    else:
        assert isinstance(step.error, error)


def test_unknown_status_is_polled_through_with_the_poll_policy() -> None:
    """With ``unknown_status="poll"`` an unknown word is polled again, not ended."""
    tracker = _tracker(policy=PollPolicy(unknown_status="poll"))
    assert tracker.on_task(_task("paused"), 5.0).kind is StepKind.AGAIN


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("no", status_code=401),
        PermissionDeniedError("no", status_code=403),
        BadRequestError("no", status_code=400),
        ConflictError("no", status_code=409),
        APIStatusError("redirect", status_code=302),
        APIStatusError("teapot", status_code=418),
    ],
    ids=["401", "403", "400", "409", "302", "418"],
)
def test_answers_that_say_nothing_about_the_task_lose_it(error: APIStatusError) -> None:
    """401, 403, other 4xx and redirects lose track of the task, never fail it."""
    step = _tracker(submitted_at=0.0).on_error(error, 5.0)
    assert step.kind is StepKind.LOST
    assert isinstance(step.error, TaskLostError)
    assert step.error.cause is error
    assert step.error.task_id == "t1"


@pytest.mark.parametrize(
    "error",
    [
        ServerError("down", status_code=503),
        ServerError("timeout", status_code=408),
        APIConnectionError("reset"),
        APITimeoutError("slow"),
        RateLimitError("slow down", retry_after=3.0),
    ],
    ids=["503", "408", "connection", "timeout", "429"],
)
def test_transient_errors_are_polled_again(error: Exception) -> None:
    """5xx, 408, dropped connections, timeouts and 429s never end a task (T07)."""
    tracker = _tracker()
    for attempt in range(50):
        step = tracker.on_error(error, 10.0 * attempt)
        assert step.kind is StepKind.AGAIN
        assert 0 < step.delay <= MAX_SERVER_HINT


def test_rate_limit_waits_the_clamped_retry_after_and_throttles() -> None:
    """A 429's Retry-After is honoured, clamped to MAX_SERVER_HINT, and throttles the gate."""
    tracker = _tracker()
    step = tracker.on_error(RateLimitError("slow", retry_after=10**9), 1.0)
    assert step.delay == MAX_SERVER_HINT
    assert step.throttle
    assert step.retry_after == 10**9
    assert clamp_hint(0.0, PollPolicy()) == PollPolicy().min_interval


def test_server_hint_on_an_answer_is_clamped() -> None:
    """A poll hint of 0 is ignored and one of 10⁹ s is clamped to MAX_SERVER_HINT (T11)."""
    tracker = _tracker()
    assert tracker.on_task(_task("running"), 1.0, hint=1e9).delay == MAX_SERVER_HINT
    assert tracker.on_task(_task("running"), 2.0, hint=0.0).delay >= PollPolicy().min_interval


def test_not_found_is_ridden_out_within_the_grace_then_lost() -> None:
    """A 404 within not_found_grace of our submit is retried; past it the task is lost (T13)."""
    tracker = _tracker(submitted_at=0.0, policy=PollPolicy(not_found_grace=60))
    not_found = NotFoundError("nope", status_code=404)
    assert tracker.on_error(not_found, 20.0).kind is StepKind.AGAIN
    step = tracker.on_error(not_found, 61.0)
    assert step.kind is StepKind.LOST
    assert isinstance(step.error, TaskLostError)
    assert isinstance(step.error.cause, TaskNotFoundError)


def test_not_found_without_a_submit_of_ours_gets_no_grace() -> None:
    """An id this process did not submit is lost on its first 404."""
    step = _tracker().on_error(NotFoundError("nope", status_code=404), 0.1)
    assert step.kind is StepKind.LOST


def test_unreadable_answers_lose_the_task_after_the_limit() -> None:
    """Unreadable answers are retried, and lose the task after MAX_UNREADABLE_ANSWERS in a row."""
    tracker = _tracker()
    error = APIResponseValidationError("garbage")
    kinds = [tracker.on_error(error, float(n)).kind for n in range(MAX_UNREADABLE_ANSWERS)]
    assert kinds == [StepKind.AGAIN] * (MAX_UNREADABLE_ANSWERS - 1) + [StepKind.LOST]


def test_a_readable_answer_resets_the_unreadable_count() -> None:
    """Unreadable answers must come in a row to lose a task."""
    tracker = _tracker()
    error = APIResponseValidationError("garbage")
    for round_ in range(5):
        for n in range(MAX_UNREADABLE_ANSWERS - 1):
            assert tracker.on_error(error, round_ * 10.0 + n).kind is StepKind.AGAIN
        assert tracker.on_task(_task("running"), round_ * 10.0 + 5).kind is StepKind.AGAIN


@pytest.mark.parametrize("status", ["finished", "failed", "running"])
def test_an_answer_about_another_task_is_unreadable_never_this_tasks_news(status: str) -> None:
    """A status answer naming another task id neither ends nor feeds this task's wait."""
    tracker = _tracker()
    assert tracker.on_task(_task("running", progress=10), 1.0).kind is StepKind.AGAIN
    other = Task(task_id="t2", status=TaskStatus(status), progress=50)
    steps = [tracker.on_task(other, 2.0 + n) for n in range(MAX_UNREADABLE_ANSWERS)]
    assert [step.kind for step in steps] == [StepKind.AGAIN] * (MAX_UNREADABLE_ANSWERS - 1) + [
        StepKind.LOST
    ]
    assert isinstance(steps[0].error, APIResponseValidationError)
    assert "describes task 't2'" in str(steps[0].error)
    lost = steps[-1].error
    assert isinstance(lost, TaskLostError)
    assert lost.task_id == "t1"
    assert tracker.last_seen() == _task("running", progress=10)  # the other task is not kept
    assert tracker.last_progress == 10


def test_the_deadline_loses_the_task_with_wait_timeout() -> None:
    """Past the deadline the step is lost with a WaitTimeoutError naming the last task seen."""
    tracker = _tracker(deadline=30.0, timeout=30.0)
    running = tracker.on_task(_task("running", 10), 29.0)
    assert running.kind is StepKind.AGAIN
    assert running.delay <= 1.0  # clipped to the deadline
    step = tracker.on_task(_task("running", 20), 30.0)
    assert step.kind is StepKind.LOST
    assert isinstance(step.error, WaitTimeoutError)
    assert step.error.task.progress == 20


def test_budget_spent_polls_at_the_slowest_rate() -> None:
    """With the retry budget empty, failed queries wait max_interval (T08)."""

    class Empty:
        def try_acquire(self, *, timeout: bool = False) -> bool:
            return False

    tracker = _tracker(budget=Empty())
    step = tracker.on_error(ServerError("down", status_code=500), 1.0)
    assert step.delay == PollPolicy().max_interval


def test_settle_is_the_one_reading_of_a_status() -> None:
    """settle() ends finished/failed/unknown tasks and leaves running ones alone."""
    policy = PollPolicy()
    assert settle(_task("running"), policy) is None
    finished = settle(_task("finished"), policy)
    assert finished is not None
    assert finished.kind is StepKind.DONE


_ERRORS = st.sampled_from(
    [
        ServerError("down", status_code=500),
        APIConnectionError("reset"),
        APITimeoutError("slow"),
        RateLimitError("slow", retry_after=2.0),
        APIResponseValidationError("garbage"),
        NotFoundError("nope", status_code=404),
        AuthenticationError("no", status_code=401),
        APIStatusError("redirect", status_code=302),
    ]
)
_OBSERVATIONS = st.lists(st.one_of(st.text(max_size=12), _ERRORS), max_size=60)


@settings(max_examples=300, deadline=None)
@given(observations=_OBSERVATIONS, unknown=st.sampled_from(["raise", "poll"]))
def test_any_sequence_ends_by_the_deadline_and_fails_only_on_failed(
    observations: list[str | Exception], unknown: str
) -> None:
    """Over arbitrary statuses and errors: failed only if the API said so; time always advances."""
    policy = PollPolicy(unknown_status=unknown)  # type: ignore[arg-type]
    tracker = _tracker(policy=policy, submitted_at=0.0, deadline=600.0, timeout=600.0)
    now = 0.0
    step = tracker.start(now)
    said_failed = False
    for observation in observations:
        assert step.kind is StepKind.AGAIN
        now += step.delay
        if isinstance(observation, Exception):
            step = tracker.on_error(observation, now)
        else:
            said_failed = observation == "failed"
            step = tracker.on_task(_task(observation), now)
        if step.kind is not StepKind.AGAIN:
            break
        assert step.delay > 0 or now >= 600.0
    if step.kind is StepKind.FAILED:
        assert said_failed
    # Keep answering "running": the deadline ends it within a bounded number of polls.
    for _ in range(1000):
        if step.kind is not StepKind.AGAIN:
            break
        now += step.delay
        step = tracker.on_task(_task("running"), now)
    assert step.kind is not StepKind.AGAIN
    assert step.kind is not StepKind.FAILED or said_failed
