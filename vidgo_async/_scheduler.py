"""The one poller: two heaps of next-due times (urgent, routine) for every waiting job, one timer.

No job owns a sleeping coroutine. The scheduler keeps one entry per due poll in two
heaps and a fixed pool of ``max_concurrent`` workers pulls from them: one idle worker
sleeps until the earliest entry, the others rest; a worker takes a due entry, a turn from
the shared status gate, and issues the query itself (no task, semaphore or cancel scope per
poll). The *urgent* heap holds polls of jobs that may have ended (due at or past their
expected end, :meth:`PollTracker.urgent_from`), deadlines and pokes; the *routine* heap
the polls that merely check on a job. A due urgent entry always goes first, so when polls
fall behind (the status rate cannot serve every job's checks) the polls that can see an
end are spent first, however long the backlog; a routine check whose job reaches its
expected end while it waits is also in the urgent heap, at that time, so it never waits
behind younger routine checks. Each answer reschedules its job from the pure poll schedule
(``PollState``); a callback (or anything else) can move a job's entry to "now" with
:meth:`Scheduler.poke`. So 10 000 waiting jobs cost one timer and two heaps, and never
burst the status endpoint.

A job that just went in flight is not given its watch at once: it waits among the
*arrivals* (:mod:`vidgo_async._arrivals`), and its watch is made, as of the time it went in
flight, when its first poll nears (``min_interval`` after that time at the soonest) or when a
poke or its deadline needs it. A burst of submits pays for its polls' bookkeeping when the
polls come, not while it submits (the work moves, it does not go away); a job that ends
before then never pays for it; and every poll is due exactly when it would have been.

A heap entry is one ``int``, ``due`` in microseconds shifted over a sequence number, so it
sorts as ``(due, seq)`` would; a dict maps the live entries to their watch or deadline, and
an entry it no longer holds is stale, dropped when it reaches the top. An int is not an
object the garbage collector tracks: entries kept as tuples were two more tracked objects
per waiting job, and every collection made while requests are in flight walks them.

What an answer means is not decided here: each job's :class:`~vidgo_async._polling.PollTracker`
(the one decision table) turns every answer or error into the next step, and the handler
applies it. Errors of one status query never fail a job: they are polled again later (a 429
or a timeout also slows the shared gate for everyone) or, when the answer says nothing about
the task any more (401/403, another 4xx, a redirect, a 404 past the grace), the job is
handed to ``handler.lost``: its task id is kept, it is never failed.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Protocol

import anyio

from ._arrivals import Arrivals
from ._config import PollPolicy
from ._errors import TaskLostError, VidgoError
from ._gates import RateGate
from ._jobs import Job
from ._models import Task
from ._polling import GOING_ON, PollTracker, Step, StepKind

__all__ = ["DEFAULT_MAX_CONCURRENT_POLLS", "PollHandler", "Scheduler"]

logger = logging.getLogger("vidgo_async")

DEFAULT_MAX_CONCURRENT_POLLS = 16

Fetch = Callable[[str], Awaitable[tuple[Task, "float | None"]]]
# One task's reusable status query (``client.status_reader``): ``await read()`` asks once.
Read = Callable[[], Awaitable[tuple[Task, "float | None"]]]


class SchedulerClock(Protocol):
    """What the scheduler needs of a clock (``vidgo_async._clock.Clock`` fits)."""

    rng: random.Random

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class Budget(Protocol):
    """The client's retry budget (``_retry.RetryBudget``)."""

    tokens: int
    capacity: int

    @property
    def exhausted(self) -> bool: ...

    def try_acquire(self, *, timeout: bool = False) -> bool: ...

    def record_success(self) -> None: ...


