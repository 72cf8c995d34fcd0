"""Tests for the one shared poller (heap of next-due times, one timer)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from vidgo_async import (
    APIResponseValidationError,
    NotFoundError,
    PollPolicy,
    RateLimitError,
    ServerError,
    Task,
    TaskLostError,
    TaskNotFoundError,
    TaskStatus,
)
from vidgo_async._clock import VirtualClock
from vidgo_async._gates import RateGate
from vidgo_async._jobs import GenerationRequest, Job
from vidgo_async._retry import RetryBudget
from vidgo_async._scheduler import Scheduler

POLICY = PollPolicy(initial_delay=2, multiplier=1.5, max_interval=30, min_interval=1, jitter=0.2)

Script = Callable[[float], Task]


class FakeApi:
    """Answers status queries from per-task scripts on a virtual clock, recording each query."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.scripts: dict[str, Script] = {}
        self.queries: list[tuple[float, str]] = []
        self.in_flight = 0
        self.peak = 0

    def finishes_at(self, task_id: str, at: float) -> None:
        def script(now: float) -> Task:
            if now >= at:
                return Task(task_id=task_id, status=TaskStatus.FINISHED, progress=100)
            return Task(task_id=task_id, status=TaskStatus.RUNNING)

        self.scripts[task_id] = script

    async def fetch(self, task_id: str) -> tuple[Task, float | None]:
        now = self.clock.monotonic()
        self.queries.append((now, task_id))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await anyio.lowlevel.checkpoint()
            return self.scripts[task_id](now), None
        finally:
            self.in_flight -= 1


class Recorder:
    """A PollHandler that ends jobs on terminal tasks and records what it was told."""

    def __init__(self, expected: int) -> None:
        self.seen: dict[str, list[Task]] = {}
        self.failed: dict[str, BaseException] = {}
        self.timed_out: list[str] = []
        self.expected = expected
        self.ended = 0
        self.all_done = anyio.Event()

    def _ended(self) -> None:
        self.ended += 1
        if self.ended >= self.expected:
            self.all_done.set()

    async def task_seen(self, job: Job, task: Task) -> bool:
        return self.task_goes_on(job, task)

    def task_goes_on(self, job: Job, task: Task) -> bool:
        self.seen.setdefault(job.key, []).append(task)
        if task.is_terminal:
            self._ended()
        return not task.is_terminal

    async def lost(self, job: Job, error: TaskLostError) -> None:
        self.failed[job.key] = error
        self._ended()

    async def deadline_passed(self, job: Job) -> None:
        self.timed_out.append(job.key)
        self._ended()


def in_flight_job(key: str, task_id: str, clock: VirtualClock) -> Job:
    job = Job(
        GenerationRequest("seedance-2", {"prompt": key}),
        key=key,
        input={"prompt": key},
        wall_clock=clock.time,
    )
    job.begin_submit()
    job.submitted(Task(task_id=task_id, status=TaskStatus.NOT_STARTED), monotonic=clock.monotonic())
    return job


def build(
    clock: VirtualClock,
    api: FakeApi,
    handler: Recorder,
    *,
    rate: float | None = None,
    budget: RetryBudget | None = None,
    max_concurrent: int = 4,
    reader: Callable[[str], Callable[[], Awaitable[tuple[Task, float | None]]]] | None = None,
) -> Scheduler:
    gate = RateGate(rate, clock=clock, name="status")
    return Scheduler(
        api.fetch,
        handler,
        gate=gate,
        clock=clock,
        poll=POLICY,
        max_concurrent=max_concurrent,
        budget=budget,
        reader=reader,
    )


async def run_until_done(scheduler: Scheduler, handler: Recorder) -> None:
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(scheduler.run)
        with anyio.fail_after(10):
            await handler.all_done.wait()
        task_group.cancel_scope.cancel()


