"""Tests of adoption: an in-doubt submit adopts only a task no other job holds."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import cast

import anyio
import pytest

from vidgo_async import GenerationRequest, JobState, SubmitOutcomeUnknownError, Task, TaskStatus
from vidgo_async._adoption import Adoption
from vidgo_async._clock import VirtualClock
from vidgo_async._jobbook import JobBook
from vidgo_async._jobs import Job
from vidgo_async._journal import Journal
from vidgo_async._journal_entry import JournalState
from vidgo_async._resume import JournalRecorder
from vidgo_async._tracking import Tracking
from vidgo_async.webhooks import CallbackReceiver, CallbackRegistry

INPUT = {"prompt": "a heron in the reeds", "duration": 5, "resolution": "720p"}


def _job(key: str, clock: VirtualClock) -> Job:
    return Job(
        GenerationRequest("seedance-2", INPUT, key=key), key=key, input=INPUT, wall_clock=clock.time
    )


async def test_a_task_held_by_another_job_is_never_adopted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback naming another live job's task leaves the job in doubt (it ends unknown later)."""
    clock = VirtualClock()
    book = JobBook(clock=clock, limiter=anyio.CapacityLimiter(2), journal=None)
    # Adoption stops before it would track anything: no tracking is needed.
    adoption = Adoption(book, cast(Tracking, None), receiver=None)
    owner = _job("owner", clock)
    owner.begin_submit()
    owner.submitted(Task(task_id="t-1", status=TaskStatus.RUNNING), monotonic=0.0)
    doubtful = _job("doubtful", clock)
    doubtful.begin_submit()
    doubtful.doubt(SubmitOutcomeUnknownError("seedance-2", {}, TimeoutError("no answer")))
    book.live.update({"owner": owner, "doubtful": doubtful})
    await adoption.adopt(doubtful, Task(task_id="t-1", status=TaskStatus.RUNNING))
    assert doubtful.state is JobState.IN_DOUBT
    assert doubtful.task_id is None
    assert "already belongs to job 'owner'" in caplog.text


class _Status:
    """The API's status endpoint as the receiver sees it: one task."""

    def __init__(self, task: Task) -> None:
        self.task = task

    async def get_task(self, task_id: str) -> Task:
        assert task_id == self.task.task_id
        return self.task


async def test_a_callback_after_a_job_ended_unknown_journals_its_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that comes after an in-doubt job ended unknown is confirmed, logged and journaled."""
    clock = VirtualClock()
    task = Task(task_id="task-late-1", status=TaskStatus.FINISHED)
    async with Journal(tmp_path / "journal.sqlite") as journal:
        recorder = JournalRecorder(journal)
        book = JobBook(clock=clock, limiter=anyio.CapacityLimiter(2), journal=recorder)
        async with CallbackReceiver(_Status(task), "http://127.0.0.1:9/cb") as receiver:
            adoption = Adoption(book, cast(Tracking, None), receiver=receiver)
            job = _job("slow", clock)
            token = receiver.registry.new_token(job, subscriber=adoption.on_callback)
            job.callback_token = token
            await recorder.before_submit(job)
            job.begin_submit()
            no_answer = SubmitOutcomeUnknownError("seedance-2", {}, TimeoutError("no answer"))
            job.doubt(no_answer)
            job.outcome_unknown(no_answer)  # its deadline passed before any callback
            await recorder.after_end(job)
            book.release(job)
            body = json.dumps({"task_id": task.task_id, "status": "finished"}).encode()
            with caplog.at_level(logging.WARNING, logger="vidgo_async"):
                answer = await receiver.handle(token, body)
                await receiver.join()
            assert token not in receiver.registry  # its news is taken: retired
        entry = await journal.get("slow")
    assert answer.status == 200
    assert entry is not None
    assert (entry.state, entry.task_id) == (JournalState.IN_FLIGHT, task.task_id)
    assert "ended unknown, but a verified callback names its task task-late-1" in caplog.text


def _expiring(now: list[float]) -> tuple[Adoption, CallbackReceiver, VirtualClock]:
    """An adoption whose callback tokens live 60 s of ``now[0]`` (built in the event loop)."""
    registry = CallbackRegistry("http://127.0.0.1:9/cb", ttl=60, clock=lambda: now[0])
    receiver = CallbackReceiver(
        _Status(Task(task_id="t-1", status=TaskStatus.RUNNING)), registry=registry
    )
    clock = VirtualClock()
    book = JobBook(clock=clock, limiter=anyio.CapacityLimiter(2), journal=None)
    # Adoption stops before it would track anything: no tracking is needed.
    return Adoption(book, cast(Tracking, None), receiver=receiver), receiver, clock


async def test_a_token_expired_in_the_queue_is_replaced_before_the_submit() -> None:
    """A job whose token expired while it was queued sends a fresh, live token's URL."""
    now = [0.0]
    adoption, receiver, clock = _expiring(now)
    job = _job("queued-long", clock)
    old = job.callback_token = receiver.registry.new_token(job)
    now[0] = 61.0
    adoption.renew_token(job)
    assert job.callback_token is not None
    assert job.callback_token != old
    assert job.callback_token in receiver.registry
    assert job.callback_url == receiver.registry.url_for(job.callback_token)
    now[0] = 120.0  # a full ttl from the renewal, not from the job's start
    assert job.callback_token in receiver.registry


async def test_a_token_that_cannot_be_bound_leaves_the_task_polled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A submit answer whose token died meanwhile keeps its task: the job is polled instead."""
    now = [0.0]
    adoption, receiver, clock = _expiring(now)
    job = _job("answered-late", clock)
    job.callback_token = receiver.registry.new_token(job)
    now[0] = 61.0
    task = Task(task_id="t-1", status=TaskStatus.RUNNING)
    assert adoption.submitted(job, task) is task
    assert (job.callback_token, job.callback_url) == (None, None)
    assert "cannot be bound to task t-1" in caplog.text
