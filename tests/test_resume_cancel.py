"""A cancel-safe recorder: the orchestrator cancelled mid-write still records the write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from vidgo_async import PollPolicy
from vidgo_async._jobs import GenerationRequest, Job
from vidgo_async._journal import Journal, JournalEntry, JournalState
from vidgo_async._models import Task
from vidgo_async._orchestrator import Orchestrator
from vidgo_async._resume import JournalRecorder
from vidgo_async.testing import Emulator

MODEL = "seedance-2"
FAST = PollPolicy().scaled(0.01)


def _request(n: int) -> GenerationRequest:
    data = {"prompt": f"clip {n}", "duration": 5, "resolution": "720p"}
    return GenerationRequest(MODEL, data, key=f"k{n}")


class _HeldJournal(Journal):
    """A journal whose chosen write is queued with its writer thread held (``held`` set)."""

    def __init__(self, path: Path, *, hold: str) -> None:
        super().__init__(path)
        self.hold = hold
        self.held = anyio.Event()

    async def record_submitted(self, key: str, task_id: str) -> JournalEntry:
        if self.hold == "submitted":
            self._hold()
        return await super().record_submitted(key, task_id)

    async def record_terminal(
        self,
        key: str,
        state: JournalState | str,
        task: Task | Mapping[str, Any] | None,
        files: Iterable[str | Path] = (),
        *,
        error_type: str | None = None,
        message: str | None = None,
    ) -> JournalEntry:
        if self.hold == "terminal":
            self._hold()
        return await super().record_terminal(
            key, state, task, files, error_type=error_type, message=message
        )

    def _hold(self) -> None:
        self.hold = ""
        self._lock.acquire()  # the writer thread cannot commit until the test releases it
        self.held.set()


async def _cancel_while_held(journal: _HeldJournal, emu: Emulator) -> list[str]:
    """Run one job, cancel the orchestrator's scope while the held write waits, release it."""
    seen: list[str] = []
    async with emu.client() as client:
        recorder = JournalRecorder(journal)
        assert recorder.cancel_safe is True

        async def run(scope: anyio.CancelScope) -> None:
            with scope:
                async with Orchestrator(client, poll=FAST, journal=recorder) as orch:
                    await orch.run([_request(1)])
                seen.append("ran to the end")  # pragma: no cover - cancelled before
            seen.append("cancelled")

        scope = anyio.CancelScope()
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(run, scope)
                await journal.held.wait()
                scope.cancel()
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                seen.append("released")
                journal._lock.release()
        finally:
            if journal._lock.locked():  # pragma: no cover - released above unless it failed
                journal._lock.release()
    return seen


async def test_cancelled_during_after_submit_the_task_id_is_still_recorded(
    tmp_path: Path,
) -> None:
    """No shield around a cancel-safe recorder: the cancel waits out the task id's commit."""
    async with Emulator(job_seconds=0.0, seed=5) as emu:
        async with _HeldJournal(tmp_path / "journal.sqlite", hold="submitted") as journal:
            seen = await _cancel_while_held(journal, emu)
            entry = await journal.get("k1")
        assert seen == ["released", "cancelled"]  # the cancel did not cut the write short
        assert emu.stats.submits_accepted == 1
    assert entry is not None
    assert entry.task_id is not None
    assert entry.state is JournalState.IN_FLIGHT  # never seen ending: a rerun polls it


async def test_cancelled_during_after_end_the_outcome_is_still_recorded(tmp_path: Path) -> None:
    """No shield around a cancel-safe recorder: the cancel waits out the outcome's commit."""
    async with (
        Emulator(job_seconds=0.0, seed=6) as emu,
        _HeldJournal(tmp_path / "journal.sqlite", hold="terminal") as journal,
    ):
        seen = await _cancel_while_held(journal, emu)
        entry = await journal.get("k1")
    assert seen == ["released", "cancelled"]
    assert entry is not None
    assert entry.state is JournalState.FINISHED


async def test_the_recorder_is_cancel_safe_only_over_the_sqlite_journal(tmp_path: Path) -> None:
    """Another journal (e.g. PostgreSQL, or a user's) keeps the orchestrator's shield."""

    class Other:
        async def record_submitted(self, key: str, task_id: str) -> None: ...

    async with Journal(tmp_path / "journal.sqlite") as journal:
        assert JournalRecorder(journal).cancel_safe is True
    assert JournalRecorder(Other()).cancel_safe is False  # type: ignore[arg-type]


async def test_a_recorder_without_the_flag_still_completes_under_a_cancel() -> None:
    """A user's recorder (no ``cancel_safe``) is shielded: its after_submit runs to the end."""
    finished: list[str] = []
    entered = anyio.Event()
    proceed = anyio.Event()

    class SlowRecorder:
        async def before_submit(self, job: Job) -> None:
            pass

        async def after_submit(self, job: Job, task: Task) -> None:
            entered.set()
            await proceed.wait()
            await anyio.lowlevel.checkpoint()
            finished.append(task.task_id)

        async def after_end(self, job: Job) -> None:
            finished.append(f"end {job.state.value}")

    async with Emulator(job_seconds=0.0, seed=7) as emu, emu.client() as client:
        scope = anyio.CancelScope()

        async def run() -> None:
            with scope:
                async with Orchestrator(client, poll=FAST, journal=SlowRecorder()) as orch:
                    await orch.run([_request(3)])

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(run)
            await entered.wait()
            scope.cancel()
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            proceed.set()
    assert len(finished) == 1  # the task id, recorded though the run was cancelled meanwhile
    assert finished[0].startswith("task-")
