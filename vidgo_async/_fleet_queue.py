"""Handing work to a worker fleet: enqueue a job in the shared journal, await its outcome.

A web app (any replica) calls :meth:`FleetQueue.enqueue` and then :meth:`FleetQueue.wait`;
``vidgo-async worker --journal postgresql://…`` processes (any number, anywhere) take queued
jobs and submit each one exactly once: a worker offers a queued job to its orchestrator,
whose journal claim (``record_intent``) only one process can win, under the fleet-wide
``max_in_flight``. The job's outcome (its task, with the video URLs) is in the journal; a
waiter is woken by ``NOTIFY`` and re-reads on a fallback timer.

Enqueueing is idempotent per key: the same key with the same request is accepted again (and
changes nothing); with a different request it raises ``JournalConflictError``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import JournalConflictError
from ._jobs import request_fingerprint
from ._journal_entry import JournalEntry, canonical_json
from ._validation import validate_input

if TYPE_CHECKING:
    from ._journal_pg import PostgresJournal

__all__ = ["FleetQueue", "QueuedJob"]

_CHANNEL = "vidgo_queue"


@attrs.frozen(kw_only=True)
class QueuedJob:
    """A job waiting for a worker: its key, request and callback base URL (if any)."""

    key: str
    model: str
    input: dict[str, Any]
    callback_base: str | None = None


class FleetQueue:
    """The queue of jobs a worker fleet serves, in a :class:`PostgresJournal`.

    Example (a web request handler)::

        queue = FleetQueue(journal)
        await queue.enqueue("order-42", "seedance-2", {"prompt": "..."})
        entry = await queue.wait("order-42")      # woken when any worker records the end
        urls = entry.task.file_urls if entry.task else []
    """

    def __init__(self, journal: PostgresJournal) -> None:
        self._journal = journal

    async def enqueue(
        self,
        key: str,
        model: str,
        input: Mapping[str, Any],
        *,
        callback_base: str | None = None,
    ) -> bool:
        """Queue a job for the workers; return whether it was new.

        ``callback_base`` is the public URL of the fleet's callback receivers (every replica
        runs a ``FleetCallbackReceiver``): the worker makes a token per job and appends it.

        Raises:
            InputValidationError: the input breaks a documented rule (nothing was queued).
            JournalConflictError: the key is queued or journaled with another request.
        """
        prepared = validate_input(model, input, allow_unknown_models=True)
        data = prepared
        fingerprint = request_fingerprint(model, data)
        input_json = canonical_json(data)
        now = time.time()

        async def work(conn: Any) -> tuple[bool, str | None]:
            async with conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO vidgo_queue (key, fingerprint, model, input_json, "
                    "callback_base, enqueued_at) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (key, fingerprint, model, input_json, callback_base, now),
                )
                inserted = cur.rowcount == 1
                cur = await conn.execute(
                    "SELECT fingerprint FROM vidgo_queue WHERE key = %s "
                    "UNION ALL SELECT fingerprint FROM vidgo_jobs WHERE key = %s",
                    (key, key),
                )
                recorded = [str(row[0]) for row in await cur.fetchall()]
                other = next((fp for fp in recorded if fp != fingerprint), None)
                if other is None and inserted:
                    await conn.execute("SELECT pg_notify(%s, %s)", (_CHANNEL, key))
                return inserted, other

        inserted, other = await self._journal.session(work)
        if other is not None:
            raise JournalConflictError(
                f"job {key!r} is already queued or journaled in {self._journal.path} with a "
                "different request; nothing was queued. HINT: give the changed job a new key",
                key=key,
                recorded=other,
                given=fingerprint,
                path=self._journal.path,
            )
        return inserted

    async def pending(self, limit: int = 100) -> list[QueuedJob]:
        """Queued jobs no process has claimed yet, oldest first (at most ``limit``)."""

        async def work(conn: Any) -> list[tuple[Any, ...]]:
            cur = await conn.execute(
                "SELECT q.key, q.model, q.input_json, q.callback_base FROM vidgo_queue q "
                "WHERE NOT EXISTS (SELECT 1 FROM vidgo_jobs j WHERE j.key = q.key) "
                "ORDER BY q.seq LIMIT %s",
                (limit,),
            )
            rows: list[tuple[Any, ...]] = await cur.fetchall()
            return rows

        return [
            QueuedJob(key=key, model=model, input=json.loads(text), callback_base=base)
            for key, model, text, base in await self._journal.session(work)
        ]

    async def wait(self, key: str, *, fallback: float = 5.0) -> JournalEntry:
        """Wait until the job ``key`` has ended (any worker may end it); return its entry."""
        return await self._journal.wait_ended(key, fallback=fallback)
