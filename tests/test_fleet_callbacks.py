"""The fleet's callback receiver: which jobs a callback may still teach, and what it records.

The store-level tests run against a real PostgreSQL (``conftest.pg_url``) and the emulator;
the rest use a small in-memory journal with the same three calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from vidgo_async import JournalError, PollPolicy
from vidgo_async._fleet_callbacks import FleetCallbackReceiver, new_callback_token
from vidgo_async._jobs import request_fingerprint
from vidgo_async._journal_entry import JournalEntry, JournalState
from vidgo_async._journal_pg import PostgresJournal
from vidgo_async._models import Task, TaskFile, TaskStatus
from vidgo_async.testing import Emulator

MODEL = "seedance-2"
INPUT = {"prompt": "a red fox in the snow", "duration": 5, "resolution": "720p"}
TASK_ID = "task-unified-1757165031-uyujaw3d"
VIDEO = "https://storage.vidgo.ai/generated/v.mp4"


def _body(task_id: str = TASK_ID, status: str = "finished") -> bytes:
    """The documented flat callback body (webhooks.mdx)."""
    files = [{"file_url": VIDEO, "file_type": "video"}] if status == "finished" else []
    return json.dumps(
        {"task_id": task_id, "status": status, "files": files, "error_message": None}
    ).encode()


def _entry(state: JournalState, token_hash: str, task_id: str | None = None) -> JournalEntry:
    return JournalEntry(
        key="order-42",
        fingerprint="0" * 64,
        model=MODEL,
        input=INPUT,
        state=state,
        task_id=task_id,
        callback_token=token_hash,
    )


class _Journal:
    """The receiver's three journal calls, recorded (a write may be made to fail)."""

    def __init__(self, entry: JournalEntry, *, failing: bool = False) -> None:
        self.entry = entry
        self.failing = failing
        self.submitted: list[str] = []
        self.terminal: list[tuple[JournalState, str | None, str | None]] = []

    async def find_token(self, token_hash: str) -> JournalEntry | None:
        return self.entry if token_hash == self.entry.callback_token else None

    async def record_submitted(self, key: str, task_id: str) -> None:
        if self.failing:
            raise JournalError("journal query failed (the server closed the connection)")
        self.submitted.append(task_id)

    async def record_terminal(
        self, key: str, state: JournalState, task: Task, **error: Any
    ) -> None:
        self.terminal.append((state, task.task_id, error.get("error_type")))


class _Client:
    """Answers the verification request with a task in ``status``."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.fetched: list[str] = []

    async def get_task(self, task_id: str) -> Task:
        self.fetched.append(task_id)
        files = (TaskFile(file_url=VIDEO, file_type="video"),) if self.status == "finished" else ()
        return Task(task_id=task_id, status=TaskStatus(self.status), files=files)


def _receiver(
    state: JournalState,
    status: str,
    *,
    task_id: str | None = None,
    failing: bool = False,
    poll: PollPolicy | None = None,
) -> tuple[str, FleetCallbackReceiver, _Journal, _Client]:
    token, hashed = new_callback_token()
    journal = _Journal(_entry(state, hashed, task_id), failing=failing)
    client = _Client(status)
    receiver = FleetCallbackReceiver(journal, client, poll=poll)  # type: ignore[arg-type]
    return token, receiver, journal, client


async def test_a_callback_for_an_unknown_submit_adopts_its_task_and_records_its_end() -> None:
    """An unknown submit's callback is verified, its task id kept and its end recorded."""
    token, receiver, journal, client = _receiver(JournalState.UNKNOWN, "finished")
    response = await receiver.handle(token, _body())
    assert response.status == 200
    assert client.fetched == [TASK_ID]
    assert journal.submitted == [TASK_ID]
    assert journal.terminal == [(JournalState.FINISHED, TASK_ID, None)]
    assert (receiver.stats.adopted, receiver.stats.delivered, receiver.stats.late) == (1, 1, 0)


async def test_an_unknown_submit_whose_task_goes_on_keeps_the_task_id_revealed() -> None:
    """A verified task still running is adopted (its id recorded) with no end recorded."""
    token, receiver, journal, _ = _receiver(JournalState.UNKNOWN, "running")
    response = await receiver.handle(token, _body(status="finished"))
    assert response.status == 200
    assert journal.submitted == [TASK_ID]
    assert journal.terminal == []
    assert receiver.stats.unconfirmed == 1


