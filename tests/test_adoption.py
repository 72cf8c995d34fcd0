"""Tests of adoption: an in-doubt submit adopts only a task no other job holds."""

from __future__ import annotations

from typing import cast

import anyio
import pytest

from vidgo_async import GenerationRequest, JobState, SubmitOutcomeUnknownError, Task, TaskStatus
from vidgo_async._adoption import Adoption
from vidgo_async._clock import VirtualClock
from vidgo_async._jobbook import JobBook
from vidgo_async._jobs import Job
from vidgo_async._tracking import Tracking

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
