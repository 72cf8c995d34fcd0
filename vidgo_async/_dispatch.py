"""Dispatch: the queue, the ``max_in_flight`` tokens, the submit gate and the submitter pool.

The dispatcher takes queued jobs in order, holds a ``max_in_flight`` token for each from the
moment its submit starts until it is seen terminal, paces submits through the shared submit
gate and hands each job to one of a fixed pool of *submitter* tasks (as many as the HTTP
connection pool has connections: a job waiting for a free submitter stays ``queued``, no
request is on the wire for it). A submit refused with 429 created nothing: the job goes back
to the head of the queue behind the gate, which slows everyone down.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ._clock import Clock
from ._config import PollPolicy, RetryPolicy
from ._errors import (
    APITimeoutError,
    JobClaimedError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    VidgoError,
)
from ._gates import RateGate
from ._jobbook import JobBook
from ._jobs import Job, JobState
from ._models import Task
from ._scheduler import Budget
from ._tracking import Tracking

__all__ = ["DEFAULT_MAX_CONCURRENT_SUBMITS", "Adopter", "Dispatcher"]

logger = logging.getLogger("vidgo_async")

# Submit requests on the wire at once: the client's HTTP connection pool size, so the
# submitter pool never queues on the pool nor leaves a connection idle.
DEFAULT_MAX_CONCURRENT_SUBMITS = 100

# Jobs the dispatcher takes between two yields to the event loop.
_DISPATCH_BATCH = 32

# Jobs waiting in the queue beyond which a lazy batch stops building (at least this many,
# and at least twice ``max_in_flight`` so that freed tokens never find the queue empty).
_LOOKAHEAD = 1024

# The name anyio would derive from ``Dispatcher._submitter`` (see ``_hand_over``).
_SUBMITTER_TASK_NAME = f"{__name__}.Dispatcher._submitter"

Submit = Callable[..., Awaitable[Task]]


class Adopter(Protocol):
    """What the dispatcher needs of adoption (``_adoption.Adoption`` fits)."""

    def submitted(self, job: Job, task: Task) -> Task: ...

    async def await_callback(self, job: Job, error: SubmitOutcomeUnknownError) -> bool: ...


class Dispatcher:
    """Submit queued jobs in order, bounded by tokens, the gate and the submitter pool.

    Args:
        book: the orchestrator's jobs.
        tracking: where submitted jobs are tracked.
        adoption: where unknown submits wait for their callback.
        submit: the client's ``submit`` (called with ``retry=``).
        retry: the submits' retry policy (429 left to the dispatcher).
        gate: the shared submit gate.
        clock: the clock.
        poll: the poll policy (its ``max_interval`` paces submits during an outage).
        budget: the client's retry budget.
        max_in_flight: the size of the token pool.
    """

    def __init__(
        self,
        book: JobBook,
        tracking: Tracking,
        adoption: Adopter,
        *,
        submit: Submit,
        retry: RetryPolicy,
        gate: RateGate,
        clock: Clock,
        poll: PollPolicy,
        budget: Budget,
        max_in_flight: int,
    ) -> None:
        self._book = book
        self._tracking = tracking
        self._adoption = adoption
        self.submit = submit
        self._retry = retry
        self._gate = gate
        self._clock = clock
        self._poll = poll
        self._budget = budget
        self._queue: deque[Job] = deque()
        self._queue_ready = anyio.Event()
        # The submitter pool: tasks are started on demand, up to ``max_submitters``; a job
        # handed over waits in ``_handoff`` (still queued) for an idle submitter.
        self.max_submitters = min(DEFAULT_MAX_CONCURRENT_SUBMITS, max_in_flight)
        self.submitters = 0
        self._busy_submitters = 0
        self._handoff: deque[tuple[Job, float]] = deque()
        self._idle_submitters: list[anyio.Event] = []
        self._submitter_freed: anyio.Event | None = None
        # Set while the dispatcher, woken by a freed submitter, has not run yet.
        self._dispatcher_due = False
        # Submitters in that one yield: they take jobs handed over meanwhile themselves.
        self._lingering = 0
        # Lazy batches stop building while this many jobs wait; they resume below half.
        self.lookahead = max(_LOOKAHEAD, 2 * max_in_flight)
        self._room: anyio.Event | None = None

    def enqueue(self, job: Job) -> None:
        """Queue a job (submitted, or attached when it already has a task)."""
        queue = self._queue
        if not queue:
            # The dispatcher waits for this event only once it found the queue empty.
            self._queue_ready.set()
        queue.append(job)

    async def wait_for_room(self) -> None:
        """Wait until fewer than ``lookahead`` jobs wait in the queue (lazy batches' pace)."""
        while len(self._queue) >= self.lookahead:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    async def _next_queued(self) -> Job:
        while True:
            while self._queue:
                job = self._queue.popleft()
                if self._room is not None and len(self._queue) <= self.lookahead // 2:
                    self._room.set()
                    self._room = None
                if job.state is JobState.QUEUED:
                    return job
            self._queue_ready = anyio.Event()
            await self._queue_ready.wait()

    async def run(self, task_group: anyio.abc.TaskGroup) -> None:
        """Take queued jobs in order; submit each once it holds a token and a gate turn."""
        limiter = self._book.limiter
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
                while self._busy_submitters >= self.max_submitters:
                    freed = self._submitter_freed = anyio.Event()
                    try:
                        await freed.wait()
                    finally:
                        self._dispatcher_due = False
                    # That wait was a yield: the jobs freed submitters can take now are
                    # handed over in this run, with no yield among them.
                    taken = 0
            try:
                # A free token is taken without the limiter's own yield; waiting for one
                # goes through the limiter as usual.
                limiter.acquire_on_behalf_of_nowait(job)
            except anyio.WouldBlock:
                await limiter.acquire_on_behalf_of(job)
            if job.state is not JobState.QUEUED:
                limiter.release_on_behalf_of(job)
                continue
            self._book.hold(job)
            if job.task is not None:
                self._tracking.attach(job, job.task)
                continue
            if self._budget.exhausted:
                # An outage: the retry budget is spent. Probe slowly instead of piling up
                # submits whose outcome would be unknown.
                await self._clock.sleep(self._poll.max_interval)
            issued = await self._gate.acquire()
            if not _is_queued(job):  # cancelled or expired while waiting for the gate
                self._book.release(job)
                continue
            self._hand_over(job, issued, task_group)

    def _hand_over(self, job: Job, issued: float, task_group: anyio.abc.TaskGroup) -> None:
        """Give a job to an idle submitter, starting one while the pool is not full."""
        self._busy_submitters += 1
        handoff = self._handoff
        handoff.append((job, issued))
        if len(handoff) <= self._lingering:
            return  # a submitter yielding for a moment takes it when it resumes
        if self._idle_submitters:
            self._idle_submitters.pop().set()
        elif self.submitters < self.max_submitters:
            self.submitters += 1
            # A fixed name spares anyio deriving it from the method.
            task_group.start_soon(self._submitter, name=_SUBMITTER_TASK_NAME)

    async def _submitter(self) -> None:
        """Send the submits handed over, one at a time, for the orchestrator's lifetime."""
        handoff = self._handoff
        lingered = False
        while True:
            if not handoff:
                if self._dispatcher_due and not lingered:
                    # The dispatcher waited for a free submitter and runs next: one yield
                    # usually finds a job handed over, with no idle event made and set.
                    lingered = True
                    self._lingering += 1
                    try:
                        await anyio.lowlevel.checkpoint()
                    finally:
                        self._lingering -= 1
                    continue
                idle = anyio.Event()
                self._idle_submitters.append(idle)
                await idle.wait()
                continue
            lingered = False
            job, issued = handoff.popleft()
            try:
                if job.state is JobState.QUEUED:  # not cancelled or expired since handed over
                    await self._submit(job, issued)
            finally:
                self._busy_submitters -= 1
                freed = self._submitter_freed
                if freed is not None:
                    self._submitter_freed = None
                    self._dispatcher_due = True
                    freed.set()

    async def _claim(self, job: Job) -> bool:
        """Record the intent (the claim) before the submit; return whether to send it."""
        book = self._book
        journal = book.journal
        if journal is None:
            return True
        try:
            await journal.before_submit(job)
        except JobClaimedError as exc:
            # Another submit or task holds the job: nothing is sent for it here.
            logger.warning("vidgo did not submit job %r: %s", job.key, exc)
            claimed = exc
            if job.state is JobState.QUEUED:
                await book.end(job, lambda: job.cancel(claimed))
            return False
        except Exception as exc:
            logger.error("vidgo did not submit job %r: %s", job.key, exc)
            refused = exc
            if job.state is JobState.QUEUED:
                await book.end(job, lambda: job.fail(refused))
            return False
        book.recorded.add(job)
        return job.state is JobState.QUEUED  # not cancelled while the intent was written

    async def _submit(self, job: Job, issued: float) -> None:
        book = self._book
        if book.journal is not None and not await self._claim(job):
            return
        job.begin_submit()
        try:
            task = await self.submit(
                job.request.model, job.input, callback_url=job.callback_url, retry=self._retry
            )
        except RateLimitError as exc:
            self._gate.on_throttle(exc.retry_after, issued_at=issued)
            logger.info("vidgo submit of job %r rate limited; re-queued", job.key)
            job.requeue(exc)
            book.unhold(job)
            self._queue.appendleft(job)
            self._queue_ready.set()
            return
        except SubmitOutcomeUnknownError as exc:
            if isinstance(exc.cause, APITimeoutError):
                self._gate.on_throttle(None, issued_at=issued)
            unknown_error = exc
            if await self._adoption.await_callback(job, unknown_error):
                return
            await book.end(job, lambda: job.outcome_unknown(unknown_error))
            return
        except anyio.get_cancelled_exc_class() as exc:
            payload: Mapping[str, Any] = {"model": job.model, "input": job.input}
            unknown = SubmitOutcomeUnknownError(job.model, payload, exc)
            with anyio.CancelScope(shield=True):
                await book.end(job, lambda: job.outcome_unknown(unknown))
            raise
        except VidgoError as exc:  # refused before anything was created: this job only
            rejected = exc
            await book.end(job, lambda: job.fail(rejected))
            return
        except Exception as exc:
            # Not a refusal: whether the submit reached the API is unknown, so it is never
            # resubmitted silently (a bug report, not a reason to pay twice).
            logger.exception("vidgo submit of job %r failed unexpectedly", job.key)
            payload = {"model": job.model, "input": job.input}
            surprise = SubmitOutcomeUnknownError(job.model, payload, exc)
            await book.end(job, lambda: job.outcome_unknown(surprise))
            return
        self._gate.on_success()
        if book.journal is not None:
            with anyio.CancelScope(shield=True):
                await book.journal.after_submit(job, task)
        now = self._clock.monotonic()
        job.submitted(task, monotonic=now)
        seen = self._adoption.submitted(job, task)
        if seen is not task:
            # The verified callback overtook the submit's answer; its token is now spent.
            await self._tracking.task_seen(job, seen)
            return
        await self._tracking.went_in_flight(job, task, now)


def _is_queued(job: Job) -> bool:
    # A call, so that the type checker does not assume the state unchanged across awaits.
    return job.state is JobState.QUEUED