async def test_a_job_is_polled_on_a_growing_schedule_until_it_finishes() -> None:
    """A 300 s job is seen finished with few queries, never two closer than min_interval."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    scheduler = build(clock, api, handler)
    api.finishes_at("t-1", 300.0)
    scheduler.watch(in_flight_job("a", "t-1", clock))
    await run_until_done(scheduler, handler)
    times = [at for at, _ in api.queries]
    assert handler.seen["a"][-1].is_finished
    assert len(times) <= 20
    assert all(b - a >= POLICY.min_interval - 1e-9 for a, b in itertools.pairwise(times))
    assert times[-1] - 300.0 <= POLICY.max_interval * (1 + POLICY.jitter)
    assert len(scheduler) == 0


async def test_many_waiting_jobs_cost_one_timer() -> None:
    """1 000 watched jobs add no task per job: the loop runs a handful of tasks."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1000)
    peak_tasks = 0
    fetch = api.fetch

    async def counting_fetch(task_id: str) -> tuple[Task, float | None]:
        nonlocal peak_tasks
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        return await fetch(task_id)

    api.fetch = counting_fetch  # type: ignore[method-assign]
    scheduler = build(clock, api, handler, max_concurrent=8)
    for n in range(1000):
        api.finishes_at(f"t-{n}", 50.0 + n % 100)
        scheduler.watch(in_flight_job(f"k{n}", f"t-{n}", clock))
    await run_until_done(scheduler, handler)
    assert 0 < peak_tasks <= 8 + 5
    assert api.peak <= 8
    assert all(tasks[-1].is_finished for tasks in handler.seen.values())


async def test_status_rate_cap_is_never_exceeded() -> None:
    """With a 5/s status gate, queries stay about 0.2 s apart and never exceed 5 per second (+1)."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(50)
    scheduler = build(clock, api, handler, rate=5.0)
    for n in range(50):
        api.finishes_at(f"t-{n}", 10.0)
        scheduler.watch(in_flight_job(f"k{n}", f"t-{n}", clock))
    await run_until_done(scheduler, handler)
    times = sorted(at for at, _ in api.queries)
    # Virtual time runs on while a granted query waits to start: allow a little skew.
    assert all(b - a >= 0.2 - 0.02 for a, b in itertools.pairwise(times))
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 6


async def test_poke_moves_a_job_to_now() -> None:
    """poke() makes a job due at once instead of at its scheduled time."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    scheduler = build(clock, api, handler)
    api.finishes_at("t-1", 0.0)
    job = in_flight_job("a", "t-1", clock)
    scheduler.watch(job, first_delay=1000.0)
    assert scheduler.poke(job)
    await run_until_done(scheduler, handler)
    assert api.queries[0][0] < 1.0
    assert not scheduler.poke(job)  # ended: no longer watched


async def test_not_found_within_grace_is_retried_then_past_grace_is_lost() -> None:
    """A 404 right after submit is retried; a task invisible past the grace is lost, not failed."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(2)
    scheduler = build(clock, api, handler)

    def late(now: float) -> Task:
        if now < 20.0:
            raise NotFoundError("not found", status_code=404)
        return Task(task_id="t-late", status=TaskStatus.FINISHED)

    def never(now: float) -> Task:
        raise NotFoundError("not found", status_code=404)

    api.scripts["t-late"] = late
    api.scripts["t-never"] = never
    scheduler.watch(in_flight_job("late", "t-late", clock))
    scheduler.watch(in_flight_job("never", "t-never", clock))
    await run_until_done(scheduler, handler)
    assert handler.seen["late"][-1].is_finished
    lost = handler.failed["never"]
    assert isinstance(lost, TaskLostError)
    assert isinstance(lost.cause, TaskNotFoundError)
    assert "late" not in handler.failed


async def test_answers_about_another_task_neither_end_nor_drop_the_job() -> None:
    """Answers naming another task id are unreadable: polled again, lost with the id kept.

    The job is never forgotten while still in flight (it would be polled no more and
    never time out).
    """
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(2)
    scheduler = build(clock, api, handler)

    def mixed_up_once(now: float) -> Task:
        if len([q for q in api.queries if q[1] == "t-once"]) == 1:
            return Task(task_id="t-other", status=TaskStatus.FINISHED)
        if now >= 60.0:
            return Task(task_id="t-once", status=TaskStatus.FINISHED)
        return Task(task_id="t-once", status=TaskStatus.RUNNING)

    def always_other(now: float) -> Task:
        return Task(task_id="T-ALWAYS", status=TaskStatus.RUNNING)

    api.scripts["t-once"] = mixed_up_once
    api.scripts["t-always"] = always_other
    scheduler.watch(in_flight_job("once", "t-once", clock))
    scheduler.watch(in_flight_job("always", "t-always", clock))
    await run_until_done(scheduler, handler)
    assert [task.task_id for task in handler.seen["once"]] == ["t-once"] * len(handler.seen["once"])
    assert handler.seen["once"][-1].is_finished
    lost = handler.failed["always"]
    assert isinstance(lost, TaskLostError)
    assert lost.task_id == "t-always"
    assert isinstance(lost.cause, APIResponseValidationError)
    assert "always" not in handler.seen
    assert len([q for q in api.queries if q[1] == "t-always"]) == 3  # MAX_UNREADABLE_ANSWERS
    assert len(scheduler) == 0


async def test_429_holds_the_shared_gate_and_is_retried() -> None:
    """A 429 on status holds the shared gate for its Retry-After and the job is polled again.

    Two 429s are a pause, not a rate limit: the rate stays (see test_gates).
    """
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    scheduler = build(clock, api, handler, rate=10.0)
    calls = 0

    def limited(now: float) -> Task:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RateLimitError("slow down", retry_after=5.0)
        return Task(task_id="t-1", status=TaskStatus.FINISHED)

    api.scripts["t-1"] = limited
    scheduler.watch(in_flight_job("a", "t-1", clock))
    await run_until_done(scheduler, handler)
    assert scheduler._gate.rate == 10.0
    assert scheduler._gate.throttles == 2
    times = [at for at, _ in api.queries]
    assert times[1] - times[0] >= 5.0


async def test_outage_with_spent_budget_polls_at_the_slowest_rate() -> None:
    """When the retry budget is empty, failing polls wait max_interval, and the job keeps its id."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    budget = RetryBudget(capacity=10)
    scheduler = build(clock, api, handler, budget=budget)

    def down(now: float) -> Task:
        if now < 600:
            raise ServerError("down", status_code=503)
        return Task(task_id="t-1", status=TaskStatus.FINISHED)

    api.scripts["t-1"] = down
    scheduler.watch(in_flight_job("a", "t-1", clock))
    await run_until_done(scheduler, handler)
    times = [at for at, _ in api.queries]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert budget.exhausted or budget.tokens < 10
    # Once the two retries the budget paid for are spent, every gap is the slowest interval.
    assert all(gap == pytest.approx(POLICY.max_interval) for gap in gaps[3:])
    assert handler.seen["a"][-1].is_finished


