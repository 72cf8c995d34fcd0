"""Many generation jobs at once: bounded in flight, rate-paced, each result reported once.

Inside, one anyio task group runs two loops: the *dispatcher* takes queued jobs in order,
holds a ``max_in_flight`` token for each from the moment its submit starts until it is seen
terminal, paces submits through the shared submit gate and hands each job to one of a fixed
pool of *submitter* tasks (as many as the HTTP connection pool has connections: a job waiting
for a free submitter stays ``queued``, no request is on the wire for it); the *scheduler*
polls every in-flight job from one heap of next-due times through the shared status gate. Jobs are
:class:`~vidgo_async._jobs.Job` state machines; every transition emits one event.

Exception groups: a job's failure is a value, never an exception of the orchestrator.
``run`` and ``as_completed`` report it in the ``JobResult``; ``generate`` and
``JobHandle.wait`` raise that job's own error as a plain exception. Leaving the ``async
with`` block with an exception re-raises that exception unchanged (never wrapped in a
group). Only if the orchestrator's own machinery crashed (a bug) does its error propagate
from the block: bare when there is one, as an ``ExceptionGroup`` when there are several.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from ._clock import Clock
from ._config import PollPolicy, to_seconds
from ._errors import (
    APITimeoutError,
    InputValidationError,
    JobClaimedError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TaskLostError,
    VidgoError,
    WaitTimeoutError,
)
from ._fallback import DurationEstimator, fallback_schedule
from ._gates import RateGate
from ._inputs import ModelInput, prepare_input
from ._jobs import (
    GenerationRequest,
    Job,
    JobAbandonedError,
    JobEvent,
    JobResult,
    JobState,
    Progress,
)
from ._models import Task
from ._polling import StepKind, settle
from ._rules import check_callback_url
from ._scheduler import DEFAULT_MAX_CONCURRENT_POLLS, Scheduler

# Submit requests on the wire at once: the client's HTTP connection pool size, so the
# submitter pool never queues on the pool nor leaves a connection idle.
DEFAULT_MAX_CONCURRENT_SUBMITS = 100

if TYPE_CHECKING:
    from ._client import VidgoClient
    from .webhooks import CallbackReceiver, VerifiedCallback

__all__ = ["JobHandle", "JobRecorder", "Orchestrator"]

logger = logging.getLogger("vidgo_async")


class JobRecorder(Protocol):
    """Where job transitions are made durable (the journal). Each call completes first.

    ``before_submit`` runs before the submit is sent (intent + fingerprint),
    ``after_submit`` before the job counts as in flight (the task id), ``after_end`` once
    the job has ended (called for jobs that went through ``before_submit`` and for jobs
    re-attached with ``Orchestrator.attach``).
    """

    async def before_submit(self, job: Job) -> None: ...

    async def after_submit(self, job: Job, task: Task) -> None: ...

    async def after_end(self, job: Job) -> None: ...


class JobHandle:
    """A started job: await its result later. Returned by :meth:`Orchestrator.start`."""

    __slots__ = ("_done", "_job", "_orchestrator")

    def __init__(self, orchestrator: Orchestrator, job: Job, done: anyio.Event) -> None:
        self._orchestrator = orchestrator
        self._job = job
        self._done = done

    def __repr__(self) -> str:
        return (
            f"<JobHandle {self._job.key!r} {self._job.state.value} task_id={self._job.task_id!r}>"
        )

    @property
    def key(self) -> str:
        """The job's key."""
        return self._job.key

    @property
    def state(self) -> JobState:
        """The job's state now."""
        return self._job.state

    @property
    def task_id(self) -> str | None:
        """The task id once the submit answered."""
        return self._job.task_id

    def done(self) -> bool:
        """Whether the job has ended (or the orchestrator stopped)."""
        return self._done.is_set()

    async def result(self) -> JobResult:
        """Wait for the job to end and return its result (never raises for the job's failure)."""
        await self._done.wait()
        return self._job.result()

    async def wait(self) -> Task:
        """Wait for the job to end; return the finished task or raise the job's error."""
        return (await self.result()).unwrap()

    def cancel(self) -> bool:
        """Drop the job if it was not submitted yet; return whether it was dropped."""
        return self._orchestrator._cancel_queued(self._job, "the job was cancelled")


