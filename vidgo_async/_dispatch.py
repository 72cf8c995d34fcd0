"""Dispatch: the queue, the ``max_in_flight`` tokens, the submit gate and the submitter pool.

Queued jobs are taken in order: each holds a ``max_in_flight`` token from the moment its
submit starts until it is seen terminal, and is paced through the shared submit gate. A
fixed pool of *submitter* tasks (as many as the HTTP connection pool has connections: a
job that no submitter has taken stays ``queued``, no request is on the wire for it) sends
them. A submitter takes its next job itself: one submitter at a time holds the *take*
(queue, token, gate turn, in that order), so jobs keep their order, and a submitter that
finishes while the others are busy takes the next job with no task woken and no event
made. A submit refused with 429 created nothing: the job goes back to the head of the
queue behind the gate, which slows everyone down (a job whose deadline passed while its
submit was on the wire times out instead: it is never sent after its deadline).

With a journal, the intent is written before the submit and the task id before the job
counts as in flight. A job that ended while its intent was written is never sent: its
intent is withdrawn. A task id the journal fails to write (disk full, a dropped
connection) is never dropped: it is logged at ERROR, and the job goes on in flight with it
(the API holds the task, so it is not lost; its end is written with the task id), and the
run goes on. Other jobs are not stopped by it: a journal that cannot write stops each new
submit at its intent (that job fails, unsent), so nothing is paid for unrecorded.
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
    APIConnectionError,
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

__all__ = ["DEFAULT_MAX_CONCURRENT_SUBMITS", "Adopter", "Dispatcher", "report_unrecorded"]

logger = logging.getLogger("vidgo_async")

# Submit requests on the wire at once: the client's HTTP connection pool size, so the
# submitter pool never queues on the pool nor leaves a connection idle.
DEFAULT_MAX_CONCURRENT_SUBMITS = 100

# Jobs the take passes over (cancelled, or attached) between two yields to the event loop.
_DISPATCH_BATCH = 32

# Jobs waiting in the queue beyond which a lazy batch stops building (at least this many,
# and at least twice ``max_in_flight`` so that freed tokens never find the queue empty).
_LOOKAHEAD = 1024

# The name anyio would derive from ``Dispatcher._submitter`` (see ``_grow``).
_SUBMITTER_TASK_NAME = f"{__name__}.Dispatcher._submitter"

Submit = Callable[..., Awaitable[Task]]


class Adopter(Protocol):
    """What the dispatcher needs of adoption (``_adoption.Adoption`` fits)."""

    def renew_token(self, job: Job) -> None: ...

    def submitted(self, job: Job, task: Task) -> Task: ...

    async def await_callback(self, job: Job, error: SubmitOutcomeUnknownError) -> bool: ...


class Dispatcher:
    """Submit queued jobs in order, bounded by tokens, the gate and the submitter pool.

    Args:
        book: the orchestrator's jobs.
        tracking: where submitted jobs are tracked.
        adoption: where unknown submits wait for their callback.
        submit: the client's ``submit`` (called with ``retry=`` and ``give_up_at=``).
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
        # Set when a job is queued while the taker waits for one (made by that taker).
        self._queue_ready: anyio.Event | None = None
        # The submitter pool: tasks are started on demand, up to ``max_submitters``.
        self.max_submitters = min(DEFAULT_MAX_CONCURRENT_SUBMITS, max_in_flight)
        self.submitters = 0
        # Submitters not sending: starting, taking, or waiting for their turn to take.
        self._free = 0
        # Whether a submitter holds the take; the others wait in line, each on its event.
        self._taking = False
        self._turns: deque[anyio.Event] = deque()
        self._task_group: anyio.abc.TaskGroup | None = None
        # Lazy batches stop building while this many jobs wait; they resume below half.
        self.lookahead = max(_LOOKAHEAD, 2 * max_in_flight)
        self._room: anyio.Event | None = None

    def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Run the submitters in ``task_group`` (the orchestrator's), from now on."""
        self._task_group = task_group
        self._grow()

    def enqueue(self, job: Job) -> None:
        """Queue a job (submitted, or attached when it already has a task)."""
        self._queue.append(job)
        if self._queue_ready is not None:
            self._wake_taker()
        if self._free < len(self._queue) and self.submitters < self.max_submitters:
            self._grow()

    def _wake_taker(self) -> None:
        """Wake the submitter holding the take if it waits for a job (it found none)."""
        ready = self._queue_ready
        if ready is not None:
            self._queue_ready = None
            ready.set()

    def _grow(self) -> None:
        """Start submitters while fewer are free than jobs wait and the pool is not full.

        A burst of jobs gets its submitters at once (each takes a job itself), so the
        first requests of a batch go out in one event-loop iteration.
        """
        task_group = self._task_group
        if task_group is None:
            return
        while self._free < len(self._queue) and self.submitters < self.max_submitters:
            self.submitters += 1
            self._free += 1
            # A fixed name spares anyio deriving it from the method.
            task_group.start_soon(self._submitter, name=_SUBMITTER_TASK_NAME)

    async def wait_for_room(self) -> None:
        """Wait until fewer than ``lookahead`` jobs wait in the queue (lazy batches' pace)."""
        while len(self._queue) >= self.lookahead:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    async def _submitter(self) -> None:
        """Take the next job and send its submit, one at a time, for the orchestrator's lifetime.

        The submit is sent from this frame, not from a coroutine of its own per job: one
        frame less on the wire for every request. What an error means is applied by
        :meth:`_refused` (and :meth:`_cut_off` for a cancel).
        """
        book = self._book
        while True:
            if self._taking:
                # Another submitter holds the take: wait in line (it hands the take over).
                turn = anyio.Event()
                self._turns.append(turn)
                try:
                    await turn.wait()
                except BaseException:
                    if turn.is_set():
                        self._pass_take()  # handed over, never used: the next one takes
                    else:
                        self._turns.remove(turn)
                    raise
            else:
                self._taking = True
            try:
                job, issued = await self._take()
            finally:
                self._pass_take()
            self._free -= 1
            if self._free < len(self._queue) and self.submitters < self.max_submitters:
                self._grow()  # more jobs wait than submitters are free to take them
            try:
                if job.state is not JobState.QUEUED:  # cancelled or expired since taken
                    continue
                if job.callback_token is not None:  # its time to live starts at the submit
                    self._adoption.renew_token(job)
                if book.journal is not None and not await self._claim(job):
                    continue
                job.begin_submit()
                try:
                    task = await self.submit(
                        job.request.model,
                        job.input,
                        callback_url=job.callback_url,
                        retry=self._retry,
                        # A submit refused before it left is retried, but never past the
                        # job's deadline: a task made then would be paid for and dropped.
                        give_up_at=job.deadline,
                    )
                except anyio.get_cancelled_exc_class() as exc:
                    await self._cut_off(job, exc)
                    raise
                except Exception as exc:
                    await self._refused(job, issued, exc)
                    continue
                now = self._clock.monotonic()
                self._gate.on_success(now)
                recorder = book.journal
                if recorder is not None:
                    try:
                        if book.journal_cancel_safe:
                            await recorder.after_submit(job, task)
                        else:
                            with anyio.CancelScope(shield=True):
                                await recorder.after_submit(job, task)
                    except anyio.get_cancelled_exc_class():
                        # Stopped once the answer came: in flight, so the stop reports the task id.
                        job.submitted(task, monotonic=self._clock.monotonic())
                        raise
                    except Exception as exc:
                        # Whatever the recorder's failure, the task exists and is paid for:
                        # its id is kept on the job and reported, never dropped (and its
                        # write is tried again when the job ends, or at the stop).
                        report_unrecorded(job, task, exc)
                        book.unrecorded.add(job)
                    now = self._clock.monotonic()  # the task id is on disk: in flight from now
                job.submitted(task, monotonic=now)
                tracking = self._tracking
                # Without a callback token or a task a callback revealed (the usual job),
                # adoption has nothing to bind and the submit's answer is the news.
                seen = (
                    task
                    if job.callback_token is None and job.revealed is None
                    else self._adoption.submitted(job, task)
                )
                if seen is not task:
                    # The verified callback overtook the submit's answer; its token is spent.
                    await tracking.task_seen(job, seen)
                elif not tracking.armed(job, task, now):  # the usual answer: no coroutine
                    await tracking.went_in_flight(job, task, now)
            finally:
                self._free += 1

    def _pass_take(self) -> None:
        """Hand the take to the submitter first in line, if any."""
        turns = self._turns
        if turns:
            turns.popleft().set()
        else:
            self._taking = False

    async def _take(self) -> tuple[Job, float]:
        """Take the next queued job that needs a submit; return it with its gate turn.

        Only the submitter holding the take runs this: jobs get tokens and gate turns in
        queue order. Attached jobs (a task already known) are tracked here, not sent.
        """
        book = self._book
        limiter = book.limiter
        queue = self._queue
        skipped = 0
        while True:
            if not queue:
                ready = self._queue_ready = anyio.Event()
                await ready.wait()
                continue
            job = queue.popleft()
            room = self._room
            if room is not None and len(queue) <= self.lookahead // 2:
                self._room = None
                room.set()
            if job.state is not JobState.QUEUED:
                skipped += 1
                if skipped >= _DISPATCH_BATCH:
                    # A long run of cancelled or attached jobs never holds the event loop.
                    skipped = 0
                    await anyio.lowlevel.checkpoint()
                continue
            try:
                # A free token is taken without the limiter's own yield; waiting for one
                # goes through the limiter as usual.
                limiter.acquire_on_behalf_of_nowait(job)
            except anyio.WouldBlock:
                await limiter.acquire_on_behalf_of(job)
                if not _is_queued(job):  # cancelled or expired while waiting for the token
                    limiter.release_on_behalf_of(job)
                    continue
            book.hold(job)
            if job.task is not None:
                self._tracking.attach(job, job.task)
                skipped += 1
                if skipped >= _DISPATCH_BATCH:
                    skipped = 0
                    await anyio.lowlevel.checkpoint()
                continue
            if self._budget.exhausted:
                # An outage: the retry budget is spent. Probe slowly instead of piling up
                # submits whose outcome would be unknown.
                await self._clock.sleep(self._poll.max_interval)
            # A free turn is taken without acquire's checkpoint: the submit awaits next.
            issued = self._gate.try_grant()
            if issued is None:
                issued = await self._gate.acquire()
            if not _is_queued(job):  # cancelled or expired while waiting for the gate
                book.release(job)
                continue
            return job, issued

    async def _claim(self, job: Job) -> bool:
        """Record the intent (the claim) before the submit; return whether to send it."""
        book = self._book
        journal = book.journal
        if journal is None:
            return True
        try:
            await journal.before_submit(job)
        except anyio.get_cancelled_exc_class():
            # The stop cut the intent's write short: the job is never sent. Recording its
            # end (the stop's, for a queued job) withdraws the intent if it was written.
            if job.state is JobState.QUEUED:
                book.recorded.add(job)
            else:
                with anyio.CancelScope(shield=True):
                    await book.record_end(job, log_errors=True)
            raise
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
        if job.state is not JobState.QUEUED:
            # It ended while its intent was written (its deadline, a cancel) and is never
            # sent: recording that end withdraws the intent, so a rerun submits it afresh.
            await book.record_end(job, log_errors=True)
            return False
        book.recorded.add(job)
        # A stop that came while the write finished (a commit, once begun, is waited out) is
        # taken here, before anything is sent: the job stays queued, and the stop ends it
        # ``cancelled`` and withdraws the intent. Inside the submit it would leave it unknown.
        await anyio.lowlevel.checkpoint_if_cancelled()
        return True

    async def _refused(self, job: Job, issued: float, exc: Exception) -> None:
        """Apply a submit that raised: re-queue it (429), wait for its callback, or end it."""
        book = self._book
        # A 429, or a connection that never opened once the deadline passed (the retries
        # stop there): proof that nothing was created, so the job goes back to the queue.
        if isinstance(exc, RateLimitError) or (
            isinstance(exc, APIConnectionError) and not exc.request_sent and job.expired
        ):
            if isinstance(exc, RateLimitError):
                self._gate.on_throttle(exc.retry_after, issued_at=issued)
            job.requeue(exc)
            book.unhold(job)
            if job.expired:
                # Its deadline passed while the submit was on its way: it ends as a queued
                # job whose deadline passed, unsent.
                logger.info("vidgo submit of job %r refused after its deadline: %s", job.key, exc)
                await self._tracking.deadline_passed(job)
                return
            logger.info("vidgo submit of job %r rate limited; re-queued", job.key)
            self._queue.appendleft(job)
            self._wake_taker()
        elif isinstance(exc, SubmitOutcomeUnknownError):
            if isinstance(exc.cause, APITimeoutError):
                self._gate.on_throttle(None, issued_at=issued)
            unknown_error = exc
            if await self._adoption.await_callback(job, unknown_error):
                return
            await book.end(job, lambda: job.outcome_unknown(unknown_error))
        elif isinstance(exc, VidgoError):  # refused before anything was created: this job only
            rejected = exc
            await book.end(job, lambda: job.fail(rejected))
        else:
            # Not a refusal: whether the submit reached the API is unknown, so it is never
            # resubmitted silently (a bug report, not a reason to pay twice).
            logger.error("vidgo submit of job %r failed unexpectedly", job.key, exc_info=exc)
            payload: Mapping[str, Any] = {"model": job.model, "input": job.input}
            surprise = SubmitOutcomeUnknownError(job.model, payload, exc)
            await book.end(job, lambda: job.outcome_unknown(surprise))

    async def _cut_off(self, job: Job, exc: BaseException) -> None:
        """A cancel cut the submit short: whether it created a task is unknown (shielded)."""
        payload: Mapping[str, Any] = {"model": job.model, "input": job.input}
        unknown = SubmitOutcomeUnknownError(job.model, payload, exc)
        with anyio.CancelScope(shield=True):
            await self._book.end(job, lambda: job.outcome_unknown(unknown))


def report_unrecorded(job: Job, task: Task, error: BaseException) -> None:
    """Report a task id the recorder could not write; the job goes on in flight with it."""
    logger.error(
        "vidgo could not record task %s of job %r in the journal: %s. The job goes on and "
        "its end is recorded with the task id if the journal can; until then a rerun reports "
        "the job in doubt: adopt task %s, do not submit it again",
        task.task_id,
        job.key,
        error,
        task.task_id,
    )


def _is_queued(job: Job) -> bool:
    # A call, so that the type checker does not assume the state unchanged across awaits.
    return job.state is JobState.QUEUED
