"""The journal shared by a fleet: the same records as the SQLite journal, in PostgreSQL.

Every ``record_*`` call is one transaction that has committed when it returns (a cancelled
caller still waits for it). The guarantees are the embedded journal's, fleet-wide:

- **claims**: ``record_intent`` inserts the job (``INSERT … ON CONFLICT DO NOTHING``) or
  re-claims it under a row lock, by the one rerun table: of N processes racing for one key,
  exactly one wins; the others get :class:`~vidgo_async.JobClaimedError`;
- **the fleet cap**: with ``max_in_flight`` a claim also takes a slot row in the same
  transaction (waiting while every slot is held) and the job's terminal record frees it, so
  the whole fleet never has more than ``max_in_flight`` jobs between intent and end;
- **leases**: each process renews one lease row (``renew_lease``); ``adopt_expired`` takes the
  in-flight jobs of processes whose lease ran out (to poll, never to resubmit: they keep their
  task ids, callback token hashes and slots) and records their in-doubt submits as ``unknown``;
- **wake-ups**: a terminal record sends ``NOTIFY vidgo_jobs`` with the job key; ``wait_ended``
  listens for it and re-reads the row on every wake-up and every ``fallback`` seconds, so a
  missed notification only delays a waiter.

The schema and its migrations are in ``_journal_pg_schema`` (a newer schema is refused), the
row shapes in ``_journal_pg_rows``, the lease and adoption SQL in ``_fleet_leases``. The
URL's password is never logged nor shown in messages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias, TypeVar

import anyio
import psycopg

from ._errors import JobClaimedError, JournalConflictError, JournalError
from ._fleet_leases import adopt_expired, release, renew_lease
from ._jobs import RerunAction, request_fingerprint
from ._journal_entry import (
    JournalEntry,
    JournalState,
    canonical_json,
    entry_from_row,
    task_json,
    terminal_record,
)
from ._journal_pg_rows import (
    SELECT_ALL,
    SELECT_BY_KEY,
    SELECT_BY_KEY_LOCKED,
    SELECT_BY_TASK,
    SELECT_BY_TOKEN,
    default_owner,
    first_line,
    redact_url,
)
from ._journal_pg_schema import PG_SCHEMA_VERSION, migrate
from ._journal_rules import (
    describe_unknown,
    downloads_apply,
    failure_applies,
    outcome_applies,
    submitted_applies,
    unknown_applies,
)
from ._models import Task

__all__ = ["PG_SCHEMA_VERSION", "PostgresJournal", "default_owner", "redact_url"]

T = TypeVar("T")
_Conn: TypeAlias = "psycopg.AsyncConnection[tuple[Any, ...]]"

_CHANNEL = "vidgo_jobs"


class PostgresJournal:
    """A journal in PostgreSQL, shared by every process of a fleet (see the module docs).

    Open it with ``await PostgresJournal.open(url)`` (or ``open_journal(url)``) and close it
    with ``aclose()``, or use ``async with PostgresJournal(url) as journal``.

    Args:
        url: ``postgresql://user@host/db`` (libpq form; ``?host=/socket/dir`` works).
        create: create the tables when the database has none.
        owner: this process's name in the fleet (default: host and pid); its lease row.
        max_in_flight: the fleet-wide cap: a claim waits for one of this many slot rows.
        lease: seconds a lease lasts after each ``renew_lease``.
        slot_poll: seconds between looks for a free slot (a freed slot also wakes waiters).
    """

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        owner: str | None = None,
        max_in_flight: int | None = None,
        lease: float = 30.0,
        slot_poll: float = 0.2,
        _clock: Callable[[], float] = time.time,
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1 (got {max_in_flight})")
        if lease <= 0:
            raise ValueError(f"lease must be positive seconds (got {lease})")
        self._url = url
        self._shown = redact_url(url)
        self._create = create
        self.owner = owner or default_owner()
        self.max_in_flight = max_in_flight
        self.lease = lease
        self._slot_poll = slot_poll
        self._clock = _clock
        self._conn: _Conn | None = None
        self._lock = anyio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._conn else "unopened")
        return f"<PostgresJournal {self._shown!r} owner={self.owner!r} {state}>"

    @property
    def path(self) -> str:
        """The journal's URL, without its password."""
        return self._shown

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        create: bool = True,
        owner: str | None = None,
        max_in_flight: int | None = None,
        lease: float = 30.0,
    ) -> PostgresJournal:
        """Connect, create or check the schema, and take this process's lease."""
        journal = cls(url, create=create, owner=owner, max_in_flight=max_in_flight, lease=lease)
        await journal._open()
        return journal

    async def __aenter__(self) -> PostgresJournal:
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
        """Give up this process's lease and disconnect (idempotent).

        Jobs still in flight become adoptable by the rest of the fleet at once.
        """
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                if not conn.broken:
                    await conn.execute("DELETE FROM vidgo_owners WHERE owner = %s", (self.owner,))
            except psycopg.Error:
                pass  # the lease then simply expires
            finally:
                await conn.close()

    # -- connection and schema -------------------------------------------------------------

    def _error(self, message: str) -> JournalError:
        return JournalError(f"{message}: {self._shown}", path=self._shown)

    async def _open(self) -> None:
        if self._closed:
            raise self._error("the journal is closed")
        if self._conn is not None:
            return
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            raise self._error(
                f"cannot connect to the PostgreSQL journal ({first_line(exc)}). HINT: check "
                "the URL, that the server runs and that the role may connect"
            ) from exc
        try:
            async with conn.transaction():
                await self._migrate(conn)
            await self._renew(conn)
            if self.max_in_flight is not None:
                await conn.execute(
                    "INSERT INTO vidgo_slots (pool, n) SELECT 'default', g "
                    "FROM generate_series(1, %s) AS g ON CONFLICT DO NOTHING",
                    (self.max_in_flight,),
                )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.close()
            raise
        self._conn = conn

    async def _migrate(self, conn: _Conn) -> None:
        problem = await migrate(conn, create=self._create)
        if problem is not None:
            raise self._error(problem)

    async def _connection(self) -> _Conn:
        if self._closed:
            raise self._error("the journal is closed")
        if self._conn is None:
            await self._open()
        assert self._conn is not None  # noqa: S101 - set by _open
        return self._conn

    async def session(self, work: Callable[[_Conn], Awaitable[T]]) -> T:
        """Run ``work(connection)`` alone on the journal's connection (for the fleet modules).

        A cancelled caller still waits for it; database errors become ``JournalError``.
        """
        return await self._session(work)

    async def _session(self, work: Callable[[_Conn], Awaitable[T]]) -> T:
        conn = await self._connection()
        async with self._lock:
            with anyio.CancelScope(shield=True):
                try:
                    result = await work(conn)
                except psycopg.errors.UniqueViolation as exc:
                    raise self._error(
                        f"refused: a task id belongs to one job only ({first_line(exc)})"
                    ) from exc
                except psycopg.Error as exc:
                    raise self._error(f"journal query failed ({first_line(exc)})") from exc
        return result

    # -- reading -----------------------------------------------------------------------------

    async def _fetch(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async def work(conn: _Conn) -> list[tuple[Any, ...]]:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

        return await self._session(work)

    async def get(self, key: str) -> JournalEntry | None:
        """Return the entry for ``key``, or ``None`` when the journal has never seen it."""
        rows = await self._fetch(SELECT_BY_KEY, (key,))
        return self._entry(rows[0]) if rows else None

    async def find_task(self, task_id: str) -> JournalEntry | None:
        """Return the entry holding ``task_id``, or ``None``."""
        rows = await self._fetch(SELECT_BY_TASK, (task_id,))
        return self._entry(rows[0]) if rows else None

    async def find_token(self, token_hash: str) -> JournalEntry | None:
        """Return the entry whose callback token hash is ``token_hash`` (any owner), or ``None``."""
        rows = await self._fetch(SELECT_BY_TOKEN, (token_hash,))
        return self._entry(rows[0]) if rows else None

    async def entries(self) -> list[JournalEntry]:
        """Return every entry, in the order their keys were first recorded."""
        return [self._entry(row) for row in await self._fetch(SELECT_ALL, ())]

    async def summary(self) -> dict[str, int]:
        """Return the number of jobs in each state (every state listed, zeros included)."""
        counts = {state.value: 0 for state in JournalState}
        for state, count in await self._fetch(
            "SELECT state, count(*) FROM vidgo_jobs GROUP BY state", ()
        ):
            counts[str(state)] = int(count)
        return counts

    async def slots_held(self) -> int:
        """How many fleet slots are held right now (jobs between intent and end)."""
        rows = await self._fetch("SELECT count(*) FROM vidgo_slots WHERE key IS NOT NULL", ())
        return int(rows[0][0])

    def check_same(self, entry: JournalEntry, given: str) -> None:
        """Raise ``JournalConflictError`` unless ``entry`` was recorded with fingerprint ``given``."""
        if entry.fingerprint != given:
            raise JournalConflictError(
                f"job {entry.key!r} is already in the journal {self._shown} with a different "
                f"request (model {entry.model!r}, state {entry.state.value}"
                + (f", task {entry.task_id}" if entry.task_id else "")
                + "). It was not submitted again. HINT: give the changed job a new id",
                key=entry.key,
                recorded=entry.fingerprint,
                given=given,
                path=self._shown,
            )

    # -- writing: one committed transaction per call ------------------------------------------

    async def _write(
        self,
        key: str,
        change: Callable[[_Conn, JournalEntry | None], Any],
    ) -> JournalEntry:
        async def work(conn: _Conn) -> JournalEntry:
            async with conn.transaction():
                cur = await conn.execute(SELECT_BY_KEY_LOCKED, (key,))
                row = await cur.fetchone()
                await change(conn, None if row is None else self._entry(row))
                cur = await conn.execute(SELECT_BY_KEY, (key,))
                after = await cur.fetchone()
            if after is None:
                raise self._error(f"no journal entry for key {key!r}")
            return self._entry(after)

        return await self._session(work)

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
        """Claim ``key`` for a submit about to be sent (exactly one process in the fleet wins).

        The rules are the SQLite journal's (``Journal.record_intent``). With ``max_in_flight``
        the claim also takes a fleet slot in the same transaction; while every slot is
        held it waits (cancellable: nothing is claimed then).

        Raises:
            JournalConflictError: the key is recorded with another fingerprint.
            JobClaimedError: the key is held by another submit or task.
            ValueError: the fingerprint does not match ``model`` and ``input``.
        """
        data = json.loads(input) if isinstance(input, str) else dict(input)
        if fingerprint != request_fingerprint(model, data):
            raise ValueError(
                f"fingerprint {fingerprint!r} does not match the model and input of job "
                f"{key!r}; compute it with request_fingerprint(model, input)"
            )
        input_json = canonical_json(data)

        async def change(conn: _Conn, entry: JournalEntry | None) -> None:
            now = self._clock()
            if entry is None:
                cur = await conn.execute(
                    "INSERT INTO vidgo_jobs (key, fingerprint, model, input_json, "
                    "callback_token, state, attempts, created_at, updated_at, owner) "
                    "VALUES (%s, %s, %s, %s, %s, 'submitting', 1, %s, %s, %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (key, fingerprint, model, input_json, callback_token, now, now,
                     self.owner),
                )  # fmt: skip
                if cur.rowcount == 0:  # another process inserted it first
                    raise self._claimed(key, "submitting", None)
            else:
                self.check_same(entry, fingerprint)
                action = entry.rerun
                if action is RerunAction.LEAVE and retry_in_doubt and entry.task_id is None:
                    action = RerunAction.RESUBMIT
                if action is not RerunAction.RESUBMIT:
                    raise self._claimed(key, entry.state.value, entry.task_id)
                await conn.execute(
                    "UPDATE vidgo_jobs SET state = 'submitting', callback_token = %s, "
                    "task_id = NULL, task_json = NULL, error_type = NULL, "
                    "error_message = NULL, files_json = '[]', attempts = attempts + 1, "
                    "updated_at = %s, submitted_at = NULL, finished_at = NULL, owner = %s "
                    "WHERE key = %s",
                    (callback_token, now, self.owner, key),
                )
            if self.max_in_flight is not None and not await self._take_slot(conn, key):
                raise _NoSlot  # rolls the claim back; wait for a slot and try again

        while True:
            try:
                return await self._write(key, change)
            except _NoSlot:
                pass
            await anyio.sleep(self._slot_poll)

    async def _take_slot(self, conn: _Conn, key: str) -> bool:
        cur = await conn.execute("SELECT 1 FROM vidgo_slots WHERE key = %s", (key,))
        if await cur.fetchone() is not None:
            return True  # re-claimed after a 429: it still holds its slot
        cur = await conn.execute(
            "UPDATE vidgo_slots SET key = %s, owner = %s WHERE (pool, n) = ("
            "SELECT pool, n FROM vidgo_slots WHERE pool = 'default' AND n <= %s "
            "AND key IS NULL ORDER BY n LIMIT 1 FOR UPDATE SKIP LOCKED)",
            (key, self.owner, self.max_in_flight),
        )
        return cur.rowcount == 1

    def _claimed(self, key: str, state: str, task_id: str | None) -> JobClaimedError:
        held = f" as task {task_id}" if task_id else ""
        return JobClaimedError(
            f"job {key!r} is already recorded{held} (state {state}) in the journal "
            f"{self._shown}; it was not submitted again. HINT: "
            + (
                "poll its task instead of submitting it again"
                if task_id
                else "another process of the fleet is submitting it; leave it to that process"
            ),
            key=key,
            state=state,
            task_id=task_id,
            path=self._shown,
        )

    async def record_submitted(self, key: str, task_id: str) -> JournalEntry:
        """Record the ``task_id`` for ``key``; a task id another job holds is refused."""
        now = self._clock()

        async def change(conn: _Conn, entry: JournalEntry | None) -> None:
            if not submitted_applies(key, entry, task_id, self._error):
                return  # it holds this task already
            await conn.execute(
                "UPDATE vidgo_jobs SET state = 'in_flight', task_id = %s, error_type = NULL, "
                "error_message = NULL, submitted_at = %s, updated_at = %s WHERE key = %s",
                (task_id, now, now, key),
            )

        return await self._write(key, change)

    async def record_unknown(self, key: str, error: BaseException | str) -> JournalEntry:
        """Record that the submit for ``key`` was sent but its outcome is unknown; frees its slot."""
        error_type, message = describe_unknown(error)
        now = self._clock()

        async def change(conn: _Conn, entry: JournalEntry | None) -> None:
            if not unknown_applies(key, entry, self._error):
                return
            await conn.execute(
                "UPDATE vidgo_jobs SET state = 'unknown', error_type = %s, error_message = %s, "
                "updated_at = %s WHERE key = %s",
                (error_type, message, now, key),
            )
            await self._ended(conn, key)

        return await self._write(key, change)

    async def record_failed(
        self, key: str, error_type: str, message: str, task: Task | Mapping[str, Any] | None = None
    ) -> JournalEntry:
        """Record that ``key`` failed; a ``finished`` job is never turned into a failed one."""
        recorded_task = task_json(task)
        now = self._clock()

        async def change(conn: _Conn, entry: JournalEntry | None) -> None:
            if not failure_applies(key, entry, self._error):
                return
            await conn.execute(
                "UPDATE vidgo_jobs SET state = 'failed', error_type = %s, error_message = %s, "
                "task_json = coalesce(%s, task_json), finished_at = %s, updated_at = %s "
                "WHERE key = %s",
                (error_type, message, recorded_task, now, now, key),
            )
            await self._ended(conn, key)

        return await self._write(key, change)

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
        """Record how the task of ``key`` ended (once: a ``finished`` job stays finished).

        Frees the job's fleet slot and wakes its waiters (``NOTIFY``).
        """
        record = terminal_record(state, task, files, error_type=error_type, message=message)
        state, task_id, files_json = record.state, record.task_id, record.files_json
        now = self._clock()

        async def change(conn: _Conn, entry: JournalEntry | None) -> None:
            if not outcome_applies(key, entry, state, task_id, self._error):
                return
            keep_files = files_json == "[]"
            await conn.execute(
                "UPDATE vidgo_jobs SET state = %s, task_id = coalesce(task_id, %s), "
                "task_json = coalesce(%s, task_json), "
                "files_json = CASE WHEN %s THEN files_json ELSE %s END, "
                "error_type = %s, error_message = %s, "
                "finished_at = CASE WHEN %s IN ('timeout', 'lost') THEN finished_at ELSE %s END, "
                "updated_at = %s WHERE key = %s",
                (state.value, task_id, record.task_json, keep_files, files_json,
                 record.error_type, record.message, state.value, now, now, key),
            )  # fmt: skip
            await self._ended(conn, key)

        return await self._write(key, change)

    async def _ended(self, conn: _Conn, key: str) -> None:
        await release(conn, key, _CHANNEL)

    async def record_download(self, key: str, *paths: str | Path) -> JournalEntry:
        """Record the local files downloaded for ``key`` (replacing any earlier list)."""
        files_json = json.dumps([str(path) for path in paths])
        now = self._clock()

        async def change(conn: _Conn, entry: JournalEntry | None) -> None:
            downloads_apply(key, entry, self._error)
            await conn.execute(
                "UPDATE vidgo_jobs SET files_json = %s, updated_at = %s WHERE key = %s",
                (files_json, now, key),
            )

        return await self._write(key, change)

    async def forget(self, key: str) -> bool:
        """Delete the entry for ``key`` (and free its slot); only for tools and tests."""

        async def work(conn: _Conn) -> bool:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE vidgo_slots SET key = NULL, owner = NULL WHERE key = %s", (key,)
                )
                cur = await conn.execute("DELETE FROM vidgo_jobs WHERE key = %s", (key,))
            return cur.rowcount > 0

        return await self._session(work)

    # -- uploads ---------------------------------------------------------------------------

    async def record_upload(
        self, sha256: str, file_url: str, *, expires_at: float, size: int, source: str
    ) -> None:
        """Remember that content ``sha256`` is at ``file_url`` until ``expires_at``."""
        await self._fetch_none(
            "INSERT INTO vidgo_uploads (sha256, file_url, expires_at, size, source, uploaded_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (sha256) DO UPDATE SET "
            "file_url = excluded.file_url, expires_at = excluded.expires_at, "
            "size = excluded.size, source = excluded.source, uploaded_at = excluded.uploaded_at",
            (sha256, file_url, expires_at, size, source, self._clock()),
        )

    async def find_upload(self, sha256: str) -> tuple[str, float] | None:
        """Return ``(file_url, expires_at)`` recorded for ``sha256``, else ``None``."""
        rows = await self._fetch(
            "SELECT file_url, expires_at FROM vidgo_uploads WHERE sha256 = %s", (sha256,)
        )
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    async def _fetch_none(self, query: str, params: tuple[Any, ...]) -> int:
        async def work(conn: _Conn) -> int:
            cur = await conn.execute(query, params)
            return cur.rowcount

        return await self._session(work)

    # -- leases and adoption (the SQL is in _fleet_leases) ------------------------------------

    async def _renew(self, conn: _Conn) -> None:
        await renew_lease(conn, self.owner, self.lease)

    async def renew_lease(self) -> None:
        """Extend this process's lease by ``lease`` seconds (database clock); call it often."""
        await self._session(self._renew)

    async def keep_lease(self, *, every: float | None = None) -> None:
        """Renew the lease every ``every`` seconds (default a third of it) until cancelled."""
        interval = self.lease / 3 if every is None else every
        while True:
            await self.renew_lease()
            await anyio.sleep(interval)

    async def adopt_expired(self) -> list[JournalEntry]:
        """Take over the jobs of processes whose lease expired; return those to poll or download.

        An expired owner's ``in_flight`` jobs become this process's (task id, callback
        token hash and fleet slot kept): poll them, download and report, never resubmit.
        So do its ``finished`` jobs with no downloaded files (download them).
        Its ``submitting`` jobs (a submit in flight when it died) are recorded ``unknown``:
        never resubmitted silently.
        """
        now = self._clock()

        async def work(conn: _Conn) -> list[tuple[Any, ...]]:
            return await adopt_expired(conn, self.owner, now)

        return [self._entry(row) for row in await self._session(work)]

    # -- waiting for an end (any process may record it) -----------------------------------------

    async def wait_ended(self, key: str, *, fallback: float = 5.0) -> JournalEntry:
        """Wait until ``key`` is recorded in a terminal state, by whichever process; return it.

        Woken by ``NOTIFY``; the row is re-read on (re)connect and every ``fallback`` seconds,
        so a missed notification only delays the answer.

        Raises:
            JournalError: the journal has never seen ``key``.
        """
        listener: _Conn | None = None
        try:
            while True:
                if listener is None or listener.closed:  # (re)connect, then re-read the row
                    listener = await self._listen()
                entry = await self.get(key)
                if entry is not None and entry.state.is_terminal:
                    return entry
                if entry is None and not await self._fetch(
                    "SELECT 1 FROM vidgo_queue WHERE key = %s", (key,)
                ):
                    raise self._error(
                        f"job {key!r} is neither in the journal nor queued; nothing to wait for"
                    )
                with anyio.move_on_after(fallback):
                    try:
                        async for note in listener.notifies():
                            if note.payload == key:
                                break
                    except psycopg.Error:  # the listening connection dropped: reconnect
                        with anyio.CancelScope(shield=True):
                            await listener.close()
        finally:
            if listener is not None:
                with anyio.CancelScope(shield=True):
                    await listener.close()

    async def _listen(self) -> _Conn:
        try:
            listener = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            raise self._error(f"cannot connect to listen ({first_line(exc)})") from exc
        try:
            await listener.execute(f"LISTEN {_CHANNEL}")
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await listener.close()
            if isinstance(exc, psycopg.Error):
                raise self._error(f"cannot listen ({first_line(exc)})") from exc
            raise
        return listener

    def _entry(self, row: tuple[Any, ...]) -> JournalEntry:
        try:
            return entry_from_row(row)
        except ValueError as exc:
            raise self._error(str(exc)) from exc


class _NoSlot(Exception):
    """Every fleet slot is held: the claim transaction is rolled back and retried."""
