"""Running a fleet: the journal shared in PostgreSQL (needs ``pip install vidgo-async[postgres]``).

Importing this module imports psycopg; ``import vidgo_async`` never does::

    from vidgo_async.fleet import PostgresJournal

    async with PostgresJournal("postgresql://app@db/vidgo", max_in_flight=6) as journal:
        orchestrator = Orchestrator(client, journal=JournalRecorder(journal))

See the README's "Running a fleet" for the guarantees and their limits.
"""

from __future__ import annotations

from ._fleet_callbacks import FleetCallbackReceiver, new_callback_token
from ._journal_pg import PG_SCHEMA_VERSION, PostgresJournal, redact_url

__all__ = [
    "PG_SCHEMA_VERSION",
    "FleetCallbackReceiver",
    "PostgresJournal",
    "new_callback_token",
    "redact_url",
]
