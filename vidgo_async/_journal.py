"""The crash-safe job journal: one SQLite file that remembers every submit.

Vidgo has no idempotency key and no way to list tasks, so the task ids of a batch live
only where the client writes them down. The journal writes them down *before* they matter:

1. ``record_intent`` — the job key and the request fingerprint, committed before the submit
   is sent (a crash after this point leaves the job ``submitting``: in doubt, never resent
   silently);
2. ``record_submitted`` — the ``task_id``, committed before the job counts as in flight;
3. ``record_terminal`` / ``record_failed`` / ``record_unknown`` — how it ended (``lost``:
   the task id is kept, its status could no longer be read);
4. ``record_download`` — where its files were written.

Claims: ``record_intent`` is an atomic conditional write (``BEGIN IMMEDIATE``): it refuses a
key whose recorded state a rerun must not submit again (``JobState.rerun``), so two
processes sharing a journal never both send one job's submit; the loser gets
:class:`~vidgo_async.JobClaimedError`. A whole run can also take the journal's writer lock
(:meth:`Journal.lock_writer`), which is released when the journal is closed or the process dies.

Durability: the file is in WAL mode with ``synchronous=FULL``, so every ``record_*`` call has
reached the disk when it returns. The row writes queued in one event-loop turn share one
transaction (group commit: one disk sync for them all); each caller returns only after it
committed. Several processes on one machine may share one journal:
writes use ``BEGIN IMMEDIATE`` and wait up to ``busy_timeout`` for each other.

Never blocking the event loop: every database call runs off the event loop on the journal's
single connection, guarded by a lock: reads in a worker thread (``anyio.to_thread.run_sync``),
row writes in the journal's own writer thread (``_journal_writer``). A cancelled caller still
waits for its write to finish, so a write is never half done.

Damage: SQLite's WAL checksums drop a torn tail (a commit cut short by a crash, or garbage
appended to the ``-wal`` file), and the journal then opens with every commit before it
intact. Damage that SQLite cannot recover from (a truncated or overwritten database page, a
file that is not a journal) raises :class:`~vidgo_async.JournalError` on open, and the file
is left exactly as it was, for you to inspect or move aside.

The journal never holds the API key: only job keys, models, inputs, task ids and outcomes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._errors import (
    JobClaimedError,
    JournalConflictError,
    JournalError,
)
from ._jobs import RerunAction
from ._journal_entry import (
    CanonicalInput,
    JournalEntry,
    JournalState,
    RecordedTask,
    TerminalRecord,
    canonical_json,
    fingerprint,
    fingerprint_of_json,
    task_json,
    terminal_record,
)
from ._journal_file import (
    APPLICATION_ID,
    DEFAULT_BUSY_TIMEOUT,
    JOURNAL_SCHEMA_VERSION,
)
from ._journal_rules import (
    describe_unknown,
    downloads_apply,
    failure_applies,
    outcome_applies,
    submitted_applies,
    unknown_applies,
)
from ._journal_store import JournalStore
from ._models import Task

if TYPE_CHECKING:
    from ._journal_api import JournalLike

__all__ = [
    "APPLICATION_ID",
    "JOURNAL_SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "JournalState",
    "canonical_json",
    "fingerprint",
    "is_postgres_url",
]

logger = logging.getLogger("vidgo_async")

T = TypeVar("T")
_J = TypeVar("_J", bound="Journal")

_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL journal (``postgresql://…``) rather than a file."""
    return isinstance(target, str) and target.lower().startswith(_PG_SCHEMES)


# Literal statements (no string building); the column order is JournalStore._entry's.
_SELECT_BY_TASK = (
    "SELECT key, fingerprint, model, input_json, state, task_id, task_json, error_type, "
    "error_message, files_json, attempts, callback_token, created_at, updated_at, "
    "submitted_at, finished_at, checksum FROM jobs WHERE task_id = ? ORDER BY seq LIMIT 1"
)
_SELECT_ALL = (
    "SELECT key, fingerprint, model, input_json, state, task_id, task_json, error_type, "
    "error_message, files_json, attempts, callback_token, created_at, updated_at, "
    "submitted_at, finished_at, checksum FROM jobs ORDER BY seq"
)
_SELECT_SERVER = "SELECT value FROM vidgo_journal WHERE name = 'server'"


def _other_server(conn: sqlite3.Connection, server: str) -> str | None:
    """The server recorded for the journal's jobs when it is not ``server``, else ``None``."""
    row = conn.execute(_SELECT_SERVER).fetchone()
    if row is None or row[0] == server:
        return None
    held = conn.execute("SELECT 1 FROM jobs LIMIT 1").fetchone()
    return None if held is None else str(row[0])


