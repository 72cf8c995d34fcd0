"""The journal interface, and the one place that picks a store for a journal target.

The orchestrator's recorder (:class:`~vidgo_async.JournalRecorder`), the resume planner and
the tools use a journal only through :class:`JournalLike`: the embedded SQLite
:class:`~vidgo_async.Journal` (a path) and the PostgreSQL journal shared by a fleet
(a ``postgresql://`` URL, needs ``vidgo-async[postgres]``) both provide it.

:meth:`Journal.open <vidgo_async.Journal.open>` chooses the store by the target's form
(:func:`open_journal` is its alias). psycopg is imported only when a
PostgreSQL URL is opened, so the embedded default never needs the extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._journal import Journal, is_postgres_url
from ._journal_entry import JournalEntry, JournalState
from ._models import Task

__all__ = ["JournalLike", "is_postgres_url", "open_journal"]


@runtime_checkable
class JournalLike(Protocol):
    """What the orchestrator, resume and the CLI need from a journal (SQLite or PostgreSQL)."""

    async def aclose(self) -> None:
        """Close the journal; every returned ``record_*`` call is already durable."""

    async def get(self, key: str) -> JournalEntry | None:
        """The entry for ``key``, or ``None``."""

    async def find_task(self, task_id: str) -> JournalEntry | None:
        """The entry holding ``task_id``, or ``None``."""

    async def entries(self) -> list[JournalEntry]:
        """Every entry, in the order their keys were first recorded."""

    async def summary(self) -> dict[str, int]:
        """The number of jobs in each state."""

    def check_same(self, entry: JournalEntry, given: str) -> None:
        """Raise ``JournalConflictError`` unless ``entry`` has fingerprint ``given``."""

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
        """Claim ``key`` before its submit is sent (exactly one claimant wins)."""

    async def record_submitted(self, key: str, task_id: str) -> JournalEntry:
        """Record the task id before the job counts as in flight."""

    async def record_unknown(self, key: str, error: BaseException | str) -> JournalEntry:
        """Record a submit whose outcome is unknown."""

    async def record_failed(
        self, key: str, error_type: str, message: str, task: Task | Mapping[str, Any] | None = None
    ) -> JournalEntry:
        """Record a rejected submit or a failed task."""

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
        """Record how the job's task ended."""

    async def record_download(self, key: str, *paths: str | Path) -> JournalEntry:
        """Record the local files downloaded for ``key``."""

    async def forget(self, key: str) -> bool:
        """Delete the entry for ``key`` (tools and tests only)."""


async def open_journal(
    target: str | Path,
    *,
    create: bool = True,
    readonly: bool = False,
    owner: str | None = None,
    max_in_flight: int | None = None,
) -> JournalLike:
    """Open the journal at ``target``: a ``postgresql://`` URL or a SQLite file path.

    The same as :meth:`Journal.open <vidgo_async.Journal.open>` (kept as an alias).

    Args:
        target: ``postgresql://user@host/db`` (a fleet's shared journal; needs the
            ``vidgo-async[postgres]`` extra) or the path of a SQLite journal file.
        create: create a missing journal (the SQLite file, or the PostgreSQL tables).
        readonly: open without writing (SQLite only; PostgreSQL relies on the role's grants).
        owner: PostgreSQL only: this process's name in the fleet (default: host and pid).
        max_in_flight: PostgreSQL only: the fleet-wide cap of jobs holding a submit slot.

    Close the returned journal with ``aclose()``.

    Raises:
        JournalError: the journal cannot be opened (see ``Journal`` and ``PostgresJournal``).
        ValueError: PostgreSQL-only options given for a SQLite path.
    """
    return await Journal.open(
        target, create=create, readonly=readonly, owner=owner, max_in_flight=max_in_flight
    )