@pytest.mark.parametrize("state", [JournalState.LOST, JournalState.TIMEOUT])
async def test_a_confirmed_end_of_a_task_we_lost_track_of_is_recorded(
    state: JournalState,
) -> None:
    """A lost or timed-out job's verified finish is recorded: its result is known now."""
    token, receiver, journal, _ = _receiver(state, "finished", task_id=TASK_ID)
    assert (await receiver.handle(token, _body())).status == 200
    assert journal.submitted == []  # it holds the task already
    assert journal.terminal == [(JournalState.FINISHED, TASK_ID, None)]


async def test_a_failed_task_is_recorded_as_the_one_decision_reads_it() -> None:
    """A verified failure is recorded failed with the decision's TaskFailedError."""
    token, receiver, journal, _ = _receiver(JournalState.IN_FLIGHT, "failed", task_id=TASK_ID)
    await receiver.handle(token, _body(status="failed"))
    assert journal.terminal == [(JournalState.FAILED, TASK_ID, "TaskFailedError")]


async def test_a_status_this_client_does_not_know_is_read_by_the_poll_policy() -> None:
    """An unknown status is lost under ``unknown_status="raise"`` and goes on under "poll"."""
    token, receiver, journal, _ = _receiver(
        JournalState.IN_FLIGHT, "paused", task_id=TASK_ID, poll=PollPolicy(unknown_status="raise")
    )
    await receiver.handle(token, _body())
    assert journal.terminal == [(JournalState.LOST, TASK_ID, "UnknownStatusError")]
    token, receiver, journal, _ = _receiver(
        JournalState.IN_FLIGHT, "paused", task_id=TASK_ID, poll=PollPolicy(unknown_status="poll")
    )
    await receiver.handle(token, _body())
    assert journal.terminal == []
    assert receiver.stats.unconfirmed == 1


@pytest.mark.parametrize("state", [JournalState.FINISHED, JournalState.FAILED])
async def test_a_callback_for_a_job_whose_end_is_known_is_answered_late(
    state: JournalState,
) -> None:
    """A finished or failed job's callback is answered 200 with no verification."""
    token, receiver, journal, client = _receiver(state, "finished", task_id=TASK_ID)
    assert (await receiver.handle(token, _body())).status == 200
    assert client.fetched == []
    assert (journal.submitted, journal.terminal) == ([], [])
    assert receiver.stats.late == 1


async def test_a_journal_that_cannot_record_the_revealed_task_asks_vidgo_to_retry() -> None:
    """A failed write of the adopted task id is answered 503, so the callback comes again."""
    token, receiver, journal, _ = _receiver(JournalState.UNKNOWN, "finished", failing=True)
    response = await receiver.handle(token, _body())
    assert response.status == 503
    assert journal.terminal == []


async def test_the_store_adopts_the_task_of_an_unknown_submit_from_its_callback(
    pg_url: str,
) -> None:
    """Over PostgreSQL an ``unknown`` row gets the callback's task id and its finished end."""
    async with (
        Emulator(job_seconds=0.0, seed=3) as emulator,
        emulator.client() as client,
        PostgresJournal(pg_url, owner="worker-a") as journal,
    ):
        token, hashed = new_callback_token()
        fingerprint = request_fingerprint(MODEL, INPUT)
        await journal.record_intent("fox", fingerprint, MODEL, INPUT, callback_token=hashed)
        task = await client.submit(MODEL, INPUT)  # its answer is lost to the worker:
        await journal.record_unknown("fox", "read timeout")  # as its orchestrator records it
        await client.wait(task.task_id)
        polls = emulator.stats.status_requests[task.task_id]
        receiver = FleetCallbackReceiver(journal, client)
        response = await receiver.handle(token, _body(task.task_id))
        entry = await journal.get("fox")
    assert response.status == 200
    assert emulator.stats.status_requests[task.task_id] == polls + 1  # one verification
    assert entry is not None
    assert (entry.state, entry.task_id) == (JournalState.FINISHED, task.task_id)
    assert emulator.stats.submit_attempts == 1
