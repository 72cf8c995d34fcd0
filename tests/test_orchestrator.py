"""Tests for the Orchestrator against the in-process emulator (scaled time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from vidgo_async import (
    InputValidationError,
    PollPolicy,
    StatusAnswer,
    SubmitOutcomeUnknownError,
    Task,
    TaskFailedError,
    VidgoClient,
    WaitTimeoutError,
    _callback_verify,
)
from vidgo_async._jobbook import JobHandle
from vidgo_async._jobs import (
    GenerationRequest,
    Job,
    JobAbandonedError,
    JobEvent,
    JobState,
    RerunAction,
)
from vidgo_async._journal import Journal
from vidgo_async._orchestrator import Orchestrator
from vidgo_async._resume import plan_resume
from vidgo_async.testing import Emulator, fingerprint
from vidgo_async.webhooks import CallbackReceiver, CallbackRegistry

SCALE = 0.01
POLL = PollPolicy().scaled(SCALE)


def request(n: int, directive: str = "", **extra: object) -> GenerationRequest:
    prompt = f"a paper boat drifting down a rainy street, shot {n}"
    if directive:
        prompt += f" [[vidgo-emulator: {directive}]]"
    return GenerationRequest(
        "seedance-2",
        {"prompt": prompt, "duration": 5, "resolution": "720p", **extra},
        key=f"clip-{n}",
    )


def own_tasks() -> list[asyncio.Task[object]]:
    """Tasks still running code of the orchestrator or its scheduler."""
    running = []
    for task in asyncio.all_tasks():
        frame = task.get_stack(limit=50)
        if any(
            f.f_code.co_filename.endswith(
                ("vidgo_async/_orchestrator.py", "vidgo_async/_scheduler.py")
            )
            for f in frame
        ):
            running.append(task)
    return running


class InFlightSpy:
    """Counts jobs holding a max_in_flight token (submitting or in flight) from the events."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.events: list[JobEvent] = []

    def __call__(self, event: JobEvent) -> None:
        self.events.append(event)
        holding = (JobState.SUBMITTING, JobState.IN_FLIGHT)
        if event.state in holding and event.previous not in holding:
            self.now += 1
        elif event.previous in holding and event.state not in holding:
            self.now -= 1
        self.peak = max(self.peak, self.now)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(job_seconds=(5, 40), time_scale=SCALE, seed=7) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[VidgoClient]:
    async with emulator.client(poll=POLL) as client:
        yield client


async def test_run_reports_mixed_outcomes_in_input_order_each_once(
    emulator: Emulator, client: VidgoClient
) -> None:
    """Finished, failed, timed-out and invalid jobs each appear once, in input order."""
    spy = InFlightSpy()
    requests = [request(n) for n in range(12)]
    requests[3] = request(3, 'fail="The prompt violates our content policy"')
    requests[5] = request(5, "seconds=100000")
    requests[8] = GenerationRequest("seedance-2", {"prompt": "x", "duration": 99}, key="bad")
    async with Orchestrator(client, max_in_flight=3, job_timeout=2.0, on_event=spy) as orch:
        results = await orch.run(requests)
        assert orch.snapshot().pending == 0
    assert [r.key for r in results] == [r.key for r in requests]
    states = {r.key: r.state for r in results}
    assert states["clip-3"] is JobState.FAILED
    assert isinstance(results[3].error, TaskFailedError)
    assert "content policy" in str(results[3].error)
    assert states["clip-5"] is JobState.TIMEOUT
    assert isinstance(results[5].error, WaitTimeoutError)
    assert results[5].task_id
    assert states["bad"] is JobState.FAILED
    assert isinstance(results[8].error, InputValidationError)
    assert results[8].task_id is None
    assert sum(state is JobState.FINISHED for state in states.values()) == 9
    ends = [e.key for e in spy.events if e.state.is_terminal]
    assert sorted(ends) == sorted(states)  # each job ended exactly once
    assert spy.peak <= 3
    assert emulator.stats.peak_in_flight <= 3
    assert emulator.stats.submits_accepted == 11
    assert all(count == 1 for count in emulator.stats.jobs_by_fingerprint.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_limits_hold_under_random_durations_and_faults(seed: int) -> None:
    """max_in_flight and the status-rate cap are never exceeded, whatever the faults."""
    faults = "status:503,p=0.1;status:429,p=0.01;submit:503,p=0.05;submit:429,rate=300"
    async with Emulator(job_seconds=(1, 30), time_scale=SCALE, seed=seed, faults=faults) as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=POLL) as client:
            status_times: list[float] = []
            fetch = client.query_status

            async def spy_fetch(task_id: str, **options: Any) -> StatusAnswer:
                status_times.append(time.monotonic())
                return await fetch(task_id, **options)

            client.query_status = spy_fetch  # type: ignore[method-assign]
            make_reader = client.status_reader

            def spy_reader(task_id: str) -> Callable[[], Awaitable[StatusAnswer]]:
                read = make_reader(task_id)

                async def spied() -> StatusAnswer:
                    status_times.append(time.monotonic())
                    return await read()

                return spied

            client.status_reader = spy_reader  # type: ignore[method-assign,assignment]
            spy = InFlightSpy()
            async with Orchestrator(client, max_in_flight=5, status_rate=40, on_event=spy) as orch:
                results = await orch.run([request(n) for n in range(40)])
    assert spy.peak <= 5
    assert emu.stats.peak_in_flight <= 5
    assert all(r.state.is_terminal for r in results)
    window = [sum(1 for t in status_times if s <= t < s + 1.0) for s in status_times]
    assert max(window) <= 40 + 1
    assert all(count == 1 for count in emu.stats.jobs_by_fingerprint.values())
    unknown = [r for r in results if r.state is JobState.UNKNOWN]
    assert all(isinstance(r.error, SubmitOutcomeUnknownError) for r in unknown)


