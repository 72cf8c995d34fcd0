"""An outcome's task is not read back from its JSON when it reads back as itself."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidgo_async import Task, TaskStatus
from vidgo_async._converter import structure
from vidgo_async._journal import Journal, JournalState, fingerprint
from vidgo_async._journal_entry import (
    RecordedTask,
    entry_from_row,
    entry_updated,
    reads_back_as_itself,
    task_json,
)
from vidgo_async._models import TaskFile

_ANSWERS: list[dict[str, Any]] = [
    {"task_id": "t1", "status": "finished", "progress": 100, "credits_amount": 50,
     "created_time": "2026-01-02T03:04:05",
     "files": [{"file_url": "https://x/1.mp4", "file_type": "video", "format": "mp4",
                "file_size": 1234}]},
    {"task_id": "t2", "status": "failed", "error_message": "policy", "progress": 140,
     "credits_amount": 12.5, "created_time": "2026-01-02T03:04:05.123456"},
    {"task_id": "t3", "status": "running", "progress": "7", "files": [{"file_url": "u"}, 3]},
    {"task_id": "t4", "status": "not_started", "created_time": "2026-01-02T03:04:05Z",
     "credits_amount": True, "files": "nope"},
]  # fmt: skip


def _read_back(task: Task) -> Task:
    text = task_json(task)
    assert text is not None
    return structure(json.loads(text), Task)


@pytest.mark.parametrize("answer", _ANSWERS)
def test_a_task_the_converter_built_reads_back_as_itself(answer: dict[str, Any]) -> None:
    task = structure(answer, Task)
    assert reads_back_as_itself(task)
    assert _read_back(task) == task


_DONE = Task(task_id="t", status=TaskStatus.FINISHED)


@pytest.mark.parametrize(
    "task",
    [
        attrs.evolve(_DONE, progress=150),
        attrs.evolve(_DONE, progress=True),
        attrs.evolve(_DONE, credits_amount=float("nan")),
        attrs.evolve(_DONE, credits_amount=True),
        attrs.evolve(_DONE, files=[TaskFile(file_url="u")]),  # type: ignore[arg-type]
        attrs.evolve(_DONE, files=(TaskFile(file_url="u", file_type=""),)),
        attrs.evolve(_DONE, files=(TaskFile(file_url="u", file_size=5.0),)),  # type: ignore[arg-type]
        attrs.evolve(_DONE, files=(TaskFile(file_url=""),)),
        attrs.evolve(_DONE, status=TaskStatus("paused")),
        attrs.evolve(_DONE, task_id=""),
        attrs.evolve(_DONE, error_message=7),  # type: ignore[arg-type]
    ],
)
def test_a_task_reading_would_change_is_read_back(task: Task) -> None:
    assert not reads_back_as_itself(task)
    recorded = RecordedTask.of(task, task_json(task) or "")
    assert type(recorded) is str  # the writer reads it back, as before


_texts = st.one_of(st.none(), st.text(max_size=8), st.integers(), st.floats(), st.booleans())
_numbers = st.one_of(
    st.none(), st.integers(-5, 200), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3)
)
_times = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1000, 1, 1)).map(lambda d: d.isoformat()),
    st.datetimes(
        min_value=datetime(1000, 1, 2), timezones=st.just(timezone(timedelta(hours=5, minutes=30)))
    ).map(lambda d: d.isoformat()),
    st.text(max_size=5),
)
_files = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"file_url": _texts, "file_type": _texts, "label": _texts, "file_size": _numbers}
        ),
        st.integers(),
    ),
    max_size=3,
)
_answers = st.fixed_dictionaries(
    {
        "task_id": st.text(min_size=1, max_size=8),
        "status": st.sampled_from(["finished", "failed", "running", "not_started", "paused"]),
        "progress": _numbers,
        "error_message": _texts,
        "credits_amount": _numbers,
        "created_time": _times,
        "files": st.one_of(_files, _texts),
    }
)


@settings(max_examples=300, deadline=None)
@given(_answers)
def test_every_task_that_reads_back_as_itself_does(answer: dict[str, Any]) -> None:
    """The check never says yes wrongly; and says yes for every known-status answer."""
    task = structure(answer, Task)
    if reads_back_as_itself(task):
        assert _read_back(task) == task
    else:
        assert not task.status.is_known


def test_an_update_takes_the_recorded_task_and_builds_the_same_entry() -> None:
    task = structure(_ANSWERS[0], Task)
    text = task_json(task)
    assert text is not None
    recorded = RecordedTask.of(task, text)
    assert type(recorded) is RecordedTask
    assert recorded == text
    row = ("k", "f" * 64, "seedance-2", "{}", "in_flight", "t1", None, None, None, "[]", 1,
           None, 1.0, 1.0, 1.0, None)  # fmt: skip
    entry = entry_from_row(row)
    changes = {"state": "finished", "task_json": recorded, "finished_at": 2.0}
    assert entry_updated(entry, changes) == entry_updated(entry, {**changes, "task_json": text})
    assert entry_updated(entry, changes).task is task


async def _outcome_rows(path: Path, task: Task) -> tuple[list[tuple[Any, ...]], Any]:
    data = {"prompt": "a kite", "duration": 5}
    async with Journal(path, _clock=lambda: 1_700_000_000.25) as journal:
        await journal.record_intent("k", fingerprint("seedance-2", data), "seedance-2", data)
        await journal.record_submitted("k", task.task_id)
        ended = await journal.record_terminal("k", "finished", task)
        assert await journal.get("k") == ended
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM jobs").fetchall(), ended
    finally:
        conn.close()


async def test_the_stored_row_is_the_same_with_or_without_the_recorded_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = structure(_ANSWERS[0], Task)
    reused = await _outcome_rows(tmp_path / "a.sqlite", task)
    monkeypatch.setattr("vidgo_async._journal_entry.reads_back_as_itself", lambda task: False)
    read_back = await _outcome_rows(tmp_path / "b.sqlite", task)
    assert reused == read_back
    assert reused[1].state is JournalState.FINISHED
    async with Journal(tmp_path / "a.sqlite", readonly=True) as reopened:  # checksums hold
        assert await reopened.get("k") == reused[1]
