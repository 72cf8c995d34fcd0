"""Many generation jobs at once: bounded in flight, rate-paced, each result reported once.

The orchestrator is a façade over small parts that share one :class:`~vidgo_async._jobbook.JobBook`
(the live jobs and the one way a job ends): *dispatch* (``_dispatch``: the queue, the
``max_in_flight`` tokens, the submit gate, the submitter pool, the 429 re-queue), *tracking*
(``_tracking``: the one poller's handler around the decision table of ``_polling``) and
*adoption* (``_adoption``: unknown submits wait ``in_doubt`` for their callback). Inside,
one anyio task group runs the submitters and the poller. Jobs are
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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from ._adoption import Adoption
from ._client import validated_submit
from ._config import PollPolicy, to_seconds
from ._dispatch import DEFAULT_MAX_CONCURRENT_SUBMITS, Dispatcher, report_unrecorded
from ._gates import RateGate
from ._inputs import ModelInput
from ._intake import JobIntake
from ._jobbook import JobBook, JobHandle, JobRecorder
from ._jobs import GenerationRequest, Job, JobEvent, JobResult, JobState, Progress
from ._journal_api import JournalLike
from ._lazy import LazyBatch, check_requests
from ._models import Task
from ._resume import JournalRecorder
from ._scheduler import DEFAULT_MAX_CONCURRENT_POLLS
from ._tracking import Tracking

if TYPE_CHECKING:
    from ._client import VidgoClient
    from .webhooks import CallbackReceiver

__all__ = ["DEFAULT_MAX_CONCURRENT_SUBMITS", "JobHandle", "JobRecorder", "Orchestrator"]

logger = logging.getLogger("vidgo_async")


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
        journal: where transitions are made durable: a journal (``Journal.open(...)``,
            SQLite or PostgreSQL; wrapped in a :class:`JournalRecorder`) or a
            :class:`JobRecorder` (e.g. ``JournalRecorder(journal, retry_unknown=True)``).
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
        journal: JobRecorder | JournalLike | None = None,
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
        self._clock = clock = client.clock
        self._poll = poll if poll is not None else client.poll
        timeout = self._poll.timeout if job_timeout is None else to_seconds(job_timeout)
        if timeout is not None and not timeout > 0:
            raise ValueError(
                f"job_timeout must be a positive number of seconds (got {job_timeout!r})"
            )
        self.max_in_flight = max_in_flight
        self.submit_gate = RateGate(submit_rate, clock=clock, name="submit")
        self.status_gate = RateGate(status_rate, clock=clock, name="status")
        self._on_event = on_event
        if isinstance(journal, JournalLike):
            journal = JournalRecorder(journal)
        self._journal = journal
        self._receiver = receiver
        if receiver is not None and callback_base_url is not None:
            receiver.registry.set_base_url(callback_base_url)
        book = self._book = JobBook(
            clock=clock, limiter=anyio.CapacityLimiter(max_in_flight), journal=journal
        )
        self._tracking = Tracking(
            book,
            fetch=client.query_status,
            reader=client.status_reader,
            gate=self.status_gate,
            clock=clock,
            poll=self._poll,
            job_timeout=timeout,
            budget=client.retry_budget,
            max_concurrent=max_concurrent_polls,
        )
        self._adoption = Adoption(book, self._tracking, receiver)
        # 429s on submit are the orchestrator's to handle (re-queue behind the shared gate),
        # so its submits are not retried on 429 inside the client.
        retry = client.retry
        statuses = retry.retry_statuses - {429}
        self._dispatcher = Dispatcher(
            book,
            self._tracking,
            self._adoption,
            # Each job's input was validated when the job was made: sent as it is.
            submit=validated_submit(client),
            # The attrs plugin cannot type a field whose converter is the frozenset class.
            retry=attrs.evolve(retry, retry_statuses=statuses),  # type: ignore[arg-type]
            gate=self.submit_gate,
            clock=clock,
            poll=self._poll,
            budget=client.retry_budget,
            max_in_flight=max_in_flight,
        )
        self._intake = JobIntake(
            book,
            clock=clock,
            on_event=on_event,
            receiver=receiver,
            subscriber=self._adoption.on_callback,
            allow_unknown_models=client.allow_unknown_models,
            allow_insecure_callbacks=client.allow_insecure_callbacks,
        )
        self._batches: set[LazyBatch] = set()
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
        self._task_group = self._book.task_group = task_group
        self._dispatcher.start(task_group)
        task_group.start_soon(self._tracking.scheduler.run)
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
        self._closed = self._book.closed = True
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
        book = self._book
        for batch in self._batches:  # a builder cancelled before it ran leaves them unbuilt
            batch.finish("the orchestrator stopped before the job was submitted")
        for job in list(book.live.values()):
            if job.state is JobState.QUEUED and job.task is None:
                recorded = book.is_recorded(job)
                book.cancel_queued(job, "the orchestrator stopped before the job was submitted")
                if recorded:
                    await book.record_end(job)
            elif job.state is JobState.IN_DOUBT:
                # No callback revealed its task before the stop: the outcome stays unknown.
                await book.end(job, _unknown_outcome(job))
        # In flight, and re-attached tasks still queued for a token: their tasks exist and
        # go on (abandoned, never cancelled). Jobs abandoned earlier (their handle dropped
        # them) are released already and not abandoned twice.
        in_flight = [
            job
            for job in book.live.values()
            if job in book.done
            and (
                job.state is JobState.IN_FLIGHT
                or (job.state is JobState.QUEUED and job.task is not None)
            )
        ]
        for job in in_flight:
            if job in book.unrecorded and book.journal is not None and job.task is not None:
                # Its task id never reached the journal: one more try, so that a rerun
                # polls the task rather than leaving the job in doubt.
                try:
                    await book.journal.after_submit(job, job.task)
                except Exception as exc:
                    report_unrecorded(job, job.task, exc)
            job.abandon()
            book.release(job, keep=True)
        if in_flight and logger.isEnabledFor(logging.WARNING):
            logger.warning(
                "vidgo orchestrator stopped with %d job(s) in flight; their tasks go on (and are "
                "billed) on the server: %s",
                len(in_flight),
                ", ".join([f"{job.key}={job.task_id}" for job in in_flight]),
            )

    # -- public API --------------------------------------------------------------------

    def start(self, request: GenerationRequest, *, deadline: float | None = None) -> JobHandle:
        """Queue one job and return its handle at once (await ``handle.result()`` later).

        Raises:
            InputValidationError: the input or callback URL breaks a documented rule.
            ValueError: the key is already used by a job that has not ended.
            RuntimeError: the orchestrator is not running.
        """
        if self._task_group is None or self._closed:
            self._check_running()  # raises
        job = self._intake.new_job(request)
        return self._enqueue(job, None if deadline is None else self._deadline_at(deadline))

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
        batch = self._start_many(self._listed(requests), deadline)
        try:
            await batch.built.wait()
            for job in batch.jobs:
                await self._book.wait_done(job)
        except anyio.get_cancelled_exc_class():
            batch.stop("the run was cancelled")
            raise
        return [job.result() for job in batch.jobs]

    async def as_completed(
        self, requests: Iterable[GenerationRequest], *, deadline: float | timedelta | None = None
    ) -> AsyncIterator[JobResult]:
        """Run every request and yield each result as its job ends (see :meth:`run`).

        Leaving the loop early does not stop jobs already submitted; leave the
        orchestrator's block to stop everything.
        """
        listed = self._listed(requests)
        send, receive = anyio.create_memory_object_stream[JobResult](max(1, len(listed)))
        with send, receive:

            def deliver(ended: Job) -> None:
                # The consumer may have left the loop (and closed the stream) already.
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    send.send_nowait(ended.result())

            def built(job: Job) -> None:
                self._book.when_done(job, deliver)

            self._start_many(listed, deadline, on_built=built)
            for _ in listed:
                yield await receive.receive()

    def attach(
        self, request: GenerationRequest, task: Task, *, deadline: float | None = None
    ) -> JobHandle:
        """Follow a task submitted earlier (e.g. found in a journal) without submitting again.

        The job takes a ``max_in_flight`` token like any other and is polled until it ends.
        Its task exists, so it never ends ``cancelled``: dropped before its turn (its
        handle's ``cancel()``, or the orchestrator stopping) it is abandoned in flight with
        its task id, like a submitted job at a stop, and a rerun polls it.
        """
        self._check_running()
        job = self._intake.new_job(request)
        self._adoption.attached(job, task)  # bound like a submitted job, polled normally
        job.task = task  # the dispatcher sees the task and attaches instead of submitting
        if self._journal is not None:
            self._book.recorded.add(job)  # its end is journaled like a submitted job's
        return self._enqueue(job, self._deadline_at(deadline))

    def poke(self, key: str) -> bool:
        """Poll the job named ``key`` now (e.g. on a hint it ended); return whether it is polled."""
        job = self._book.live.get(key)
        return job is not None and self._tracking.scheduler.poke(job)

    @property
    def polls(self) -> int:
        """Status queries the orchestrator's poller has sent."""
        return self._tracking.scheduler.polls

    def snapshot(self) -> Progress:
        """Return how many jobs are in each state now."""
        return self._book.progress()

    def unfinished(self) -> list[JobResult]:
        """Return the jobs that have not ended (after a stop: the ones still in flight)."""
        return [job.result() for job in self._book.live.values()]

    # -- creating jobs -----------------------------------------------------------------

    def _check_running(self) -> None:
        if self._task_group is None or self._closed:
            raise RuntimeError(
                "the Orchestrator is not running: use it as `async with Orchestrator(client) as orch:`"
            )

    def _deadline_at(self, deadline: float | timedelta | None) -> float | None:
        """The monotonic time a deadline given in seconds from now ends at."""
        return None if deadline is None else self._clock.monotonic() + to_seconds(deadline)

    def _enqueue(self, job: Job, deadline_at: float | None) -> JobHandle:
        book = self._book
        book.live[job.key] = job
        book.done[job] = None  # not ended; its event is made by its first waiter
        if deadline_at is not None:
            job.deadline = deadline_at
            self._tracking.scheduler.set_deadline(job, deadline_at)
        self._dispatcher.enqueue(job)
        return JobHandle(book, job)

    def _listed(self, requests: Iterable[GenerationRequest]) -> list[GenerationRequest]:
        """The requests as a list, checked (types, keys) before anything is queued."""
        self._check_running()
        listed = list(requests)
        check_requests(listed, self._book.live.keys())
        return listed

    def _start_many(
        self,
        listed: list[GenerationRequest],
        deadline: float | timedelta | None,
        *,
        on_built: Callable[[Job], None] | None = None,
    ) -> LazyBatch:
        """Build the jobs of checked requests in the background, a slice at a time."""
        at = self._deadline_at(deadline)  # one deadline for the whole batch, from now

        def enqueue(job: Job) -> None:
            self._enqueue(job, at)

        batch = LazyBatch(
            listed,
            intake=self._intake,
            book=self._book,
            enqueue=enqueue,
            room=self._dispatcher.wait_for_room,
            on_built=on_built,
        )
        batches = self._batches
        batches.add(batch)

        async def build() -> None:
            try:
                await batch.build()
            finally:
                batches.discard(batch)

        assert self._task_group is not None  # noqa: S101 - checked by _listed
        self._task_group.start_soon(build)
        return batch


def _unknown_outcome(job: Job) -> Callable[[], None]:
    """The transition that ends an in-doubt job ``unknown`` with the error it waits on."""
    error = job.error
    assert error is not None  # noqa: S101 - an in-doubt job carries its error

    def transition() -> None:
        job.outcome_unknown(error)

    return transition


def _leaves(error: BaseException) -> list[BaseException]:
    """Flatten an exception group into its leaf exceptions (a plain exception is one leaf)."""
    nested = getattr(error, "exceptions", None)
    if not isinstance(nested, tuple):
        return [error]
    leaves: list[BaseException] = []
    for inner in nested:
        leaves.extend(_leaves(inner))
    return leaves