async def test_generate_returns_the_task_or_raises_the_jobs_error(client: VidgoClient) -> None:
    """generate() from many coroutines returns finished tasks; a failed job raises its error."""
    async with Orchestrator(client, max_in_flight=2) as orch:
        tasks: list[Task] = []

        async def one(n: int) -> None:
            tasks.append(await orch.generate("seedance-2", request(n).input, key=f"g{n}"))

        async with anyio.create_task_group() as group:
            for n in range(5):
                group.start_soon(one, n)
        assert len(tasks) == 5
        assert all(t.is_finished for t in tasks)
        with pytest.raises(TaskFailedError, match="boom"):
            await orch.generate("seedance-2", request(9, 'fail="boom"').input)
        with pytest.raises(InputValidationError):
            await orch.generate("seedance-2", {"prompt": "x", "duration": 3})


async def test_start_and_as_completed(client: VidgoClient) -> None:
    """start() returns a handle to await later; as_completed yields each job once as it ends."""
    async with Orchestrator(client, max_in_flight=4) as orch:
        handle = orch.start(request(1))
        assert handle.key == "clip-1"
        with pytest.raises(ValueError, match="already used"):
            orch.start(request(1))
        seen = [r.key async for r in orch.as_completed([request(n) for n in range(2, 8)])]
        assert sorted(seen) == [f"clip-{n}" for n in range(2, 8)]
        result = await handle.result()
        assert result.ok
        assert handle.done()


async def test_cancellation_reports_every_submitted_job_with_its_task_id(
    emulator: Emulator, client: VidgoClient
) -> None:
    """Leaving mid-batch stops submits at once; every submitted job keeps its task id; nothing leaks."""
    events: list[JobEvent] = []
    requests = [request(n, "seconds=500") for n in range(20)]
    with anyio.move_on_after(1.0):
        async with Orchestrator(client, max_in_flight=6, on_event=events.append) as orch:
            await orch.run(requests)
    unfinished = orch.unfinished()
    submitted = {e.key: e.task_id for e in events if e.kind == "submitted"}
    assert len(submitted) == emulator.stats.submits_accepted == 6
    assert {r.key: r.task_id for r in unfinished} == submitted
    assert all(isinstance(r.error, JobAbandonedError) for r in unfinished)
    assert all(r.state is JobState.IN_FLIGHT for r in unfinished)
    assert orch.snapshot().cancelled == 14
    await anyio.sleep(0.3)
    assert emulator.stats.submit_attempts == 6  # no submit after the stop
    assert own_tasks() == []


