"""The orchestrator's book of live jobs: who holds a slot, who waits, how each one ends.

Shared by the orchestrator's parts (dispatch, tracking, adoption) so that a job ends in one
way only: :meth:`JobBook.end` makes the terminal transition, records it in the journal,
then frees what the job held (its ``max_in_flight`` token, its poll entry, its callback
token) and wakes its waiters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ._clock import Clock
from ._fallback import DurationEstimator, DurationWindows
from ._jobs import Job, JobAbandonedError, JobResult, JobState, Progress
from ._models import Task

__all__ = ["JobBook", "JobHandle", "JobRecorder", "job_kind"]

logger = logging.getLogger("vidgo_async")


class JobRecorder(Protocol):
    """Where job transitions are made durable (the journal). Each call completes first.

    ``before_submit`` runs before the submit is sent (intent + fingerprint; raising
    ``JobClaimedError`` means another submit or task holds the job: it is not sent),
    ``after_submit`` before the job counts as in flight (the task id), ``after_end`` once
    the job has ended (called for jobs that went through ``before_submit``, for jobs
    whose ``before_submit`` a stop cut short, and for jobs re-attached with
    ``Orchestrator.attach``; an intent is withdrawn only by the recorder that wrote it).
    """

    async def before_submit(self, job: Job) -> None: ...

    async def after_submit(self, job: Job, task: Task) -> None: ...

    async def after_end(self, job: Job) -> None: ...


class JobHandle:
    """A started job: await its result later. Returned by ``Orchestrator.start``."""

    __slots__ = ("_book", "_job")

    def __init__(self, book: JobBook, job: Job) -> None:
        self._book = book
        self._job = job

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
        return self._job not in self._book.done

    async def result(self) -> JobResult:
        """Wait for the job to end and return its result (never raises for the job's failure)."""
        if self.done():
            await anyio.lowlevel.checkpoint()  # as the wait on an event already set was
        else:
            await self._book.wait_done(self._job)
        return self._job.result()

    async def wait(self) -> Task:
        """Wait for the job to end; return the finished task or raise the job's error."""
        return (await self.result()).unwrap()

    def cancel(self) -> bool:
        """Drop the job if it was not submitted yet; return whether it was dropped.

        A re-attached job (``Orchestrator.attach``) still waiting for its turn is dropped
        too, but its task exists: it ends abandoned (``in_flight``, with its task id), as
        in-flight jobs do when the orchestrator stops, never ``cancelled``.
        """
        return self._book.cancel_queued(self._job, "the job was cancelled")


def job_kind(job: Job) -> tuple[str, object, object]:
    """The kind of a job whose duration is learned: its model, resolution and video length."""
    data = job.input
    return (job.model, data.get("resolution"), data.get("duration"))


class JobBook:
    """The live jobs of one orchestrator and the one way they end.

    Args:
        clock: the orchestrator's clock.
        limiter: the ``max_in_flight`` tokens.
        journal: the recorder, if any.
    """

    def __init__(
        self, *, clock: Clock, limiter: anyio.CapacityLimiter, journal: JobRecorder | None
    ) -> None:
        self.clock = clock
        self.limiter = limiter
        self.journal = journal
        # Whether the recorder completes its writes under a cancel by itself
        # (``JournalRecorder.cancel_safe``); any other is called inside a shielded scope.
        self.journal_cancel_safe = getattr(journal, "cancel_safe", False) is True
        self.live: dict[str, Job] = {}
        # The jobs not ended yet, each with the event its waiters wait on (made by the
        # first waiter: most jobs of a batch have none).
        self.done: dict[Job, anyio.Event | None] = {}
        self.done_callbacks: dict[Job, list[Callable[[Job], None]]] = {}
        self.holding: set[Job] = set()
        self.recorded: set[Job] = set()
        # In flight with a task id the journal could not write (tried again at the stop).
        self.unrecorded: set[Job] = set()
        self.counts = dict.fromkeys(JobState, 0)
        self.durations = DurationEstimator()
        self.windows = DurationWindows()
        # Called with every job that is released (the poller forgets it, the callback
        # registry drops its token).
        self.release_hooks: list[Callable[[Job], None]] = []
        # Called whenever ``windows`` learned from an ended job (the poller re-aims by it).
        self.learn_hooks: list[Callable[[], None]] = []
        self.task_group: anyio.abc.TaskGroup | None = None
        self.closed = False
        # Ends recorded off their caller's turn (see ``end``): the jobs waiting for it, the
        # event the recording task rests on, and whether that task runs.
        self._ending: list[Job] = []
        self._ending_wake: anyio.Event | None = None
        self._ender_running = False

    def is_recorded(self, job: Job) -> bool:
        """Whether the job's end goes to the journal."""
        return self.journal is not None and job in self.recorded

    def progress(self) -> Progress:
        """Return how many jobs are in each state now."""
        counts = self.counts
        return Progress(
            queued=counts[JobState.QUEUED],
            submitting=counts[JobState.SUBMITTING],
            in_doubt=counts[JobState.IN_DOUBT],
            in_flight=counts[JobState.IN_FLIGHT],
            finished=counts[JobState.FINISHED],
            failed=counts[JobState.FAILED],
            timeout=counts[JobState.TIMEOUT],
            unknown=counts[JobState.UNKNOWN],
            cancelled=counts[JobState.CANCELLED],
            lost=counts[JobState.LOST],
        )

    def hold(self, job: Job) -> None:
        """Note that ``job`` holds a ``max_in_flight`` token (taken on its behalf)."""
        self.holding.add(job)

    def unhold(self, job: Job) -> None:
        """Give back the token ``job`` holds, if any (e.g. re-queued after a 429)."""
        if job in self.holding:
            self.holding.discard(job)
            self.limiter.release_on_behalf_of(job)

    def release(self, job: Job, *, keep: bool = False) -> None:
        """Free what a job held once it ended: its token, its poll entry, its waiters."""
        self.unhold(job)
        for hook in self.release_hooks:
            hook(job)
        if not keep:
            self.live.pop(job.key, None)
        self.recorded.discard(job)
        self.unrecorded.discard(job)
        done = self.done.pop(job, None)
        if done is not None:
            done.set()
        for callback in self.done_callbacks.pop(job, ()):
            callback(job)

    async def wait_done(self, job: Job) -> None:
        """Wait until ``job`` has ended (at once if it has, or was never queued)."""
        if job not in self.done:
            return
        done = self.done[job]
        if done is None:
            done = self.done[job] = anyio.Event()
        await done.wait()

    def expected_window(
        self, job: Job, seed: tuple[float, float] | None
    ) -> tuple[float, float] | None:
        """The (soonest, latest) seconds a job like ``job`` is expected to take, if known."""
        data = job.input  # job_kind(job), without its two frames (once per watch)
        return self.windows.window(
            (job.request.model, data.get("resolution"), data.get("duration")), seed
        )

    def when_done(self, job: Job, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` once the job ends (at once if it has)."""
        if job in self.done:
            self.done_callbacks.setdefault(job, []).append(callback)
        else:
            callback(job)  # already ended (or rejected before it was queued)

    async def end(self, job: Job, transition: Callable[[], None]) -> None:
        """Make one terminal transition, record it, then wake the job's waiters."""
        transition()
        job.revealed = None
        if job.submitted_mono is not None and job.state in (JobState.FINISHED, JobState.FAILED):
            took = self.clock.monotonic() - job.submitted_mono
            self.durations.observe(took)
            self.windows.observe(job_kind(job), took)
            for hook in self.learn_hooks:
                hook()
        if self.is_recorded(job):
            if self.journal_cancel_safe and self.task_group is not None and not self.closed:
                self._record_later(job)
                return
            await self.record_end(job, log_errors=True)
        self.release(job)

    def _record_later(self, job: Job) -> None:
        """Have the recording task record ``job``'s end, then release it.

        The caller (one of the few poll workers, or a submitter) goes on at once instead
        of waiting out the commit; the job's waiters still wake, and its token frees, only
        once its end is durable. One long-lived task, not one per job: the ends it takes
        together are recorded concurrently (their writes share a commit).
        """
        self._ending.append(job)
        wake = self._ending_wake
        if wake is not None:
            self._ending_wake = None
            wake.set()
        elif not self._ender_running:
            assert self.task_group is not None  # noqa: S101 - checked by the caller
            self._ender_running = True
            self.task_group.start_soon(self._record_ends)

    async def _record_ends(self) -> None:
        """Record the ends ``_record_later`` queued until cancelled; then the rest, shielded."""
        try:
            while True:
                if not self._ending:
                    wake = self._ending_wake = anyio.Event()
                    await wake.wait()
                await self._record_queued()
        finally:
            self._ending_wake = None
            with anyio.CancelScope(shield=True):
                await self._record_queued()
            self._ender_running = False

    async def _record_queued(self) -> None:
        while self._ending:
            ending, self._ending = self._ending, []
            with anyio.CancelScope(shield=True):  # each write also waits out its commit
                await asyncio.gather(*[self._record_then_release(job) for job in ending])

    async def _record_then_release(self, job: Job) -> None:
        try:
            await self.record_end(job, log_errors=True)
        finally:
            self.release(job)

    def cancel_queued(self, job: Job, reason: str) -> bool:
        """Drop a job not yet submitted; return whether it was dropped.

        A queued job that holds a task (re-attached, waiting for a token) is not cancelled:
        its task was created and goes on, so it is abandoned like an in-flight job at a stop
        (``in_flight``, its task id kept, nothing new journaled: a rerun polls it) and stays
        among the live jobs, so its key cannot be submitted again while it runs.
        """
        if job.state is not JobState.QUEUED:
            return False
        if job.task is not None:
            job.abandon(reason)
            self.release(job, keep=True)
            return True
        job.cancel(JobAbandonedError(job.key, None, reason=reason))
        if self.is_recorded(job) and self.task_group is not None and not self.closed:
            self.task_group.start_soon(self.record_end, job)
        self.release(job)
        return True

    async def record_end(self, job: Job, *, log_errors: bool = False) -> None:
        """Record the job's end in the journal, not cut short by cancellation."""
        journal = self.journal
        assert journal is not None  # noqa: S101 - checked by the caller
        try:
            if self.journal_cancel_safe:
                await journal.after_end(job)
            else:
                with anyio.CancelScope(shield=True):
                    await journal.after_end(job)
        except Exception:
            if not log_errors:
                raise
            logger.exception("vidgo could not record the end of job %r", job.key)
