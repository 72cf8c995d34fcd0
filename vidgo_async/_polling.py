"""What a status answer means, and when to ask again. Pure, no I/O.

:class:`PollTracker` is the one decision table for status answers: fed each observation of
a task (a fresh ``Task`` or the error of a status query) it returns the next :class:`Step`:
``done``, ``failed`` (only when the API said ``failed``), ``lost`` (the task id is known but
its status can no longer be read) or ``again`` after a delay. ``VidgoClient.wait`` and the
orchestrator's scheduler are thin loops around it; nothing else interprets an answer.

===================================  ================================================
observation                          step
===================================  ================================================
task ``finished``                    done
task ``failed``                      failed
task ``not_started``/``running``     again (the schedule below; a server hint wins)
task with an unknown status          lost at once (``unknown_status="raise"``), else again
404 within ``not_found_grace``       again (eventual consistency after a submit)
404 past the grace                   lost
429                                  again after ``Retry-After`` (clamped), throttling
5xx, timeout, connection error       again (backoff; the slowest rate once the budget is spent)
unreadable answer                    again, lost after ``MAX_UNREADABLE_ANSWERS`` in a row
an answer about another task id      unreadable (never this task's news)
401, 403, other 4xx, 3xx, other      lost
the deadline                         lost (``WaitTimeoutError``)
===================================  ================================================

The poll schedule:

Without usable progress the interval grows geometrically (``initial_delay`` ×
``multiplier`` up to ``max_interval``, ±``jitter``). When the API reports a rising
``progress``, the finish time is estimated from the rate of progress and the next poll is
aimed just past it, so a job is usually seen finished within ``min_interval`` of its end
with a handful of queries. While the progress has not yet risen between two readings, the
rate is measured from the submit, queue time included, so the estimate can run long; the
next poll then comes no later than the time since the submit, to take a second reading
and a true rate (at most one extra query, on short jobs). A server hint (a ``Retry-After`` on a status answer) wins,
clamped to ``[min_interval, MAX_SERVER_HINT]``.

Without usable progress but with an expected ``window`` of durations (the orchestrator
learns one per model/resolution/duration, seeded by the documented 90–300 s of a video),
the first poll is aimed at the window's start (the soonest a job like this has ended; later
waits before it at most ``EARLY_FRACTION`` of the time spent). Inside the window the polls
tighten towards its end (:func:`window_step`): with ends spread over the window, a job
still running at ``t`` ends within the next second with a chance of ``1 / (latest - t)``,
and the spacing that buys the least lag for a number of polls grows with the square root
of the time left, ``latest / WINDOW_STEPS × √((latest - t) / latest)``, never below
``WINDOW_FLOOR`` of ``latest / WINDOW_STEPS`` (a job is seen ending within half an interval,
on average). Past the window the interval stretches with the time spent
(``LATE_FRACTION`` of it). ``min_interval``, ``max_interval`` and the jitter still bound
every interval.
"""

from __future__ import annotations

import enum
import math
import random
from typing import Protocol

import attrs

from ._backoff import full_jitter
from ._config import PollPolicy
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    TaskLostError,
    TaskNotFoundError,
    UnknownStatusError,
    WaitTimeoutError,
)
from ._models import Task, TaskStatus

__all__ = [
    "EARLY_FRACTION",
    "GOING_ON",
    "LATE_FRACTION",
    "MAX_SERVER_HINT",
    "MAX_UNREADABLE_ANSWERS",
    "WINDOW_FLOOR",
    "WINDOW_STEPS",
    "PollState",
    "PollTracker",
    "Step",
    "StepKind",
    "clamp_hint",
    "foreign_answer",
    "settle",
    "window_step",
]

MAX_SERVER_HINT = 60.0
# Unreadable status answers in a row that lose track of a task (a wrong base URL, not a blip).
MAX_UNREADABLE_ANSWERS = 3
# How far past the estimated finish a poll is aimed, as a fraction of the time left:
# a little late costs lag, a little early costs one more (short) poll.
_AIM_MARGIN = 0.04
# Inside the expected window of durations (no progress to aim by), the interval scales as
# ``latest / WINDOW_STEPS`` (what a window opening at the submit would start with) and
# shrinks with the square root of the time left to ``latest``, down to ``WINDOW_FLOOR`` of it.
WINDOW_STEPS = 42
WINDOW_FLOOR = 0.25
# Before the expected window, the longest wait after the first poll, as a fraction of the
# time since the submit (a job ending before a window not yet learned is not missed long).
EARLY_FRACTION = 0.5
# Past the expected window, the interval as a fraction of the time since the submit.
LATE_FRACTION = 0.04
# The smallest backoff base after failed queries, for policies scaled down to nothing.
_MIN_BACKOFF_BASE = 0.001
# The share of a one-reading estimate after which the task may have ended (see urgent_from).
_SINGLE_READING_SHARE = 0.5


