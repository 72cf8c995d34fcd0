"""The journal's SQLite plumbing: open, close, lock, and database work off the event loop.

Every database call runs off the event loop on the journal's single connection, guarded by
a lock: reads in a worker thread (``anyio.to_thread.run_sync``), row writes in the journal's
own writer thread (``_journal_writer``); a cancelled caller still waits for its write to
finish, so a write is never half done.

Group commit: the row writes queued in one event-loop turn go in one ``BEGIN IMMEDIATE``
transaction (one disk sync for all of them), and while one group commits the next collects.
A write decides and builds its new row first and changes the database with exactly one
statement, its last step: a write that is refused (a claim conflict) has changed nothing and
raises for its caller only, and a statement that fails is undone alone by SQLite (statement
atomicity). Should SQLite have rolled back the whole transaction instead (a full disk, an I/O
error), or the commit fail, every write of the group raises and none counts as recorded.
Every caller wakes only after the transaction holding its write has committed: the
durability of each ``record_*`` call is unchanged.

No re-select: the store remembers the rows it wrote (until the job ends). A write computes
the new row and its checksum from the remembered one and stores it with one conditional
``UPDATE ... WHERE key = ? AND checksum = ?``; when another process changed the row in the
meantime the update matches nothing, and the write reads the row (inside its ``BEGIN
IMMEDIATE`` transaction, so nobody else can change it now) and applies its change again.
The checksum turns a damaged byte into a clear error instead of a plausible wrong value.
The row's first columns (its identity: key, fingerprint, model, input) never change after
the insert, so the store also remembers the checksum's hash state after them: a write
hashes only the columns after them, and the digest is the same as ``row_checksum``'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

from ._errors import JournalError
from ._journal_entry import JournalEntry, compact_json, entry_from_row, entry_updated
from ._journal_file import DEFAULT_BUSY_TIMEOUT, JournalFile
from ._journal_lock import WriterLock, lock_file_for
from ._journal_writer import Change, GroupWriter, PendingWrite

__all__ = ["JournalStore", "row_checksum"]

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

T = TypeVar("T")
_Store = TypeVar("_Store", bound="JournalStore")

# Literal statements (no string building), one per query shape; the column order is _entry's.
_SELECT_BY_KEY = (
    "SELECT key, fingerprint, model, input_json, state, task_id, task_json, error_type, "
    "error_message, files_json, attempts, callback_token, created_at, updated_at, "
    "submitted_at, finished_at, checksum FROM jobs WHERE key = ?"
)
_INSERT = (
    "INSERT INTO jobs (key, fingerprint, model, input_json, state, task_id, task_json, "
    "error_type, error_message, files_json, attempts, callback_token, created_at, updated_at, "
    "submitted_at, finished_at, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?)"
)
# Every column a write may change, then the key and the checksum the row must still have.
_UPDATE = (
    "UPDATE jobs SET state = ?, task_id = ?, task_json = ?, error_type = ?, error_message = ?, "
    "files_json = ?, attempts = ?, callback_token = ?, updated_at = ?, submitted_at = ?, "
    "finished_at = ?, checksum = ? WHERE key = ? AND checksum = ?"
)
# The same, for a write that gives the row a task id, decided without a read: it also needs
# the task id held by no other row (else the write reads the row and decides again).
_UPDATE_NEW_TASK = (
    "UPDATE jobs SET state = ?, task_id = ?, task_json = ?, error_type = ?, error_message = ?, "
    "files_json = ?, attempts = ?, callback_token = ?, updated_at = ?, submitted_at = ?, "
    "finished_at = ?, checksum = ? WHERE key = ? AND checksum = ? "
    "AND NOT EXISTS (SELECT 1 FROM jobs AS other WHERE other.task_id = ? AND other.key != ?)"
)
# The row's columns in _SELECT_BY_KEY's order (without the checksum), and a new row's defaults.
_COLUMNS = (
    "key", "fingerprint", "model", "input_json", "state", "task_id", "task_json", "error_type",
    "error_message", "files_json", "attempts", "callback_token", "created_at", "updated_at",
    "submitted_at", "finished_at",
)  # fmt: skip
_INDEX = {name: index for index, name in enumerate(_COLUMNS)}
_NEW_ROW = (
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    "[]",
    0,
    None,
    None,
    None,
    None,
    None,
)
_REAL_COLUMNS = frozenset({"created_at", "updated_at", "submitted_at", "finished_at"})
_ENDED = frozenset({"finished", "failed", "timeout", "lost", "unknown"})
# The identity columns (never changed by an update): the checksum's remembered head.
_HEAD = 4
_IDENTITY = frozenset(_COLUMNS[:_HEAD])
# Rows remembered at most (the oldest are forgotten first; a forgotten row is read again).
_REMEMBERED = 65_536


class JournalStore:
    """One journal file: its connection, its writer lock and its transactions (see ``Journal``)."""

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        _clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._create = create and not readonly
        self._readonly = readonly
        self._busy_timeout = busy_timeout
        self._clock = _clock
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._writer = WriterLock(lock_file_for(self._path))
        self._writes = GroupWriter(
            self._commit_group, closed=self._closed_error, name=f"vidgo-journal {self._path.name}"
        )
        # key -> (row with its checksum, entry, the checksum's head) as last committed here.
        self._rows: dict[str, tuple[tuple[Any, ...], JournalEntry, Hash]] = {}

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._conn else "unopened")
        return f"<Journal {str(self._path)!r} {state}>"

    @classmethod
    async def open_file(
        cls: type[_Store],
        path: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> _Store:
        """Open (or create) the SQLite journal at ``path`` (``Journal.open`` picks the store)."""
        journal = cls(path, create=create, readonly=readonly, busy_timeout=busy_timeout)
        await journal._open()
        return journal

    async def __aenter__(self: _Store) -> _Store:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the journal (idempotent). Every returned ``record_*`` call is already durable."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._writes.aclose()  # commits what is still queued
            if self._conn is not None:
                await anyio.to_thread.run_sync(self._close_sync)
        finally:
            self._writer.release()

    async def lock_writer(self, owner: str) -> None:
        """Take this journal's writer lock for ``owner`` (e.g. one batch run) until closed.

        The lock is held by the process: it is released by :meth:`aclose` and by the
        operating system when the process dies (``kill -9`` included), so a crashed run
        never blocks the next one.

        Raises:
            JournalLockedError: another process holds the lock (its owner is named).
        """
        if self._readonly:
            raise JournalError("the journal was opened read-only", path=str(self._path))
        await anyio.to_thread.run_sync(self._writer.acquire, owner)

    def _close_sync(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def _open(self) -> None:
        if self._closed:
            raise JournalError("the journal is closed", path=str(self._path))
        if self._conn is None:
            await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        with self._lock:
            if self._conn is None:
                self._conn = JournalFile(
                    self._path,
                    create=self._create,
                    readonly=self._readonly,
                    busy_timeout=self._busy_timeout,
                    clock=self._clock,
                ).connect()

    def _error(self, message: str) -> JournalError:
        return JournalError(f"{message}: {self._path}", path=str(self._path))

    def _closed_error(self) -> JournalError:
        return JournalError("the journal is closed", path=str(self._path))

    # -- running database work off the event loop ----------------------------------------

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise JournalError("the journal is closed", path=str(self._path))
        if self._conn is None:
            await self._open()

        def call() -> T:
            with self._lock:
                if self._conn is None:
                    raise JournalError("the journal is closed", path=str(self._path))
                try:
                    return func(self._conn)
                except sqlite3.DatabaseError as exc:
                    raise self._error(f"journal write or read failed ({exc})") from exc

        # Not cancellable on purpose: a cancelled caller still waits for its commit.
        return await anyio.to_thread.run_sync(call)

    async def _commit(self, key: str, change: Change) -> JournalEntry:
        """Apply ``change`` to the row of ``key`` in the next group commit; return the row.

        Returns (or raises) only after the transaction holding the write has ended; not
        cancellable, like every journal write.
        """
        if self._readonly:
            raise JournalError("the journal was opened read-only", path=str(self._path))
        if self._closed:
            raise self._closed_error()
        if self._conn is None:
            await self._open()
        pending = PendingWrite(key, change, asyncio.get_running_loop())
        self._writes.submit(pending)
        await self._writes.wait(pending)
        if pending.error is not None:
            raise pending.error
        assert pending.entry is not None  # noqa: S101 - set when no error
        return pending.entry

    def _commit_group(self, group: list[PendingWrite]) -> None:
        """Commit ``group`` in one transaction (in the writer thread); set every outcome."""
        try:
            with self._lock:
                if self._conn is None:
                    raise self._closed_error()
                try:
                    _commit_batch(self._conn, self._row_write, batch=group, error=self._error)
                except sqlite3.DatabaseError as exc:
                    raise self._error(f"journal write or read failed ({exc})") from exc
        except BaseException as exc:  # handed to every caller of the group, none recorded
            self._rows.clear()  # rolled back: what was remembered may not be on disk
            for pending in group:
                pending.entry, pending.error = None, exc
        for pending in group:
            if pending.entry is None and pending.error is None:  # pragma: no cover - defensive
                pending.error = self._error("the journal write was interrupted")

    def _row_write(self, conn: sqlite3.Connection, key: str, change: Change) -> JournalEntry:
        """Apply ``change`` to the row of ``key`` inside the group's transaction."""
        # First without a read: over the remembered row (a conditional update), or for a
        # key not remembered as a new row (an insert the key's UNIQUE constraint refuses
        # when the row exists); a new task id must be held by no other row. Either may
        # have decided on the wrong row: then read it and decide again, with reads.
        remembered = self._rows.get(key)
        row, known, head = (None, None, None) if remembered is None else remembered
        try:
            written = self._write_row(conn, key, row, known, change, fast=True, head=head)
        except Exception:
            if not conn.in_transaction:
                raise  # SQLite rolled the group back: nothing more may be written
            written = None  # decided on what may be stale: decide again on the row
        if written is not None:
            return written
        self._rows.pop(key, None)  # another process may have changed it: read it
        fresh = conn.execute(_SELECT_BY_KEY, (key,)).fetchone()
        entry = None if fresh is None else self._entry(fresh)
        written = self._write_row(conn, key, fresh, entry, change, fast=False)
        if written is None:  # pragma: no cover - the row was read in this transaction
            raise self._error(f"the journal entry {key!r} changed during its write")
        return written

    def _write_row(
        self,
        conn: sqlite3.Connection,
        key: str,
        row: tuple[Any, ...] | None,
        entry: JournalEntry | None,
        change: Change,
        *,
        fast: bool,
        head: Hash | None = None,
    ) -> JournalEntry | None:
        """Write ``change`` over ``row`` (``None``: a new row); ``None`` if the row moved.

        ``fast``: decided without reads (``change`` gets no connection), so a new task id is
        written only if no other row holds it (``None`` otherwise). Everything that may raise
        comes before the one statement that changes the row, so a write that raises has
        changed nothing (see the module docstring). ``head``: the checksum's remembered
        head for ``row`` (``None``: computed here).
        """
        updates = change(None if fast else conn, entry)
        if updates is None:
            assert entry is not None  # noqa: S101 - a new row is always written
            return entry
        values = list(_NEW_ROW if row is None else row[:-1])
        changed: dict[str, Any] = {}  # the stored values of the changed columns
        for name, value in updates.items():
            if value is not None and name in _REAL_COLUMNS:
                value = float(value)  # read back as REAL: the checksum must match
            values[_INDEX[name]] = changed[name] = value
        if head is None or not _IDENTITY.isdisjoint(updates):
            head = _checksum_head(values)
        new_row = (*values, _checksum_from(head, values))
        try:  # built here, so no checksum to verify; an update reads only what changed
            if entry is None or row is None:
                written = entry_from_row(new_row[:-1])
            else:
                written = entry_updated(entry, changed)
        except ValueError as exc:
            raise self._error(str(exc)) from exc
        task_id = updates.get("task_id")
        guard = fast and task_id is not None and (entry is None or task_id != entry.task_id)
        if row is None:
            if guard:  # pragma: no cover - no new row holds a task id yet
                return None
            conn.execute(_INSERT, new_row)
        else:
            params = (*values[4:12], *values[13:], new_row[-1], key, row[-1])
            if guard:
                cursor = conn.execute(_UPDATE_NEW_TASK, (*params, task_id, key))
            else:
                cursor = conn.execute(_UPDATE, params)
            if cursor.rowcount != 1:
                return None
        self._remember(key, new_row, written, head)
        return written

    def _remember(self, key: str, row: tuple[Any, ...], entry: JournalEntry, head: Hash) -> None:
        rows = self._rows
        rows.pop(key, None)
        if entry.state.value in _ENDED:
            return  # its last write: forget it (a later one reads the row)
        rows[key] = (row, entry, head)
        if len(rows) > _REMEMBERED:
            del rows[next(iter(rows))]

    def _load(self, conn: sqlite3.Connection, key: str) -> JournalEntry | None:
        row = conn.execute(_SELECT_BY_KEY, (key,)).fetchone()
        return None if row is None else self._entry(row)

    def _entry(self, row: tuple[Any, ...]) -> JournalEntry:
        key, checksum = row[0], row[-1]
        # SQLite has no page checksums: a damaged byte inside a row would read back as a
        # plausible but wrong value. The row checksum turns that into a clear error.
        if checksum != row_checksum(row[:-1]):
            raise self._error(f"the journal entry {key!r} is damaged (checksum mismatch)")
        try:
            return entry_from_row(row[:-1])
        except ValueError as exc:
            raise self._error(str(exc)) from exc


