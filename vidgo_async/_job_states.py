"""The states of a job, what ends one, and what a rerun does with each: defined once.

Everything else derives from here: ``JobState.is_terminal`` (the run is done with the job),
``JobState.rerun`` (the one rerun table, :data:`RERUN`) and the journal's states.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["RERUN", "JobState", "RerunAction"]


class JobState(str, enum.Enum):
    """Where a job is in its life."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    IN_DOUBT = "in_doubt"
    IN_FLIGHT = "in_flight"
    FINISHED = "finished"
    FAILED = "failed"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"
    LOST = "lost"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has reached an end state in this run (nothing more will happen)."""
        return self in _TERMINAL

    @property
    def rerun(self) -> RerunAction:
        """What a rerun does with a job that ended (or stopped) in this state."""
        return RERUN[self]

    def __str__(self) -> str:
        return str(self.value)


_TERMINAL = frozenset(
    {
        JobState.FINISHED,
        JobState.FAILED,
        JobState.TIMEOUT,
        JobState.UNKNOWN,
        JobState.LOST,
        JobState.CANCELLED,
    }
)


class RerunAction(str, enum.Enum):
    """What a rerun (a resumed batch, ``plan_resume``) does with a journaled job."""

    RESUBMIT = "resubmit"  # nothing was billed (rejected, or the API said failed)
    POLL = "poll"  # a task exists: follow it by its task id, never submit it again
    LEAVE = "leave"  # a submit may have created a task: reported, left to the user
    SKIP = "skip"  # finished: reported (missing files downloaded again)

    def __str__(self) -> str:
        return str(self.value)


# The one table of what a rerun does with each state. A job ``lost`` or ``timeout`` holds
# a task id that may still run (and be billed): it is polled, never submitted again.
RERUN: Mapping[JobState, RerunAction] = {
    JobState.QUEUED: RerunAction.RESUBMIT,
    JobState.CANCELLED: RerunAction.RESUBMIT,
    JobState.FAILED: RerunAction.RESUBMIT,
    JobState.SUBMITTING: RerunAction.LEAVE,
    JobState.IN_DOUBT: RerunAction.LEAVE,
    JobState.UNKNOWN: RerunAction.LEAVE,
    JobState.IN_FLIGHT: RerunAction.POLL,
    JobState.TIMEOUT: RerunAction.POLL,
    JobState.LOST: RerunAction.POLL,
    JobState.FINISHED: RerunAction.SKIP,
}