class PollHandler(Protocol):
    """Who decides what an answer means for a job (the orchestrator)."""

    async def task_seen(self, job: Job, task: Task) -> bool:
        """Take a fresh task for ``job``; return ``True`` to keep polling it."""

    def task_goes_on(self, job: Job, task: Task) -> bool:
        """Take a fresh task the decision table says goes on; return ``True`` to keep polling.

        The usual answer of every poll, so it is synchronous: no coroutine per answer.
        """

    async def lost(self, job: Job, error: TaskLostError) -> None:
        """The job's task can no longer be read (401/403, 4xx, 3xx, 404 past the grace)."""

    async def deadline_passed(self, job: Job) -> None:
        """The job's deadline passed before it ended (a final poll, if any, came first)."""


class _Watch(PollTracker):
    """The poll record of one in-flight job: its decision table and the scheduler's marks.

    One object per watched job (the tracker, its schedule and these marks), not three: a
    job in flight keeps it for minutes, so every object it holds is one more for the garbage
    collector to walk.
    """

    __slots__ = ("active", "due_key", "end_key", "epoch", "final", "job", "learns", "poked", "read")

    def __init__(
        self,
        job: Job,
        task_id: str,
        policy: PollPolicy,
        started_at: float,
        *,
        budget: Budget | None,
        rng: random.Random,
        window: tuple[float, float] | None,
        learns: bool,
    ) -> None:
        PollTracker.__init__(
            self,
            task_id,
            policy,
            started_at,
            submitted_at=started_at,
            budget=budget,
            rng=rng,
            window=window,
        )
        self.job = job
        self.read: Read | None = None  # the job's status query, made at its first poll
        self.learns = learns  # re-aimed by the expected window (see Scheduler.relearn)
        self.epoch = -1  # the scheduler's window epoch it was last aimed at
        # Its live heap entries: the next poll, and its promotion at the expected end.
        self.due_key: int | None = None
        self.end_key: int | None = None
        self.active = True
        self.poked = False
        self.final = False


class _Deadline:
    """A deadline timer of one job: live while its heap entry ``key`` is."""

    __slots__ = ("job", "key")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.key = 0


# Arrivals whose watches the workers make in one event-loop turn at most (each take makes
# its share): a burst of 100 000 submits never holds the event loop for all its watches.
_ARRIVALS_PER_TURN = 256
_TICKS = 1e6  # per second: an entry's due is kept to the microsecond
_SEQ_BITS = 40
_SEQ_MASK = (1 << _SEQ_BITS) - 1
# Dues this far away (about 142 years) are "never": the timer sleeps until woken.
_NEVER_TICKS = 1 << 52
_NEVER = _NEVER_TICKS / _TICKS


def _due_of(key: int) -> float:
    """An entry's due time, floored to the microsecond: what the timer sleeps until and
    what a take compares with the clock, so that a worker woken then finds it due."""
    ticks = key >> _SEQ_BITS
    return math.inf if ticks >= _NEVER_TICKS else ticks / _TICKS


