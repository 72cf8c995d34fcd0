"""The dispatcher's submit path at its edges: a deadline that passes while a submit is on
the wire.

A virtual clock drives every deadline (the poller's sleeps jump time); fake submits stand
in for the API, so nothing here sleeps for real.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
from _client_support import make_client

from vidgo_async import PollPolicy, RateLimitError
from vidgo_async._jobs import GenerationRequest, JobEvent, JobState
from vidgo_async._models import Task, TaskStatus
from vidgo_async._orchestrator import Orchestrator

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


async def _until(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.lowlevel.checkpoint()


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
