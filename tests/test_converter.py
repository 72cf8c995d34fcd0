"""Tests of the converter: the reference's example bodies, unknown statuses, arbitrary JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async import APIResponseValidationError, Balance, Task, TaskStatus
from vidgo_async._converter import converter, parse_datetime, structure

FINISHED_IMAGE = {
    "task_id": "task-unified-1757165031-uyujaw3d",
    "status": "finished",
    "files": [
        {"file_url": "https://storage.vidgo.ai/generated/image-abc123.jpg", "file_type": "image"}
    ],
    "created_time": "2025-11-12T10:30:00",
    "progress": 100,
    "error_message": None,
}
FAILED_NO_PROGRESS = {
    "task_id": "8FDN1I7M7Q68DDG8",
    "status": "failed",
    "files": [],
    "created_time": "2025-11-25T08:50:13",
    "error_message": "The prompt violates our content policy",
}
SUBMIT = {
    "task_id": "task-unified-1757165031-uyujaw3d",
    "status": "not_started",
    "created_time": "2026-04-17T10:30:00",
}


def test_finished_image_example() -> None:
    """The reference's finished-image body parses fully."""
    task = structure(FINISHED_IMAGE, Task)
    assert task.status is TaskStatus.FINISHED
    assert task.is_terminal
    assert task.files[0].file_type == "image"
    assert task.created_time == datetime(2025, 11, 12, 10, 30)
    assert task.progress == 100


def test_failed_example_without_progress() -> None:
    """The PoYo failed body without progress parses with its message."""
    task = structure(FAILED_NO_PROGRESS, Task)
    assert task.is_failed
    assert task.progress is None
    assert task.error_message == "The prompt violates our content policy"


def test_submit_example_and_extra_fields() -> None:
    """Unknown extra fields (credits_amount, file labels) are tolerated."""
    data = {
        **SUBMIT,
        "credits_amount": 12.5,
        "whatever": {"a": 1},
        "files": [
            {"file_url": "https://s/x.glb", "file_type": "3d", "label": "model_glb", "file_size": 9}
        ],
    }
    task = structure(data, Task)
    assert task.credits_amount == 12.5
    assert task.files[0].label == "model_glb"
    assert task.files[0].file_size == 9


@pytest.mark.parametrize("status", ["cancelled", "expired", "paused", "", "run ning", "finish"])
def test_unknown_statuses_stay_readable(status: str) -> None:
    """An unknown status is kept as a non-terminal, unknown value (T12)."""
    task = structure({"task_id": "t", "status": status}, Task)
    assert task.status.value == status
    assert not task.status.is_known
    assert not task.is_terminal


@pytest.mark.parametrize(
    ("status", "member"),
    [
        ("FINISHED", TaskStatus.FINISHED),
        ("Running", TaskStatus.RUNNING),
        (" failed ", TaskStatus.FAILED),
        ("NOT_STARTED\n", TaskStatus.NOT_STARTED),
    ],
)
def test_a_documented_status_in_another_case_is_that_status(
    status: str, member: TaskStatus
) -> None:
    """Tolerant in what is accepted: "FINISHED" is finished, not an unknown status to lose."""
    assert structure({"task_id": "t", "status": status}, Task).status is member
    assert TaskStatus(status) is member


def test_missing_status_is_unknown_empty() -> None:
    """A missing status becomes an unknown empty status."""
    assert structure({"task_id": "t"}, Task).status.value == ""


def test_balance_example() -> None:
    """The balance body parses."""
    assert structure({"email": "a@b.c", "credits_amount": 17276}, Balance) == Balance(
        credits_amount=17276, email="a@b.c"
    )


@pytest.mark.parametrize("data", [None, [], "x", {"status": "running"}, {"task_id": ""}])
def test_unusable_task_bodies_raise_validation_error(data: Any) -> None:
    """A body without a task_id raises APIResponseValidationError."""
    with pytest.raises(APIResponseValidationError):
        structure(data, Task)


def test_round_trip_through_unstructure() -> None:
    """unstructure gives a status-shaped dict that structures back to the same Task."""
    task = structure(FINISHED_IMAGE, Task)
    assert structure(converter.unstructure(task), Task) == task


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-29T13:09:04.731057", datetime(2025, 12, 29, 13, 9, 4, 731057)),
        ("nonsense", None),
        (12, None),
    ],
)
def test_parse_datetime(text: Any, expected: datetime | None) -> None:
    """Timestamps with and without fractions parse; anything else is None."""
    assert parse_datetime(text) == expected


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
TASKISH = st.fixed_dictionaries(
    {},
    optional={
        "task_id": JSON | st.text(min_size=1, max_size=20),
        "status": JSON | st.sampled_from(["running", "finished", "failed", "not_started"]),
        "files": JSON
        | st.lists(st.dictionaries(st.sampled_from(["file_url", "file_type", "file_size"]), JSON)),
        "progress": JSON,
        "created_time": JSON,
        "error_message": JSON,
        "credits_amount": JSON,
    },
)


