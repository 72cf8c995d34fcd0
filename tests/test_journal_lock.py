"""Tests of the journal's writer lock: one batch per journal, released on close."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vidgo_async import Journal, JournalLockedError
from vidgo_async._cli._batch_resume import move_aside
from vidgo_async._journal_lock import WriterLock, lock_file_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock semantics")


def test_a_second_holder_is_refused_naming_the_first_until_it_releases(tmp_path: Path) -> None:
    """A held lock refuses another holder at once, naming the owner; release frees it."""
    path = lock_file_for(tmp_path / "journal.sqlite")
    first, second = WriterLock(path), WriterLock(path)
    first.acquire("batch A")
    with pytest.raises(JournalLockedError, match="batch A") as refused:
        second.acquire("batch B")
    assert refused.value.owner == "batch A"
    assert "nothing was submitted" in str(refused.value)
    assert not second.held
    first.release()
    first.release()  # idempotent
    second.acquire("batch B")
    assert second.held
    second.release()


async def test_the_journal_lock_is_released_when_the_journal_closes(tmp_path: Path) -> None:
    """Journal.lock_writer holds the lock until aclose; another journal object is refused."""
    path = tmp_path / "out" / "journal.sqlite"
    async with Journal(path) as journal:
        await journal.lock_writer("run 1")
        async with Journal(path) as other:
            with pytest.raises(JournalLockedError, match="run 1"):
                await other.lock_writer("run 2")
    async with Journal(path) as journal:
        await journal.lock_writer("run 3")


async def test_fresh_never_moves_a_journal_a_batch_is_using(tmp_path: Path) -> None:
    """move_aside (--fresh) refuses while the journal's lock is held, and moves it after."""
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as journal:
        await journal.lock_writer("a running batch")
        with pytest.raises(JournalLockedError):
            move_aside(path)
        assert path.exists()
    moved = move_aside(path)
    assert moved is not None
    assert moved.exists()
    assert not path.exists()