class Scheduler:
    """Poll every in-flight job through one timer and one shared status gate.

    Args:
        fetch: one status query without retries (``client.query_status``).
        handler: told about every answer, failure and deadline.
        gate: the shared status-rate gate.
        clock: the clock to read and sleep on.
        poll: the default poll policy.
        max_concurrent: status queries on the wire at once.
        budget: the client's retry budget; when empty, errors back off to the slowest rate.
        expected: the (soonest, latest) seconds a job is expected to take, asked at every
            answer so that polls follow what the batch has learned (``None``: not known).
        notified: ``expected`` changes only when :meth:`relearn` is called, so it is asked
            again only at the first answer after that call, not at every answer.
        reader: makes one job's reusable status query from its task id
            (``client.status_reader``: an unchanged answer is not decoded again); without
            it each poll calls ``fetch``.
    """

    def __init__(
        self,
        fetch: Fetch,
        handler: PollHandler,
        *,
        gate: RateGate,
        clock: SchedulerClock,
        poll: PollPolicy,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT_POLLS,
        budget: Budget | None = None,
        expected: Callable[[Job], tuple[float, float] | None] | None = None,
        notified: bool = False,
        reader: Callable[[str], Read] | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1 (got {max_concurrent!r})")
        self._fetch = fetch
        self._reader = reader
        self._handler = handler
        self._gate = gate
        self._clock = clock
        self._poll = poll
        self._budget = budget
        self._expected = expected
        # Bumped by relearn(); without notices every answer asks ``expected`` again.
        self._epoch = 0
        self._notified = notified
        self._workers = max_concurrent
        self._urgent: list[int] = []
        self._routine: list[int] = []
        self._heaps = (self._urgent, self._routine)  # in the order they are served
        self._entries: dict[int, _Watch | _Deadline] = {}  # the live heap entries
        self._idle: anyio.Event | None = None
        self._timer_held = False
        self._seq = 0
        self._watches: dict[Job, _Watch] = {}
        # Jobs in flight whose watch is not made yet; the soonest a first poll comes after
        # its job went in flight is begin's clamp.
        self._arrivals: Arrivals[Job] = Arrivals(min(poll.min_interval, poll.max_interval))
        self._arrivals_per_take = max(1, _ARRIVALS_PER_TURN // max_concurrent)
        self._deadlines: dict[Job, _Deadline] = {}
        self._wake: anyio.CancelScope | None = None
        self._sleep_until = math.inf
        self.polls = 0

    def __len__(self) -> int:
        return len(self._watches) + len(self._arrivals)

    def is_watching(self, job: Job) -> bool:
        """Whether ``job`` is being polled."""
        return job in self._watches or job in self._arrivals

    # -- registration (synchronous, cheap) ------------------------------------------

    def watch(
        self,
        job: Job,
        *,
        policy: PollPolicy | None = None,
        first_delay: float | None = None,
        window: tuple[float, float] | None = None,
        now: float | None = None,
    ) -> None:
        """Start polling an in-flight job (its ``task_id`` and ``submitted_mono`` are set).

        Args:
            policy: a poll policy for this job (e.g. a slow fallback when a callback is due).
            first_delay: seconds before the first query; by default the policy's schedule.
            window: the (soonest, latest) seconds the job is expected to take, to aim
                polls by when its progress says nothing (by default the ``expected`` one;
                a watch with its own ``policy`` has none unless given).
            now: the clock's monotonic time, when the caller has just read it.
        """
        task = job.task  # the task watched: its id, and the answer held
        if task is None:
            raise ValueError(f"job {job.key!r} has no task id to poll")
        if now is None:
            now = self._clock.monotonic()
        arrivals = self._arrivals
        arrivals.pop(job)  # watched anew: its queued place is stale
        if (
            policy is None
            and first_delay is None
            and window is None
            and task.status in GOING_ON
            and job not in self._watches
        ):
            # The usual job, just in flight: its watch is made when its first poll nears.
            arrivals.add(job, now)
            if now + arrivals.lead < self._sleep_until and self._wake is not None:
                self._wake.cancel()
            return
        self._begin(job, task, now, policy=policy, first_delay=first_delay, window=window)

    def _begin(
        self,
        job: Job,
        task: Task,
        now: float,
        *,
        policy: PollPolicy | None = None,
        first_delay: float | None = None,
        window: tuple[float, float] | None = None,
    ) -> _Watch:
        """Make ``job``'s watch as of ``now`` and queue its first poll (see :meth:`watch`)."""
        started = job.submitted_mono
        if started is None:
            started = now
        expected = self._expected
        learns = window is None and policy is None and expected is not None
        if learns and expected is not None:
            window = expected(job)
        watch = _Watch(
            job,
            task.task_id,
            policy or self._poll,
            started,
            budget=self._budget,
            rng=self._clock.rng,
            window=window,
            learns=learns,
        )
        if self._notified:
            watch.epoch = self._epoch
        previous = self._watches.get(job)
        if previous is not None:
            previous.active = False
            self._unqueue(previous)
        self._watches[job] = watch
        begun = watch.begin(now, task)  # the task held is the one watched
        # An end (the task held has ended) is seen at the first poll: the handler decides.
        delay = 0.0 if isinstance(begun, Step) else begun
        if first_delay is not None:
            delay = first_delay
        self._schedule(watch, now, now + max(0.0, delay))
        return watch

    def _arrived(self, now: float) -> None:
        """Make the watches of arrivals whose first poll nears by ``now`` (this take's share).

        Each is made as of the time its job went in flight, so its first poll is due when
        it would have been had the watch been made then (if that has passed: at once).
        """
        for job, went in self._arrivals.take_due(now, self._arrivals_per_take):
            task = job.task
            if task is not None:
                self._begin(job, task, went)

    def _watch_of(self, job: Job) -> _Watch | None:
        """``job``'s watch, made now if it is still an arrival; ``None`` if not watched."""
        watch = self._watches.get(job)
        if watch is None:
            went = self._arrivals.pop(job)
            task = job.task
            if went is not None and task is not None:
                watch = self._begin(job, task, went)
        return watch

    def set_deadline(self, job: Job, when: float) -> None:
        """Call ``handler.deadline_passed(job)`` at monotonic ``when`` unless it ended first.

        An in-flight job gets one final status query at its deadline before it is declared
        timed out, so a job that ended just before is not misreported.
        """
        old = self._deadlines.get(job)
        if old is not None:
            self._entries.pop(old.key, None)
        timer = _Deadline(job)
        self._deadlines[job] = timer
        timer.key = self._push(self._urgent, when, timer)

    def poke(self, job: Job) -> bool:
        """Move ``job``'s next status query to now; return whether it is being polled."""
        watch = self._watch_of(job)
        if watch is None:
            return False
        watch.poked = True
        self._unqueue(watch)
        watch.due_key = self._push(self._urgent, self._clock.monotonic(), watch)
        return True

    def relearn(self) -> None:
        """The expected windows may have changed: re-aim learning watches at their next answer."""
        self._epoch += 1

    def forget(self, job: Job) -> None:
        """Stop polling ``job`` and drop its deadline (it ended some other way)."""
        self._arrivals.pop(job)
        watch = self._watches.pop(job, None)
        if watch is not None:
            watch.active = False
            self._unqueue(watch)
        timer = self._deadlines.pop(job, None)
        if timer is not None:
            self._entries.pop(timer.key, None)

    def _schedule(self, watch: _Watch, now: float, due: float) -> None:
        """Queue ``watch``'s next poll at ``due``: urgent, or routine until its expected end.

        The watch has no live entry (taken, or dropped by :meth:`_unqueue`).
        """
        urgent_from = watch.urgent_from(now)
        if urgent_from is not None and due >= urgent_from:
            watch.due_key = self._push(self._urgent, due, watch)
            return
        watch.due_key = self._push(self._routine, due, watch)
        if urgent_from is not None:
            # If the check still waits at the job's expected end, it becomes urgent there.
            watch.end_key = self._push(self._urgent, urgent_from, watch)

    def _push(self, heap: list[int], due: float, item: _Watch | _Deadline) -> int:
        self._seq = seq = self._seq + 1
        # The entry: ``due`` floored to the microsecond, then ``seq``, in one int.
        ticks = _NEVER_TICKS if due >= _NEVER else math.floor(due * _TICKS)
        key = (ticks << _SEQ_BITS) | (seq & _SEQ_MASK)
        heapq.heappush(heap, key)
        self._entries[key] = item
        if due < self._sleep_until and self._wake is not None:
            self._wake.cancel()
        return key

    def _unqueue(self, watch: _Watch) -> None:
        """Make ``watch``'s queued entries stale (it is taken, rescheduled or forgotten)."""
        entries = self._entries
        if watch.due_key is not None:
            entries.pop(watch.due_key, None)
            watch.due_key = None
        if watch.end_key is not None:
            entries.pop(watch.end_key, None)
            watch.end_key = None

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Poll due jobs until cancelled: ``max_concurrent`` workers share the heaps."""
        async with anyio.create_task_group() as task_group:
            for _ in range(self._workers):
                task_group.start_soon(self._worker)

    async def _worker(self) -> None:
        # One of a fixed pool: no task, semaphore or cancel scope is made per poll, and a
        # due entry is taken without awaiting anything but the gate and the query.
        clock = self._clock
        gate = self._gate
        while True:
            item = self._next(clock.monotonic())
            if item is None:
                item = await self._take()
            if isinstance(item, _Deadline):
                await self._deadline_due(item)
                continue
            issued = gate.try_grant()
            if issued is None:
                issued = await gate.acquire()
            if not item.active:
                continue
            # The whole turn of a poll, in the worker itself (no coroutine per poll of ours
            # but the query): ask once, then apply the answer.
            item.poked = False
            self.polls += 1
            read = item.read
            if read is None:
                # The job's own query, made at its first poll (a job a callback ends has none).
                read = item.read = self._read_for(item.task_id)
            try:
                task, hint = await read()
            except VidgoError as exc:
                await self._failed(item, exc, issued)
                continue
            rest = self._answered(item, task, hint)
            if rest is not None:
                await rest

    def _due(self, now: float) -> _Watch | _Deadline | None:
        """Pop the earliest due urgent entry, else the earliest due routine one."""
        if self._arrivals:
            self._arrived(now)
        entries = self._entries
        for heap in self._heaps:
            while heap and heap[0] not in entries:
                heapq.heappop(heap)  # stale
            # Due as _next_due reads it, so that a worker woken at that time finds it due.
            if heap and _due_of(heap[0]) <= now:
                item = entries.pop(heapq.heappop(heap))
                if type(item) is _Watch:
                    self._unqueue(item)  # taken: its other entry (if any) is stale now
                return item
        return None

    def _next_due(self) -> float:
        """The earliest live entry's due time (``inf``: none), dropping stale heads."""
        entries = self._entries
        earliest = self._arrivals.earliest()
        for heap in self._heaps:
            while heap and heap[0] not in entries:
                heapq.heappop(heap)  # stale
            if heap:
                earliest = min(earliest, _due_of(heap[0]))
        return earliest

    def _next(self, now: float) -> _Watch | _Deadline | None:
        """Pop the next due entry, if any; rouse a resting worker when more is due."""
        item = self._due(now)
        if item is not None and self._idle is not None and self._next_due() <= now:
            self._rouse()  # more is due: let a resting worker take it
        return item

    async def _take(self) -> _Watch | _Deadline:
        """Wait for the next due entry; one idle worker keeps the timer, the others rest."""
        while True:
            if self._timer_held:
                idle = self._idle
                if idle is None:
                    idle = self._idle = anyio.Event()
                await idle.wait()
            elif not await self._keep_timer():
                # Something was due at once, yet may be none: arrivals made into watches
                # whose first polls are later. Let others run before looking again.
                item = self._next(self._clock.monotonic())
                if item is not None:
                    return item
                await anyio.lowlevel.checkpoint()
                continue
            item = self._next(self._clock.monotonic())
            if item is not None:
                return item

    def _rouse(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None:
            idle.set()

    async def _keep_timer(self) -> bool:
        """Sleep until the earliest entry is due (or a push brings one forward).

        Returns whether it slept (``False``: something was due already).
        """
        earliest = self._next_due()
        now = self._clock.monotonic()
        if earliest <= now:
            return False
        self._timer_held = True
        self._sleep_until = earliest
        try:
            with anyio.CancelScope() as scope:
                self._wake = scope
                if earliest < math.inf:
                    await self._clock.sleep(earliest - now)
                else:
                    await anyio.sleep_forever()
        finally:
            self._wake = None
            self._sleep_until = math.inf
            self._timer_held = False
            self._rouse()
        return True

    async def _deadline_due(self, timer: _Deadline) -> None:
        job = timer.job
        self._deadlines.pop(job, None)
        watch = self._watch_of(job)
        if watch is not None:
            # One last look before calling it a timeout.
            watch.final = True
            self.poke(job)
            return
        await self._handler.deadline_passed(job)

    def _read_for(self, task_id: str) -> Read:
        """One job's status query (``task_id`` is the job's: watch() took it from its task)."""
        if self._reader is not None:
            return self._reader(task_id)
        return partial(self._fetch, task_id)

    def _answered(
        self, watch: _Watch, task: Task, hint: float | None
    ) -> Coroutine[Any, Any, None] | None:
        """Apply one job's status answer; return what is left to await (an end), if anything.

        The usual answer (the task goes on: reschedule it) is applied here, synchronously.
        """
        job = watch.job
        now = self._clock.monotonic()
        self._gate.on_success(now)
        budget = self._budget
        if budget is not None and watch.errors == 0 and budget.tokens != budget.capacity:
            budget.record_success()  # a full bucket has nothing to refund
        if not watch.active:
            return None  # ended some other way while the query was on the wire
        if watch.learns and watch.epoch != self._epoch and self._expected is not None:
            watch.expect(self._expected(job))
            if self._notified:
                watch.epoch = self._epoch  # asked again only after the next relearn()
        decided = watch.follow(task, now, hint)
        if isinstance(decided, Step):
            if decided.task is not task:
                # Not this task's answer (it names another task): a failed query.
                return self._after_failure(watch, decided)
            return self._ended(watch, task)  # done, failed, lost at the deadline
        if not self._handler.task_goes_on(job, task):
            self.forget(job)
            return None
        if watch.final:
            self.forget(job)
            return self._handler.deadline_passed(job)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "vidgo task %s is %s (progress %s); next poll in %.2f s",
                task.task_id,
                task.status.value,
                task.progress,
                0.0 if watch.poked else decided,
            )
        if watch.due_key is not None:  # a poke while the query was on the wire queued one
            self._unqueue(watch)
        if watch.poked:
            watch.due_key = self._push(self._urgent, now, watch)
        else:
            self._schedule(watch, now, now + decided)
        return None

    async def _ended(self, watch: _Watch, task: Task) -> None:
        """An answer that ends the job: the handler decides, and polling ends."""
        await self._handler.task_seen(watch.job, task)
        if self._still_active(watch):
            self.forget(watch.job)

    async def _failed(self, watch: _Watch, exc: VidgoError, issued: float) -> None:
        """Apply a status query that failed: throttle the gate, retry later or lose the job."""
        step = watch.on_error(exc, self._clock.monotonic())
        if step.throttle:
            self._gate.on_throttle(step.retry_after, issued_at=issued)
        await self._after_failure(watch, step)

    async def _after_failure(self, watch: _Watch, step: Step) -> None:
        """Apply the step after a failed (or misdirected) query: lose the job or ask again."""
        if step.kind is StepKind.LOST:
            error = step.error
            assert isinstance(error, TaskLostError)  # noqa: S101 - lost carries it
            logger.warning(
                "vidgo lost track of task %s of job %r: %s",
                watch.job.task_id,
                watch.job.key,
                error.cause,
            )
            await self._drop(watch, error)
        else:
            await self._retry_later(watch, step)

    @staticmethod
    def _still_active(watch: _Watch) -> bool:
        # A separate call so that the type checker does not assume ``active`` is unchanged
        # across the handler's await.
        return watch.active

    async def _drop(self, watch: _Watch, error: TaskLostError) -> None:
        if not watch.active:
            return
        self.forget(watch.job)
        await self._handler.lost(watch.job, error)

    async def _retry_later(self, watch: _Watch, step: Step) -> None:
        if not watch.active:
            return
        if watch.final:
            self.forget(watch.job)
            await self._handler.deadline_passed(watch.job)
            return
        logger.info(
            "vidgo status query for %s failed (%s); asking again in %.2f s",
            watch.job.task_id,
            step.error,
            step.delay,
        )
        self._unqueue(watch)
        now = self._clock.monotonic()
        self._schedule(watch, now, now + step.delay)
