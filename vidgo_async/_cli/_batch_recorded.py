"""The results of ``vidgo-async batch`` jobs as their journal recorded them.

A rerun reports finished jobs and unanswered submits from the journal without running
them, and a stopped run reports from it the jobs that ended as it stopped (a submit cut
off on the wire, a result not yet taken from the orchestrator): each as a ``JobResult``
with the recorded state, task and error.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .._errors import SubmitOutcomeUnknownError
from .._jobs import GenerationRequest, JobResult, JobState
from .._journal import JournalEntry, JournalState
from .._models import Task, TaskStatus

__all__ = ["RecordedError", "finished_result", "recorded_result", "unknown_result"]


class _NoAnswer(Exception):
    """Why a submit got no answer, as the journal recorded it."""


class RecordedError(Exception):
    """A job's error as the journal recorded it: its message, and its type's name."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc)


def finished_result(request: GenerationRequest, entry: JournalEntry) -> JobResult:
    """The result of a job the journal recorded finished (with its task)."""
    return JobResult(
        request=request,
        key=entry.key,
        state=JobState.FINISHED,
        task=entry.task,
        error=None,
        queued_at=_utc(entry.created_at),
        submitted_at=_utc(entry.submitted_at),
        finished_at=_utc(entry.finished_at),
    )


def recorded_result(request: GenerationRequest, entry: JournalEntry) -> JobResult:
    """The result of ``request`` as its journal ``entry`` records it (its state, task, error)."""
    if entry.state is JournalState.FINISHED:
        return finished_result(request, entry)
    if entry.state in (JournalState.UNKNOWN, JournalState.SUBMITTING):
        return unknown_result(request, entry, when="before the run stopped")
    task = entry.task
    if task is None and entry.task_id is not None:
        task = Task(task_id=entry.task_id, status=TaskStatus.NOT_STARTED)
    recorded = entry.error
    return JobResult(
        request=request,
        key=entry.key,
        state=entry.state.job_state,
        task=task,
        error=None if recorded is None else RecordedError(recorded["type"], recorded["message"]),
        queued_at=_utc(entry.created_at),
        submitted_at=_utc(entry.submitted_at),
        finished_at=_utc(entry.finished_at),
    )


def unknown_result(
    request: GenerationRequest, entry: JournalEntry, *, when: str = "in an earlier run"
) -> JobResult:
    """The result of a job whose submit was sent and never answered (``when``: by which run)."""
    recorded = entry.error
    why = "the process stopped before the answer" if recorded is None else recorded["message"]
    error = SubmitOutcomeUnknownError(
        entry.model,
        {"model": entry.model, "input": entry.input},
        _NoAnswer(f"no answer {when}: {why}"),
    )
    return JobResult(
        request=request,
        key=entry.key,
        state=JobState.UNKNOWN,
        task=None,
        error=error,
        queued_at=_utc(entry.created_at),
        submitted_at=None,
        finished_at=None,
    )