@attrs.define(slots=True)
class PollState:
    """The schedule of one task: feed it observations, ask it for the next delay.

    Times are seconds on any monotonic clock; ``started_at`` is when the task was
    submitted (or first watched); ``window`` is (soonest, latest) expected seconds from
    ``started_at`` to the end, used when progress says nothing (``None``: none known).
    """

    policy: PollPolicy
    started_at: float
    window: tuple[float, float] | None = None
    polls: int = 0
    first_progress: int = 0
    first_progress_at: float | None = None
    last_progress: int = 0
    last_progress_at: float | None = None

    def observe(self, now: float, progress: int | None) -> None:
        """Record one status answer seen at ``now`` with its ``progress`` (if any)."""
        self.polls += 1
        if progress is None or progress <= 0 or progress >= 100:
            return
        if self.first_progress_at is None:
            self.first_progress = progress
            self.first_progress_at = now
        if progress >= self.last_progress:
            self.last_progress = progress
            self.last_progress_at = now

    def estimated_remaining(self, now: float) -> float | None:
        """Seconds until the task should finish, from the progress seen; ``None`` if unknown."""
        return self._estimate(now)[0]

    def _estimate(self, now: float) -> tuple[float | None, bool]:
        """Return (seconds left or ``None``, whether the rate rests on one reading only)."""
        if not self.policy.use_progress or self.last_progress_at is None:
            return None, False
        assert self.first_progress_at is not None  # noqa: S101 - both are set together
        progress_span = self.last_progress - self.first_progress
        time_span = self.last_progress_at - self.first_progress_at
        single = not (progress_span > 0 and time_span > 0)
        if not single:
            rate = progress_span / time_span
        else:
            elapsed = self.last_progress_at - self.started_at
            if elapsed <= 0:
                return None, single
            rate = self.last_progress / elapsed
        if rate <= 0:
            return None, single
        remaining = (100 - self.last_progress) / rate - (now - self.last_progress_at)
        return max(0.0, remaining), single

    def urgent_from(self, now: float) -> float | None:
        """From when the task may well have ended (worth polling first when polls fall behind).

        ``None``: never known. Judged on what was seen up to ``now``: the progress estimate's end less
        ``min_interval``, or, without one, the start of the expected window. An estimate
        resting on one reading counts the queue time as running time, so it can only be
        late: the task may have ended once half of it has passed (a queue of up to half the
        time seen), which is also when its second reading is worth the most.
        """
        remaining, single = self._estimate(now)
        if remaining is not None:
            end = now + remaining
            if single and self.last_progress_at is not None:
                # That share of the way from the reading to the estimated end.
                end -= (end - self.last_progress_at) * (1.0 - _SINGLE_READING_SHARE)
            return end - self.policy.min_interval
        window = self.window
        return None if window is None else self.started_at + window[0]

    def window_delay(self, now: float, draw: float) -> float | None:
        """The un-clamped wait aimed by the expected window, or ``None`` without one."""
        window = self.window
        if window is None:
            return None
        soonest, latest = window
        elapsed = now - self.started_at
        if elapsed < soonest:
            # Aimed at the window (no jitter needed: every task has its own start), but
            # never more than half the time spent: a window still unlearned can be late.
            wait = soonest - elapsed
            if self.polls == 0:
                return wait
            step = max(self.policy.min_interval, window_step(soonest, latest))
            return min(wait, max(step, EARLY_FRACTION * elapsed))
        if elapsed >= latest:
            step = max(WINDOW_FLOOR * latest / WINDOW_STEPS, LATE_FRACTION * elapsed)
        else:
            step = window_step(elapsed, latest)
        step = max(self.policy.min_interval, step)
        return step * (1.0 + self.policy.jitter * (2.0 * draw - 1.0))

    def geometric_delay(self) -> float:
        """The un-jittered interval after ``polls`` queries, ignoring progress."""
        policy = self.policy
        exponent = min(self.polls, 64)
        return min(policy.max_interval, policy.initial_delay * policy.multiplier**exponent)

    def failure_delay(self, errors: int, *, rng: random.Random | None = None) -> float:
        """Return the wait after ``errors`` failed status queries in a row.

        Full-jitter backoff on the error count, never quicker than the regular schedule
        and never slower than ``max_interval``.
        """
        policy = self.policy
        backoff = full_jitter(
            errors,
            base=max(policy.initial_delay, policy.min_interval, _MIN_BACKOFF_BASE),
            cap=policy.max_interval,
            rng=rng,
        )
        return min(max(policy.min_interval, backoff, self.geometric_delay()), policy.max_interval)

    def next_delay(
        self, now: float, *, rng: random.Random | None = None, hint: float | None = None
    ) -> float:
        """Return how long to wait before the next status query."""
        policy = self.policy
        draw = (rng or random).random()
        if hint is not None and hint > 0:
            return min(max(hint, policy.min_interval, 0.0), MAX_SERVER_HINT)
        remaining, single = self._estimate(now)
        if remaining is not None:
            # Aim just past the estimated finish; a little jitter, only upwards.
            delay = remaining * (1.0 + _AIM_MARGIN + draw * policy.jitter / 4)
            if single:
                # One reading measured from the submit (queue time included) overshoots:
                # come back by the time already spent, for a second reading and a true rate.
                delay = min(delay, now - self.started_at)
        else:
            aimed = self.window_delay(now, draw)
            if aimed is not None:
                delay = aimed
            else:
                delay = self.geometric_delay() * (1.0 + policy.jitter * (2.0 * draw - 1.0))
        return min(max(delay, policy.min_interval), policy.max_interval)


