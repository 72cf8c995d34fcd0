"""The journal's SQLite plumbing: open, close, lock, and database work off the event loop.

Every database call runs in a worker thread (``anyio.to_thread.run_sync``) on the journal's
single connection, guarded by a lock; a cancelled caller still waits for its write to
finish, so a write is never half done.

Group commit: the row writes queued in one event-loop turn go in one ``BEGIN IMMEDIATE``
transaction (one disk sync for all of them), each inside its own savepoint, so a write that
is refused (a claim conflict) is rolled back alone and raises for its caller only. Every
caller wakes only after the transaction holding its write has committed: the durability of
each ``record_*`` call is unchanged.

No re-select: the store remembers the rows it wrote (until the job ends). A write computes
the new row and its checksum from the remembered one and stores it with one conditional
``UPDATE ... WHERE key = ? AND checksum = ?``; when another process changed the row in the
meantime the update matches nothing, and the write reads the row (inside its ``BEGIN
IMMEDIATE`` transaction, so nobody else can change it now) and applies its change again.
The checksum turns a damaged byte into a clear error instead of a plausible wrong value.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._errors import JournalError
from ._journal_entry import JournalEntry, entry_from_row
from ._journal_file import DEFAULT_BUSY_TIMEOUT, JournalFile
from ._journal_lock import WriterLock, lock_file_for

__all__ = ["JournalStore", "row_checksum"]

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
# Rows remembered at most (the oldest are forgotten first; a forgotten row is read again).
_REMEMBERED = 65_536

# A write's change: the columns to set (``None``: nothing to change), given the current entry.
Change = Callable[[sqlite3.Connection, JournalEntry | None], Mapping[str, Any] | None]


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
        self._queued: list[_Pending] = []
        self._flushing = False
        # key -> (row with its checksum, entry) as last committed by this store.
        self._rows: dict[str, tuple[tuple[Any, ...], JournalEntry]] = {}

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
            raise JournalError("the journal is closed", path=str(self._path))
        pending = _Pending(self._row_write(key, change))
        self._queued.append(pending)
        with anyio.CancelScope(shield=True):
            if not self._flushing:
                await self._flush()
            else:
                await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.entry is not None  # noqa: S101 - set when no error
        return pending.entry

    async def _flush(self) -> None:
        """Commit every queued write, batch by batch, until none is left (one flusher)."""
        self._flushing = True
        try:
            # Let the other tasks of this loop turn queue their writes into this batch.
            await anyio.lowlevel.checkpoint()
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    await self._run(
                        functools.partial(_commit_batch, batch=batch, error=self._error)
                    )
                except BaseException as exc:
                    self._rows.clear()  # rolled back: what was remembered may not be on disk
                    for pending in batch:
                        if pending.entry is None and pending.error is None:
                            pending.error = exc
                    if not isinstance(exc, Exception):
                        raise
                finally:
                    for pending in batch:
                        if pending.entry is None and pending.error is None:
                            pending.error = self._error("the journal write was interrupted")
                        pending.done.set()
        finally:
            self._flushing = False

    def _row_write(self, key: str, change: Change) -> Callable[[sqlite3.Connection], JournalEntry]:
        def write(conn: sqlite3.Connection) -> JournalEntry:
            remembered = self._rows.get(key)
            if remembered is not None:
                row, known = remembered
                try:
                    written = self._write_row(conn, key, row, known, change)
                except Exception:
                    written = None  # decided on what may be stale: decide again on the row
                if written is not None:
                    return written
                self._rows.pop(key, None)  # another process may have changed it: read it
            fresh = conn.execute(_SELECT_BY_KEY, (key,)).fetchone()
            entry = None if fresh is None else self._entry(fresh)
            written = self._write_row(conn, key, fresh, entry, change)
            if written is None:  # pragma: no cover - the row was read in this transaction
                raise self._error(f"the journal entry {key!r} changed during its write")
            return written

        return write

    def _write_row(
        self,
        conn: sqlite3.Connection,
        key: str,
        row: tuple[Any, ...] | None,
        entry: JournalEntry | None,
        change: Change,
    ) -> JournalEntry | None:
        """Write ``change`` over ``row`` (``None``: a new row); ``None`` if the row moved."""
        updates = change(conn, entry)
        if updates is None:
            assert entry is not None  # noqa: S101 - a new row is always written
            return entry
        values = list(_NEW_ROW if row is None else row[:-1])
        for name, value in updates.items():
            if value is not None and name in _REAL_COLUMNS:
                value = float(value)  # read back as REAL: the checksum must match
            values[_INDEX[name]] = value
        checksum = row_checksum(tuple(values))
        if row is None:
            conn.execute(_INSERT, (*values, checksum))
        else:
            cursor = conn.execute(_UPDATE, (*values[4:12], *values[13:], checksum, key, row[-1]))
            if cursor.rowcount != 1:
                return None
        new_row = (*values, checksum)
        written = self._entry(new_row)
        self._remember(key, new_row, written)
        return written

    def _remember(self, key: str, row: tuple[Any, ...], entry: JournalEntry) -> None:
        rows = self._rows
        rows.pop(key, None)
        if entry.state.value in _ENDED:
            return  # its last write: forget it (a later one reads the row)
        rows[key] = (row, entry)
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

    def _missing(self, key: str, action: str) -> JournalError:
        return self._error(f"cannot {action} for job {key!r}: no intent was recorded for it")


class _Pending:
    """One queued row write and, once its transaction ended, its outcome."""

    __slots__ = ("done", "entry", "error", "write")

    def __init__(self, write: Callable[[sqlite3.Connection], JournalEntry]) -> None:
        self.write = write
        self.done = anyio.Event()
        self.entry: JournalEntry | None = None
        self.error: BaseException | None = None


def _commit_batch(
    conn: sqlite3.Connection, *, batch: list[_Pending], error: Callable[[str], JournalError]
) -> None:
    """Run every write of ``batch`` in one transaction, each in its own savepoint.

    A write that raises is rolled back alone and keeps its error; the others commit. The
    outcomes are set only once the transaction committed (a failed commit raises for all).
    """
    outcomes: list[tuple[JournalEntry | None, BaseException | None]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for pending in batch:
            conn.execute("SAVEPOINT row_write")
            try:
                entry = pending.write(conn)
            except sqlite3.DatabaseError as exc:
                conn.execute("ROLLBACK TO row_write")
                conn.execute("RELEASE row_write")
                failure = error(f"journal write or read failed ({exc})")
                failure.__cause__ = exc
                outcomes.append((None, failure))
            except Exception as exc:
                conn.execute("ROLLBACK TO row_write")
                conn.execute("RELEASE row_write")
                outcomes.append((None, exc))
            else:
                conn.execute("RELEASE row_write")
                outcomes.append((entry, None))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for pending, (written, refused) in zip(batch, outcomes, strict=True):
        pending.entry, pending.error = written, refused


def row_checksum(values: tuple[Any, ...]) -> str:
    """Return the checksum of a row's values (every column but the checksum)."""
    return hashlib.sha256(json.dumps(list(values), separators=(",", ":")).encode()).hexdigest()