async def test_block_exception_is_not_wrapped_in_a_group(client: VidgoClient) -> None:
    """An exception raised in the block propagates as itself, not as an ExceptionGroup."""

    async def leave_with_an_error() -> None:
        async with Orchestrator(client) as orch:
            orch.start(request(1))
            raise KeyError("mine")

    with pytest.raises(KeyError):
        await leave_with_an_error()


async def test_run_deadline_times_out_queued_and_in_flight_jobs(
    emulator: Emulator, client: VidgoClient
) -> None:
    """A whole-run deadline ends every job: submitted ones keep their task id, queued ones have none."""
    async with Orchestrator(client, max_in_flight=2) as orch:
        results = await orch.run([request(n, "seconds=100000") for n in range(5)], deadline=0.5)
    assert all(r.state is JobState.TIMEOUT for r in results)
    with_ids = [r for r in results if r.task_id]
    assert len(with_ids) == emulator.stats.submits_accepted == 2
    assert all(isinstance(r.error, WaitTimeoutError) for r in with_ids)


async def test_unknown_submit_outcome_is_never_resubmitted() -> None:
    """A submit whose answer is lost ends UNKNOWN and is not sent again."""
    async with Emulator(job_seconds=5, time_scale=SCALE, faults="submit:reset,times=1") as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=POLL) as client, Orchestrator(client) as orch:
            results = await orch.run([request(1), request(2)])
    states = sorted(r.state.value for r in results)
    assert states == ["finished", "unknown"]
    assert emu.stats.submit_attempts == 2
    assert all(n == 1 for n in emu.stats.jobs_by_fingerprint.values())


async def test_429_storm_submits_each_item_once_at_the_servers_pace() -> None:
    """T09: a 25/s submit limit: every item is submitted once, few 429s, in flight under the cap."""
    async with Emulator(job_seconds=0.05, faults="submit:429,rate=25") as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=PollPolicy().scaled(0.02)) as client:
            spy = InFlightSpy()
            async with Orchestrator(client, max_in_flight=20, on_event=spy) as orch:
                results = await orch.run([request(n) for n in range(80)])
    assert all(r.ok for r in results)
    assert emu.stats.submits_accepted == 80
    assert all(n == 1 for n in emu.stats.jobs_by_fingerprint.values())
    rejected = emu.stats.submit_attempts - emu.stats.submits_accepted
    assert rejected < 0.3 * emu.stats.submit_attempts
    assert spy.peak <= 20
    assert orch.submit_gate.rate is not None  # the storm made the gate pace itself


async def test_hard_outage_keeps_task_ids_until_the_deadline() -> None:
    """T08: with every status query failing, jobs end as timeouts holding their task ids."""
    async with Emulator(job_seconds=5, time_scale=SCALE, faults="status:500") as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=POLL) as client:
            async with Orchestrator(client, max_in_flight=30, job_timeout=1.0) as orch:
                results = await orch.run([request(n) for n in range(30)])
            assert client._transport.retry_budget.exhausted
    assert all(r.state is JobState.TIMEOUT and r.task_id for r in results)
    assert emu.stats.submits_accepted == 30
    # Far fewer status queries than a tight retry loop would make in that second.
    assert sum(emu.stats.status_requests.values()) < 30 * 20


async def test_concurrency_limit_under_many_quick_jobs() -> None:
    """T10: 300 quick jobs at max_in_flight=10: never more than 10 in flight, all end."""
    async with Emulator(job_seconds=(0, 2), time_scale=SCALE, seed=3) as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=POLL) as client:
            spy = InFlightSpy()
            async with Orchestrator(client, max_in_flight=10, on_event=spy) as orch:
                results = await orch.run([request(n) for n in range(500)])
    assert all(r.ok for r in results)
    assert spy.peak <= 10
    assert emu.stats.peak_in_flight <= 10


