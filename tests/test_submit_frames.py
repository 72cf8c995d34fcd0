"""The submit path with fewer frames: the answer read inside the transport's request and
the submit sent from the submitter's own frame.

Each piece keeps what it replaced: an unreadable answer is still an unknown outcome (for a
submit) or the validation error itself (for a query), and leaving the orchestrator with
jobs in flight abandons each job, then frees it, one job at a time and in order, naming
every task (the exit's order, pinned for whoever makes that loop cheaper).
"""

from __future__ import annotations

import logging

import anyio
import pytest
from _client_support import BALANCE_URL, SUBMIT_URL, calls, envelope, make_client, task_data
from aioresponses import aioresponses

from vidgo_async import (
    APIResponseValidationError,
    GenerationRequest,
    JobEvent,
    JobHandle,
    JobState,
    Orchestrator,
    PollPolicy,
    SubmitOutcomeUnknownError,
)
from vidgo_async._answers import Response
from vidgo_async._jobs import JobAbandonedError

# No poll is due while these tests run.
NO_POLLING = PollPolicy(initial_delay=3600.0, timeout=None)
SEEDANCE = {"prompt": "a red fox in the snow", "duration": 5, "resolution": "720p"}


def _credits(response: Response) -> float:
    value = response.data.get("credits_amount")
    if not isinstance(value, int | float):
        raise APIResponseValidationError("no credits_amount", body=response.data)
    return float(value)


async def test_a_request_returns_what_its_read_makes_of_the_answer() -> None:
    """``read`` runs on the decoded answer; its value is what the request returns."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, payload=envelope({"credits_amount": 12.5}))
            value = await client._transport.request("GET", "/api/user/balance", read=_credits)
    assert value == 12.5


async def test_an_unreadable_answer_to_a_query_raises_the_reads_own_error() -> None:
    """An idempotent request's read error is raised as it is (nothing was created)."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, payload=envelope({"email": "a@b.c"}))
            with pytest.raises(APIResponseValidationError, match="no credits_amount"):
                await client._transport.request("GET", "/api/user/balance", read=_credits)


async def test_an_unreadable_answer_to_a_submit_is_an_unknown_outcome_with_its_body() -> None:
    """A non-idempotent request's read error: something was most likely created."""
    body = {"model": "seedance-2", "input": SEEDANCE}
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope({"status": "not_started"}))
            with pytest.raises(SubmitOutcomeUnknownError) as caught:
                await client._transport.request(
                    "POST",
                    "/api/generate/submit",
                    json_body=body,
                    idempotent=False,
                    read=_credits,
                )
            assert len(calls(mocked, "POST", SUBMIT_URL)) == 1
    assert caught.value.model == "seedance-2"
    assert caught.value.payload == body
    assert isinstance(caught.value.cause, APIResponseValidationError)


async def test_a_submit_answer_without_a_status_is_a_task_not_started() -> None:
    """The client's submit reads the answer in the request: the status default still holds."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope({"task_id": "t9"}))
            task = await client.submit("seedance-2", SEEDANCE)
    assert task.task_id == "t9"
    assert task.status.value == "not_started"


async def test_leaving_abandons_then_frees_each_in_flight_job_in_turn_and_names_its_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each job is abandoned, then freed, before the next one: its waiters see it ended."""
    handles: list[JobHandle] = []
    abandoned: list[tuple[str, list[bool]]] = []
    submitted = 0
    all_submitted = anyio.Event()

    def on_event(event: JobEvent) -> None:
        nonlocal submitted
        if event.kind == "submitted":
            submitted += 1
            if submitted == 3:
                all_submitted.set()
        elif event.kind == "abandoned":
            abandoned.append((event.key, [handle.done() for handle in handles]))

    async with make_client() as client:
        with aioresponses() as mocked:
            for task_id in ("t1", "t2", "t3"):
                mocked.post(SUBMIT_URL, payload=envelope(task_data(task_id, "not_started")))
            with caplog.at_level(logging.WARNING, logger="vidgo_async"):
                async with Orchestrator(client, poll=NO_POLLING, on_event=on_event) as orch:
                    handles.extend(
                        orch.start(GenerationRequest("seedance-2", SEEDANCE, key=key))
                        for key in ("a", "b", "c")
                    )
                    with anyio.fail_after(5):
                        await all_submitted.wait()
    # At each job's event the jobs before it were freed already, it and the later ones not.
    assert abandoned == [
        ("a", [False, False, False]),
        ("b", [True, False, False]),
        ("c", [True, True, False]),
    ]
    results = [await handle.result() for handle in handles]
    assert [result.state for result in results] == [JobState.IN_FLIGHT] * 3
    assert all(isinstance(result.error, JobAbandonedError) for result in results)
    assert orch.snapshot().in_flight == 3
    (warning,) = [r for r in caplog.records if "stopped with" in r.getMessage()]
    message = warning.getMessage()
    assert "3 job(s) in flight" in message
    assert {handle.task_id for handle in handles} == {"t1", "t2", "t3"}
    for handle in handles:
        assert f"{handle.key}={handle.task_id}" in message
