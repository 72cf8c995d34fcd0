"""The PostgreSQL journal's schema: created and migrated by the project, one version at a time.

The version lives in ``vidgo_schema``. Opening a journal takes a transaction-scoped advisory
lock (one opener migrates, the others wait and then find it done), creates the tables on an
empty database (unless told not to) and applies each missing step in order. A schema newer
than this code knows is refused, and nothing is changed.

Versions: 1 the jobs, owners (leases), slots (the fleet cap) and uploads; 2 the queue of
jobs handed to the worker fleet (``enqueue``) and the shared rate-gate holds.
"""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["PG_SCHEMA_VERSION", "migrate"]

PG_SCHEMA_VERSION = 3
_MIGRATION_LOCK = 0x76696467  # pg_advisory_xact_lock key: one opener migrates at a time

_SCHEMA_V1 = (
    """CREATE TABLE vidgo_jobs (
        seq bigserial NOT NULL,
        key text PRIMARY KEY,
        fingerprint text NOT NULL,
        model text NOT NULL,
        input_json text NOT NULL,
        state text NOT NULL,
        task_id text UNIQUE,
        task_json text,
        error_type text,
        error_message text,
        files_json text NOT NULL DEFAULT '[]',
        attempts integer NOT NULL DEFAULT 0,
        callback_token text,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        submitted_at double precision,
        finished_at double precision,
        owner text
    )""",
    "CREATE INDEX vidgo_jobs_token ON vidgo_jobs (callback_token) WHERE callback_token IS NOT NULL",
    "CREATE INDEX vidgo_jobs_holding ON vidgo_jobs (owner) "
    "WHERE state IN ('submitting', 'in_flight')",
    """CREATE TABLE vidgo_owners (
        owner text PRIMARY KEY,
        lease_until double precision NOT NULL
    )""",
    """CREATE TABLE vidgo_slots (
        pool text NOT NULL,
        n integer NOT NULL,
        key text UNIQUE,
        owner text,
        PRIMARY KEY (pool, n)
    )""",
    """CREATE TABLE vidgo_uploads (
        sha256 text PRIMARY KEY,
        file_url text NOT NULL,
        expires_at double precision NOT NULL,
        size bigint NOT NULL,
        source text NOT NULL,
        uploaded_at double precision NOT NULL
    )""",
)
_SCHEMA_V2 = (
    """CREATE TABLE vidgo_queue (
        seq bigserial NOT NULL,
        key text PRIMARY KEY,
        fingerprint text NOT NULL,
        model text NOT NULL,
        input_json text NOT NULL,
        callback_base text,
        enqueued_at double precision NOT NULL
    )""",
    """CREATE TABLE vidgo_gates (
        name text PRIMARY KEY,
        not_before double precision NOT NULL DEFAULT 0
    )""",
)
_SCHEMA_V3 = (
    # One token bucket per shared rate gate (``_fleet_rates``): soft state, refilled on the
    # database's clock; ``last_grant`` is what the latest take got (RETURNING shows new values).
    """CREATE TABLE vidgo_rates (
        name text PRIMARY KEY,
        tokens double precision NOT NULL DEFAULT 0,
        stamp double precision NOT NULL,
        last_grant integer NOT NULL DEFAULT 0
    )""",
)
_STEPS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3}


async def migrate(conn: psycopg.AsyncConnection[tuple[Any, ...]], *, create: bool) -> str | None:
    """Bring the schema to :data:`PG_SCHEMA_VERSION` inside the caller's transaction.

    Returns why it cannot (a newer schema, or no journal and ``create`` false), else ``None``.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
    cur = await conn.execute("SELECT to_regclass('vidgo_schema') IS NOT NULL")
    row = await cur.fetchone()
    if row is not None and row[0]:
        cur = await conn.execute("SELECT version FROM vidgo_schema")
        found = await cur.fetchone()
        version = 0 if found is None else int(found[0])
        if version > PG_SCHEMA_VERSION:
            return (
                f"the journal's schema is version {version}, newer than this vidgo-async "
                f"knows ({PG_SCHEMA_VERSION}); nothing was changed. HINT: upgrade "
                "vidgo-async on this machine to the version the fleet runs"
            )
        if version == PG_SCHEMA_VERSION:
            return None
    elif not create:
        return "the database holds no vidgo-async journal (create=False)"
    else:
        await conn.execute(
            "CREATE TABLE vidgo_schema (version integer NOT NULL, "
            "migrated_at timestamptz NOT NULL DEFAULT now())"
        )
        version = 0
    for step in range(version + 1, PG_SCHEMA_VERSION + 1):
        for statement in _STEPS[step]:
            await conn.execute(statement)
    await conn.execute("DELETE FROM vidgo_schema")
    await conn.execute("INSERT INTO vidgo_schema (version) VALUES (%s)", (PG_SCHEMA_VERSION,))
    return None