@pytest.mark.parametrize(
    "deadline", [100.0, 0.25], ids=["after-its-first-polls", "before-its-first-poll"]
)
async def test_deadline_makes_a_final_poll_then_times_out(deadline: float) -> None:
    """At its deadline a running job gets one last query, then the handler hears of the timeout.

    Also when the deadline comes before the new job's first poll (its poll record not made).
    """
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    scheduler = build(clock, api, handler)
    api.finishes_at("t-1", 10_000.0)
    job = in_flight_job("a", "t-1", clock)
    scheduler.watch(job)
    scheduler.set_deadline(job, deadline)
    await run_until_done(scheduler, handler)
    assert handler.timed_out == ["a"]
    assert api.queries[-1][0] >= deadline
    assert sum(1 for at, _ in api.queries if at >= deadline) == 1  # one final query
    assert len(scheduler) == 0


async def test_a_watch_made_when_its_first_poll_nears_polls_as_one_made_at_once() -> None:
    """A just-submitted job's watch is made later, as of its submit: every query keeps its time."""
    queries = []
    for eager in (False, True):
        clock = VirtualClock(seed=7)
        api = FakeApi(clock)
        handler = Recorder(20)
        scheduler = build(clock, api, handler)
        for n in range(20):
            api.finishes_at(f"t-{n}", 30.0 + n)
            job = in_flight_job(f"k{n}", f"t-{n}", clock)
            # A policy of its own makes the watch at once (the same policy: the same polls).
            scheduler.watch(job, policy=POLICY) if eager else scheduler.watch(job)
            assert scheduler.is_watching(job)
            clock.advance(0.01)
        assert len(scheduler) == 20
        await run_until_done(scheduler, handler)
        assert len(scheduler) == 0
        queries.append(api.queries)
    lazy, eager_queries = queries
    assert lazy == eager_queries
    assert min(at for at, _ in lazy) >= POLICY.initial_delay * (1 - POLICY.jitter)


