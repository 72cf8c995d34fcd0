"""Tests of the error tree: hierarchy, status mapping, messages that say what to do."""

from __future__ import annotations

import pytest

import vidgo_async
from vidgo_async import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    InputValidationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SubmitOutcomeUnknownError,
    Task,
    TaskFailedError,
    TaskNotFoundError,
    TaskStatus,
    UnknownStatusError,
    ValidationIssue,
    VidgoError,
    WaitTimeoutError,
)
from vidgo_async._errors import status_error_class


def test_hierarchy() -> None:
    """The documented parents hold, including the stdlib ones."""
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APITimeoutError, TimeoutError)
    assert issubclass(WaitTimeoutError, TimeoutError)
    assert issubclass(InputValidationError, ValueError)
    assert issubclass(TaskNotFoundError, NotFoundError)
    assert issubclass(APIStatusError, APIError)
    assert issubclass(SubmitOutcomeUnknownError, VidgoError)


@pytest.mark.parametrize(
    ("code", "cls"),
    [(401, AuthenticationError), (429, RateLimitError), (503, ServerError), (418, APIStatusError)],
)
def test_status_error_class(code: int, cls: type[APIStatusError]) -> None:
    """status_error_class picks the class per status."""
    assert status_error_class(code) is cls


def test_task_errors_carry_the_task() -> None:
    """Task outcome errors carry the last seen Task and explain it."""
    failed = Task(task_id="t", status=TaskStatus.FAILED, error_message="policy")
    assert TaskFailedError(failed).task is failed
    assert "policy" in str(TaskFailedError(failed))
    unknown = Task(task_id="t", status=TaskStatus("paused"))
    assert "unknown_status='poll'" in str(UnknownStatusError(unknown))
    timeout = WaitTimeoutError(unknown, 30)
    assert "30 s" in str(timeout)
    assert timeout.timeout == 30


def test_submit_outcome_unknown_says_so_plainly() -> None:
    """The message says the task may exist and how to proceed; payload is kept."""
    error = SubmitOutcomeUnknownError("seedance-2", {"model": "seedance-2"}, TimeoutError("slow"))
    assert "may or may not have been created" in str(error)
    assert error.payload == {"model": "seedance-2"}


def test_input_validation_error_names_field_rule_and_value() -> None:
    """The first issue is exposed as field/rule/value."""
    error = InputValidationError([ValidationIssue("$.input.duration", "must be 4 to 15", 3)])
    assert (error.field, error.rule, error.value) == ("$.input.duration", "must be 4 to 15", 3)
    assert str(error) == "$.input.duration must be 4 to 15 (got 3)"


def test_public_all_matches_exports() -> None:
    """__all__ has no duplicates and every name in it exists, VidgoClient included."""
    names = vidgo_async.__all__
    assert len(set(names)) == len(names)
    assert "VidgoClient" in names
    for name in names:
        assert hasattr(vidgo_async, name)
