"""Group commit: the writes of one event-loop turn share one transaction, each still durable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from vidgo_async import JobClaimedError, JournalError
from vidgo_async._journal import Journal, fingerprint


def _input(n: int) -> dict[str, object]:
    return {"prompt": f"clip {n}", "duration": 5}


async def _intent(journal: Journal, key: str, n: int) -> None:
    data = _input(n)
    await journal.record_intent(key, fingerprint("seedance-2", data), "seedance-2", data)


async def test_writes_queued_together_share_one_transaction(tmp_path: Path) -> None:
    """Fifty intents started in one turn take far fewer than fifty transactions."""
    path = tmp_path / "journal.sqlite"
    statements: list[str] = []
    async with Journal(path) as journal:
        await _intent(journal, "warm-up", 0)
        conn = journal._conn
        assert conn is not None
        conn.set_trace_callback(statements.append)
        async with anyio.create_task_group() as task_group:
            for n in range(50):
                task_group.start_soon(_intent, journal, f"k{n}", n)
        conn.set_trace_callback(None)
        assert len(await journal.entries()) == 51
    begins = [s for s in statements if s.startswith("BEGIN")]
    commits = [s for s in statements if s.startswith("COMMIT")]
    assert 1 <= len(begins) <= 3
    assert len(commits) == len(begins)


async def test_a_refused_write_fails_alone_in_its_batch(tmp_path: Path) -> None:
    """A claim refused inside a batch raises for its caller only; the others are recorded."""
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as journal:
        await _intent(journal, "held", 0)
        outcomes: dict[str, BaseException | None] = {}

        async def attempt(key: str, n: int) -> None:
            try:
                await _intent(journal, key, n)
            except JobClaimedError as exc:
                outcomes[key] = exc
            else:
                outcomes[key] = None

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(attempt, "a", 1)
            task_group.start_soon(attempt, "held", 0)
            task_group.start_soon(attempt, "b", 2)
        assert outcomes["a"] is None
        assert outcomes["b"] is None
        assert isinstance(outcomes["held"], JobClaimedError)
        held = await journal.get("held")
        assert held is not None
        assert held.attempts == 1


async def test_each_write_is_committed_when_it_returns(tmp_path: Path) -> None:
    """Right after a batched call returns, another connection reads its row."""
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as journal:

        async def write_then_read(n: int) -> None:
            await _intent(journal, f"k{n}", n)
            other = sqlite3.connect(path)
            try:
                row = other.execute("SELECT state FROM jobs WHERE key = ?", (f"k{n}",)).fetchone()
            finally:
                other.close()
            assert row == ("submitting",)

        async with anyio.create_task_group() as task_group:
            for n in range(10):
                task_group.start_soon(write_then_read, n)


async def test_a_cancelled_writer_still_waits_for_its_commit(tmp_path: Path) -> None:
    """Cancelling callers does not cut their writes short: every row is there afterwards."""
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as journal:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as task_group:
                for n in range(20):
                    task_group.start_soon(_intent, journal, f"k{n}", n)
                await anyio.lowlevel.checkpoint()
                scope.cancel()
        assert len(await journal.entries()) == 20


async def test_writes_on_a_closed_journal_are_refused(tmp_path: Path) -> None:
    """A closed journal refuses a write with a clear error."""
    journal = await Journal.open(tmp_path / "journal.sqlite")
    await journal.aclose()
    with pytest.raises(JournalError, match="closed"):
        await _intent(journal, "late", 0)