async def test_a_job_poked_before_its_watch_is_made_is_polled_at_once() -> None:
    """A callback's poke right after the submit polls the job now, not at its first poll."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    scheduler = build(clock, api, handler)
    api.finishes_at("t-1", 0.0)
    job = in_flight_job("a", "t-1", clock)
    scheduler.watch(job)
    assert scheduler.poke(job)
    await run_until_done(scheduler, handler)
    assert [at for at, _ in api.queries] == [0.0]
    assert handler.seen["a"][-1].is_finished


async def test_a_burst_of_new_jobs_never_holds_the_event_loop_for_all_their_watches() -> None:
    """10 000 jobs submitted at once get their watches in batches: other tasks run between."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(10_000)
    scheduler = build(clock, api, handler, max_concurrent=16)
    for n in range(10_000):
        api.finishes_at(f"t-{n}", 1000.0)
        scheduler.watch(in_flight_job(f"k{n}", f"t-{n}", clock))
    left: list[int] = []  # the arrivals left at each turn of another task

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(scheduler.run)
        with anyio.fail_after(30):
            while scheduler._arrivals:
                left.append(len(scheduler._arrivals))
                await anyio.lowlevel.checkpoint()
        task_group.cancel_scope.cancel()
    made_per_turn = [a - b for a, b in itertools.pairwise(left)]
    assert len(made_per_turn) > 10
    # At most 256 per event-loop turn; between two turns of this task, up to two turns'.
    assert max(made_per_turn) <= 2 * 256
    assert len(scheduler) == 10_000  # every one watched, none ended


async def test_deadline_of_a_job_that_is_not_watched_fires_directly() -> None:
    """A deadline for a job that is not polled (still queued) calls the handler at that time."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    scheduler = build(clock, api, handler)
    job = Job(
        GenerationRequest("seedance-2", {"prompt": "q"}), key="q", input={}, wall_clock=clock.time
    )
    scheduler.set_deadline(job, 50.0)
    await run_until_done(scheduler, handler)
    assert handler.timed_out == ["q"]
    assert clock.monotonic() >= 50.0
    assert api.queries == []


async def test_forget_drops_polls_and_deadlines() -> None:
    """A forgotten job is never queried again and its deadline never fires."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    scheduler = build(clock, api, handler)
    api.finishes_at("t-1", 0.0)
    api.finishes_at("t-2", 5.0)
    gone = in_flight_job("gone", "t-1", clock)
    scheduler.watch(gone)  # forgotten before its poll record is made, right after its submit
    scheduler.set_deadline(gone, 1.0)
    scheduler.forget(gone)
    assert not scheduler.is_watching(gone)
    assert not scheduler.poke(gone)
    scheduler.watch(in_flight_job("kept", "t-2", clock))
    assert len(scheduler) == 1
    await run_until_done(scheduler, handler)
    assert {task_id for _, task_id in api.queries} == {"t-2"}
    assert handler.timed_out == []


@pytest.mark.parametrize(("routine", "rate"), [(10, 1.0), (300, 100.0)])
async def test_when_behind_jobs_that_may_have_ended_are_polled_first(
    routine: int, rate: float
) -> None:
    """With a backlog of any length, due jobs past their expected end go before the others."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(routine + 10)
    scheduler = build(clock, api, handler, rate=rate, max_concurrent=1)
    for n in range(routine):
        api.finishes_at(f"b-{n}", 0.0)
        scheduler.watch(in_flight_job(f"b{n}", f"b-{n}", clock), first_delay=0.0)
    for n in range(10):
        api.finishes_at(f"a-{n}", 0.0)
        job = in_flight_job(f"a{n}", f"a-{n}", clock)
        scheduler.watch(job, first_delay=0.0, window=(0.0, 10.0))
    await run_until_done(scheduler, handler)
    order = [task_id[0] for _, task_id in api.queries]
    assert order == ["a"] * 10 + ["b"] * routine


async def test_a_check_still_waiting_at_its_expected_end_turns_urgent() -> None:
    """A routine check stuck in a backlog goes first once its job's expected end comes."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(21)
    scheduler = build(clock, api, handler, rate=1.0, max_concurrent=1)
    for n in range(20):
        api.finishes_at(f"b-{n}", 0.0)
        scheduler.watch(in_flight_job(f"b{n}", f"b-{n}", clock), first_delay=0.0)
    api.finishes_at("a-0", 0.0)
    # Checked on at 1 s (before its window opens at 3 s): routine, behind 20 due checks.
    scheduler.watch(in_flight_job("a0", "a-0", clock), first_delay=1.0, window=(3.0, 10.0))
    await run_until_done(scheduler, handler)
    polled_at = next(at for at, task_id in api.queries if task_id == "a-0")
    assert 3.0 <= polled_at <= 4.0 + 1e-9
    assert len(api.queries) == 21  # its routine entry did not poll it a second time


