"""Tell an outage from failing jobs: stop a batch once the API cannot be reached at all.

Without it, a batch whose server went away fails every queued job one by one, each after
its own retries. :class:`OutageBreaker` watches the jobs as they end: when ``threshold`` in a
row ended because no connection could be made (and none finished in between), the run stops
with one line; the jobs not yet submitted stay ``cancelled`` for the rerun to submit.
"""

from __future__ import annotations

from .._errors import APIConnectionError, SubmitOutcomeUnknownError
from .._jobs import JobResult, JobState

__all__ = ["OutageBreaker"]


def _no_connection(result: JobResult) -> bool:
    """Whether the job ended because its request never reached the API."""
    if result.state is JobState.FINISHED or result.task_id is not None:
        return False
    error: BaseException | None = result.error
    seen = 0
    while error is not None and seen < 5:  # the cause chain, bounded
        if isinstance(error, SubmitOutcomeUnknownError):
            return False  # it may have reached the API: not the same thing
        if isinstance(error, APIConnectionError):
            return True
        error = error.__cause__
        seen += 1
    return False


class OutageBreaker:
    """Trip after ``threshold`` jobs in a row ended without reaching the API."""

    def __init__(self, threshold: int = 5) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1 (got {threshold})")
        self.threshold = threshold
        self.in_a_row = 0

    def observe(self, result: JobResult) -> bool:
        """Count one ended job; return whether the breaker has tripped."""
        self.in_a_row = self.in_a_row + 1 if _no_connection(result) else 0
        return self.tripped

    @property
    def tripped(self) -> bool:
        """Whether the last ``threshold`` jobs all ended without a connection."""
        return self.in_a_row >= self.threshold
