"""The journal's stored form (vidgo_async._journal_entry): updates and outcomes, store-free."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vidgo_async import Task, TaskStatus
from vidgo_async._journal_entry import (
    JournalState,
    entry_from_row,
    entry_updated,
    task_json,
    terminal_record,
)

_COLUMNS = (
    "key", "fingerprint", "model", "input_json", "state", "task_id", "task_json", "error_type",
    "error_message", "files_json", "attempts", "callback_token", "created_at", "updated_at",
    "submitted_at", "finished_at",
)  # fmt: skip
_ROW: dict[str, Any] = {
    "key": "k", "fingerprint": "f" * 64, "model": "seedance-2",
    "input_json": '{"duration":5,"prompt":"a kite"}', "state": "submitting", "task_id": None,
    "task_json": None, "error_type": None, "error_message": None, "files_json": "[]",
    "attempts": 1, "callback_token": None, "created_at": 1.0, "updated_at": 1.0,
    "submitted_at": None, "finished_at": None,
}  # fmt: skip
_TASK = Task(task_id="task-1", status=TaskStatus.FINISHED, progress=100)


def _row(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[name] for name in _COLUMNS)


@pytest.mark.parametrize(
    "changes",
    [
        {"state": "in_flight", "task_id": "task-1", "submitted_at": 2.0, "updated_at": 2.0},
        {"state": "finished", "task_json": task_json(_TASK), "finished_at": 3.0},
        {"state": "failed", "error_type": "E", "error_message": "m", "files_json": '["a.mp4"]'},
        {"state": "submitting", "task_id": None, "task_json": None, "attempts": 2},
    ],
)
def test_an_updated_entry_is_the_entry_of_the_updated_row(changes: dict[str, Any]) -> None:
    """Applying changes to an entry gives what reading the changed row back gives."""
    before = entry_from_row(_row(_ROW))
    assert entry_updated(before, changes) == entry_from_row(_row({**_ROW, **changes}))


def test_an_update_never_changes_the_identity_columns() -> None:
    """An update naming the key or input is refused rather than half applied."""
    with pytest.raises(ValueError, match="input_json"):
        entry_updated(entry_from_row(_row(_ROW)), {"input_json": "{}"})


def test_an_unreadable_updated_value_is_reported_as_damage() -> None:
    """A task JSON that cannot be read back names the entry as damaged."""
    with pytest.raises(ValueError, match="'k' is damaged"):
        entry_updated(entry_from_row(_row(_ROW)), {"task_json": "{not json"})


def test_a_terminal_record_prepares_the_outcome_once_for_every_store() -> None:
    """The state, the task and its id, the files and the error are checked and encoded."""
    record = terminal_record("finished", _TASK, ["out/a.mp4"], error_type=None, message=None)
    assert record.state is JournalState.FINISHED
    assert record.task_id == "task-1"
    assert record.task_json == task_json(_TASK)
    assert json.loads(record.files_json) == ["out/a.mp4"]
    assert (record.error_type, record.message) == (None, None)
    assert terminal_record("lost", None, (), error_type=None, message=None).files_json == "[]"


def test_a_failed_task_without_an_error_type_is_a_task_failed_error() -> None:
    """A failed outcome defaults to TaskFailedError with the task's own message."""
    failed = Task(task_id="task-2", status=TaskStatus.FAILED, error_message="content policy")
    record = terminal_record("failed", failed, (), error_type=None, message=None)
    assert (record.error_type, record.message) == ("TaskFailedError", "content policy")
    given = terminal_record("failed", failed, (), error_type="Mine", message=None)
    assert (given.error_type, given.message) == ("Mine", None)


def test_a_terminal_record_refuses_a_state_that_is_not_an_outcome() -> None:
    """Only finished, failed, timeout and lost are outcomes."""
    with pytest.raises(ValueError, match="got in_flight"):
        terminal_record("in_flight", None, (), error_type=None, message=None)