@given(JSON | TASKISH)
def test_arbitrary_json_never_crashes(data: Any) -> None:
    """Any JSON gives a Task or APIResponseValidationError, nothing else (Hypothesis)."""
    try:
        task = structure(data, Task)
    except APIResponseValidationError:
        return
    assert isinstance(task.task_id, str)
    assert task.progress is None or 0 <= task.progress <= 100


def _reference_parse_datetime(value: str) -> datetime | None:
    """The slow, general rule: strip, read a trailing Z as UTC, then ISO-8601."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-12T10:30:00",
        "2025-11-12T10:30:00+05:30",
        "2025-11-12",
        " 2025-11-12T10:30:00 ",
        "2025-11-12T10:30:00Z",
        "2025-11-12T10:30:00z",
        "2025-13-12T10:30:00",
        "1",
        "2025-11-12T10:30:00 x",
    ],
)
def test_parse_datetime_fast_path_matches_the_general_rule(text: str) -> None:
    """The digit-to-digit fast path and the general path agree on every form."""
    assert parse_datetime(text) == _reference_parse_datetime(text)


@given(st.text(max_size=40))
def test_parse_datetime_agrees_with_the_general_rule_on_any_text(text: str) -> None:
    """For any non-empty string the result equals the general rule's (Hypothesis)."""
    if text:
        assert parse_datetime(text) == _reference_parse_datetime(text)


@pytest.mark.parametrize(
    ("progress", "expected"), [(-5, 0), (0, 0), (42, 42), (100, 100), (250, 100), (37.9, 37)]
)
def test_progress_is_clamped_to_0_100(progress: Any, expected: int) -> None:
    """Out-of-range progress is clamped; a float is truncated like before."""
    task = structure({"task_id": "t", "status": "running", "progress": progress}, Task)
    assert task.progress == expected


@pytest.mark.parametrize(
    ("progress", "expected"),
    [("45", 45), (" 45 ", 45), ("0", 0), ("100", 100), ("250", 100), ("37.9", 37)],
)
def test_a_numeric_string_progress_is_read_and_clamped(progress: str, expected: int) -> None:
    """A digit or decimal string progress is read like the number, clamped to 0-100."""
    task = structure({"task_id": "t", "status": "running", "progress": progress}, Task)
    assert task.progress == expected


@pytest.mark.parametrize(
    "progress", ["", "abc", "-5", "+5", "1e3", "nan", "inf", "4 5", "45%", "\u0664\u0665", "9" * 50]
)
def test_a_junk_string_progress_is_dropped(progress: str) -> None:
    """A string that is not plain digits (with an optional fraction) gives no progress."""
    task = structure({"task_id": "t", "status": "running", "progress": progress}, Task)
    assert task.progress is None


def test_known_status_is_the_member_and_unknown_is_a_pseudo_member() -> None:
    """Known values give the enum members themselves; others keep their text."""
    assert structure({"task_id": "t", "status": "running"}, Task).status is TaskStatus.RUNNING
    odd = structure({"task_id": "t", "status": "paused"}, Task).status
    assert odd.value == "paused"
    assert not odd.is_known


def test_structure_of_other_classes_goes_through_cattrs() -> None:
    """Classes without a direct hook are still structured by the converter."""
    assert structure(["1", 2], list[int]) == [1, 2]


def test_repeated_timestamp_is_parsed_once_and_the_cache_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A timestamp read again gives the same datetime object; the cache never outgrows its cap."""
    from vidgo_async import _converter

    monkeypatch.setattr(_converter, "_PARSED_TIMES", {})
    monkeypatch.setattr(_converter, "_PARSED_TIMES_MAX", 3)
    first = parse_datetime("2025-11-12T10:30:00")
    assert first == datetime(2025, 11, 12, 10, 30)
    assert parse_datetime("2025-11-12T10:30:00") is first
    for second in range(10):
        assert parse_datetime(f"2025-11-12T10:30:{second:02d}") == datetime(
            2025, 11, 12, 10, 30, second
        )
        assert len(_converter._PARSED_TIMES) <= 3
    assert parse_datetime("2025-11-12T10:30:99") is None
    assert "2025-11-12T10:30:99" not in _converter._PARSED_TIMES


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(50, 50), (12.5, 12.5), (True, None), (float("inf"), None), ("50", None), (None, None)],
)
def test_task_credits_amount_keeps_finite_numbers_only(amount: Any, expected: Any) -> None:
    """An int or finite float is kept as is; a bool, infinity or text becomes None."""
    task = structure({"task_id": "t", "status": "finished", "credits_amount": amount}, Task)
    assert task.credits_amount == expected
    assert type(task.credits_amount) is type(expected)