async def test_a_fixed_pool_of_workers_polls_every_job() -> None:
    """Workers never exceed max_concurrent queries on the wire and each job ends once."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(200)
    scheduler = build(clock, api, handler, max_concurrent=3)
    for n in range(200):
        api.finishes_at(f"t-{n}", float(n % 17))
        scheduler.watch(in_flight_job(f"k{n}", f"t-{n}", clock), first_delay=float(n % 5))
    await run_until_done(scheduler, handler)
    assert api.peak <= 3
    assert handler.ended == 200
    assert len(scheduler) == 0


def windowed(
    clock: VirtualClock,
    api: FakeApi,
    handler: Recorder,
    expected: Callable[[Job], tuple[float, float]],
    *,
    notified: bool = False,
) -> Scheduler:
    """A scheduler aiming polls without progress by the ``expected`` window."""
    policy = PollPolicy(max_interval=1000, min_interval=1, jitter=0.0, use_progress=False)
    return Scheduler(
        api.fetch,
        handler,
        gate=RateGate(None, clock=clock, name="status"),
        clock=clock,
        poll=policy,
        expected=expected,
        notified=notified,
    )


async def test_a_watched_job_is_re_aimed_by_what_the_batch_learned() -> None:
    """The expected window is asked again at every answer: a new one re-aims the next poll."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    windows: list[tuple[float, float]] = [(100.0, 200.0)]
    scheduler = windowed(clock, api, handler, lambda _job: windows[-1])
    api.finishes_at("t-1", 500.0)
    scheduler.watch(in_flight_job("a", "t-1", clock), first_delay=300.0)
    windows.append((400.0, 600.0))  # learned from other jobs while this one waited
    await run_until_done(scheduler, handler)
    times = [at for at, _ in api.queries]
    # Past the old window it would come back within 12 s; the new one says 400 s.
    assert times[:2] == pytest.approx([300.0, 400.0])


async def test_a_notified_scheduler_asks_the_window_again_only_after_relearn() -> None:
    """With notified=True the window is asked at the watch and after each relearn(), not per answer."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    windows: list[tuple[float, float]] = [(100.0, 200.0)]
    asked = 0

    def expected(_job: Job) -> tuple[float, float]:
        nonlocal asked
        asked += 1
        return windows[-1]

    scheduler = windowed(clock, api, handler, expected, notified=True)
    api.finishes_at("t-1", 500.0)
    scheduler.watch(in_flight_job("a", "t-1", clock), first_delay=300.0)
    windows.append((400.0, 600.0))
    scheduler.relearn()  # what the orchestrator does when an ended job taught it a window
    await run_until_done(scheduler, handler)
    times = [at for at, _ in api.queries]
    assert times[:2] == pytest.approx([300.0, 400.0])  # re-aimed by the new window
    assert len(times) > 2
    assert asked == 2  # at the watch, and at the first answer after relearn()


async def test_a_notified_scheduler_keeps_its_window_without_relearn() -> None:
    """Without relearn() a notified scheduler keeps aiming by the window it was given."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(1)
    windows: list[tuple[float, float]] = [(100.0, 200.0)]
    scheduler = windowed(clock, api, handler, lambda _job: windows[-1], notified=True)
    api.finishes_at("t-1", 500.0)
    scheduler.watch(in_flight_job("a", "t-1", clock), first_delay=300.0)
    windows.append((400.0, 600.0))  # not announced: the old window stays in force
    await run_until_done(scheduler, handler)
    times = [at for at, _ in api.queries]
    assert times[1] - times[0] < 100.0  # past the old window: the late interval, not 400 s