async def test_soak_with_mixed_faults_finishes_everything_once() -> None:
    """T25 (scaled): 500 jobs with mixed faults all end; no request makes two jobs; nothing leaks."""
    faults = "status:500,p=0.05;status:429,p=0.005;status:reset,p=0.01;submit:500,p=0.01;submit:reset,p=0.01"
    async with Emulator(job_seconds=(1, 10), time_scale=SCALE, seed=11, faults=faults) as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=POLL) as client:
            async with Orchestrator(client, max_in_flight=100) as orch:
                results = await orch.run([request(n) for n in range(500)])
    assert len(results) == 500
    assert all(r.state.is_terminal for r in results)
    assert all(n <= 1 for n in emu.stats.jobs_by_fingerprint.values())
    assert sum(r.ok for r in results) >= 470
    assert emu.stats.peak_in_flight <= 100
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
    assert own_tasks() == []


class FakeJournal:
    """Records the order of journal calls next to the job states at each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, JobState, str | None]] = []

    async def before_submit(self, job: Job) -> None:
        self.calls.append(("intent", job.key, job.state, job.fingerprint))

    async def after_submit(self, job: Job, task: Task) -> None:
        self.calls.append(("task_id", job.key, job.state, task.task_id))

    async def after_end(self, job: Job) -> None:
        self.calls.append(("end", job.key, job.state, job.task_id))


async def test_journal_writes_come_before_the_transitions_they_guard(client: VidgoClient) -> None:
    """Intent is written while queued, the task id before in flight, the end after it."""
    journal = FakeJournal()
    async with Orchestrator(client, journal=journal) as orch:
        await orch.run([request(1)])
    kinds = [(kind, state) for kind, _, state, _ in journal.calls]
    assert kinds == [
        ("intent", JobState.QUEUED),
        ("task_id", JobState.SUBMITTING),
        ("end", JobState.FINISHED),
    ]
    assert journal.calls[0][3] == fingerprint("seedance-2", request(1).input)


async def test_attach_follows_an_existing_task_without_submitting(
    emulator: Emulator, client: VidgoClient
) -> None:
    """attach() polls a task created earlier and never submits it again."""
    task = await client.submit("seedance-2", request(1).input)
    async with Orchestrator(client) as orch:
        result = await orch.attach(request(1), task).result()
    assert result.ok
    assert result.task_id == task.task_id
    assert emulator.stats.submit_attempts == 1


class Seen:
    """Keeps every event and wakes a waiter once the long job holding the token is submitted."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.holder_submitted = anyio.Event()

    def __call__(self, event: JobEvent) -> None:
        self.events.append(event)
        if event.key == "clip-1" and event.kind == "submitted":
            self.holder_submitted.set()


async def _attach_behind_a_holder(
    orch: Orchestrator, client: VidgoClient, seen: Seen
) -> tuple[Task, JobHandle]:
    """Fill the only token with a long job, then attach an earlier task: it waits queued."""
    earlier = await client.submit("seedance-2", request(2, "seconds=100000").input)  # paid
    orch.start(request(1, "seconds=100000"))
    with anyio.fail_after(5):
        await seen.holder_submitted.wait()
    attached = orch.attach(request(2, "seconds=100000"), earlier)
    await anyio.wait_all_tasks_blocked()
    assert attached.state is JobState.QUEUED  # waiting for the token
    return earlier, attached


async def test_an_attached_task_dropped_before_its_turn_is_abandoned_not_cancelled(
    emulator: Emulator, client: VidgoClient, tmp_path: Path
) -> None:
    """Cancelling an attached job waiting for a token keeps its task id and a rerun polls it."""
    seen = Seen()
    async with Journal(tmp_path / "journal.sqlite") as journal:
        async with Orchestrator(client, max_in_flight=1, on_event=seen, journal=journal) as orch:
            earlier, attached = await _attach_behind_a_holder(orch, client, seen)
            request_2 = request(2, "seconds=100000")
            data = dict(request_2.input)
            await journal.record_intent(
                "clip-2", fingerprint("seedance-2", data), "seedance-2", data
            )
            await journal.record_submitted("clip-2", earlier.task_id)
            assert attached.cancel()
            result = await attached.result()
            with pytest.raises(ValueError, match="clip-2"):  # its task still runs: key taken
                orch.start(request_2)
            assert [r.key for r in orch.unfinished()] == ["clip-1", "clip-2"]
        plan = await plan_resume(journal, [request_2])
    assert (result.state, result.task_id) == (JobState.IN_FLIGHT, earlier.task_id)
    assert result.state.rerun is RerunAction.POLL
    assert isinstance(result.error, JobAbandonedError)
    assert result.error.task_id == earlier.task_id
    assert [e.kind for e in seen.events if e.key == "clip-2"] == ["queued", "abandoned"]
    assert [(r.key, t.task_id) for r, t in plan.attach] == [("clip-2", earlier.task_id)]
    assert emulator.stats.submit_attempts == 2  # the holder and the earlier task, no more


