"""The values around a job: its request, its fingerprint, its events, its result, counts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ._errors import VidgoError
from ._inputs import ModelInput
from ._job_states import JobState
from ._models import Task

__all__ = [
    "GenerationRequest",
    "JobAbandonedError",
    "JobEvent",
    "JobResult",
    "Progress",
    "identity_of",
    "request_fingerprint",
    "utc_from_timestamp",
]


def request_fingerprint(model: str, input: Mapping[str, Any]) -> str:
    """Return sha256 (hex) of the model id followed by the canonical JSON of the input.

    Canonical JSON has sorted keys, no spaces and unescaped non-ASCII text, so two requests
    that differ only in key order share a fingerprint (the emulator counts jobs the same way).
    """
    canonical = json.dumps(input, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((model + canonical).encode("utf-8")).hexdigest()


@attrs.frozen
class GenerationRequest:
    """What to generate: a model, its input, and an optional key naming the job.

    Args:
        model: the model id, e.g. ``"seedance-2"``.
        input: a typed input (``Seedance2Input(...)``) or a mapping of fields.
        key: your name for the job (a clip id, a row id); reported back in every event and
            result. Defaults to ``job-<n>``.
        callback_url: where Vidgo should POST the result (public HTTPS).
        fingerprint_input: the input that identifies the job in a journal, when the input
            sent may differ between runs of the same job (a file uploaded again gets a new
            URL): the job's fingerprint is computed over it, and the journal records it,
            instead of the input sent. ``None``: the input sent identifies the job.
    """

    model: str
    input: ModelInput | Mapping[str, Any]
    key: str | None = None
    callback_url: str | None = None
    fingerprint_input: Mapping[str, Any] | None = attrs.field(default=None, kw_only=True)


def identity_of(request: GenerationRequest, prepared: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the input a job is known by (and fingerprinted over) in a journal.

    ``request.fingerprint_input`` when it is set, else ``prepared`` (the input as sent).
    """
    return prepared if request.fingerprint_input is None else request.fingerprint_input


class JobAbandonedError(VidgoError):
    """The orchestrator stopped before this job ended.

    When ``task_id`` is set the task was created and goes on (and is billed) on the server:
    keep the id and look it up later with ``client.wait(task_id)``.
    """

    def __init__(self, key: str, task_id: str | None, *, reason: str | None = None) -> None:
        self.key = key
        self.task_id = task_id
        if task_id is None:
            why = reason or "the orchestrator stopped before the job was submitted"
            message = f"job {key!r} was dropped: {why}; nothing was created or billed"
        elif reason is None:
            message = (
                f"the orchestrator stopped while job {key!r} was in flight; task {task_id} "
                "goes on on the server. HINT: await client.wait(task_id) to collect it."
            )
        else:  # a task re-attached with ``Orchestrator.attach``, dropped before it was polled
            message = (
                f"job {key!r} is no longer followed ({reason}); its task {task_id} goes on "
                "on the server. HINT: await client.wait(task_id) to collect it."
            )
        super().__init__(message)


@attrs.frozen(kw_only=True)
class JobEvent:
    """One thing that happened to one job.

    Attributes:
        kind: what happened: ``queued``, ``submitting``, ``requeued``, ``in_doubt``,
            ``submitted``, ``attached``, ``progress``, ``finished``, ``failed``, ``timeout``, ``unknown``,
            ``lost``, ``cancelled`` or ``abandoned``.
        key: the job's key.
        state: the job's state after the event; ``previous`` the one before.
        task_id: the task id once known.
        task: the task as last seen from the API, if any.
        error: the error behind a ``failed``/``timeout``/``unknown``/``lost``/``requeued`` event.
        at: the wall-clock time of the event (POSIX seconds).
    """

    kind: str
    key: str
    state: JobState
    previous: JobState
    task_id: str | None
    task: Task | None
    error: BaseException | None
    at: float

    @property
    def progress(self) -> int | None:
        """The task's reported progress (0-100), when known."""
        return None if self.task is None else self.task.progress


def utc_from_timestamp(timestamp: float | None) -> datetime | None:
    """Return POSIX ``timestamp`` as an aware UTC datetime (``None`` stays ``None``)."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc)


@attrs.frozen(kw_only=True)
class JobResult:
    """How one job ended (or where it stood when the orchestrator stopped).

    Attributes:
        request: the request as given.
        key: the job's key.
        state: the final state (``IN_FLIGHT`` only when the job was abandoned: the
            orchestrator stopped first, or a re-attached task was dropped before its turn).
        task: the last ``Task`` seen from the API (the finished task on success).
        error: why the job did not finish: ``TaskFailedError``, ``TaskLostError``,
            ``WaitTimeoutError``, ``SubmitOutcomeUnknownError``, an ``APIStatusError``,
            ``JobAbandonedError``...
        queued_at / submitted_at / finished_at: UTC times, ``None`` when not reached.
    """

    request: GenerationRequest
    key: str
    state: JobState
    task: Task | None
    error: BaseException | None
    queued_at: datetime | None
    submitted_at: datetime | None
    finished_at: datetime | None

    @property
    def task_id(self) -> str | None:
        """The task id, once the submit answered (kept for failed and timed-out jobs too)."""
        return None if self.task is None else self.task.task_id

    @property
    def ok(self) -> bool:
        """Whether the job finished with a video."""
        return self.state is JobState.FINISHED

    @property
    def duration(self) -> float | None:
        """Seconds from submit to the end, when both are known."""
        if self.submitted_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.submitted_at).total_seconds()

    def unwrap(self) -> Task:
        """Return the finished task, or raise the job's error."""
        if self.state is JobState.FINISHED and self.task is not None:
            return self.task
        if self.error is not None:
            raise self.error
        raise JobAbandonedError(self.key, self.task_id)


@attrs.frozen(kw_only=True)
class Progress:
    """A snapshot of how many jobs are in each state."""

    queued: int = 0
    submitting: int = 0
    in_doubt: int = 0
    in_flight: int = 0
    finished: int = 0
    failed: int = 0
    timeout: int = 0
    unknown: int = 0
    cancelled: int = 0
    lost: int = 0

    @property
    def total(self) -> int:
        """Every job the orchestrator knows of."""
        return self.pending + self.done

    @property
    def pending(self) -> int:
        """Jobs not yet ended."""
        return self.queued + self.submitting + self.in_doubt + self.in_flight

    @property
    def done(self) -> int:
        """Jobs that have ended, whatever the outcome."""
        return (
            self.finished + self.failed + self.timeout + self.unknown + self.lost + self.cancelled
        )
