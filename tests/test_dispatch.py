"""The dispatcher's submit path at its edges: a journal write that fails or is cut short,
a deadline that passes while a submit, its retries or an intent write are on their way.

A virtual clock drives every deadline (the poller's sleeps jump time); fake submits (or
aioresponses) stand in for the API, so nothing here sleeps for real.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from _client_support import SUBMIT_URL, make_client
from aioresponses import aioresponses

from vidgo_async import JournalError, PollPolicy, RateLimitError, RetryPolicy
from vidgo_async._clock import VirtualClock
from vidgo_async._jobs import GenerationRequest, Job, JobEvent, JobState
from vidgo_async._journal import Journal, JournalState
from vidgo_async._models import Task, TaskStatus
from vidgo_async._orchestrator import Orchestrator
from vidgo_async._resume import JournalRecorder, plan_resume

# No poll is due while these tests run.
NO_POLLING = PollPolicy(initial_delay=3600.0, timeout=None)


def _request(key: str) -> GenerationRequest:
    data = {"prompt": f"a paper boat, {key}", "duration": 5, "resolution": "720p"}
    return GenerationRequest("seedance-2", data, key=key)


class Submits:
    """A fake API: answers each submit with a task in ``status`` (after ``before``, if set)."""

    def __init__(self, status: TaskStatus = TaskStatus.FINISHED) -> None:
        self.status = status
        self.sent: list[str] = []
        self.before: Any = None

    async def __call__(self, model: str, input: dict[str, Any], **options: Any) -> Task:
        self.sent.append(str(input["prompt"]))
        if self.before is not None:
            before, self.before = self.before, None
            await before()
        key = str(input["prompt"]).rsplit(" ", 1)[1]
        return Task(task_id=f"task-{key}", status=self.status)


def _refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("api.vidgo.ai", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


async def _until(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.lowlevel.checkpoint()


# -- a task id the journal could not write -----------------------------------------------


class TaskIdWriteFails(JournalRecorder):
    """A journal whose task-id write for ``k1`` fails (the disk is full)."""

    async def after_submit(self, job: Job, task: Task) -> None:
        if job.key == "k1":
            raise JournalError("database or disk is full")
        await super().after_submit(job, task)


async def test_a_task_id_the_journal_could_not_write_stays_on_the_job_and_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The job goes on in flight with its task id, logged at ERROR; the batch goes on."""
    caplog.set_level(logging.INFO, logger="vidgo_async")
    submits = Submits()
    async with Journal(tmp_path / "journal.sqlite") as journal:
        async with (
            make_client() as client,
            Orchestrator(client, journal=TaskIdWriteFails(journal), poll=NO_POLLING) as orch,
        ):
            orch._dispatcher.submit = submits
            with anyio.fail_after(5):
                first, second = await orch.run([_request("k1"), _request("k2")])
        entry = await journal.get("k1")
    assert [first.state, second.state] == [JobState.FINISHED, JobState.FINISHED]
    assert first.task_id == "task-k1"
    assert len(submits.sent) == 2  # sent once each
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("task-k1" in line and "'k1'" in line for line in errors)
    # The end is written with the task id: the journal holds it after all.
    assert entry is not None
    assert (entry.state, entry.task_id) == (JournalState.FINISHED, "task-k1")


class TaskIdWriteFailsAtFirst(JournalRecorder):
    """A journal whose first ``failures`` task-id writes for ``k1`` fail (a full disk)."""

    def __init__(self, journal: Journal, failures: int) -> None:
        super().__init__(journal)
        self.failures = failures

    async def after_submit(self, job: Job, task: Task) -> None:
        if job.key == "k1" and self.failures:
            self.failures -= 1
            raise JournalError("database or disk is full")
        await super().after_submit(job, task)


@pytest.mark.parametrize("failures", [1, 2])
async def test_a_task_id_the_journal_could_not_write_is_tried_again_at_the_stop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, failures: int
) -> None:
    """Stopped with the job in flight: the task id is written then, so a rerun polls it.

    If the journal still refuses it, the stop says so again (the id stays in the log).
    """
    submits = Submits(TaskStatus.RUNNING)
    async with Journal(tmp_path / "journal.sqlite") as journal:
        recorder = TaskIdWriteFailsAtFirst(journal, failures)
        async with (
            make_client() as client,
            Orchestrator(client, journal=recorder, poll=NO_POLLING) as orch,
        ):
            orch._dispatcher.submit = submits
            handle = orch.start(_request("k1"))
            await _until(lambda: handle.state is JobState.IN_FLIGHT)
        entry = await journal.get("k1")
        plan = await plan_resume(journal, [_request("k1")])
    assert handle.task_id == "task-k1"
    assert entry is not None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    if failures == 1:
        assert (entry.state, entry.task_id) == (JournalState.IN_FLIGHT, "task-k1")
        assert [request.key for request, _ in plan.attach] == ["k1"]
        assert len(errors) == 1
    else:
        assert (entry.state, entry.task_id) == (JournalState.SUBMITTING, None)
        assert len(errors) == 2
        assert all("task-k1" in line for line in errors)


class HeldTaskIdWrite:
    """A cancel-safe recorder whose task-id write waits until the orchestrator stops."""

    cancel_safe = True

    def __init__(self) -> None:
        self.waiting = anyio.Event()

    async def before_submit(self, job: Job) -> None:
        return None

    async def after_submit(self, job: Job, task: Task) -> None:
        self.waiting.set()
        await anyio.sleep_forever()

    async def after_end(self, job: Job) -> None:
        return None