async def test_an_attached_task_still_queued_when_the_orchestrator_stops_is_reported_in_flight(
    client: VidgoClient,
) -> None:
    """Stopping with an attached job waiting for a token reports it in flight with its task."""
    seen = Seen()
    async with Orchestrator(client, max_in_flight=1, on_event=seen) as orch:
        earlier, attached = await _attach_behind_a_holder(orch, client, seen)
    result = await attached.result()
    assert (result.state, result.task_id) == (JobState.IN_FLIGHT, earlier.task_id)
    assert isinstance(result.error, JobAbandonedError)
    assert result.error.task_id == earlier.task_id
    assert {r.key: r.task_id for r in orch.unfinished()}["clip-2"] == earlier.task_id
    assert orch.snapshot().cancelled == 0


async def test_a_failing_event_hook_does_not_break_the_batch(client: VidgoClient) -> None:
    """An exception in on_event is logged and the jobs still finish."""

    def hook(event: JobEvent) -> None:
        raise RuntimeError("hook bug")

    async with Orchestrator(client, on_event=hook) as orch:
        results = await orch.run([request(1), request(2)])
    assert all(r.ok for r in results)


async def test_using_it_outside_its_block_is_a_clear_error(client: VidgoClient) -> None:
    """start() before entering the block raises a RuntimeError saying how to use it."""
    orch = Orchestrator(client)
    with pytest.raises(RuntimeError, match="async with"):
        orch.start(request(1))
    with pytest.raises(ValueError, match="max_in_flight"):
        Orchestrator(client, max_in_flight=0)


class HeldSubmits:
    """Wraps an orchestrator's submit: holds each request until released, counts those open."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        dispatcher = orch._dispatcher
        self.send = dispatcher.submit
        self.release = anyio.Event()
        self.open = 0
        self.peak = 0
        self.order: list[str] = []
        dispatcher.submit = self

    async def __call__(self, model: str, input: dict[str, Any], **options: Any) -> Task:
        # The key is the shot number at the end of the prompt (see ``request``).
        self.order.append("clip-" + str(input["prompt"]).rsplit(" ", 1)[1])
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            await self.release.wait()
            return await self.send(model, input, **options)
        finally:
            self.open -= 1


async def settle() -> None:
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


class SubmittedCounter:
    """Sets ``reached`` once ``target`` jobs got their task id."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.reached = anyio.Event()
        self.spy = InFlightSpy()

    def __call__(self, event: JobEvent) -> None:
        self.spy(event)
        if event.kind == "submitted":
            self.count += 1
            if self.count == self.target:
                self.reached.set()


async def test_submitter_pool_caps_submits_and_keeps_the_rest_queued(
    emulator: Emulator, client: VidgoClient
) -> None:
    """With 3 submitters, 3 jobs are submitting, the others stay queued; all go in FIFO order."""
    counter = SubmittedCounter(8)
    spy = counter.spy
    slow = POLL.scaled(1000.0)
    async with Orchestrator(client, max_in_flight=10, poll=slow, on_event=counter) as orch:
        orch._dispatcher.max_submitters = 3
        held = HeldSubmits(orch)
        handles = [orch.start(request(n)) for n in range(8)]
        await settle()
        progress = orch.snapshot()
        assert (progress.submitting, progress.queued) == (3, 5)
        assert held.open == 3
        held.release.set()
        await counter.reached.wait()
        assert orch.snapshot().in_flight == 8
        assert held.peak == 3
        assert held.order == [f"clip-{n}" for n in range(8)]
        assert orch._dispatcher.submitters == 3
        assert all(handle.task_id is not None for handle in handles)
    assert emulator.stats.submit_attempts == 8
    submitted = [e.key for e in spy.events if e.kind == "submitting"]
    assert submitted == [f"clip-{n}" for n in range(8)]


