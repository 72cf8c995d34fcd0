"""The orchestrator's submit path: one validation per job, the input sent as validated.

Also the pieces it leans on: ``validated_submit`` still checks the callback URL, the real
clock reads time without a wrapper, and the submitter pool hands every job over exactly
once, in order, never more at once than it has submitters.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from _client_support import SUBMIT_URL, calls, envelope, make_client, task_data
from aioresponses import aioresponses

from vidgo_async import (
    GenerationRequest,
    InputValidationError,
    JobEvent,
    JobState,
    Orchestrator,
    PollPolicy,
    validate_input,
)
from vidgo_async import _client as client_module
from vidgo_async import _intake as intake_module
from vidgo_async._client import validated_submit
from vidgo_async._clock import Clock, VirtualClock
from vidgo_async._models import Task, TaskStatus

# No poll is due while these tests run.
NO_POLLING = PollPolicy(initial_delay=3600.0, timeout=None)


class CountingValidation:
    """Wraps ``validate_input`` where one module calls it; counts the calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
        self.calls = 0
        self._real = module.validate_input
        monkeypatch.setattr(module, "validate_input", self)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        result: dict[str, Any] = self._real(*args, **kwargs)
        return result


async def test_an_orchestrated_job_is_validated_once_and_sent_exactly_as_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Validated when the job is made; the submit sends that object, not a re-validated one."""
    at_intake = CountingValidation(monkeypatch, intake_module)
    at_client = CountingValidation(monkeypatch, client_module)
    # A None field is left out and a tuple becomes a list: the sent form differs from the given.
    given = {
        "prompt": "a red fox in the snow",
        "duration": 5,
        "resolution": "720p",
        "seed": None,
        "image_urls": ("https://example.com/fox.png",),
    }
    expected = validate_input("seedance-2", given)
    assert expected != given
    submitted = anyio.Event()

    def on_event(event: JobEvent) -> None:
        if event.kind == "submitted":
            submitted.set()

    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            async with Orchestrator(client, poll=NO_POLLING, on_event=on_event) as orch:
                handle = orch.start(GenerationRequest("seedance-2", given))
                with anyio.fail_after(5):
                    await submitted.wait()
                assert handle.task_id == "t1"
            (call,) = calls(mocked, "POST", SUBMIT_URL)
    assert at_intake.calls == 1
    assert at_client.calls == 0
    assert json.loads(call.kwargs["data"]) == {"model": "seedance-2", "input": expected}


async def test_an_invalid_input_still_raises_at_start_and_nothing_is_sent() -> None:
    """The one validation left is the one that refuses: nothing reaches the wire."""
    async with make_client() as client:
        with aioresponses() as mocked:
            async with Orchestrator(client, poll=NO_POLLING) as orch:
                with pytest.raises(InputValidationError, match=r"\$\.input\.duration"):
                    orch.start(
                        GenerationRequest(
                            "seedance-2", {"prompt": "a fox", "duration": 999, "resolution": "720p"}
                        )
                    )
            assert calls(mocked, "POST", SUBMIT_URL) == []


async def test_validated_submit_still_checks_the_callback_url_before_sending() -> None:
    """A receiver's URL is given to a job only at send time: it is checked there."""
    prepared = validate_input(
        "seedance-2", {"prompt": "a fox", "duration": 5, "resolution": "720p"}
    )
    async with make_client() as client:
        submit = validated_submit(client)
        with aioresponses() as mocked:
            with pytest.raises(InputValidationError, match="callback_url"):
                await submit("seedance-2", prepared, callback_url="http://example.com/cb")
            assert calls(mocked, "POST", SUBMIT_URL) == []
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t2", "not_started")))
            task = await submit("seedance-2", prepared, callback_url="https://example.com/cb")
            (call,) = calls(mocked, "POST", SUBMIT_URL)
    assert task.task_id == "t2"
    assert json.loads(call.kwargs["data"]) == {
        "model": "seedance-2",
        "input": prepared,
        "callback_url": "https://example.com/cb",
    }


async def test_validated_submit_of_a_closed_client_is_refused() -> None:
    """Like ``submit``: a closed client raises before anything is built or sent."""
    client = make_client()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await validated_submit(client)("seedance-2", {"prompt": "a fox"})


def test_the_real_clock_reads_time_without_a_wrapper() -> None:
    """The real clock's readings are the C functions; a subclass keeps its own methods."""
    clock = Clock()
    assert clock.monotonic is time.monotonic
    assert clock.time is time.time
    virtual = VirtualClock(start=5.0)
    assert virtual.monotonic() == 5.0
    virtual.advance(2.0)
    assert virtual.monotonic() == 7.0