async def test_a_lone_due_entry_and_a_backlog_are_taken_in_the_same_order() -> None:
    """One job due at a time is polled as it comes; a backlog still goes most urgent first."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(3)
    scheduler = build(clock, api, handler, rate=1.0, max_concurrent=1)
    for n, start in enumerate((5.0, 10.0, 15.0)):
        api.finishes_at(f"s-{n}", 0.0)
        scheduler.watch(in_flight_job(f"s{n}", f"s-{n}", clock), first_delay=start)
    await run_until_done(scheduler, handler)
    assert [task_id for _, task_id in api.queries] == ["s-0", "s-1", "s-2"]
    assert [at for at, _ in api.queries] == pytest.approx([5.0, 10.0, 15.0], abs=0.01)


async def test_answers_that_go_on_skip_the_async_handler_and_an_end_uses_it() -> None:
    """The decision table routes: 'again' answers go to task_goes_on, the final one to task_seen."""
    clock = VirtualClock()
    api = FakeApi(clock)
    calls: list[str] = []

    class Routing(Recorder):
        async def task_seen(self, job: Job, task: Task) -> bool:
            calls.append("task_seen")
            return await super().task_seen(job, task)

        def task_goes_on(self, job: Job, task: Task) -> bool:
            calls.append("task_goes_on")
            return super().task_goes_on(job, task)

    handler = Routing(1)
    scheduler = build(clock, api, handler)
    api.finishes_at("t-1", 20.0)
    scheduler.watch(in_flight_job("a", "t-1", clock))
    await run_until_done(scheduler, handler)
    # Recorder.task_seen delegates to task_goes_on: the end shows both, in that order.
    assert calls[-2:] == ["task_seen", "task_goes_on"]
    assert set(calls[:-2]) == {"task_goes_on"}
    assert len(calls) >= 4


async def test_each_job_gets_one_reusable_status_query() -> None:
    """With a reader, a job's query is made once, at its first poll, and asked at every poll."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(2)
    made: list[str] = []
    asked: list[str] = []

    def reader(task_id: str) -> Callable[[], Awaitable[tuple[Task, float | None]]]:
        made.append(task_id)

        async def read() -> tuple[Task, float | None]:
            asked.append(task_id)
            return await api.fetch(task_id)

        return read

    scheduler = build(clock, api, handler, reader=reader)
    for n in range(2):
        api.finishes_at(f"t-{n}", 60.0)
        scheduler.watch(in_flight_job(f"k{n}", f"t-{n}", clock))
    await run_until_done(scheduler, handler)
    assert sorted(made) == ["t-0", "t-1"]
    assert sorted(asked) == sorted(task_id for _, task_id in api.queries)
    assert asked.count("t-0") > 1


async def test_a_watched_job_keeps_one_poll_record_and_no_tracked_heap_entry() -> None:
    """Watching a job adds one record (tracker, schedule and marks in one); heap entries are ints.

    A job in flight keeps these for minutes, and every GC-tracked object it keeps is walked
    by the collector again and again: 10 000 jobs must not cost 50 000 objects.
    """
    import gc

    clock = VirtualClock()
    scheduler = build(clock, FakeApi(clock), Recorder(1))
    jobs = [in_flight_job(f"k{i}", f"t{i}", clock) for i in range(500)]
    gc.collect()
    before = len(gc.get_objects())
    for job in jobs:
        # A window whose start comes after the first poll: a routine entry and its promotion.
        scheduler.watch(job, window=(90.0, 300.0))
    gc.collect()
    added = len(gc.get_objects()) - before
    assert len(scheduler) == 500
    assert added <= 500 + 10  # the record per job (heap entries are ints), a few in all


async def test_entries_due_within_one_microsecond_keep_their_order() -> None:
    """Dues kept to the microsecond: entries in the same microsecond go in the order queued."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(4)
    scheduler = build(clock, api, handler, max_concurrent=1)
    # 0.1 + 0.2 is not 0.3 in floats: the dues differ by less than a microsecond.
    for n, delay in enumerate((0.1 + 0.2, 0.3, 0.3000004, 0.2999996)):
        api.finishes_at(f"u-{n}", 0.0)
        scheduler.watch(in_flight_job(f"u{n}", f"u-{n}", clock), first_delay=delay)
    await run_until_done(scheduler, handler)
    # The last one's microsecond comes first; the others share one, in the order queued.
    assert [task_id for _, task_id in api.queries] == ["u-3", "u-0", "u-1", "u-2"]
    assert all(at >= 0.2999996 - 1e-6 for at, _ in api.queries)  # at most 1 us early


async def test_a_deadline_at_infinity_never_fires_and_a_new_deadline_replaces_the_old() -> None:
    """An infinite deadline is accepted (never due); setting another drops the first."""
    clock = VirtualClock()
    api = FakeApi(clock)
    handler = Recorder(2)
    scheduler = build(clock, api, handler)
    api.finishes_at("t-1", 20.0)
    never = in_flight_job("never", "t-1", clock)
    scheduler.watch(never)
    scheduler.set_deadline(never, float("inf"))
    queued = Job(
        GenerationRequest("seedance-2", {"prompt": "q"}), key="q", input={}, wall_clock=clock.time
    )
    scheduler.set_deadline(queued, 5.0)
    scheduler.set_deadline(queued, 8.0)  # replaces the 5 s one
    await run_until_done(scheduler, handler)
    assert handler.timed_out == ["q"]
    assert handler.seen["never"][-1].is_finished
    assert clock.monotonic() >= 20.0