async def test_a_job_waiting_for_a_submitter_is_cancelled_without_a_request(
    emulator: Emulator, client: VidgoClient
) -> None:
    """A job queued behind a full submitter pool ends cancelled and is never sent."""
    counter = SubmittedCounter(1)
    slow = POLL.scaled(1000.0)
    async with Orchestrator(client, max_in_flight=10, poll=slow, on_event=counter) as orch:
        orch._dispatcher.max_submitters = 1
        held = HeldSubmits(orch)
        first = orch.start(request(1))
        second = orch.start(request(2))
        await settle()
        assert (first.state, second.state) == (JobState.SUBMITTING, JobState.QUEUED)
        assert second.cancel()
        held.release.set()
        result = await second.result()
        assert second.state is JobState.CANCELLED
        assert isinstance(result.error, JobAbandonedError)
        await counter.reached.wait()
        assert first.task_id is not None
    assert held.order == ["clip-1"]
    assert emulator.stats.submit_attempts == 1


async def test_submitter_pool_is_sized_like_the_connection_pool(client: VidgoClient) -> None:
    """The pool has as many submitters as connections, never more than max_in_flight."""
    from vidgo_async._orchestrator import DEFAULT_MAX_CONCURRENT_SUBMITS

    assert Orchestrator(client, max_in_flight=5000)._dispatcher.max_submitters == (
        DEFAULT_MAX_CONCURRENT_SUBMITS
    )
    assert Orchestrator(client, max_in_flight=3)._dispatcher.max_submitters == 3
    async with Orchestrator(client, max_in_flight=3) as orch:
        results = await orch.run([request(n) for n in range(7)])
        assert orch._dispatcher.submitters <= 3
    assert all(r.ok for r in results)


async def test_an_unexpected_submit_error_ends_unknown_never_failed(
    emulator: Emulator, client: VidgoClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug raised by the submit is no refusal: the job ends unknown, so no rerun resubmits it."""

    async def broken(model: str, input: dict[str, Any], **options: Any) -> Task:
        raise ZeroDivisionError("a bug after the request may have been sent")

    async with Orchestrator(client) as orch:
        orch._dispatcher.submit = broken
        (result,) = await orch.run([request(1)])
    assert result.state is JobState.UNKNOWN
    assert isinstance(result.error, SubmitOutcomeUnknownError)
    assert isinstance(result.error.cause, ZeroDivisionError)
    assert "failed unexpectedly" in caplog.text


async def test_a_token_expired_in_the_queue_neither_crashes_the_run_nor_loses_the_task() -> None:
    """A job queued past its callback token's ttl is submitted with a live token and finishes."""
    now = [0.0]
    async with Emulator(time_scale=SCALE, seed=3) as emu, emu.client(poll=POLL) as client:
        registry = CallbackRegistry(ttl=3600.0, clock=lambda: now[0])
        receiver = CallbackReceiver(client, registry=registry)
        async with receiver.serve("127.0.0.1", 0), Orchestrator(client, receiver=receiver) as orch:
            handle = orch.start(request(1, "seconds=1"))
            now[0] = 3601.0  # the job waited in the queue past its token's ttl
            with anyio.fail_after(10):
                result = await handle.result()
        assert emu.stats.submits_accepted == 1
    assert result.state is JobState.FINISHED
    assert result.task_id is not None


async def test_an_in_doubt_job_is_adopted_through_a_404_window_on_its_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lost submit answer, then status 404s (T13) when its callback comes: the task is adopted."""
    monkeypatch.setattr(_callback_verify, "FIRST_RETRY_DELAY", 0.05, raising=False)
    faults = "submit:reset,times=1;status:404,within=20"  # 404 for its first 0.2 real s
    async with (
        Emulator(time_scale=SCALE, faults=faults, seed=5) as emu,
        emu.client(poll=PollPolicy().scaled(0.2)) as client,  # polls late: the callback adopts
    ):
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver, job_timeout=3.0) as orch,
        ):
            with anyio.fail_after(15):
                [result] = await orch.run([request(1, "seconds=5")])  # calls back at 0.05 s
        assert emu.stats.submits_accepted == 1
    assert receiver.stats.adopted == 1
    assert result.state is JobState.FINISHED
    assert result.task_id is not None
