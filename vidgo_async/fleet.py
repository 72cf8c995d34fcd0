"""Running a fleet: the journal shared in PostgreSQL (needs ``pip install vidgo-async[postgres]``).

Importing this module imports psycopg; ``import vidgo_async`` never does::

    from vidgo_async.fleet import FleetGates, PostgresJournal

    async with PostgresJournal("postgresql://app@db/vidgo", max_in_flight=6) as journal:
        orchestrator = Orchestrator(client, journal=journal, submit_rate=2.0)
        gates = FleetGates(journal, [orchestrator.submit_gate, orchestrator.status_gate])
        # run gates.run() in a task group: 2 submits/s for the whole fleet, 429 holds shared

See the README's "Running a fleet" for the guarantees and their limits.
"""

from __future__ import annotations

from ._fleet_callbacks import FleetCallbackReceiver, fleet_callback_url, new_callback_token
from ._fleet_gates import FleetGates
from ._fleet_queue import FleetQueue, QueuedJob
from ._fleet_rates import FleetRate
from ._journal_pg import PG_SCHEMA_VERSION, PostgresJournal, redact_url

__all__ = [
    "PG_SCHEMA_VERSION",
    "FleetCallbackReceiver",
    "FleetGates",
    "FleetQueue",
    "FleetRate",
    "PostgresJournal",
    "QueuedJob",
    "fleet_callback_url",
    "new_callback_token",
    "redact_url",
]