class Orchestrator:
    """Run many generation jobs through one client, bounded and paced.

    Use it as an async context manager; leaving the block stops submitting and polling at
    once, and every job already submitted is logged and reported with its ``task_id``.

    Args:
        client: an open :class:`VidgoClient` (left open on exit).
        max_in_flight: jobs submitted and not yet seen ended, at most (bounds spend).
        submit_rate: submits per second at most (``None``: paced only after a 429).
        status_rate: status queries per second at most, shared by all jobs.
        job_timeout: seconds from submit to end per job; defaults to ``poll.timeout``.
        poll: the poll schedule; defaults to the client's.
        on_event: called with every :class:`JobEvent` (keep it quick; errors are logged).
        journal: a :class:`JobRecorder` that makes transitions durable.
        receiver: a running ``webhooks.CallbackReceiver``: each job gets its own callback
            URL, a verified callback resolves the job at once and polling only backs it up.
        callback_base_url: where the receiver is reachable (sets its registry's base URL).
        max_concurrent_polls: status queries on the wire at once.
    """

    def __init__(
        self,
        client: VidgoClient,
        *,
        max_in_flight: int = 8,
        submit_rate: float | None = None,
        status_rate: float | None = None,
        job_timeout: float | timedelta | None = None,
        poll: PollPolicy | None = None,
        on_event: Callable[[JobEvent], None] | None = None,
        journal: JobRecorder | None = None,
        receiver: CallbackReceiver | None = None,
        callback_base_url: str | None = None,
        max_concurrent_polls: int = DEFAULT_MAX_CONCURRENT_POLLS,
    ) -> None:
        if (
            isinstance(max_in_flight, bool)
            or not isinstance(max_in_flight, int)
            or max_in_flight < 1
        ):
            raise ValueError(
                f"max_in_flight must be an integer of at least 1 (got {max_in_flight!r})"
            )
        self._client = client
        self._clock: Clock = client.clock
        self._poll = poll if poll is not None else client.poll
        timeout = self._poll.timeout if job_timeout is None else to_seconds(job_timeout)
        if timeout is not None and not timeout > 0:
            raise ValueError(
                f"job_timeout must be a positive number of seconds (got {job_timeout!r})"
            )
        self._job_timeout = timeout
        self.max_in_flight = max_in_flight
        self._limiter = anyio.CapacityLimiter(max_in_flight)
        self.submit_gate = RateGate(submit_rate, clock=self._clock, name="submit")
        self.status_gate = RateGate(status_rate, clock=self._clock, name="status")
        self._budget = client.retry_budget
        self._scheduler = Scheduler(
            client.query_status,
            self,
            gate=self.status_gate,
            clock=self._clock,
            poll=self._poll,
            max_concurrent=max_concurrent_polls,
            budget=self._budget,
        )
        # 429s on submit are the orchestrator's to handle (re-queue behind the shared gate),
        # so its submits are not retried on 429 inside the client.
        retry = client.retry
        statuses = retry.retry_statuses - {429}
        # The attrs plugin cannot type a field whose converter is the frozenset class.
        self._submit_retry = attrs.evolve(retry, retry_statuses=statuses)  # type: ignore[arg-type]
        self._on_event = on_event
        self._journal = journal
        self._receiver = receiver
        if receiver is not None and callback_base_url is not None:
            receiver.registry.set_base_url(callback_base_url)
        # Submits whose outcome is unknown, kept open until a callback reveals their task.
        self._in_doubt: dict[Job, SubmitOutcomeUnknownError] = {}
        # Adopting callbacks that came while the submit was still on the wire.
        self._early: dict[Job, VerifiedCallback] = {}
        self._durations = DurationEstimator()
        self._queue: deque[Job] = deque()
        self._queue_ready = anyio.Event()
        self._live: dict[str, Job] = {}
        self._done: dict[Job, anyio.Event] = {}
        self._done_callbacks: dict[Job, list[Callable[[Job], None]]] = {}
        self._holding: set[Job] = set()
        self._recorded: set[Job] = set()
        self._counts = dict.fromkeys(JobState, 0)
        self._seq = 0
        # The submitter pool: tasks are started on demand, up to ``_max_submitters``; a job
        # handed over waits in ``_handoff`` (still queued) for an idle submitter.
        self._max_submitters = min(DEFAULT_MAX_CONCURRENT_SUBMITS, max_in_flight)
        self._submitters = 0
        self._busy_submitters = 0
        self._handoff: deque[tuple[Job, float]] = deque()
        self._idle_submitters: list[anyio.Event] = []
        self._submitter_freed: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Orchestrator max_in_flight={self.max_in_flight} {self.snapshot()!r}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Orchestrator:
        if self._task_group is not None or self._closed:
            raise RuntimeError("an Orchestrator can be entered once")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._dispatch, task_group)
        task_group.start_soon(self._scheduler.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task_group = self._task_group
        if task_group is None:
            return False
        self._closed = True
        task_group.cancel_scope.cancel()
        try:
            suppress = bool(await task_group.__aexit__(exc_type, exc, tb))
        except BaseException as raised:
            leaves = _leaves(raised)
            if exc is not None and all(leaf is exc for leaf in leaves):
                suppress = False  # the block's own exception: re-raised as it was
            elif len(leaves) == 1 and leaves[0] is not raised:
                raise leaves[0] from None
            else:
                raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._finalize()
        return suppress

    async def _finalize(self) -> None:
        """Settle what the cancelled loops left: drop queued jobs, report in-flight ones."""
        for job in list(self._live.values()):
            if job.state is JobState.QUEUED:
                recorded = self._journal is not None and job in self._recorded
                self._cancel_queued(job, "the orchestrator stopped before the job was submitted")
                if recorded:
                    await self._record_end(job)
        for job, error in list(self._in_doubt.items()):
            del self._in_doubt[job]
            job.outcome_unknown(error)
            if self._journal is not None and job in self._recorded:
                await self._record_end(job)
            self._release(job)
        in_flight = [job for job in self._live.values() if job.state is JobState.IN_FLIGHT]
        for job in in_flight:
            job.abandon()
            self._release(job, keep=True)
        if in_flight and logger.isEnabledFor(logging.WARNING):
            logger.warning(
                "vidgo orchestrator stopped with %d job(s) in flight; their tasks go on (and are "
                "billed) on the server: %s",
                len(in_flight),
                ", ".join(f"{job.key}={job.task_id}" for job in in_flight),
            )

    # -- public API --------------------------------------------------------------------

    def start(self, request: GenerationRequest, *, deadline: float | None = None) -> JobHandle:
        """Queue one job and return its handle at once (await ``handle.result()`` later).

        Raises:
            InputValidationError: the input or callback URL breaks a documented rule.
            ValueError: the key is already used by a job that has not ended.
            RuntimeError: the orchestrator is not running.
        """
        self._check_running()
        job = self._new_job(request)
        return self._enqueue(job, deadline)

    async def generate(
        self,
        model: str,
        input: ModelInput | Mapping[str, Any],
        *,
        key: str | None = None,
        callback_url: str | None = None,
    ) -> Task:
        """Generate one video through the orchestrator's limits; return the finished task.

        Safe to call from many coroutines at once. Cancelling the call drops the job if it
        was not submitted yet; a submitted job goes on and is reported by the orchestrator.

        Raises:
            the job's error: ``TaskFailedError``, ``WaitTimeoutError``,
            ``SubmitOutcomeUnknownError``, an ``APIStatusError``, ``InputValidationError``...
        """
        handle = self.start(GenerationRequest(model, input, key=key, callback_url=callback_url))
        try:
            return await handle.wait()
        except anyio.get_cancelled_exc_class():
            handle.cancel()
            raise

    async def run(
        self, requests: Iterable[GenerationRequest], *, deadline: float | timedelta | None = None
    ) -> list[JobResult]:
        """Run every request; return their results in input order.

        Never raises because a job failed: each job's outcome is in its ``JobResult``. A
        request with an invalid input fails at once (nothing is sent for it).

        Args:
            deadline: seconds for the whole run; jobs not ended by then end as ``timeout``
                (a submitted one keeps its ``task_id``: the task goes on on the server).
        """
        jobs = self._start_many(requests, deadline)
        try:
            for job in jobs:
                done = self._done.get(job)
                if done is not None:
                    await done.wait()
        except anyio.get_cancelled_exc_class():
            for job in jobs:
                self._cancel_queued(job, "the run was cancelled")
            raise
        return [job.result() for job in jobs]

    async def as_completed(
        self, requests: Iterable[GenerationRequest], *, deadline: float | timedelta | None = None
    ) -> AsyncIterator[JobResult]:
        """Run every request and yield each result as its job ends (see :meth:`run`).

        Leaving the loop early does not stop jobs already submitted; leave the
        orchestrator's block to stop everything.
        """
        jobs = self._start_many(requests, deadline)
        send, receive = anyio.create_memory_object_stream[JobResult](max(1, len(jobs)))
        with send, receive:

            def deliver(ended: Job) -> None:
                # The consumer may have left the loop (and closed the stream) already.
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    send.send_nowait(ended.result())

            for job in jobs:
                self._when_done(job, deliver)
            for _ in jobs:
                yield await receive.receive()

    def attach(
        self, request: GenerationRequest, task: Task, *, deadline: float | None = None
    ) -> JobHandle:
        """Follow a task submitted earlier (e.g. found in a journal) without submitting again.

        The job takes a ``max_in_flight`` token like any other and is polled until it ends.
        """
        self._check_running()
        job = self._new_job(request)
        if job.callback_token is not None and self._receiver is not None:
            # The task was submitted earlier without this token's URL: no callback will
            # come for it, so it is polled normally, not as a slow fallback.
            self._receiver.registry.forget(job.callback_token)
            job.callback_token = job.callback_url = None
        job.task = task  # the dispatcher sees the task and attaches instead of submitting
        if self._journal is not None:
            self._recorded.add(job)  # its end is journaled like a submitted job's
        return self._enqueue(job, deadline)

    def poke(self, key: str) -> bool:
        """Poll the job named ``key`` now (e.g. on a hint it ended); return whether it is polled."""
        job = self._live.get(key)
        return job is not None and self._scheduler.poke(job)

    def snapshot(self) -> Progress:
        """Return how many jobs are in each state now."""
        counts = self._counts
        return Progress(
            queued=counts[JobState.QUEUED],
            submitting=counts[JobState.SUBMITTING],
            in_flight=counts[JobState.IN_FLIGHT],
            finished=counts[JobState.FINISHED],
            failed=counts[JobState.FAILED],
            timeout=counts[JobState.TIMEOUT],
            unknown=counts[JobState.UNKNOWN],
            cancelled=counts[JobState.CANCELLED],
            lost=counts[JobState.LOST],
        )

    def unfinished(self) -> list[JobResult]:
        """Return the jobs that have not ended (after a stop: the ones still in flight)."""
        return [job.result() for job in self._live.values()]

    # -- creating jobs -----------------------------------------------------------------

    def _check_running(self) -> None:
        if self._task_group is None or self._closed:
            raise RuntimeError(
                "the Orchestrator is not running: use it as `async with Orchestrator(client) as orch:`"
            )

    def _new_job(self, request: GenerationRequest) -> Job:
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"expected a GenerationRequest (got {type(request).__name__})")
        prepared = prepare_input(request.model, request.input)
        if request.callback_url is not None:
            issues = check_callback_url(request.callback_url)
            if issues:
                raise InputValidationError(issues)
        self._seq += 1
        key = request.key if request.key is not None else f"job-{self._seq}"
        if key in self._live:
            raise ValueError(f"job key {key!r} is already used by a job that has not ended")
        job = Job(
            request,
            key=key,
            input=prepared,
            wall_clock=self._clock.time,
            listeners=[self._on_job_event],
        )
        self._counts[JobState.QUEUED] += 1
        self._emit_external(
            JobEvent(
                kind="queued",
                key=key,
                state=JobState.QUEUED,
                previous=JobState.QUEUED,
                task_id=None,
                task=None,
                error=None,
                at=job.queued_at,
            )
        )
        if self._receiver is not None and request.callback_url is None:
            registry = self._receiver.registry
            token = registry.new_token(job, subscriber=self._on_callback)
            job.callback_token = token
            job.callback_url = registry.url_for(token)
        return job

    def _enqueue(self, job: Job, deadline: float | timedelta | None) -> JobHandle:
        done = anyio.Event()
        self._live[job.key] = job
        self._done[job] = done
        if deadline is not None:
            job.deadline = self._clock.monotonic() + to_seconds(deadline)
            self._scheduler.set_deadline(job, job.deadline)
        self._queue.append(job)
        self._queue_ready.set()
        return JobHandle(self, job, done)

    def _start_many(
        self, requests: Iterable[GenerationRequest], deadline: float | timedelta | None
    ) -> list[Job]:
        self._check_running()
        jobs: list[Job] = []
        for request in requests:
            try:
                job = self._new_job(request)
            except InputValidationError as exc:
                job = self._rejected_job(request, exc)
                jobs.append(job)
                continue
            self._enqueue(job, deadline)
            jobs.append(job)
        return jobs

    def _rejected_job(self, request: GenerationRequest, error: InputValidationError) -> Job:
        """A job whose request is invalid: it fails at once, nothing is sent."""
        self._seq += 1
        key = request.key if request.key is not None else f"job-{self._seq}"
        raw = request.input.to_dict() if isinstance(request.input, ModelInput) else {}
        job = Job(request, key=key, input=raw, wall_clock=self._clock.time)
        job.add_listener(self._on_job_event)
        self._counts[JobState.QUEUED] += 1
        job.fail(error)
        return job

    # -- events and settling -------------------------------------------------------------

    def _on_job_event(self, event: JobEvent) -> None:
        state, previous = event.state, event.previous
        if state is not previous:
            counts = self._counts
            counts[previous] -= 1
            counts[state] += 1
        if self._on_event is not None:
            self._emit_external(event)

    def _emit_external(self, event: JobEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("vidgo on_event hook raised for job %r (ignored)", event.key)

    def _when_done(self, job: Job, callback: Callable[[Job], None]) -> None:
        if job in self._done:
            self._done_callbacks.setdefault(job, []).append(callback)
        else:
            callback(job)  # already ended (or rejected before it was queued)

    def _release(self, job: Job, *, keep: bool = False) -> None:
        """Free what a job held once it ended: its token, its poll entry, its waiters."""
        if job in self._holding:
            self._holding.discard(job)
            self._limiter.release_on_behalf_of(job)
        self._scheduler.forget(job)
        if job.callback_token is not None and self._receiver is not None:
            self._receiver.registry.forget(job.callback_token)
        if not keep:
            self._live.pop(job.key, None)
        self._recorded.discard(job)
        done = self._done.pop(job, None)
        if done is not None:
            done.set()
        for callback in self._done_callbacks.pop(job, ()):
            callback(job)

    async def _end(self, job: Job, transition: Callable[[], None]) -> None:
        """Make one terminal transition, record it, then wake the job's waiters."""
        transition()
        self._early.pop(job, None)
        if job.submitted_mono is not None and job.state in (JobState.FINISHED, JobState.FAILED):
            self._durations.observe(self._clock.monotonic() - job.submitted_mono)
        if self._journal is not None and job in self._recorded:
            with anyio.CancelScope(shield=True):
                try:
                    await self._journal.after_end(job)
                except Exception:
                    logger.exception("vidgo could not record the end of job %r", job.key)
        self._release(job)

    def _cancel_queued(self, job: Job, reason: str) -> bool:
        if job.state is not JobState.QUEUED:
            return False
        job.cancel(JobAbandonedError(job.key, None, reason=reason))
        with_record = self._journal is not None and job in self._recorded
        if with_record and self._task_group is not None and not self._closed:
            self._task_group.start_soon(self._record_end, job)
        self._release(job)
        return True

    async def _record_end(self, job: Job) -> None:
        assert self._journal is not None  # noqa: S101 - checked by the caller
        with anyio.CancelScope(shield=True):
            await self._journal.after_end(job)

    # -- submitting ------------------------------------------------------------------------

    async def _next_queued(self) -> Job:
        while True:
            while self._queue:
                job = self._queue.popleft()
                if job.state is JobState.QUEUED:
                    return job
            self._queue_ready = anyio.Event()
            await self._queue_ready.wait()

    async def _dispatch(self, task_group: anyio.abc.TaskGroup) -> None:
        """Take queued jobs in order; submit each once it holds a token and a gate turn."""
        limiter = self._limiter
        taken = 0
        while True:
            # A yield every few jobs: a long queue (or a run of attached or cancelled jobs)
            # never holds the event loop, yet the jobs freed submitters can take in one
            # loop iteration are handed over in that iteration (a yield per job would cost
            # an event-loop iteration per submit).
            taken += 1
            if taken >= _DISPATCH_BATCH:
                taken = 0
                await anyio.lowlevel.checkpoint()
            job = await self._next_queued()
            if job.task is None:
                # Wait for a free submitter before taking a token or a gate turn, so
                # neither is held by a job that cannot be sent yet.
                while self._busy_submitters >= self._max_submitters:
                    freed = self._submitter_freed = anyio.Event()
                    await freed.wait()
            try:
                # A free token is taken without the limiter's own yield; waiting for one
                # goes through the limiter as usual.
                limiter.acquire_on_behalf_of_nowait(job)
            except anyio.WouldBlock:
                await limiter.acquire_on_behalf_of(job)
            if job.state is not JobState.QUEUED:
                self._limiter.release_on_behalf_of(job)
                continue
            self._holding.add(job)
            if job.task is not None:
                self._attach(job, job.task)
                continue
            if self._budget.exhausted:
                # An outage: the retry budget is spent. Probe slowly instead of piling up
                # submits whose outcome would be unknown.
                await self._clock.sleep(self._poll.max_interval)
            issued = await self.submit_gate.acquire()
            if not _is_queued(job):  # cancelled or expired while waiting for the gate
                self._release(job)
                continue
            self._hand_over(job, issued, task_group)

    def _hand_over(self, job: Job, issued: float, task_group: anyio.abc.TaskGroup) -> None:
        """Give a job to an idle submitter, starting one while the pool is not full."""
        self._busy_submitters += 1
        self._handoff.append((job, issued))
        if self._idle_submitters:
            self._idle_submitters.pop().set()
        elif self._submitters < self._max_submitters:
            self._submitters += 1
            # A fixed name spares anyio deriving it from the method.
            task_group.start_soon(self._submitter, name=_SUBMITTER_TASK_NAME)

    async def _submitter(self) -> None:
        """Send the submits handed over, one at a time, for the orchestrator's lifetime."""
        handoff = self._handoff
        while True:
            if not handoff:
                idle = anyio.Event()
                self._idle_submitters.append(idle)
                await idle.wait()
                continue
            job, issued = handoff.popleft()
            try:
                if job.state is JobState.QUEUED:  # not cancelled or expired since handed over
                    await self._submit(job, issued)
            finally:
                self._busy_submitters -= 1
                freed = self._submitter_freed
                if freed is not None:
                    self._submitter_freed = None
                    freed.set()

    def _attach(self, job: Job, task: Task) -> None:
        now = self._clock.monotonic()
        job.attach(task, monotonic=now)
        self._arm(job, now)

    def _arm(self, job: Job, now: float) -> None:
        """Start polling a job that just went in flight, with its deadline."""
        if self._job_timeout is not None:
            deadline = now + self._job_timeout
            if job.deadline is None or deadline < job.deadline:
                job.deadline = deadline
        if job.deadline is not None:
            self._scheduler.set_deadline(job, job.deadline)
        if job.callback_token is not None:
            # A callback is expected and its verification is the job's status request:
            # poll only as a slow fallback that starts late (see _fallback).
            first_delay, slow = fallback_schedule(
                self._poll, self._durations.expected(), rng=self._clock.rng
            )
            self._scheduler.watch(job, policy=slow, first_delay=first_delay)
        else:
            self._scheduler.watch(job)

    async def _submit(self, job: Job, issued: float) -> None:
        if self._journal is not None:
            try:
                await self._journal.before_submit(job)
            except JobClaimedError as exc:
                # Another submit or task holds the job: nothing is sent for it here.
                logger.warning("vidgo did not submit job %r: %s", job.key, exc)
                claimed = exc
                if job.state is JobState.QUEUED:
                    await self._end(job, lambda: job.cancel(claimed))
                return
            except Exception as exc:
                logger.error("vidgo did not submit job %r: %s", job.key, exc)
                refused = exc
                if job.state is JobState.QUEUED:
                    await self._end(job, lambda: job.fail(refused))
                return
            self._recorded.add(job)
            if job.state is not JobState.QUEUED:
                return  # cancelled while the intent was written
        job.begin_submit()
        try:
            task = await self._send_submit(job)
        except RateLimitError as exc:
            self.submit_gate.on_throttle(exc.retry_after, issued_at=issued)
            logger.info("vidgo submit of job %r rate limited; re-queued", job.key)
            job.requeue(exc)
            self._holding.discard(job)
            self._limiter.release_on_behalf_of(job)
            self._queue.appendleft(job)
            self._queue_ready.set()
            return
        except SubmitOutcomeUnknownError as exc:
            if isinstance(exc.cause, APITimeoutError):
                self.submit_gate.on_throttle(None, issued_at=issued)
            unknown_error = exc
            if await self._await_adoption(job, unknown_error):
                return
            await self._end(job, lambda: job.outcome_unknown(unknown_error))
            return
        except anyio.get_cancelled_exc_class() as exc:
            payload = {"model": job.model, "input": job.input}
            unknown = SubmitOutcomeUnknownError(job.model, payload, exc)
            with anyio.CancelScope(shield=True):
                await self._end(job, lambda: job.outcome_unknown(unknown))
            raise
        except Exception as exc:  # every other error rejects this job only; it is reported
            if not isinstance(exc, VidgoError):
                logger.exception("vidgo submit of job %r failed unexpectedly", job.key)
            rejected = exc
            await self._end(job, lambda: job.fail(rejected))
            return
        self.submit_gate.on_success()
        if self._journal is not None:
            with anyio.CancelScope(shield=True):
                await self._journal.after_submit(job, task)
        now = self._clock.monotonic()
        job.submitted(task, monotonic=now)
        if job.callback_token is not None and self._receiver is not None:
            self._receiver.registry.set_task_id(job.callback_token, task.task_id)
        early = self._early.pop(job, None)
        if early is not None and early.task.task_id == task.task_id and early.task.is_terminal:
            # The verified callback overtook the submit's answer; its token is now spent.
            await self.task_seen(job, early.task)
            return
        if job.expired or (job.deadline is not None and now >= job.deadline):
            await self.deadline_passed(job)
            return
        if task.is_terminal:
            await self.task_seen(job, task)
            return
        self._arm(job, now)

    def _send_submit(self, job: Job) -> Awaitable[Task]:
        """Send one submit: the client's submit, but a 429 comes back to the orchestrator."""
        # The client's coroutine is returned, not awaited here: one frame less per resume.
        return self._client.submit(
            job.model, job.input, callback_url=job.callback_url, retry=self._submit_retry
        )

    # -- the scheduler's handler -------------------------------------------------------------

    async def task_seen(self, job: Job, task: Task) -> bool:
        """Apply what a fresh task means for its job (``settle``); return whether to keep polling."""
        if job.state is not JobState.IN_FLIGHT or task.task_id != job.task_id:
            return False
        step = settle(task, self._poll)
        if step is None:
            job.observe(task)
            return True
        error = step.error
        if step.kind is StepKind.DONE:
            await self._end(job, lambda: job.finish(task))
        elif step.kind is StepKind.FAILED and error is not None:
            await self._end(job, lambda: job.fail(error, task))
        elif error is not None:
            await self._end(job, lambda: job.lose(error, task))
        return False

    async def lost(self, job: Job, error: TaskLostError) -> None:
        """The job's task can no longer be read: the job is lost, its task id kept."""
        if job.state is JobState.IN_FLIGHT:
            await self._end(job, lambda: job.lose(error))

    async def deadline_passed(self, job: Job) -> None:
        """The job's deadline passed: it times out (a submit on the wire finishes first)."""
        in_doubt = self._in_doubt.pop(job, None)
        if in_doubt is not None:
            # No callback revealed a task in time: the outcome stays unknown.
            await self._end(job, lambda: job.outcome_unknown(in_doubt))
            return
        if job.state is JobState.QUEUED:
            error = TimeoutError(f"the deadline passed before job {job.key!r} was submitted")
            await self._end(job, lambda: job.time_out(error))
        elif job.state is JobState.SUBMITTING:
            job.expired = True
        elif job.state is JobState.IN_FLIGHT:
            assert job.task is not None  # noqa: S101 - in flight means a task exists
            started = job.submitted_mono if job.submitted_mono is not None else 0.0
            waited = max(0.0, self._clock.monotonic() - started)
            timeout_error = WaitTimeoutError(job.task, waited)
            await self._end(job, lambda: job.time_out(timeout_error))

    async def _on_callback(self, event: VerifiedCallback) -> None:
        """A verified callback: the fresh task resolves the job at once (or reveals its task)."""
        job = event.job_ref
        if not isinstance(job, Job):
            return
        if event.adopted and job in self._in_doubt:
            self._in_doubt.pop(job)
            await self._adopt(job, event.task)
        elif event.adopted and job.state is JobState.SUBMITTING:
            self._early[job] = event  # the submit is still on the wire; it may end unknown
        elif job.state is JobState.IN_FLIGHT and not await self.task_seen(job, event.task):
            self._scheduler.forget(job)

    async def _await_adoption(self, job: Job, error: SubmitOutcomeUnknownError) -> bool:
        """Keep an unknown submit open until its callback reveals the task (RELIABILITY T19).

        The job's callback token identifies it; the receiver adopts the task id named by a
        callback only after an authenticated status request confirms it, so the job is
        tracked without being submitted (and billed) twice. Without a callback by the
        job's deadline the outcome stays unknown. Returns whether the job waits.
        """
        if job.callback_token is None or self._receiver is None or job.expired:
            return False
        early = self._early.pop(job, None)
        if early is not None:
            await self._adopt(job, early.task)
            return True
        now = self._clock.monotonic()
        deadline = job.deadline
        if self._job_timeout is not None:
            own = now + self._job_timeout
            deadline = own if deadline is None else min(deadline, own)
        self._in_doubt[job] = error
        if deadline is not None:
            self._scheduler.set_deadline(job, deadline)
        logger.warning(
            "vidgo submit of job %r has an unknown outcome; waiting for its callback to reveal "
            "the task instead of resubmitting",
            job.key,
        )
        return True

    async def _adopt(self, job: Job, task: Task) -> None:
        """Turn an unknown submit into a tracked job with the task its callback revealed."""
        if self._journal is not None:
            with anyio.CancelScope(shield=True):
                await self._journal.after_submit(job, task)
        now = self._clock.monotonic()
        job.submitted(task, monotonic=now)
        logger.info("vidgo job %r: its callback revealed task %s (adopted)", job.key, task.task_id)
        if task.is_terminal:
            await self.task_seen(job, task)
        else:
            self._arm(job, now)


# Jobs the dispatcher takes between two yields to the event loop.
_DISPATCH_BATCH = 32

# The name anyio would derive from ``Orchestrator._submitter`` (see ``_hand_over``).
_SUBMITTER_TASK_NAME = f"{__name__}.Orchestrator._submitter"


def _is_queued(job: Job) -> bool:
    return job.state is JobState.QUEUED


def _leaves(error: BaseException) -> list[BaseException]:
    """Flatten an exception group into its leaf exceptions (a plain exception is one leaf)."""
    nested = getattr(error, "exceptions", None)
    if not isinstance(nested, tuple):
        return [error]
    leaves: list[BaseException] = []
    for inner in nested:
        leaves.extend(_leaves(inner))
    return leaves
