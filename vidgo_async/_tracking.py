"""Tracking: the poller's handler that applies what each answer means to its job.

The scheduler asks the status endpoint and its :class:`~vidgo_async._polling.PollTracker`
says what an answer means; :class:`Tracking` applies that step to the job (finish, fail
only when the API said ``failed``, lose, or keep polling), arms each job that goes in
flight (its poll entry and deadline) and ends jobs whose deadline passed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ._catalog import catalog
from ._clock import Clock
from ._config import PollPolicy
from ._errors import SubmitOutcomeUnknownError, TaskLostError, WaitTimeoutError
from ._fallback import fallback_schedule
from ._gates import RateGate
from ._jobbook import JobBook
from ._jobs import Job, JobState
from ._models import Task
from ._polling import GOING_ON, StepKind, settle
from ._scheduler import Budget, Read, Scheduler

__all__ = ["Tracking"]

logger = logging.getLogger("vidgo_async")

Fetch = Callable[[str], Awaitable[tuple[Task, "float | None"]]]


class Tracking:
    """Poll in-flight jobs through one scheduler and apply each answer to its job.

    Args:
        book: the orchestrator's jobs.
        fetch: one status query without retries (``client.query_status``).
        gate: the shared status-rate gate.
        clock: the clock.
        poll: the poll policy.
        job_timeout: seconds from submit to end per job (``None``: no limit).
        budget: the client's retry budget.
        max_concurrent: status queries on the wire at once.
        reader: makes one job's reusable status query (``client.status_reader``).
    """

    def __init__(
        self,
        book: JobBook,
        *,
        fetch: Fetch,
        gate: RateGate,
        clock: Clock,
        poll: PollPolicy,
        job_timeout: float | None,
        budget: Budget,
        max_concurrent: int,
        reader: Callable[[str], Read] | None = None,
    ) -> None:
        self._book = book
        self._clock = clock
        self._poll = poll
        self.job_timeout = job_timeout
        self._seeds: dict[str, tuple[float, float] | None] = {}
        self.scheduler = Scheduler(
            fetch,
            self,
            gate=gate,
            clock=clock,
            poll=poll,
            max_concurrent=max_concurrent,
            budget=budget,
            expected=self._expected,
            notified=True,
            reader=reader,
        )
        book.release_hooks.append(self.scheduler.forget)
        # The expected windows change only when an ended job teaches the book one.
        book.learn_hooks.append(self.scheduler.relearn)

    def attach(self, job: Job, task: Task) -> None:
        """Follow a task created earlier (a journaled one): no submit, straight to polling."""
        now = self._clock.monotonic()
        job.attach(task, monotonic=now)
        self.arm(job, now)

    def arm(self, job: Job, now: float) -> None:
        """Start polling a job that just went in flight, with its deadline."""
        if self.job_timeout is not None:
            deadline = now + self.job_timeout
            if job.deadline is None or deadline < job.deadline:
                job.deadline = deadline
        if job.deadline is not None:
            self.scheduler.set_deadline(job, job.deadline)
        if job.callback_token is not None:
            # A callback is expected and its verification is the job's status request:
            # poll only as a slow fallback that starts late (see _fallback).
            first_delay, slow = fallback_schedule(
                self._poll, self._book.durations.expected(), rng=self._clock.rng
            )
            self.scheduler.watch(job, policy=slow, first_delay=first_delay, now=now)
        else:
            self.scheduler.watch(job, now=now)

    def _expected(self, job: Job) -> tuple[float, float] | None:
        # The documented generation time is a video's; other kinds learn their own.
        model = job.model
        seeds = self._seeds
        seed = seeds.get(model)
        if seed is None and model not in seeds:
            spec = catalog().models.get(model)
            video = spec is not None and spec.kind == "video"
            seed = seeds[model] = self._poll.expected_duration if video else None
        return self._book.expected_window(job, seed)

    async def went_in_flight(self, job: Job, task: Task, now: float) -> None:
        """Apply the first task of a job that just went in flight (submit answer, adoption)."""
        if self.armed(job, task, now):
            return
        if job.expired or (job.deadline is not None and now >= job.deadline):
            await self.deadline_passed(job)
        elif await self.task_seen(job, task):
            # Goes on though not running or queued: a status this client does not know,
            # polled through with ``PollPolicy(unknown_status="poll")``.
            self.arm(job, now)

    def armed(self, job: Job, task: Task, now: float) -> bool:
        """Arm a job that just went in flight with a task going on; return whether it was.

        The usual first answer, so it is synchronous (no coroutine per job). ``False``: the
        deadline passed or the task ended or reads unknown; :meth:`went_in_flight` applies it.
        """
        if job.expired or (job.deadline is not None and now >= job.deadline):
            return False
        if task.status not in GOING_ON:  # ended, or a status this client does not know
            return False
        self.arm(job, now)
        return True

    # -- the scheduler's handler ----------------------------------------------------------

    async def task_seen(self, job: Job, task: Task) -> bool:
        """Apply what a fresh task means for its job (``settle``); return whether to keep polling."""
        if not _answers(job, task):
            return False
        step = settle(task, self._poll)
        if step is None:
            job.observe(task)
            return True
        error = step.error
        if step.kind is StepKind.DONE:
            await self._book.end(job, lambda: job.finish(task))
        elif step.kind is StepKind.FAILED and error is not None:
            await self._book.end(job, lambda: job.fail(error, task))
        elif error is not None:
            await self._book.end(job, lambda: job.lose(error, task))
        return False

    def task_goes_on(self, job: Job, task: Task) -> bool:
        """Apply a fresh task that ``settle`` leaves going on; return whether to keep polling.

        The poller's usual answer: the job takes the task (an event only if it changed).
        """
        if job.task is task and job.state is JobState.IN_FLIGHT:
            return True  # the very answer the job holds (the reader's memo): nothing changed
        if not _answers(job, task):
            return False
        job.observe(task)
        return True

    async def lost(self, job: Job, error: TaskLostError) -> None:
        """The job's task can no longer be read: the job is lost, its task id kept."""
        if job.state is JobState.IN_FLIGHT:
            await self._book.end(job, lambda: job.lose(error))

    async def deadline_passed(self, job: Job) -> None:
        """The job's deadline passed: it times out (a submit on the wire finishes first)."""
        book = self._book
        if job.state is JobState.IN_DOUBT:
            # No callback revealed a task in time: the outcome stays unknown.
            doubt = job.error
            if not isinstance(doubt, SubmitOutcomeUnknownError):  # pragma: no cover - a bug
                doubt = SubmitOutcomeUnknownError(job.model, {}, TimeoutError("deadline"))
            unknown = doubt
            await book.end(job, lambda: job.outcome_unknown(unknown))
        elif job.state is JobState.QUEUED:
            error = TimeoutError(f"the deadline passed before job {job.key!r} was submitted")
            await book.end(job, lambda: job.time_out(error))
        elif job.state is JobState.SUBMITTING:
            job.expired = True
        elif job.state is JobState.IN_FLIGHT:
            assert job.task is not None  # noqa: S101 - in flight means a task exists
            started = job.submitted_mono if job.submitted_mono is not None else 0.0
            waited = max(0.0, self._clock.monotonic() - started)
            timeout_error = WaitTimeoutError(job.task, waited)
            await book.end(job, lambda: job.time_out(timeout_error))


def _answers(job: Job, task: Task) -> bool:
    """Whether ``task`` is news of ``job``: it is in flight and holds this very task."""
    current = job.task
    return (
        job.state is JobState.IN_FLIGHT and current is not None and task.task_id == current.task_id
    )
