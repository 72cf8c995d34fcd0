"""Group commit: the writes of one event-loop turn share one transaction, each still durable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from vidgo_async import JobClaimedError, JournalError
from vidgo_async._journal import Journal, JournalEntry, JournalState, fingerprint
from vidgo_async._journal_writer import GroupWriter, PendingWrite


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


def _deny_commit(action: int, arg1: str | None, *_: object) -> int:
    """An SQLite authorizer that refuses every COMMIT (a real commit failure)."""
    if action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


async def test_a_group_whose_commit_fails_fails_every_write_and_records_none(
    tmp_path: Path,
) -> None:
    """A failed commit wakes every caller of its group with the error; no write counts."""
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as journal:
        await _intent(journal, "before", 0)
        await journal.record_submitted("before", "task-0")
        conn = journal._conn
        assert conn is not None
        conn.set_authorizer(_deny_commit)
        outcomes: dict[str, BaseException | None] = {}

        async def attempt(key: str, write: Callable[[], Awaitable[object]]) -> None:
            try:
                await write()
            except JournalError as exc:
                outcomes[key] = exc
            else:  # pragma: no cover - reached only when the failure is lost
                outcomes[key] = None

        async with anyio.create_task_group() as task_group:
            for n in range(1, 6):
                task_group.start_soon(attempt, f"k{n}", partial(_intent, journal, f"k{n}", n))
            task_group.start_soon(
                attempt, "before", partial(journal.record_terminal, "before", "finished", None)
            )
        conn.set_authorizer(None)
        assert sorted(outcomes) == ["before", "k1", "k2", "k3", "k4", "k5"]
        assert all(isinstance(error, JournalError) for error in outcomes.values())
        assert all("not authorized" in str(error) for error in outcomes.values())
        # Nothing of the group is on disk, and what the store remembered was dropped with it:
        # the next write of "before" decides on the stored row (in flight, not finished).
        entries = {entry.key: entry for entry in await journal.entries()}
        assert sorted(entries) == ["before"]
        assert entries["before"].state is JournalState.IN_FLIGHT
        ended = await journal.record_terminal("before", "failed", None, message="boom")
        assert ended.state is JournalState.FAILED
        assert await journal.get("before") == ended


async def test_writes_still_queued_at_close_are_committed_before_it_returns(
    tmp_path: Path,
) -> None:
    """Closing the journal commits what its writer thread was handed, then stops it."""
    path = tmp_path / "closing.sqlite"
    journal = await Journal.open(path)
    async with anyio.create_task_group() as task_group:
        for n in range(10):
            task_group.start_soon(_intent, journal, f"k{n}", n)
        await anyio.lowlevel.checkpoint()  # every intent is queued, none has returned yet
        await journal.aclose()
    async with Journal(path, readonly=True) as reopened:
        assert len(await reopened.entries()) == 10
    assert not [t for t in threading.enumerate() if t.name == "vidgo-journal closing.sqlite"]


def _never_run(conn: sqlite3.Connection | None, entry: JournalEntry | None) -> dict[str, object]:
    raise AssertionError("a refused write is never run")


async def test_a_write_reaching_a_closed_writer_is_refused_without_a_thread(
    tmp_path: Path,
) -> None:
    """A write that reaches the writer after it stopped raises and starts no thread."""
    writer = GroupWriter(
        lambda group: None, closed=lambda: JournalError("the journal is closed"), name="w-test"
    )
    await writer.aclose()
    pending = PendingWrite("late", _never_run, asyncio.get_running_loop())
    writer.submit(pending)
    await writer.wait(pending)
    assert isinstance(pending.error, JournalError)
    assert not [t for t in threading.enumerate() if t.name == "w-test"]


async def test_a_cancel_scope_cancel_waits_out_the_commit_and_returns_the_entry(
    tmp_path: Path,
) -> None:
    """Cancelled by its scope mid-commit, a write still returns its entry once committed;
    the cancel lands at the caller's next checkpoint (as through a shielded wait)."""
    async with Journal(tmp_path / "journal.sqlite") as journal:
        await _intent(journal, "warm-up", 0)
        scopes: list[anyio.CancelScope] = []
        seen: list[object] = []

        async def write() -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                data = _input(1)
                seen.append(
                    await journal.record_intent(
                        "k", fingerprint("seedance-2", data), "seedance-2", data
                    )
                )
                await anyio.lowlevel.checkpoint()
                seen.append("past the checkpoint")  # pragma: no cover - cancelled before
            seen.append("left its scope")

        journal._lock.acquire()  # the writer thread cannot commit until released
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(write)
                await anyio.wait_all_tasks_blocked()
                scopes[0].cancel()
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                assert seen == []  # the cancel did not cut the wait short
                journal._lock.release()
        finally:
            if journal._lock.locked():  # pragma: no cover - released above unless it failed
                journal._lock.release()
        assert len(seen) == 2
        entry, last = seen
        assert isinstance(entry, JournalEntry)
        assert entry.key == "k"
        assert entry.state is JournalState.SUBMITTING
        assert last == "left its scope"
        assert await journal.get("k") == entry


async def test_a_task_cancel_raises_at_once_and_the_write_still_commits(tmp_path: Path) -> None:
    """``Task.cancel`` (not a cancel scope) is not shielded: the caller sees it at once, and
    the write it queued is committed all the same."""
    path = tmp_path / "journal.sqlite"
    journal = await Journal.open(path)
    try:
        await _intent(journal, "warm-up", 0)
        journal._lock.acquire()
        try:
            task = asyncio.ensure_future(_intent(journal, "k", 1))
            await anyio.wait_all_tasks_blocked()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            journal._lock.release()
    finally:
        await journal.aclose()  # commits what its writer thread was handed
    async with Journal(path, readonly=True) as reopened:
        entry = await reopened.get("k")
    assert entry is not None
    assert entry.state is JournalState.SUBMITTING