def _commit_batch(
    conn: sqlite3.Connection,
    write: Callable[[sqlite3.Connection, str, Change], JournalEntry],
    *,
    batch: list[PendingWrite],
    error: Callable[[str], JournalError],
) -> None:
    """Run every write of ``batch`` (``write`` with its key and change) in one transaction.

    A write that raises has changed nothing (its one changing statement is its last step,
    and SQLite undoes a failed statement alone) and keeps its error; the others commit.
    When SQLite rolled the whole transaction back, this raises for all. The outcomes are set
    only once the transaction committed (a failed commit raises for all).
    """
    outcomes: list[tuple[JournalEntry | None, BaseException | None]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for pending in batch:
            try:
                entry = write(conn, pending.key, pending.change)
            except sqlite3.DatabaseError as exc:
                if not conn.in_transaction:
                    raise  # SQLite rolled the group back: no write of it is recorded
                failure = error(f"journal write or read failed ({exc})")
                failure.__cause__ = exc
                outcomes.append((None, failure))
            except Exception as exc:
                if not conn.in_transaction:  # pragma: no cover - only a statement ends it
                    raise
                outcomes.append((None, exc))
            else:
                outcomes.append((entry, None))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    for pending, (written, refused) in zip(batch, outcomes, strict=True):
        pending.entry, pending.error = written, refused


def row_checksum(values: tuple[Any, ...]) -> str:
    """Return the checksum of a row's values (every column but the checksum)."""
    return hashlib.sha256(compact_json(list(values)).encode()).hexdigest()


def _checksum_head(values: list[Any] | tuple[Any, ...]) -> Hash:
    """The hash state of ``row_checksum`` after a row's identity columns (and their comma)."""
    head = compact_json(list(values[:_HEAD]))
    return hashlib.sha256(f"{head[:-1]},".encode())


def _checksum_from(head: Hash, values: list[Any] | tuple[Any, ...]) -> str:
    """``row_checksum(values)`` from the row's ``_checksum_head``: hashes only the rest.

    A JSON list is its items' JSON joined by commas, each item encoded alone, so the
    identity columns' part hashed once gives the same digest.
    """
    hasher = head.copy()
    hasher.update(compact_json(list(values[_HEAD:]))[1:].encode())
    return hasher.hexdigest()
