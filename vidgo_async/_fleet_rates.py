"""A rate shared by a fleet: one token bucket row in PostgreSQL, taken from in batches.

Each process's :class:`~vidgo_async._gates.RateGate` still paces its own requests locally
(no database round trip per request); it only asks :class:`FleetRate` for more grants when
the ones it holds run out, and then takes a *batch* of them with one
``UPDATE … RETURNING`` on the gate's row in ``vidgo_rates``. The row is a token bucket that
refills at ``rate`` tokens per second on the *database's* clock (so machines' clocks never
skew the fleet's rate), holds at most ``burst`` tokens, and starts empty. The fleet's total
in any ``t`` seconds is therefore at most ``rate · t + burst``, plus the grants a process
took but had not used yet (at most one batch each, and those expire after ``keep`` seconds
in the gate). The rows are soft state written with ``synchronous_commit = off``: a write
lost in a database crash gives back at most one batch.

Every process should be configured with the same rate: the bucket refills at the rate of
whichever process takes from it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._journal_pg import PostgresJournal

__all__ = ["DEFAULT_BATCH_SECONDS", "FleetRate"]

# A batch covers at most this many seconds of the fleet's rate (and the bucket's depth).
DEFAULT_BATCH_SECONDS = 0.25
# The shortest wait reported when the bucket is empty (no busy loop on the database).
_MIN_WAIT = 0.005

_CREATE = (
    "INSERT INTO vidgo_rates (name, tokens, stamp) "
    "VALUES (%s, 0, extract(epoch FROM statement_timestamp())) ON CONFLICT (name) DO NOTHING"
)
# One statement per batch. Every SET expression reads the row as it was (under the row
# lock, re-read if another process changed it first); RETURNING shows the new values.
_TAKE = """
UPDATE vidgo_rates SET
    last_grant = least(%(wanted)s, floor(least(%(burst)s, tokens + greatest(
        extract(epoch FROM statement_timestamp()) - stamp, 0) * %(rate)s)))::integer,
    tokens = least(%(burst)s, tokens + greatest(
        extract(epoch FROM statement_timestamp()) - stamp, 0) * %(rate)s)
        - least(%(wanted)s, floor(least(%(burst)s, tokens + greatest(
        extract(epoch FROM statement_timestamp()) - stamp, 0) * %(rate)s))),
    stamp = greatest(stamp, extract(epoch FROM statement_timestamp()))
WHERE name = %(name)s
RETURNING last_grant, tokens
"""


class FleetRate:
    """The shared bucket of one gate (``name``) at ``rate`` grants per second.

    Args:
        journal: the fleet's journal.
        name: the gate's name (``"submit"``, ``"status"``): one row per name.
        rate: grants per second for the whole fleet.
        batch_seconds: the largest batch, in seconds of ``rate`` (also the bucket's depth).
    """

    def __init__(
        self,
        journal: PostgresJournal,
        name: str,
        rate: float,
        *,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"the fleet's {name} rate must be a positive number (got {rate!r})")
        if not (math.isfinite(batch_seconds) and batch_seconds > 0):
            raise ValueError(
                f"batch_seconds must be a positive number of seconds (got {batch_seconds!r})"
            )
        self._journal = journal
        self.name = name
        self.rate = rate
        self.max_batch = max(1, math.floor(rate * batch_seconds))
        self._burst = float(self.max_batch)
        self._created = False
        self.takes = 0

    def __repr__(self) -> str:
        return f"FleetRate({self.name!r}, rate={self.rate!r}, max_batch={self.max_batch})"

    async def take(self, wanted: int) -> tuple[int, float]:
        """Take up to ``wanted`` grants: return how many, or the seconds to wait for them all.

        The wait is ``0.0`` when some were granted. One short transaction.
        """
        wanted = max(1, min(int(wanted), self.max_batch))
        params = {"name": self.name, "wanted": wanted, "burst": self._burst, "rate": self.rate}

        async def work(conn: Any) -> tuple[int, float]:
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = off")
                if not self._created:
                    await conn.execute(_CREATE, (self.name,))
                cur = await conn.execute(_TAKE, params)
                row = await cur.fetchone()
            if row is None:  # the row was deleted under us: create it on the next take
                self._created = False
                return 0, _MIN_WAIT
            self._created = True
            granted, left = int(row[0]), float(row[1])
            if granted > 0:
                return granted, 0.0
            # Come back when the whole batch can be had: one trip per batch, even when the
            # fleet is using the whole rate and every process is waiting for the bucket.
            return 0, max((wanted - left) / self.rate, _MIN_WAIT)

        self.takes += 1
        return await self._journal.session(work)