class BurstySubmits:
    """A submit that answers after a random number of loop turns; records what it saw."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.started: list[str] = []
        self.open = 0
        self.peak = 0

    async def __call__(self, model: str, input: dict[str, Any], **options: Any) -> Task:
        prompt = str(input["prompt"])
        self.started.append(prompt)
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            for _ in range(self.rng.randrange(0, 4)):
                await anyio.lowlevel.checkpoint()
        finally:
            self.open -= 1
        return Task(task_id=f"task-{prompt}", status=TaskStatus.NOT_STARTED)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_submitter_pool_sends_every_job_once_in_order_within_its_size(
    seed: int,
) -> None:
    """Submitters finishing together take the next jobs themselves: none lost, none twice."""
    jobs = 60
    prompts = [f"clip number {n}" for n in range(jobs)]
    async with (
        make_client() as client,
        Orchestrator(client, max_in_flight=jobs, poll=NO_POLLING) as orch,
    ):
        dispatcher = orch._dispatcher
        dispatcher.max_submitters = 4
        submits = BurstySubmits(seed)
        dispatcher.submit = submits
        handles = [
            orch.start(
                GenerationRequest("seedance-2", {"prompt": p, "duration": 5, "resolution": "720p"})
            )
            for p in prompts
        ]
        with anyio.fail_after(5):
            while any(handle.state is not JobState.IN_FLIGHT for handle in handles):
                await anyio.lowlevel.checkpoint()
        assert dispatcher.submitters == 4
    assert submits.started == prompts
    assert 1 < submits.peak <= 4
    assert [handle.task_id for handle in handles] == [f"task-{p}" for p in prompts]


class HeldForever:
    """A submit that never answers while the test looks; counts the submits started."""

    def __init__(self) -> None:
        self.started: list[str] = []

    async def __call__(self, model: str, input: dict[str, Any], **options: Any) -> Task:
        self.started.append(str(input["prompt"]))
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_a_burst_gets_its_submitters_at_once_and_each_takes_the_next_job_itself() -> None:
    """A burst starts the whole pool in one loop turn; the jobs go out in order, once each."""
    prompts = [f"clip number {n}" for n in range(10)]
    async with (
        make_client() as client,
        Orchestrator(client, max_in_flight=10, poll=NO_POLLING) as orch,
    ):
        dispatcher = orch._dispatcher
        dispatcher.max_submitters = 4
        held = HeldForever()
        dispatcher.submit = held
        handles = [
            orch.start(
                GenerationRequest("seedance-2", {"prompt": p, "duration": 5, "resolution": "720p"})
            )
            for p in prompts
        ]
        assert dispatcher.submitters == 4  # started by the burst itself, before any turn
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        assert held.started == prompts[:4]
        assert [h.state for h in handles] == [JobState.SUBMITTING] * 4 + [JobState.QUEUED] * 6
        assert handles[4].cancel()  # the next in line is dropped: no submitter took it
        assert dispatcher.submitters == 4
    assert held.started == prompts[:4]


async def test_a_submitter_waiting_for_a_token_holds_the_take_the_others_wait_in_line() -> None:
    """Out of tokens: one submitter waits for a token, the other in line; leaving ends both."""
    prompts = [f"clip number {n}" for n in range(5)]
    submits = BurstySubmits(0)
    async with (
        make_client() as client,
        Orchestrator(client, max_in_flight=2, poll=NO_POLLING) as orch,
    ):
        dispatcher = orch._dispatcher
        dispatcher.submit = submits
        handles = [
            orch.start(
                GenerationRequest("seedance-2", {"prompt": p, "duration": 5, "resolution": "720p"})
            )
            for p in prompts
        ]
        with anyio.fail_after(5):
            while not all(h.state is JobState.IN_FLIGHT for h in handles[:2]):
                await anyio.lowlevel.checkpoint()
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert [h.state for h in handles[2:]] == [JobState.QUEUED] * 3
        assert dispatcher._taking
        assert len(dispatcher._turns) == 1
    assert [h.state for h in handles[2:]] == [JobState.CANCELLED] * 3
    assert submits.started == prompts[:2]


async def test_a_handle_waits_for_its_job_with_an_event_made_only_by_its_first_waiter() -> None:
    """No event per job up front; a waiter before the end is woken, one after returns at once."""
    request = GenerationRequest(
        "seedance-2", {"prompt": "a fox", "duration": 5, "resolution": "720p"}
    )
    async with make_client() as client, Orchestrator(client, poll=NO_POLLING) as orch:
        orch._dispatcher.submit = BurstySubmits(0)  # never the network, whatever happens
        orch._dispatcher.max_submitters = 0  # no submitter: both stay queued until cancelled
        waited, unwaited = orch.start(request), orch.start(request)
        book = orch._book
        assert book.done[waited._job] is None
        assert not waited.done()
        results: list[JobState] = []

        async def wait_for_it() -> None:
            results.append((await waited.result()).state)

        async with anyio.create_task_group() as group:
            group.start_soon(wait_for_it)
            await anyio.lowlevel.checkpoint()
            assert book.done[waited._job] is not None  # made by the waiter
            assert book.done[unwaited._job] is None
            assert waited.cancel()
            assert unwaited.cancel()
        assert results == [JobState.CANCELLED]
        assert waited.done()
        assert unwaited.done()
        assert (await unwaited.result()).state is JobState.CANCELLED
        assert waited._job not in book.done