class Journal(JournalStore):
    """A crash-safe journal of generation jobs in one SQLite file.

    Use it as an async context manager, or ``await Journal.open(path)`` and ``aclose()``::

        async with Journal("out/journal.sqlite") as journal:
            entry = await journal.get("clip-7")

    Args:
        path: the journal file; created (with its parent directories) when missing,
            unless ``create`` is false.
        create: create a missing journal; when false a missing file raises ``JournalError``.
        readonly: open without ever writing (for inspection tools).
        busy_timeout: seconds to wait for another process holding the write lock.

    Raises (on open):
        JournalError: the file is not a vidgo-async journal, is damaged, or was written by
            a newer version. The file is not modified.
    """

    # -- opening ----------------------------------------------------------------------------

    @overload
    @classmethod
    async def open(
        cls: type[_J],
        target: Path,
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout: float | None = None,
    ) -> _J: ...

    @overload
    @classmethod
    async def open(
        cls,
        target: str,
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout: float | None = None,
        owner: str | None = None,
        max_in_flight: int | None = None,
    ) -> JournalLike: ...

    @overload
    @classmethod
    async def open(
        cls,
        target: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout: float | None = None,
        owner: str | None = None,
        max_in_flight: int | None = None,
    ) -> JournalLike: ...

    @classmethod
    async def open(
        cls,
        target: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout: float | None = None,
        owner: str | None = None,
        max_in_flight: int | None = None,
    ) -> JournalLike:
        """Open the journal at ``target``: a SQLite file path or a ``postgresql://`` URL.

        A :class:`~pathlib.Path` always opens this SQLite journal (typed as ``Journal``). A
        string opens the PostgreSQL journal shared by a fleet when it is a ``postgresql://``
        (or ``postgres://``) URL, which needs the ``vidgo-async[postgres]`` extra, and the
        SQLite file it names otherwise; so a string is typed as :class:`JournalLike`, the
        interface both provide. Close the journal with ``aclose()``.

        Args:
            target: the journal file, or ``postgresql://user@host/db``.
            create: create a missing journal (the SQLite file, or the PostgreSQL tables).
            readonly: SQLite only: open without ever writing (PostgreSQL relies on the
                role's grants).
            busy_timeout: SQLite only: seconds to wait for another process's write lock.
            owner: PostgreSQL only: this process's name in the fleet (default: host, pid).
            max_in_flight: PostgreSQL only: the fleet-wide cap of jobs holding a submit slot.

        Raises:
            JournalError: the journal cannot be opened (damaged, newer schema, unreachable).
            ValueError: an option of the other store given (e.g. ``max_in_flight`` for a path).
        """
        if is_postgres_url(target):
            if busy_timeout is not None:
                raise ValueError(
                    "busy_timeout is a SQLite option: leave it out for a postgresql:// journal"
                )
            from ._journal_pg import PostgresJournal  # lazy: psycopg is an optional extra

            return await PostgresJournal.open(
                str(target), create=create, owner=owner, max_in_flight=max_in_flight
            )
        if owner is not None or max_in_flight is not None:
            raise ValueError(
                "owner and max_in_flight are fleet options: they need a postgresql:// journal, "
                f"not the SQLite file {str(target)!r}"
            )
        timeout = DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        return await cls.open_file(target, create=create, readonly=readonly, busy_timeout=timeout)

    # -- reading ----------------------------------------------------------------------------

    async def get(self, key: str) -> JournalEntry | None:
        """Return the entry for ``key``, or ``None`` when the journal has never seen it."""
        return await self._run(lambda conn: self._load(conn, key))

    async def find_task(self, task_id: str) -> JournalEntry | None:
        """Return the entry holding ``task_id``, or ``None``."""

        def query(conn: sqlite3.Connection) -> JournalEntry | None:
            row = conn.execute(_SELECT_BY_TASK, (task_id,)).fetchone()
            return None if row is None else self._entry(row)

        return await self._run(query)

    async def entries(self) -> list[JournalEntry]:
        """Return every entry, in the order their keys were first recorded."""

        def query(conn: sqlite3.Connection) -> list[JournalEntry]:
            rows = conn.execute(_SELECT_ALL).fetchall()
            return [self._entry(row) for row in rows]

        return await self._run(query)

    async def summary(self) -> dict[str, int]:
        """Return the number of jobs in each state (every state listed, zeros included)."""

        def query(conn: sqlite3.Connection) -> dict[str, int]:
            counts = {state.value: 0 for state in JournalState}
            for state, count in conn.execute("SELECT state, count(*) FROM jobs GROUP BY state"):
                counts[str(state)] = count
            return counts

        return await self._run(query)

    async def check_fingerprint(self, key: str, fingerprint: str) -> JournalEntry | None:
        """Return the entry for ``key`` if it was recorded for the same request.

        Returns ``None`` when the key is new.

        Raises:
            JournalConflictError: the key is recorded with a different request fingerprint
                (the input changed under the same id).
        """
        entry = await self.get(key)
        if entry is not None:
            self.check_same(entry, fingerprint)
        return entry

    def check_same(self, entry: JournalEntry, given: str) -> None:
        """Raise ``JournalConflictError`` unless ``entry`` was recorded with fingerprint ``given``."""
        if entry.fingerprint != given:
            raise JournalConflictError(
                f"job {entry.key!r} is already in the journal {self._path} with a different "
                f"request (model {entry.model!r}, state {entry.state.value}"
                + (f", task {entry.task_id}" if entry.task_id else "")
                + "). It was not submitted again. HINT: give the changed job a new id, or start "
                "a new journal (`--fresh`) if you really mean to pay for it again",
                key=entry.key,
                recorded=entry.fingerprint,
                given=given,
                path=str(self._path),
            )

    # -- writing (each call is durable when it returns) -----------------------------------------

    async def record_intent(
        self,
        key: str,
        fingerprint: str,
        model: str,
        input: Mapping[str, Any] | str,
        callback_token: str | None = None,
        *,
        retry_in_doubt: bool = False,
    ) -> JournalEntry:
        """Claim ``key`` for a submit about to be sent; call it before sending.

        An atomic conditional write: ``input`` is the input mapping as it will be sent (or
        its JSON). A new key starts in ``submitting`` with ``attempts == 1``. A recorded key
        is claimed again only when its state's rerun action is ``resubmit`` (``failed``:
        rejected, or the API said the task failed); ``unknown`` and ``submitting`` only with
        ``retry_in_doubt`` (the user accepts paying twice); a key holding a task never.

        Raises:
            JournalConflictError: the key is recorded with another fingerprint.
            JobClaimedError: the key is held by another submit or task (another process,
                or an earlier run): poll its task instead of submitting again.
            ValueError: the fingerprint does not match ``model`` and ``input``.
        """
        # The canonical JSON once: the fingerprint is over it (``request_fingerprint``).
        if isinstance(input, CanonicalInput):
            input_json = input.json  # encoded by the caller (the recorder) already
            given = input.fingerprint(model)  # and hashed by it already (same value)
        else:
            data = json.loads(input) if isinstance(input, str) else dict(input)
            input_json = canonical_json(data)
            given = fingerprint_of_json(model, input_json)
        if fingerprint != given:
            raise ValueError(
                f"fingerprint {fingerprint!r} does not match the model and input of job "
                f"{key!r}; compute it with request_fingerprint(model, input)"
            )
        # A partial, not a closure: a few objects for the collector, not one cell per name
        # (a write waits for its group's commit, so it outlives young collections).
        change = partial(
            self._intent_change, key, fingerprint, model, input_json, callback_token,
            self._clock(), retry_in_doubt,
        )  # fmt: skip
        return await self._commit(key, change)

    def _intent_change(
        self,
        key: str,
        fingerprint: str,
        model: str,
        input_json: str,
        callback_token: str | None,
        now: float,
        retry_in_doubt: bool,
        conn: sqlite3.Connection | None,
        entry: JournalEntry | None,
    ) -> dict[str, Any]:
        """:meth:`record_intent`'s write over the row as stored (``entry``; ``None``: none)."""
        if entry is None:
            return {
                "key": key, "fingerprint": fingerprint, "model": model,
                "input_json": input_json, "callback_token": callback_token,
                "state": JournalState.SUBMITTING.value, "attempts": 1,
                "created_at": now, "updated_at": now,
            }  # fmt: skip
        self.check_same(entry, fingerprint)
        action = entry.rerun
        if action is RerunAction.LEAVE and retry_in_doubt and entry.task_id is None:
            action = RerunAction.RESUBMIT
        if action is not RerunAction.RESUBMIT:
            held = f" as task {entry.task_id}" if entry.task_id else ""
            raise JobClaimedError(
                f"job {key!r} is already recorded{held} (state {entry.state.value}) in the "
                f"journal {self._path}; it was not submitted again. HINT: "
                + (
                    "poll its task (a rerun does) instead of submitting it again"
                    if entry.task_id
                    else "another run may be submitting it; rerun once it has ended"
                ),
                key=key,
                state=entry.state.value,
                task_id=entry.task_id,
                path=str(self._path),
            )
        return {
            "state": JournalState.SUBMITTING.value, "callback_token": callback_token,
            "task_id": None, "task_json": None, "error_type": None, "error_message": None,
            "files_json": "[]", "attempts": entry.attempts + 1, "updated_at": now,
            "submitted_at": None, "finished_at": None,
        }  # fmt: skip

    async def record_submitted(self, key: str, task_id: str) -> JournalEntry:
        """Record the ``task_id`` the API gave for ``key``; call it before counting it in flight.

        Recording the same task id again does nothing (duplicates collapse). One task
        belongs to one job: a task id another key holds is refused (e.g. a leaked callback
        token naming someone else's task), so two rows never share one task and video.

        Raises:
            JournalError: no intent was recorded, the job already holds another task id, or
                another job holds this one.
        """
        change = partial(self._submitted_change, key, task_id, self._clock())
        return await self._commit(key, change)

    def _submitted_change(
        self,
        key: str,
        task_id: str,
        now: float,
        conn: sqlite3.Connection | None,
        entry: JournalEntry | None,
    ) -> dict[str, Any] | None:
        """:meth:`record_submitted`'s write over the row as stored."""
        if not submitted_applies(key, entry, task_id, self._error):
            return None  # it holds this task already
        # Without a connection (the read-free attempt) the store writes the task id only
        # if no other row holds it, and otherwise asks again with one.
        holder = (
            None
            if conn is None
            else conn.execute(
                "SELECT key FROM jobs WHERE task_id = ? AND key != ? LIMIT 1", (task_id, key)
            ).fetchone()
        )
        if holder is not None:
            raise self._error(
                f"task {task_id} already belongs to job {holder[0]!r}; refusing to record "
                f"it for job {key!r} too"
            )
        return {
            "state": JournalState.IN_FLIGHT.value, "task_id": task_id, "error_type": None,
            "error_message": None, "submitted_at": now, "updated_at": now,
        }  # fmt: skip

    async def record_unknown(self, key: str, error: BaseException | str) -> JournalEntry:
        """Record that the submit for ``key`` was sent but its outcome is unknown.

        Does nothing when the job already has a task id (a late, stale report).
        """
        error_type, message = describe_unknown(error)
        now = self._clock()

        def change(
            conn: sqlite3.Connection | None, entry: JournalEntry | None
        ) -> dict[str, Any] | None:
            if not unknown_applies(key, entry, self._error):
                return None
            return {
                "state": JournalState.UNKNOWN.value, "error_type": error_type,
                "error_message": message, "updated_at": now,
            }  # fmt: skip

        return await self._commit(key, change)

    async def record_failed(
        self, key: str, error_type: str, message: str, task: Task | Mapping[str, Any] | None = None
    ) -> JournalEntry:
        """Record that ``key`` failed: rejected before a task existed, or its task failed.

        A ``finished`` job is never turned into a failed one.
        """
        recorded_task = task_json(task)
        now = self._clock()

        def change(
            conn: sqlite3.Connection | None, entry: JournalEntry | None
        ) -> dict[str, Any] | None:
            if not failure_applies(key, entry, self._error):
                return None
            updates: dict[str, Any] = {
                "state": JournalState.FAILED.value, "error_type": error_type,
                "error_message": message, "finished_at": now, "updated_at": now,
            }  # fmt: skip
            if recorded_task is not None:
                updates["task_json"] = recorded_task
            return updates

        return await self._commit(key, change)

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
        """Record how the task of ``key`` ended: ``finished``, ``failed``, ``timeout`` or ``lost``.

        ``task`` is the last task seen; ``files`` the local paths already downloaded, if
        any. A ``finished`` job never goes back to another state; recording the same
        outcome twice only refreshes it (duplicates collapse).
        """
        record = terminal_record(state, task, files, error_type=error_type, message=message)
        # The task's JSON as recorded; carrying the task itself when it reads back as
        # itself, so the writer does not read the JSON back to build the entry.
        recorded_task = record.task_json
        if recorded_task is not None and isinstance(task, Task):
            recorded_task = RecordedTask.of(task, recorded_task)
        change = partial(self._terminal_change, key, record, recorded_task, self._clock())
        return await self._commit(key, change)

    def _terminal_change(
        self,
        key: str,
        record: TerminalRecord,
        recorded_task: str | RecordedTask | None,
        now: float,
        conn: sqlite3.Connection | None,
        entry: JournalEntry | None,
    ) -> dict[str, Any] | None:
        """:meth:`record_terminal`'s write over the row as stored."""
        state, task_id, files_json = record.state, record.task_id, record.files_json
        if not outcome_applies(key, entry, state, task_id, self._error):
            return None
        assert entry is not None  # noqa: S101 - the rule refuses a missing row
        updates: dict[str, Any] = {
            "state": state.value, "error_type": record.error_type,
            "error_message": record.message, "updated_at": now,
        }  # fmt: skip
        if entry.task_id is None and task_id is not None:
            updates["task_id"] = task_id
        if recorded_task is not None:
            updates["task_json"] = recorded_task
        if files_json != "[]":
            updates["files_json"] = files_json
        if state not in (JournalState.TIMEOUT, JournalState.LOST):
            updates["finished_at"] = now
        return updates

    async def record_download(self, key: str, *paths: str | Path) -> JournalEntry:
        """Record the local files downloaded for ``key`` (replacing any earlier list)."""
        files_json = json.dumps([str(path) for path in paths])
        now = self._clock()

        def change(conn: sqlite3.Connection | None, entry: JournalEntry | None) -> dict[str, Any]:
            downloads_apply(key, entry, self._error)
            return {"files_json": files_json, "updated_at": now}

        return await self._commit(key, change)

    async def forget(self, key: str) -> bool:
        """Delete the entry for ``key``; return whether there was one.

        Only for tools and tests: a forgotten job with a task id can be paid for twice.
        """
        if self._readonly:
            raise JournalError("the journal was opened read-only", path=str(self._path))

        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM jobs WHERE key = ?", (key,)).rowcount > 0

        return await self._run(delete)

    # -- the server the tasks live on -----------------------------------------------------

    async def bind_server(self, server: str) -> None:
        """Record the API server this journal's tasks live on, or check that it is ``server``.

        A task id means something only to the server that created it: polled on another one
        it reads as lost, and a task taken for lost may be paid for again. A journal records
        ``server`` (any text naming it, e.g. the base URL) at its first bind; once it holds a
        job, later runs must name the same server (while it holds none, the record follows
        the latest bind). A read-only journal is checked, never written.

        Raises:
            JournalError: the journal holds jobs of another server (nothing is changed).
        """
        readonly = self._readonly

        def bind(conn: sqlite3.Connection) -> str | None:
            if readonly:
                return _other_server(conn, server)
            conn.execute("BEGIN IMMEDIATE")
            try:
                other = _other_server(conn, server)
                if other is None:
                    conn.execute(
                        "INSERT OR REPLACE INTO vidgo_journal (name, value) VALUES ('server', ?)",
                        (server,),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return other

        other = await self._run(bind)
        if other is not None:
            raise JournalError(
                f"its tasks were created on {other}, and this run uses {server}: a task id "
                "means nothing to another server, so they would be taken for lost",
                path=str(self._path),
            )

    # -- uploads (schema 2): files a batch uploaded, by content hash ----------------------

    async def record_upload(
        self, sha256: str, file_url: str, *, expires_at: float, size: int, source: str
    ) -> None:
        """Remember that the file with content hash ``sha256`` is at ``file_url`` until ``expires_at``.

        ``expires_at`` is a Unix time; a later upload of the same content replaces the record.
        """
        if self._readonly:
            raise JournalError("the journal was opened read-only", path=str(self._path))
        now = self._clock()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO uploads "
                    "(sha256, file_url, expires_at, size, source, uploaded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (sha256, file_url, expires_at, size, source, now),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(write)

    async def find_upload(self, sha256: str) -> tuple[str, float] | None:
        """Return ``(file_url, expires_at)`` recorded for content hash ``sha256``, else ``None``.

        A read-only journal of schema 1 has no uploads table: nothing is recorded there.
        """

        def query(conn: sqlite3.Connection) -> tuple[str, float] | None:
            try:
                row = conn.execute(
                    "SELECT file_url, expires_at FROM uploads WHERE sha256 = ?", (sha256,)
                ).fetchone()
            except sqlite3.OperationalError:
                return None  # an older journal opened read-only (not migrated)
            return None if row is None else (str(row[0]), float(row[1]))

        return await self._run(query)
