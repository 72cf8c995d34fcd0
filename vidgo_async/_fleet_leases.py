"""Leases and adoption in the fleet's journal: who owns a job, and who takes it over.

Each process owns the jobs it claimed and renews one lease row (``vidgo_owners``) on the
database's clock, so machines with skewed clocks agree on expiry. Lease rows are soft
state, written with ``synchronous_commit = off``. When a lease has expired, another
process adopts the owner's jobs in one transaction (``FOR UPDATE SKIP LOCKED``: two adopters
never take the same job): in-flight jobs keep their task, token hash and fleet slot and are
polled by the adopter; finished jobs nobody downloaded are downloaded by it; a submit that
was in flight becomes ``unknown`` (never resent) and frees its slot.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ._journal_pg_rows import COLUMNS, DB_NOW

__all__ = ["adopt_expired", "release", "renew_lease"]

_Conn = psycopg.AsyncConnection[tuple[Any, ...]]
_HOLDING = ["submitting", "in_flight"]
_EXPIRED = (  # the owner is this process's peer and its lease ran out (or it never had one)
    "owner IS DISTINCT FROM %s AND (owner IS NULL OR owner NOT IN "  # noqa: S608
    f"(SELECT owner FROM vidgo_owners WHERE lease_until >= {DB_NOW}))"
)
_DOUBT = "the process submitting it stopped (its lease expired) before the answer was recorded"


async def renew_lease(conn: _Conn, owner: str, lease: float) -> None:
    """Extend ``owner``'s lease to ``lease`` seconds from now on the database's clock."""
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        await conn.execute(
            "INSERT INTO vidgo_owners (owner, lease_until) VALUES "  # noqa: S608
            f"(%s, {DB_NOW} + %s) ON CONFLICT (owner) DO UPDATE "
            "SET lease_until = excluded.lease_until",
            (owner, lease),
        )


async def release(conn: _Conn, key: str, channel: str) -> None:
    """A job ended: free its fleet slot and wake its waiters (inside the caller's transaction)."""
    await conn.execute("UPDATE vidgo_slots SET key = NULL, owner = NULL WHERE key = %s", (key,))
    await conn.execute("SELECT pg_notify(%s, %s)", (channel, key))


async def adopt_expired(conn: _Conn, owner: str, now: float) -> list[tuple[Any, ...]]:
    """Adopt for ``owner`` the jobs of expired owners; return the rows to poll or download."""
    async with conn.transaction():
        cur = await conn.execute(
            f"SELECT key, state FROM vidgo_jobs WHERE state = ANY(%s) AND {_EXPIRED} "  # noqa: S608
            "ORDER BY seq FOR UPDATE SKIP LOCKED",
            (_HOLDING, owner),
        )
        rows = await cur.fetchall()
        cur = await conn.execute(
            "SELECT key FROM vidgo_jobs WHERE state = 'finished' AND files_json = '[]' "  # noqa: S608
            f"AND {_EXPIRED} ORDER BY seq FOR UPDATE SKIP LOCKED",
            (owner,),
        )
        undownloaded = [str(row[0]) for row in await cur.fetchall()]
        polled = [str(key) for key, state in rows if state == "in_flight"]
        doubtful = [str(key) for key, state in rows if state == "submitting"]
        taken = polled + undownloaded
        if taken:
            await conn.execute(
                "UPDATE vidgo_jobs SET owner = %s, updated_at = %s WHERE key = ANY(%s)",
                (owner, now, taken),
            )
            await conn.execute(
                "UPDATE vidgo_slots SET owner = %s WHERE key = ANY(%s)", (owner, polled)
            )
        if doubtful:
            await conn.execute(
                "UPDATE vidgo_jobs SET state = 'unknown', owner = %s, "
                "error_type = 'SubmitOutcomeUnknownError', error_message = %s, "
                "updated_at = %s WHERE key = ANY(%s)",
                (owner, _DOUBT, now, doubtful),
            )
            for key in doubtful:
                await release(conn, key, "vidgo_jobs")
        cur = await conn.execute(
            f"SELECT {COLUMNS} FROM vidgo_jobs WHERE key = ANY(%s) ORDER BY seq",  # noqa: S608
            (taken,),
        )
        return await cur.fetchall()
