"""Tests for ``vidgo-async status`` (vidgo_async._cli.status) against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import pytest

from vidgo_async import PollPolicy, Task
from vidgo_async._cli import main
from vidgo_async.testing import Emulator


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(job_seconds=0.0, seed=1).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        monkeypatch.delenv("VIDGO_BASE_URL", raising=False)
        yield emu


def _submit(emu: Emulator, prompt: str) -> Task:
    async def submit() -> Task:
        async with emu.client() as client:
            task = await client.submit(
                "seedance-2", {"prompt": prompt, "duration": 5, "resolution": "720p"}
            )
            return await client.wait(task, timeout=10, poll=PollPolicy().scaled(0.01))

    return anyio.run(submit)


def test_status_prints_a_finished_task(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text output names the task, its status and its files."""
    task = _submit(emulator, "a lighthouse at dusk")
    assert main(["status", task.task_id, "--base-url", emulator.base_url]) == 0
    out = capsys.readouterr().out
    assert f"task_id: {task.task_id}" in out
    assert "status:  finished" in out
    assert f"file:    video {task.files[0].file_url}" in out
    assert emulator.stats.status_requests[task.task_id] >= 1


def test_status_json(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the status-shaped task object."""
    task = _submit(emulator, "a fox in the snow")
    assert main(["status", task.task_id, "--base-url", emulator.base_url, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["task_id"] == task.task_id
    assert document["status"] == "finished"
    assert document["files"][0]["file_url"] == task.files[0].file_url


def test_unknown_task_exits_1(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """A task id the API does not know is reported with a hint and exit status 1."""
    assert main(["status", "no-such-task", "--base-url", emulator.base_url]) == 1
    err = capsys.readouterr().err
    assert "no-such-task was not found" in err
    assert "HINT" in err


def test_missing_key_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without VIDGO_API_KEY the command exits 2 before any request."""
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["status", "task-1", "--base-url", "http://127.0.0.1:9"]) == 2
    assert "VIDGO_API_KEY" in capsys.readouterr().err


def test_wrong_key_is_reported(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rejected key gives exit status 1 and the API's message, never the key."""
    monkeypatch.setenv("VIDGO_API_KEY", "sk-wrong-canary")
    assert main(["status", "task-1", "--base-url", emulator.base_url]) == 1
    err = capsys.readouterr().err
    assert "401" in err
    assert "sk-wrong-canary" not in err
