"""Intake: a request becomes a job: validated, keyed, given its callback URL, counted.

Each job moves the state counts of the orchestrator's snapshot itself, and tells the
user's ``on_event`` hook (its only listener) of every event; the job logs the hook's
errors, never raises them into the orchestrator. Without a hook no event is made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ._clock import Clock
from ._errors import InputValidationError
from ._inputs import ModelInput
from ._jobbook import JobBook
from ._jobs import GenerationRequest, Job, JobAbandonedError, JobEvent, JobState
from ._rules import check_callback_url
from ._validation import check_submit_fields, validate_input

if TYPE_CHECKING:
    from .webhooks import CallbackReceiver, VerifiedCallback

__all__ = ["JobIntake"]


class JobIntake:
    """Make the jobs of one orchestrator.

    Args:
        book: the orchestrator's jobs.
        clock: the clock (for event times).
        on_event: the user's hook, called with every event.
        receiver: the callback receiver, if any: each job without its own callback URL
            gets a token and a URL under the receiver's base URL.
        subscriber: called with each verified callback of a job (adoption).
        allow_unknown_models: send model ids the catalog does not know (the client's choice).
        allow_insecure_callbacks: accept plain http callback URLs on public hosts.
    """

    def __init__(
        self,
        book: JobBook,
        *,
        clock: Clock,
        on_event: Callable[[JobEvent], None] | None,
        receiver: CallbackReceiver | None,
        subscriber: Callable[[VerifiedCallback], Awaitable[None]],
        allow_unknown_models: bool = False,
        allow_insecure_callbacks: bool = False,
    ) -> None:
        self._book = book
        self._clock = clock
        self._receiver = receiver
        self._subscriber = subscriber
        self._allow_unknown_models = allow_unknown_models
        self._allow_insecure_callbacks = allow_insecure_callbacks
        self._seq = 0
        # Every job's listeners: the hook, if any, in one tuple shared by every job.
        self._listeners: tuple[Callable[[JobEvent], None], ...] = (
            () if on_event is None else (on_event,)
        )

    def new_job(self, request: GenerationRequest) -> Job:
        """Validate a request and make its job (queued, with its callback URL when due).

        Raises:
            InputValidationError: the input or callback URL breaks a documented rule.
            ValueError: the key is already used by a job that has not ended.
        """
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"expected a GenerationRequest (got {type(request).__name__})")
        prepared = validate_input(
            request.model, request.input, allow_unknown_models=self._allow_unknown_models
        )
        if request.callback_url is not None:
            issues = check_callback_url(
                request.callback_url, allow_insecure=self._allow_insecure_callbacks
            )
            if issues:
                raise InputValidationError(issues)
        elif self._receiver is None:  # a receiver gives every job a callback URL below
            issues = check_submit_fields(request.model, None)
            if issues:
                raise InputValidationError(issues)
        self._seq += 1
        key = request.key if request.key is not None else f"job-{self._seq}"
        if key in self._book.live:
            raise ValueError(f"job key {key!r} is already used by a job that has not ended")
        job = Job(
            request,
            key=key,
            input=prepared,
            wall_clock=self._clock.time,
            listeners=self._listeners,  # shared, not copied
            counts=self._book.counts,
        )
        self._book.counts[JobState.QUEUED] += 1
        if self._listeners:  # nobody sees the event otherwise
            job.announce()
        if self._receiver is not None and request.callback_url is None:
            registry = self._receiver.registry
            token = registry.new_token(job, subscriber=self._subscriber)
            job.callback_token = token
            job.callback_url = registry.url_for(token)
        return job

    def rejected_job(self, request: GenerationRequest, error: Exception) -> Job:
        """A job whose request is invalid (or its key taken): it fails at once, nothing is sent."""
        job = self._unqueued_job(request)
        job.fail(error)
        return job

    def dropped_job(self, request: GenerationRequest, reason: str) -> Job:
        """A job stopped before it was built: it ends ``cancelled`` at once, nothing is sent."""
        job = self._unqueued_job(request)
        job.cancel(JobAbandonedError(job.key, None, reason=reason))
        return job

    def _unqueued_job(self, request: GenerationRequest) -> Job:
        """A counted ``queued`` job that never enters the queue (no validation, no token)."""
        self._seq += 1
        key = request.key if request.key is not None else f"job-{self._seq}"
        raw = request.input.to_dict() if isinstance(request.input, ModelInput) else {}
        job = Job(
            request,
            key=key,
            input=raw,
            wall_clock=self._clock.time,
            listeners=self._listeners,
            counts=self._book.counts,
        )
        self._book.counts[JobState.QUEUED] += 1
        return job
