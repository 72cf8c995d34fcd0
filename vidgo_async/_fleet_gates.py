"""The rate gates shared by a fleet through its journal, off the hot path.

Rates: a gate with a ceiling (``submit_rate``, ``status_rate``) takes its grants in batches
from one token bucket row per gate name (:class:`~vidgo_async._fleet_rates.FleetRate`), so
the fleet's total stays at the configured rate however many processes run, while each
process still paces locally (one database round trip per batch, not per request).

Holds: each process keeps its own AIMD decrease after 429s. Every ``every`` seconds
:class:`FleetGates` publishes the moment
before which its gates let nothing pass (a ``Retry-After``), as wall-clock time, and takes
the latest one any process published: one process's 429 holds the whole fleet's submits
(or status queries) until the time the server asked for. The gate rows are soft state,
written with ``synchronous_commit = off`` (a lost write costs one more 429 at most).

Limits: the hold reaches the other processes within ``every`` seconds (plus clock skew
between machines); a decrease after 429s slows only the process that saw them (the others
see the shared hold and the shared rate); give every process the same rates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from ._fleet_rates import DEFAULT_BATCH_SECONDS, FleetRate
from ._gates import RateGate

if TYPE_CHECKING:
    from ._journal_pg import PostgresJournal

__all__ = ["FleetGates"]


class FleetGates:
    """Share ``gates``' holds through ``journal`` (run :meth:`run` in a task group).

    Args:
        journal: the fleet's journal.
        gates: the orchestrator's gates (``orchestrator.submit_gate``, ``.status_gate``);
            a gate's ``name`` names its row.
        every: seconds between syncs of the holds.
        wall, monotonic: the clocks (wall time is shared; ``monotonic`` is the gates' own).
        share_rates: make each gate's ceiling the fleet's (its grants come in batches from
            the database); false shares only the holds, and each process paces alone.
        batch_seconds: the largest batch of grants, in seconds of the gate's rate.

    Constructing it makes the gates share their rates at once (before :meth:`run`).
    """

    def __init__(
        self,
        journal: PostgresJournal,
        gates: Sequence[RateGate],
        *,
        every: float = 1.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        share_rates: bool = True,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
    ) -> None:
        self._journal = journal
        self._gates = list(gates)
        self.rates: dict[str, FleetRate] = {}
        if share_rates:
            for gate in self._gates:
                if gate.ceiling is not None:
                    rate = FleetRate(journal, gate.name, gate.ceiling, batch_seconds=batch_seconds)
                    gate.share(rate, batch_seconds=batch_seconds)
                    self.rates[gate.name] = rate
        self._every = every
        self._wall = wall
        self._monotonic = monotonic

    async def sync(self) -> None:
        """Publish this process's holds and take the fleet's (one short transaction)."""
        wall, mono = self._wall(), self._monotonic()
        published = [
            (gate.name, wall + (gate.not_before - mono) if gate.not_before > mono else 0.0)
            for gate in self._gates
        ]

        async def work(conn: Any) -> dict[str, float]:
            shared: dict[str, float] = {}
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = off")
                for name, until in published:
                    cur = await conn.execute(
                        "INSERT INTO vidgo_gates (name, not_before) VALUES (%s, %s) "
                        "ON CONFLICT (name) DO UPDATE SET not_before = "
                        "greatest(vidgo_gates.not_before, excluded.not_before) "
                        "RETURNING not_before",
                        (name, until),
                    )
                    row = await cur.fetchone()
                    shared[name] = 0.0 if row is None else float(row[0])
            return shared

        shared = await self._journal.session(work)
        for gate in self._gates:
            until = shared.get(gate.name, 0.0)
            if until > wall:
                gate.hold_until(mono + (until - wall))

    async def run(self) -> None:
        """Sync every ``every`` seconds until cancelled."""
        while True:
            await self.sync()
            await anyio.sleep(self._every)
