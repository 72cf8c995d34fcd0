"""Tests for ``vidgo-async journal`` (vidgo_async._cli.journal)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from vidgo_async import Task, TaskStatus
from vidgo_async._cli import main
from vidgo_async._journal import Journal, fingerprint

MODEL = "seedance-2"


async def _make_journal(path: Path) -> None:
    async with Journal(path) as journal:
        for key in ("done", "lost", "crashed", "running", "rejected"):
            data = {"prompt": f"prompt for {key}", "duration": 5}
            await journal.record_intent(key, fingerprint(MODEL, data), MODEL, data)
        await journal.record_submitted("done", "task-done")
        await journal.record_terminal(
            "done",
            "finished",
            Task(task_id="task-done", status=TaskStatus.FINISHED),
            ["o/done.mp4"],
        )
        await journal.record_unknown("lost", TimeoutError("read timed out"))
        await journal.record_submitted("running", "task-running")
        await journal.record_failed("rejected", "BadRequestError", "duration must be 4-15")


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "journal.sqlite"
    anyio.run(_make_journal, path)
    return path


def test_summary_lists_counts_unknowns_and_ids(
    journal_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report counts states and names unknown, in-flight and failed jobs with hints."""
    assert main(["journal", str(journal_path)]) == 0
    out = capsys.readouterr().out
    assert f"Journal {journal_path}: 5 jobs" in out
    assert "finished         1" in out
    assert "unknown          1" in out
    assert "submitting       1" in out
    assert "Unknown submits (sent, no answer) (2):" in out
    assert "lost      -  TimeoutError: read timed out" in out
    assert "crashed" in out
    assert "--retry-unknown" in out
    assert "running   task-running" in out
    assert "vidgo-async status TASK_ID" in out
    assert "rejected  -  BadRequestError: duration must be 4-15" in out
    assert "task-done" not in out  # finished jobs only with --all


def test_all_lists_finished_jobs(journal_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--all adds the finished jobs with their task ids."""
    assert main(["journal", str(journal_path), "--all"]) == 0
    assert "done      task-done" in capsys.readouterr().out


def test_json_output(journal_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints counts and every job with its state, task id and error."""
    assert main(["journal", str(journal_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["total"] == 5
    assert document["counts"]["finished"] == 1
    jobs = {job["id"]: job for job in document["jobs"]}
    assert jobs["done"]["task_id"] == "task-done"
    assert jobs["done"]["files"] == ["o/done.mp4"]
    assert jobs["lost"]["submit_in_doubt"] is True
    assert jobs["crashed"]["state"] == "submitting"
    assert jobs["rejected"]["error"] == {
        "type": "BadRequestError",
        "message": "duration must be 4-15",
    }
    assert jobs["running"]["submitted_at"].endswith("+00:00")


def test_missing_and_foreign_files_fail_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file is not created; a foreign file is reported and left alone."""
    missing = tmp_path / "nope.sqlite"
    assert main(["journal", str(missing)]) == 1
    assert "no journal found" in capsys.readouterr().err
    assert not missing.exists()
    foreign = tmp_path / "prompts.jsonl"
    foreign.write_text('{"id": "a", "prompt": "x"}\n' * 10)
    assert main(["journal", str(foreign)]) == 1
    assert "not a vidgo-async journal" in capsys.readouterr().err
    assert foreign.read_text() == '{"id": "a", "prompt": "x"}\n' * 10


def test_reading_does_not_modify_the_journal(
    journal_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command opens the journal read-only."""
    before = journal_path.read_bytes()
    assert main(["journal", str(journal_path), "--json"]) == 0
    capsys.readouterr()
    assert journal_path.read_bytes() == before