def window_step(elapsed: float, latest: float) -> float:
    """The un-jittered interval at ``elapsed`` seconds inside a window ending at ``latest``.

    With job ends spread evenly over the window, a job still running at ``elapsed`` ends
    within the next second with a chance of ``1 / (latest - elapsed)``. Minimising the mean
    lag plus a price per query puts polls at a density proportional to the square root of
    that chance: spaced by the square root of the time left. Scaled by ``latest`` (lag
    counts against the job's length) and floored at ``WINDOW_FLOOR`` of
    ``latest / WINDOW_STEPS``, so a job that outlasts the window costs a bounded number of
    polls.
    """
    left = max(0.0, latest - elapsed)
    return (
        latest / WINDOW_STEPS * max(WINDOW_FLOOR, math.sqrt(left / latest)) if latest > 0 else 0.0
    )


def clamp_hint(seconds: float, policy: PollPolicy) -> float:
    """Clamp a server's wait (``Retry-After``, a poll hint) to ``[min_interval, MAX_SERVER_HINT]``."""
    return min(max(seconds, policy.min_interval, 0.0), MAX_SERVER_HINT)


class StepKind(str, enum.Enum):
    """What to do after an observation."""

    DONE = "done"
    FAILED = "failed"
    LOST = "lost"
    AGAIN = "again"


@attrs.frozen(kw_only=True)
class Step:
    """The next step for one task.

    Attributes:
        kind: done, failed, lost or again.
        delay: seconds before the next status query (``again`` only).
        task: the task as last seen (the finished or failed one for done/failed).
        error: ``TaskFailedError`` for failed, a ``TaskLostError`` for lost, the query's
            error for an ``again`` after a failed query.
        throttle: the answer asks everyone to slow down (a 429 or a timeout).
        retry_after: the server's wait on a 429, when it sent one.
    """

    kind: StepKind
    delay: float = 0.0
    task: Task | None = None
    error: BaseException | None = None
    throttle: bool = False
    retry_after: float | None = None


def settle(task: Task, policy: PollPolicy) -> Step | None:
    """Return the end step a fresh ``task`` means, or ``None`` while it goes on.

    The one reading of a status word, shared by polls, submit answers and callbacks.
    """
    status = task.status
    if status is TaskStatus.FINISHED:
        return Step(kind=StepKind.DONE, task=task)
    if status is TaskStatus.FAILED:
        return Step(kind=StepKind.FAILED, task=task, error=TaskFailedError(task))
    if not status.is_known and policy.unknown_status == "raise":
        return Step(kind=StepKind.LOST, task=task, error=UnknownStatusError(task))
    return None