async def test_a_stop_during_the_task_id_write_reports_the_job_in_flight_with_its_task_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stopped while the task id was written: the job is reported in flight, task id included."""
    recorder = HeldTaskIdWrite()
    async with make_client() as client:
        async with Orchestrator(client, journal=recorder, poll=NO_POLLING) as orch:
            orch._dispatcher.submit = Submits(TaskStatus.RUNNING)
            handle = orch.start(_request("k1"))
            with anyio.fail_after(5):
                await recorder.waiting.wait()
        assert handle.state is JobState.IN_FLIGHT
        assert handle.task_id == "task-k1"
        assert [r.task_id for r in orch.unfinished()] == ["task-k1"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("k1=task-k1" in line for line in warnings)


# -- a deadline that passes while the submit is on the wire ------------------------------


async def test_a_429_after_the_deadline_times_the_job_out_instead_of_sending_it_again() -> None:
    """The deadline passed on the wire, then a 429 (nothing created): it is never sent again."""
    submits = Submits()
    released = anyio.Event()

    async def refused_after_the_deadline() -> None:
        await released.wait()
        raise RateLimitError("slow down", status_code=429, retry_after=0.01)

    submits.before = refused_after_the_deadline
    events: list[str] = []

    def on_event(event: JobEvent) -> None:
        events.append(event.kind)

    async with (
        make_client() as client,
        Orchestrator(client, poll=NO_POLLING, on_event=on_event) as orch,
    ):
        orch._dispatcher.submit = submits
        handle = orch.start(_request("k1"), deadline=5.0)
        job = handle._job
        await _until(lambda: job.expired)  # the poller's virtual sleep reached the deadline
        assert handle.state is JobState.SUBMITTING
        released.set()
        with anyio.fail_after(5):
            result = await handle.result()
        for _ in range(10):  # a re-queued job would be taken and sent within these turns
            await anyio.lowlevel.checkpoint()
    assert (result.state, result.task_id) == (JobState.TIMEOUT, None)
    assert isinstance(result.error, TimeoutError)
    assert len(submits.sent) == 1
    assert events.count("submitting") == 1


async def test_a_submit_that_cannot_connect_is_never_retried_past_the_jobs_deadline() -> None:
    """Refused connections (nothing sent) are retried only while the job's deadline lasts."""
    clock = VirtualClock()
    attempts: list[float] = []

    def record(url: Any, **kwargs: Any) -> None:
        attempts.append(clock.monotonic())

    retry = RetryPolicy(max_attempts=10, initial_delay=2.0, max_delay=2.0)
    async with make_client(clock, retry=retry) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, exception=_refused(), callback=record, repeat=True)
            async with Orchestrator(client, poll=NO_POLLING) as orch:
                handle = orch.start(_request("k1"), deadline=3.0)
                with anyio.fail_after(5):
                    result = await handle.result()
    assert attempts
    assert all(at < 3.0 for at in attempts), attempts
    assert result.state in (JobState.TIMEOUT, JobState.FAILED)
    assert result.task_id is None


# -- a job that ends while its intent is written -----------------------------------------


class HeldIntent(JournalRecorder):
    """The intent is written, then its commit is held (a busy disk) until released.

    ``shielded``: the commit, once begun, finishes (as SQLite's group commit does) in 50 ms.
    """

    def __init__(self, journal: Journal, *, shielded: bool = False) -> None:
        super().__init__(journal)
        self.written = anyio.Event()
        self.release = anyio.Event()
        self.shielded = shielded

    async def before_submit(self, job: Job) -> None:
        await super().before_submit(job)
        self.written.set()
        if self.shielded:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)
        else:
            await self.release.wait()


@pytest.mark.parametrize("ending", ["deadline", "cancel", "stop", "stop-mid-commit"])
async def test_a_job_that_ends_while_its_intent_is_written_has_the_intent_withdrawn(
    tmp_path: Path, ending: str
) -> None:
    """Ended mid intent write (its deadline, a cancel, the stop): never sent, a rerun submits it.

    ``stop-mid-commit``: the write finishes despite the stop; the stop is taken before the
    submit is sent, not inside it (where it would leave the job ``unknown``).
    """
    request = _request("k1")
    submits = Submits()
    async with Journal(tmp_path / "journal.sqlite") as journal:
        recorder = HeldIntent(journal, shielded=ending == "stop-mid-commit")
        async with (
            make_client() as client,
            Orchestrator(client, journal=recorder, poll=NO_POLLING) as orch,
        ):
            orch._dispatcher.submit = submits
            handle = orch.start(request, deadline=5.0 if ending == "deadline" else None)
            with anyio.fail_after(5):
                await recorder.written.wait()
            if ending == "deadline":
                await _until(lambda: handle.state is not JobState.QUEUED)
            elif ending == "cancel":
                assert handle.cancel()
            if not ending.startswith("stop"):  # leaving the block stops the orchestrator
                recorder.release.set()
                dispatcher = orch._dispatcher
                await _until(lambda: dispatcher._free == dispatcher.submitters)  # all idle
                assert not orch._book.recorded  # the ended job is not kept there
                assert await journal.get("k1") is None  # withdrawn while the run goes on
        plan = await plan_resume(journal, [request])
        entry = await journal.get("k1")
    expected = {"deadline": JobState.TIMEOUT, "cancel": JobState.CANCELLED}
    assert handle.state is expected.get(ending, JobState.CANCELLED)
    assert submits.sent == []
    assert entry is None, f"intent left {entry.state.value}"
    assert plan.submit == [request]
