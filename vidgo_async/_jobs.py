"""One generation job: its request, its state machine, its events and its result.

A job moves through one enum of states::

    queued ─► submitting ─► in_flight(task_id) ─► finished | failed (the API said so)
      │           │  │                      ├───► lost(task_id): its status can no longer be
      │           │  │                      │     read (401/403, 4xx, 3xx, unknown status)
      │           │  │                      └───► timeout(task_id): our deadline came first
      │           │  ├─────► in_doubt  (sent, no answer: a callback may still reveal the
      │           │  │                 task, which is then adopted ─► in_flight)
      │           │  └─────► unknown   (sent, no answer: never resubmitted silently)
      │           ├────────► failed    (rejected: nothing was created)
      │           └────────► queued    (429: re-queued behind the shared submit gate)
      ├──► cancelled | timeout          (never submitted: nothing was paid for)
      └──► in_flight(task_id), abandoned (a re-attached task dropped before it was polled:
                                          it goes on, a rerun polls it)

What a rerun does with each end state is one table, :data:`RERUN` (see
:class:`RerunAction`): only ``failed`` (the API said so, or nothing was created) and the
never-submitted states are submitted again; ``lost``, ``timeout`` and ``in_flight`` are
polled; ``unknown`` and ``submitting`` are left to the user; ``finished`` is skipped.

Every transition is one method of :class:`Job` that moves the orchestrator's state counts
and emits exactly one :class:`JobEvent` to the job's listeners (the user's ``on_event``
hook): with no listener, no event is made. Transitions are synchronous and cheap; anything durable (a journal write) is
awaited by the orchestrator *before* it calls the transition, so a transition only ever
happens once what it depends on is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from ._job_states import RERUN, JobState, RerunAction
from ._job_values import (
    GenerationRequest,
    JobAbandonedError,
    JobEvent,
    JobResult,
    Progress,
    identity_of,
    request_fingerprint,
    utc_from_timestamp,
)
from ._models import Task

__all__ = [
    "RERUN",
    "GenerationRequest",
    "InvalidTransitionError",
    "Job",
    "JobAbandonedError",
    "JobEvent",
    "JobResult",
    "JobState",
    "Progress",
    "RerunAction",
    "identity_of",
    "request_fingerprint",
]


logger = logging.getLogger("vidgo_async")


class InvalidTransitionError(RuntimeError):
    """A job was asked to make a transition its current state does not allow (a bug)."""


Listener = Callable[[JobEvent], None]

# Filling a JobEvent: its slots' own setters, in the order of its fields. The frozen attrs
# ``__init__`` sets each field through ``object.__setattr__`` by name; a slot's setter skips
# that look-up (about 40 % less per event, and a job has four or more events).
_EVENT_FIELDS = ("kind", "key", "state", "previous", "task_id", "task", "error", "at")
_SetSlot = Callable[[JobEvent, Any], None]
_set_kind, _set_key, _set_state, _set_previous, _set_task_id, _set_task, _set_error, _set_at = (
    cast(_SetSlot, JobEvent.__dict__[name].__set__) for name in _EVENT_FIELDS
)
_new_object = object.__new__


class Job:
    """The state machine of one job. Owned by one orchestrator, mutated on its event loop.

    Args:
        request: what to generate.
        key: the job's key (unique within an orchestrator).
        input: the prepared JSON ``input`` object that is sent (a ``dict`` is kept as it
            is, not copied: the job owns it).
        wall_clock: returns POSIX seconds (for timings in events and results).
        listeners: called with every event, in order (a tuple is shared, not copied); a
            listener's error is logged, never raised into the transition.
        counts: the jobs per state (the orchestrator's, shared): every transition moves
            this job from its old state's count to its new one's.
    """

    __slots__ = (
        "__weakref__",
        "_counts",
        "_fingerprint",
        "_listeners",
        "_wall_clock",
        "callback_token",
        "callback_url",
        "deadline",
        "error",
        "expired",
        "finished_at",
        "input",
        "key",
        "queued_at",
        "request",
        "revealed",
        "state",
        "submitted_at",
        "submitted_mono",
        "task",
    )

    def __init__(
        self,
        request: GenerationRequest,
        *,
        key: str,
        input: Mapping[str, Any],
        wall_clock: Callable[[], float],
        listeners: Iterable[Listener] = (),
        counts: dict[JobState, int] | None = None,
    ) -> None:
        self.request = request
        self.key = key
        self.input: dict[str, Any] = input if type(input) is dict else dict(input)
        # Computed on first use: only a journal (and resume) reads it.
        self._fingerprint: str | None = None
        self.callback_url = request.callback_url
        self.callback_token: str | None = None
        self.state = JobState.QUEUED
        self.task: Task | None = None
        self.error: BaseException | None = None
        # Monotonic deadline (run deadline or per-job timeout), set by the orchestrator.
        self.deadline: float | None = None
        # Set when a deadline passes while the submit is on the wire.
        self.expired = False
        self.submitted_mono: float | None = None
        # A task a verified callback revealed while the submit was still on the wire.
        self.revealed: Task | None = None
        self._wall_clock = wall_clock
        # A tuple, replaced (never mutated) by add_listener: jobs may share one.
        self._listeners: tuple[Listener, ...] = tuple(listeners)
        self._counts = counts
        self.queued_at: float = wall_clock()
        self.submitted_at: float | None = None
        self.finished_at: float | None = None

    def __repr__(self) -> str:
        return f"<Job {self.key!r} {self.state.value} task_id={self.task_id!r}>"

    @property
    def model(self) -> str:
        """The model id of the request."""
        return self.request.model

    @property
    def task_id(self) -> str | None:
        """The task id, once known."""
        return None if self.task is None else self.task.task_id

    @property
    def fingerprint(self) -> str:
        """The request fingerprint (see :func:`request_fingerprint`) of the job.

        Of the input sent, unless the request names its ``fingerprint_input``.
        """
        fingerprint = self._fingerprint
        if fingerprint is None:
            fingerprint = self._fingerprint = request_fingerprint(self.model, self.identity)
        return fingerprint

    @property
    def identity(self) -> Mapping[str, Any]:
        """The input the job is known by in a journal (``fingerprint_input``, else ``input``)."""
        return identity_of(self.request, self.input)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every later event of this job."""
        self._listeners = (*self._listeners, listener)

    def result(self) -> JobResult:
        """Return the job's result as it stands now."""
        return JobResult(
            request=self.request,
            key=self.key,
            state=self.state,
            task=self.task,
            error=self.error,
            queued_at=utc_from_timestamp(self.queued_at),
            submitted_at=utc_from_timestamp(self.submitted_at),
            finished_at=utc_from_timestamp(self.finished_at),
        )

    # -- transitions: one method each, one event each ---------------------------------

    def announce(self) -> None:
        """QUEUED stays: tell the listeners the job is queued (its first event, no count moves)."""
        if self.state is not JobState.QUEUED:
            self._require((JobState.QUEUED,), "announce")  # raises
        self._emit("queued", JobState.QUEUED, at=self.queued_at)

    def begin_submit(self) -> None:
        """QUEUED -> SUBMITTING: the submit request is about to be sent."""
        if self.state is not JobState.QUEUED:
            self._require((JobState.QUEUED,), "submitting")  # raises
        self._emit("submitting", JobState.SUBMITTING)

    def requeue(self, error: BaseException) -> None:
        """SUBMITTING -> QUEUED: the submit was refused with a 429; nothing was created."""
        self._move("requeued", JobState.QUEUED, (JobState.SUBMITTING,), error=error)

    def doubt(self, error: BaseException) -> None:
        """SUBMITTING -> IN_DOUBT: sent, no answer; a callback may still reveal the task."""
        self.error = error
        self._move("in_doubt", JobState.IN_DOUBT, (JobState.SUBMITTING,), error=error)

    def submitted(self, task: Task, *, monotonic: float) -> None:
        """SUBMITTING|IN_DOUBT -> IN_FLIGHT: the API answered, or a callback revealed the task."""
        self.task = task
        self.error = None
        self.submitted_mono = monotonic
        self.submitted_at = at = self._wall_clock()
        state = self.state
        if state is not JobState.SUBMITTING and state is not JobState.IN_DOUBT:
            self._require((JobState.SUBMITTING, JobState.IN_DOUBT), "submitted")  # raises
        self._emit("submitted", JobState.IN_FLIGHT, at=at)  # the clock read once, not twice

    def attach(self, task: Task, *, monotonic: float) -> None:
        """QUEUED|UNKNOWN -> IN_FLIGHT: follow a task created earlier (resume, adopted callback)."""
        self.task = task
        self.error = None
        self.submitted_mono = monotonic
        if self.submitted_at is None:
            self.submitted_at = self._wall_clock()
        self._move("attached", JobState.IN_FLIGHT, (JobState.QUEUED, JobState.UNKNOWN))

    def observe(self, task: Task) -> None:
        """IN_FLIGHT -> IN_FLIGHT: a fresh, non-terminal task; emits ``progress`` on change."""
        if self.state is not JobState.IN_FLIGHT:
            self._require((JobState.IN_FLIGHT,), "observe")
        previous = self.task
        self.task = task
        # Polled again and again: an unchanged answer costs two comparisons, no event.
        if previous is None or previous.status != task.status or previous.progress != task.progress:
            self._emit("progress", JobState.IN_FLIGHT)

    def finish(self, task: Task) -> None:
        """IN_FLIGHT -> FINISHED: the API reports the task finished."""
        self.task = task
        self._end("finished", JobState.FINISHED, (JobState.IN_FLIGHT,))

    def fail(self, error: BaseException, task: Task | None = None) -> None:
        """SUBMITTING|IN_FLIGHT|QUEUED -> FAILED: rejected, or the API reported the task failed."""
        if task is not None:
            self.task = task
        self.error = error
        self._end(
            "failed",
            JobState.FAILED,
            (JobState.QUEUED, JobState.SUBMITTING, JobState.IN_FLIGHT),
        )

    def lose(self, error: BaseException, task: Task | None = None) -> None:
        """IN_FLIGHT -> LOST: the task's status can no longer be read (it may still run)."""
        if task is not None:
            self.task = task
        self.error = error
        self._end("lost", JobState.LOST, (JobState.IN_FLIGHT,))

    def outcome_unknown(self, error: BaseException) -> None:
        """SUBMITTING|IN_DOUBT -> UNKNOWN: sent, but no answer says whether a task was created."""
        self.error = error
        self._end("unknown", JobState.UNKNOWN, (JobState.SUBMITTING, JobState.IN_DOUBT))

    def time_out(self, error: BaseException) -> None:
        """QUEUED|IN_FLIGHT -> TIMEOUT: the job's deadline passed first (the task goes on)."""
        self.error = error
        self._end("timeout", JobState.TIMEOUT, (JobState.QUEUED, JobState.IN_FLIGHT))

    def cancel(self, error: BaseException) -> None:
        """QUEUED -> CANCELLED: dropped before its submit; nothing was created."""
        self.error = error
        self._end("cancelled", JobState.CANCELLED, (JobState.QUEUED,))

    def abandon(self, reason: str | None = None) -> None:
        """IN_FLIGHT stays: no longer followed (the orchestrator stopped); waiters get the task id.

        A QUEUED job that holds a task (re-attached, waiting for a ``max_in_flight``
        token) is abandoned the same way, QUEUED -> IN_FLIGHT: its task exists and goes on,
        so it is never ``cancelled`` (which says nothing was created, and is submitted again).
        """
        task = self.task
        if self.state is not JobState.IN_FLIGHT and (
            self.state is not JobState.QUEUED or task is None
        ):
            self._require((JobState.IN_FLIGHT,), "abandon")  # raises
        self.error = JobAbandonedError(
            self.key, None if task is None else task.task_id, reason=reason
        )
        self._emit("abandoned", JobState.IN_FLIGHT)

    # -- plumbing ---------------------------------------------------------------------

    def _require(self, allowed: tuple[JobState, ...], action: str) -> None:
        if self.state not in allowed:
            raise InvalidTransitionError(
                f"job {self.key!r} cannot {action} from state {self.state.value!r}"
            )

    def _move(
        self,
        kind: str,
        new: JobState,
        allowed: tuple[JobState, ...],
        *,
        error: BaseException | None = None,
    ) -> None:
        if self.state not in allowed:
            self._require(allowed, kind)  # raises
        self._emit(kind, new, error=error)

    def _end(self, kind: str, new: JobState, allowed: tuple[JobState, ...]) -> None:
        self._require(allowed, kind)
        self.finished_at = at = self._wall_clock()
        self._emit(kind, new, error=self.error, at=at)

    def _emit(
        self,
        kind: str,
        new: JobState,
        *,
        error: BaseException | None = None,
        at: float | None = None,
    ) -> None:
        """Move to ``new``, count it, and tell the listeners (``at``: the wall time, if just read).

        With no listener no event is made. A listener's error is logged, never raised here.
        """
        previous = self.state
        self.state = new
        counts = self._counts
        if counts is not None and new is not previous:
            counts[previous] -= 1
            counts[new] += 1
        listeners = self._listeners
        if not listeners:
            return
        task = self.task
        event: JobEvent = _new_object(JobEvent)  # the same frozen event as JobEvent(...)
        _set_kind(event, kind)
        _set_key(event, self.key)
        _set_state(event, new)
        _set_previous(event, previous)
        _set_task_id(event, None if task is None else task.task_id)
        _set_task(event, task)
        _set_error(event, error)
        _set_at(event, self._wall_clock() if at is None else at)
        for listener in listeners:  # a tuple: a listener added meanwhile waits for the next
            try:
                listener(event)
            except Exception:
                logger.exception("vidgo on_event hook raised for job %r (ignored)", self.key)