def foreign_answer(task_id: str, task: Task) -> APIResponseValidationError:
    """The error of a status answer for ``task_id`` that describes another task.

    A cache or proxy mixing answers up, or a server bug: it says nothing of the task asked
    about, so it is an unreadable answer (asked again, lost after a few in a row with the
    task id kept), never that task's end, and never a reason to stop following it.
    """
    return APIResponseValidationError(
        f"The status answer for task {task_id} describes task {task.task_id!r}.",
        body={"task_id": task.task_id, "status": task.status.value},
    )


class Budget(Protocol):
    """A shared retry budget (``RetryBudget``): an empty one slows failed queries down."""

    def try_acquire(self, *, timeout: bool = False) -> bool: ...


# The documented statuses of a task going on: the usual answer, which ``settle`` leaves
# going on without asking its questions (callers test membership, no call per answer).
GOING_ON = frozenset({TaskStatus.RUNNING, TaskStatus.NOT_STARTED})

# Errors of one status query that are ridden out (polled again later).
_TRANSIENT = (ServerError, APIConnectionError, RateLimitError)


class PollTracker(PollState):
    """The decision table of one task, on its own poll schedule: observations in, steps out.

    A tracker *is* the task's :class:`PollState` (one object per watched task, not two): the
    schedule's methods answer when to ask again, the tracker's what an answer means.

    Args:
        task_id: the task watched.
        policy: the poll policy (schedule, grace, unknown-status policy).
        started_at: monotonic time the task was submitted or first watched.
        submitted_at: monotonic time this process submitted it (opens the not-found
            grace); ``None`` when it did not (an id from elsewhere: no grace).
        deadline: monotonic time after which the task is lost (``None``: none).
        timeout: the length of the wait, named in the ``WaitTimeoutError`` at the deadline.
        budget: the shared retry budget; when it is empty, failed queries wait
            ``max_interval``.
        rng: the random source of jitter.
        window: (soonest, latest) expected seconds from ``started_at`` to the end, to aim
            polls by when progress says nothing (``None``: the geometric schedule).
    """

    __slots__ = (
        "budget",
        "deadline",
        "errors",
        "last",
        "rng",
        "submitted_at",
        "task_id",
        "timeout",
        "unreadable",
    )

    def __init__(
        self,
        task_id: str,
        policy: PollPolicy,
        started_at: float,
        submitted_at: float | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
        budget: Budget | None = None,
        rng: random.Random | None = None,
        window: tuple[float, float] | None = None,
    ) -> None:
        PollState.__init__(self, policy, started_at, window)
        self.task_id = task_id
        self.submitted_at = submitted_at
        self.deadline = deadline
        self.timeout = timeout
        self.budget = budget
        self.rng = rng
        self.last: Task | None = None
        self.errors = 0
        self.unreadable = 0

    def __repr__(self) -> str:
        return (
            f"PollTracker(task_id={self.task_id!r}, polls={self.polls}, errors={self.errors}, "
            f"last={None if self.last is None else self.last.status.value!r})"
        )

    def expect(self, window: tuple[float, float] | None) -> None:
        """Aim later polls by a new expected ``window`` (learned since the watch began)."""
        self.window = window

    def start(self, now: float, task: Task | None = None) -> Step:
        """Return the first step for a task held already (e.g. the submit's answer).

        The answer held is not a poll: the first query comes on the regular schedule.
        """
        begun = self.begin(now, task)
        if isinstance(begun, Step):
            return begun
        return Step(kind=StepKind.AGAIN, delay=begun, task=self.last)

    def begin(self, now: float, task: Task | None = None) -> Step | float:
        """Decide as :meth:`start` does: the seconds to the first query, or the end step."""
        if task is None:
            return self._bounded(now, 0.0)
        end = self._end_of(task)
        if end is not None:
            return end
        self.observe(now, task.progress)
        self.polls = 0  # the answer held is not a poll
        return self._bounded(now, self.next_delay(now, rng=self.rng))

    def on_task(self, task: Task, now: float, hint: float | None = None) -> Step:
        """Return the step after a fresh status answer (``hint``: the server's poll hint)."""
        decided = self.follow(task, now, hint)
        if isinstance(decided, Step):
            return decided
        return Step(kind=StepKind.AGAIN, delay=decided, task=task)

    def follow(self, task: Task, now: float, hint: float | None = None) -> Step | float:
        """Decide on a fresh status answer, as :meth:`on_task` does, at the poller's cost.

        Returns the seconds until the next query while the task goes on (no step object
        for the usual answer), else the step that ends the wait: the one :meth:`on_task`
        returns.
        """
        if task.task_id != self.task_id:
            return self.on_error(foreign_answer(self.task_id, task), now)
        self.errors = self.unreadable = 0
        end = self._end_of(task)
        if end is not None:
            return end
        self.observe(now, task.progress)
        hinted = None if hint is None or hint <= 0 else clamp_hint(hint, self.policy)
        return self._bounded(now, self.next_delay(now, rng=self.rng, hint=hinted))

    def _end_of(self, task: Task) -> Step | None:
        """Keep ``task`` as the last seen; the end step it means (``settle``), or ``None``."""
        self.last = task
        if task.status in GOING_ON:
            return None  # the usual answer, read without settle's questions
        return settle(task, self.policy)

    def on_error(self, error: BaseException, now: float) -> Step:
        """Return the step after a status query that failed with ``error``."""
        if isinstance(error, APIResponseValidationError):
            self.unreadable += 1
            if self.unreadable >= MAX_UNREADABLE_ANSWERS:
                return self.lost(error)
            return self._retry(error, now)
        if isinstance(error, NotFoundError):
            grace_ends = (
                None
                if self.submitted_at is None or isinstance(error, TaskNotFoundError)
                else self.submitted_at + self.policy.not_found_grace
            )
            if grace_ends is None or now >= grace_ends:
                return self.lost(error)
            return self._retry(error, now)
        if isinstance(error, _TRANSIENT):
            return self._retry(error, now)
        return self.lost(error)

    def on_deadline(self, now: float) -> Step:
        """Return the step when the deadline passed before the task ended: lost."""
        waited = self.timeout if self.timeout is not None else max(0.0, now - self.started_at)
        return Step(
            kind=StepKind.LOST,
            task=self.last_seen(),
            error=WaitTimeoutError(self.last_seen(), waited),
        )

    def lost(self, cause: BaseException) -> Step:
        """Return the lost step for ``cause`` (a 404 past its grace names the task)."""
        if isinstance(cause, NotFoundError) and not isinstance(cause, TaskNotFoundError):
            cause = TaskNotFoundError.from_not_found(self.task_id, cause)
        task = self.last_seen()
        return Step(kind=StepKind.LOST, task=task, error=TaskLostError(task, cause))

    def last_seen(self) -> Task:
        """The last task seen, or a placeholder with status ``unknown`` when none was."""
        if self.last is not None:
            return self.last
        return Task(task_id=self.task_id, status=TaskStatus("unknown"))

    def _retry(self, error: BaseException, now: float) -> Step:
        self.errors += 1
        policy = self.policy
        timeout = isinstance(error, APITimeoutError | TimeoutError)
        budget = self.budget
        if budget is not None and not budget.try_acquire(timeout=timeout):
            delay = policy.max_interval  # an outage: the slowest rate, not more load
        else:
            delay = self.failure_delay(self.errors, rng=self.rng)
        retry_after = error.retry_after if isinstance(error, RateLimitError) else None
        if retry_after is not None:
            delay = max(delay, clamp_hint(retry_after, policy))
        throttle = isinstance(error, RateLimitError) or timeout
        return self._again(now, delay, error=error, throttle=throttle, retry_after=retry_after)

    def _bounded(self, now: float, delay: float) -> Step | float:
        """``delay`` cut to the deadline, or the deadline's lost step once it passed."""
        deadline = self.deadline
        if deadline is not None:
            if now >= deadline:
                return self.on_deadline(now)
            delay = min(delay, deadline - now)
        return max(0.0, delay)

    def _again(
        self,
        now: float,
        delay: float,
        *,
        error: BaseException | None = None,
        throttle: bool = False,
        retry_after: float | None = None,
    ) -> Step:
        bounded = self._bounded(now, delay)
        if isinstance(bounded, Step):
            return bounded
        return Step(
            kind=StepKind.AGAIN,
            delay=bounded,
            task=self.last,
            error=error,
            throttle=throttle,
            retry_after=retry_after,
        )
