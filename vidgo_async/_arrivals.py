"""Jobs just gone in flight whose poll records are not made yet, in the order they came.

The scheduler does not make a job's poll record (its tracker, schedule and heap entries)
when the job goes in flight: the first poll is at least ``lead`` seconds away (the poll
policy's ``min_interval``), often minutes. It queues the job here with the time it went in
flight, and makes the record, as of that time, when the first poll nears or when a poke or
the job's deadline needs it. A queued job costs a dict entry and two deque slots: no object
of its own, and nothing when it ends before its record is needed.

A job forgotten (or queued again) keeps a stale place in the order; it is skipped when it
comes to the front.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Arrivals"]

K = TypeVar("K", bound=Hashable)


class Arrivals(Generic[K]):
    """A FIFO of ``(job, time it went in flight)``, with removal of any job at once.

    Args:
        lead: the soonest a job's first poll comes after it went in flight.
    """

    __slots__ = ("_jobs", "_times", "_went", "lead")

    def __init__(self, lead: float) -> None:
        self.lead = lead
        self._went: dict[K, float] = {}  # the live ones
        self._jobs: deque[K] = deque()  # every place, stale ones included, in order
        self._times: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._went)

    def __contains__(self, job: object) -> bool:
        return job in self._went

    def add(self, job: K, now: float) -> None:
        """Queue ``job``, gone in flight at monotonic ``now`` (not earlier than the last one)."""
        self._went[job] = now
        self._jobs.append(job)
        self._times.append(now)

    def pop(self, job: K) -> float | None:
        """Drop ``job``; return when it went in flight (``None``: it was not queued)."""
        went = self._went
        return went.pop(job, None) if went else None

    def earliest(self) -> float:
        """When the first queued job's first poll may come (``inf``: none queued)."""
        times = self._times
        return times[0] + self.lead if times else math.inf

    def take_due(self, now: float, limit: int) -> list[tuple[K, float]]:
        """Take up to ``limit`` jobs whose first poll may come by ``now``, oldest first.

        Half a lead ahead too: a steady stream of jobs wakes the timer once per half lead,
        not once per job. A record made early is made as of its job's time all the same.
        """
        times = self._times
        taken: list[tuple[K, float]] = []
        if not times:
            return taken
        jobs, live = self._jobs, self._went
        cutoff = now - self.lead / 2
        while times and times[0] <= cutoff and len(taken) < limit:
            job = jobs.popleft()
            went = times.popleft()
            if live.get(job) == went:  # else stale: forgotten, or queued again since
                del live[job]
                taken.append((job, went))
        return taken
