"""Callbacks end to end: the emulator sends real callbacks to a loopback CallbackReceiver."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from vidgo_async import PollPolicy, SubmitOutcomeUnknownError, Task, TaskStatus
from vidgo_async._jobs import GenerationRequest, Job, JobEvent, JobResult, JobState
from vidgo_async._journal import Journal, JournalState
from vidgo_async._orchestrator import Orchestrator
from vidgo_async._resume import JournalRecorder
from vidgo_async.testing import Emulator
from vidgo_async.webhooks import CallbackReceiver, VerifiedCallback, token_hash

PROMPT = "A red fox trots through fresh snow at dawn, cinematic, soft light"


def clip(seconds: float | None = None, prompt: str = PROMPT) -> dict[str, Any]:
    if seconds is not None:
        prompt = f"{prompt} [[vidgo-emulator: seconds={seconds:g}]]"
    return {"prompt": prompt, "duration": 5, "resolution": "720p", "aspect_ratio": "16:9"}


async def post(url: str, body: bytes) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as answer:
        return answer.status


@pytest.mark.parametrize("shape", ["flat", "wrapped", "bare"])
async def test_emulator_callback_resolves_with_one_status_request(shape: str) -> None:
    """A real callback (either shape) resolves the job; its verification is the only status GET."""
    async with (
        Emulator(job_seconds=1, time_scale=0.01, callback_shape=shape) as emu,  # type: ignore[arg-type]
        emu.client() as client,
    ):
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            token = receiver.registry.new_token("fox")
            task = await client.submit(
                "seedance-2", clip(), callback_url=receiver.registry.url_for(token)
            )
            receiver.registry.set_task_id(token, task.task_id)
            with anyio.fail_after(5):
                outcome = await receiver.wait(token)
        assert outcome.task.task_id == task.task_id
        assert outcome.task.status is TaskStatus.FINISHED
        assert outcome.task.file_urls == [emu.file_url(task.task_id)]
        assert emu.stats.status_requests[task.task_id] == 1
        assert receiver.stats.delivered == 1


async def test_duplicated_emulator_callbacks_resolve_once() -> None:
    """The emulator's duplicate fault delivers twice; the subscriber hears once, one GET."""
    events: list[VerifiedCallback] = []
    async with (
        Emulator(job_seconds=1, time_scale=0.01, faults="callback:duplicate") as emu,
        emu.client() as client,
    ):
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            token = receiver.registry.new_token("fox", subscriber=events.append)
            task = await client.submit(
                "seedance-2", clip(), callback_url=receiver.registry.url_for(token)
            )
            receiver.registry.set_task_id(token, task.task_id)
            with anyio.fail_after(5):
                await receiver.wait(token)
                await emu.wait_callbacks()
                await receiver.join()
        assert emu.stats.callbacks_delivered == 2
        assert len(events) == 1
        assert emu.stats.status_requests[task.task_id] == 1


async def test_forged_finished_body_changes_nothing_for_a_running_task() -> None:
    """A forged 'finished' with a foreign file URL is verified, dropped; the real one wins."""
    async with Emulator(job_seconds=5, time_scale=0.05) as emu, emu.client() as client:
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            token = receiver.registry.new_token("fox")
            url = receiver.registry.url_for(token)
            task = await client.submit("seedance-2", clip(), callback_url=url)
            receiver.registry.set_task_id(token, task.task_id)
            forged = {
                "code": 200,
                "data": {
                    "task_id": task.task_id,
                    "status": "finished",
                    "files": [{"file_url": "https://evil.example.net/x.mp4", "file_type": "video"}],
                },
            }
            assert await post(url, json.dumps(forged).encode()) == 200
            await receiver.join()
            assert receiver.stats.unconfirmed == 1
            assert receiver.stats.delivered == 0
            with anyio.fail_after(5):
                outcome = await receiver.wait(token)
        assert outcome.task.file_urls == [emu.file_url(task.task_id)]
        assert emu.stats.status_requests[task.task_id] == 2


async def test_unknown_submit_outcome_is_recovered_from_its_callback() -> None:
    """A submit whose answer was lost is adopted from its verified callback, not resubmitted (T19)."""
    async with (
        Emulator(job_seconds=1, time_scale=0.01, faults="submit:reset,times=1") as emu,
        emu.client() as client,
    ):
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            token = receiver.registry.new_token("in-doubt")
            with pytest.raises(SubmitOutcomeUnknownError):
                await client.submit(
                    "seedance-2", clip(), callback_url=receiver.registry.url_for(token)
                )
            with anyio.fail_after(5):
                outcome = await receiver.wait(token)
        assert outcome.adopted is True
        assert outcome.task.status is TaskStatus.FINISHED
        assert receiver.registry.task_id(token) == outcome.task.task_id
        assert emu.stats.submits_accepted == 1
        assert sum(emu.stats.jobs_by_fingerprint.values()) == 1


async def test_junk_gets_404_400_413_over_http_and_leaves_no_trace() -> None:
    """Unknown tokens, malformed and oversized bodies are refused and cost no status request."""
    async with Emulator(job_seconds=1, time_scale=0.01) as emu, emu.client() as client:
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0) as server:
            token = receiver.registry.new_token("fox")
            url = receiver.registry.url_for(token)
            assert await post(f"{server.base_url}/{'Z' * 43}", b"{}") == 404
            assert await post(f"{server.base_url}/short", b"{}") == 404
            assert await post(url, b"{]") == 400
            assert await post(url, b"[" + b" " * 100_000 + b"]") == 413
            await receiver.join()
        assert sum(emu.stats.status_requests.values()) == 0
        assert receiver.stats.accepted == 0


# -- with the orchestrator -----------------------------------------------------------------

SCALE = 0.01  # real seconds per emulated second


def requests(n: int, seconds: float = 60) -> list[GenerationRequest]:
    return [
        GenerationRequest("seedance-2", clip(seconds, f"{PROMPT}, take {i}"), key=f"clip-{i}")
        for i in range(n)
    ]


def outcome(results: list[JobResult]) -> list[tuple[str, JobState, tuple[str, ...]]]:
    """The user-visible outcome of a batch, independent of task ids and timings."""
    return [
        (
            r.key,
            r.state,
            tuple(
                u.rsplit("/", 1)[-1].split(".")[-1] for u in (r.task.file_urls if r.task else [])
            ),
        )
        for r in results
    ]


async def run_batch(
    reqs: list[GenerationRequest], *, callbacks: bool, faults: str | None = None, **emu_kwargs: Any
) -> tuple[list[JobResult], Emulator, CallbackReceiver | None]:
    poll = PollPolicy().scaled(SCALE * 10)  # max_interval 3 s real: far beyond a 0.6 s job
    async with (
        Emulator(time_scale=SCALE, faults=faults, seed=7, **emu_kwargs) as emu,
        emu.client(poll=poll) as client,
    ):
        if not callbacks:
            async with Orchestrator(client, max_in_flight=8) as orch:
                return await orch.run(reqs), emu, None
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            async with Orchestrator(client, max_in_flight=8, receiver=receiver) as orch:
                results = await orch.run(reqs)
            await emu.wait_callbacks()
        return results, emu, receiver


async def test_batch_with_callbacks_costs_one_status_request_per_job() -> None:
    """Acceptance: every job ends with at most two status requests; results equal polling's."""
    reqs = requests(12)
    with anyio.fail_after(30):
        polled, _, _ = await run_batch(reqs, callbacks=False)
        called, emu, receiver = await run_batch(reqs, callbacks=True)
    assert outcome(called) == outcome(polled)
    assert all(r.state is JobState.FINISHED for r in called)
    per_job = [emu.stats.status_requests[r.task_id or ""] for r in called]
    assert max(per_job) <= 2
    assert sum(per_job) == len(reqs)  # normally the verification alone
    assert receiver is not None
    assert receiver.stats.delivered == len(reqs)


async def test_lost_callbacks_are_covered_by_the_fallback_poll() -> None:
    """When every callback is lost, the slow fallback poll still ends every job."""
    reqs = requests(4, seconds=20)
    poll = PollPolicy().scaled(0.005)  # fallback after 2 × 0.15 s
    async with (
        Emulator(time_scale=SCALE, faults="callback:lose", seed=3) as emu,
        emu.client(poll=poll) as client,
    ):
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver) as orch,
        ):
            with anyio.fail_after(10):
                results = await orch.run(reqs)
    assert [r.state for r in results] == [JobState.FINISHED] * 4
    assert receiver.stats.received == 0
    assert all(emu.stats.status_requests[r.task_id or ""] >= 1 for r in results)


@pytest.mark.parametrize("receiver_key", ["hook-key", "another-key"])
async def test_signed_callbacks_end_to_end(receiver_key: str) -> None:
    """The right key resolves jobs by callback; a wrong one gets 401, not retried, polled."""
    reqs = requests(4, seconds=20)
    poll = PollPolicy().scaled(0.005)  # fallback after 2 x 0.15 s
    async with (
        Emulator(time_scale=SCALE, seed=3, callback_signing_key="hook-key") as emu,
        emu.client(poll=poll) as client,
    ):
        receiver = CallbackReceiver(client, signing_key=receiver_key)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver) as orch,
        ):
            with anyio.fail_after(10):
                results = await orch.run(reqs)
            await emu.wait_callbacks()
    assert [r.state for r in results] == [JobState.FINISHED] * 4
    if receiver_key == "hook-key":
        assert receiver.stats.delivered == 4
        assert receiver.stats.unsigned == 0
    else:
        assert receiver.stats.unsigned == 4
        assert receiver.stats.delivered == 0
        assert emu.stats.callbacks_refused == 4  # a 4xx is final: one attempt each
        assert emu.stats.callback_attempts == 4


async def test_callbacks_resolve_jobs_before_any_fallback_poll() -> None:
    """Callbacks end the jobs while the fallback poll is still far off: the poller never ran."""
    reqs = requests(6, seconds=30)
    poll = PollPolicy().scaled(0.2)  # fallback after 12 s; jobs take 0.3 s
    events: list[str] = []
    async with (
        Emulator(time_scale=SCALE, faults="callback:duplicate", seed=5) as emu,
        emu.client(poll=poll) as client,
    ):
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            async with Orchestrator(
                client, receiver=receiver, on_event=lambda e: events.append(e.kind)
            ) as orch:
                with anyio.fail_after(10):
                    results = await orch.run(reqs)
                assert orch.polls == 0
            await emu.wait_callbacks()
            await receiver.join()
    assert [r.state for r in results] == [JobState.FINISHED] * 6
    assert events.count("finished") == 6  # duplicates resolved once
    log = emu.stats.callback_log
    assert sum(attempt.duplicate and attempt.attempt == 1 for attempt in log) == 6
    assert all(attempt.delivered for attempt in log if not attempt.duplicate)
    # A duplicate arriving after its job ended finds the token retired: 200 (a 4xx would be
    # final and recorded as a failed delivery), no verification, no trace.
    assert all(attempt.status_code == 200 for attempt in log if attempt.duplicate)
    assert emu.stats.callbacks_refused == 0
    assert all(emu.stats.status_requests[r.task_id or ""] == 1 for r in results)


async def test_forged_callback_does_not_end_an_orchestrated_job() -> None:
    """A forged 'finished' for a running job changes nothing; the real callback ends it."""
    poll = PollPolicy().scaled(0.2)
    async with Emulator(time_scale=SCALE, seed=9) as emu, emu.client(poll=poll) as client:
        receiver = CallbackReceiver(client)
        submitted = anyio.Event()

        def on_event(event: JobEvent) -> None:
            if event.kind == "submitted":
                submitted.set()

        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver, on_event=on_event) as orch,
        ):
            handle = orch.start(requests(1, seconds=40)[0])
            with anyio.fail_after(5):
                await submitted.wait()
            url = orch._book.live[handle.key].callback_url
            assert url is not None
            forged = {
                "task_id": handle.task_id,
                "status": "finished",
                "files": [{"file_url": "https://evil.example.net/x.mp4"}],
            }
            assert await post(url, json.dumps(forged).encode()) == 200
            await receiver.join()
            assert handle.state is JobState.IN_FLIGHT
            with anyio.fail_after(5):
                task = await handle.wait()
            assert task.file_urls == [emu.file_url(task.task_id)]
    assert receiver.stats.unconfirmed == 1


async def test_unknown_submit_becomes_a_tracked_job_through_its_callback(tmp_path: Any) -> None:
    """A submit whose answer was lost ends finished via its verified callback, never resubmitted."""
    poll = PollPolicy().scaled(0.2)
    async with (
        Emulator(time_scale=SCALE, faults="submit:reset,times=1", seed=11) as emu,
        emu.client(poll=poll) as client,
    ):
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0), Orchestrator(client, receiver=receiver) as orch:
            with anyio.fail_after(10):
                results = await orch.run(requests(3, seconds=20))
    assert [r.state for r in results] == [JobState.FINISHED] * 3
    assert receiver.stats.adopted == 1
    assert emu.stats.submits_accepted == 3
    assert all(count == 1 for count in emu.stats.jobs_by_fingerprint.values())
    assert len({r.task_id for r in results}) == 3


class RecordingJournal(JournalRecorder):
    """A journal recorder that also remembers which task ids ``after_submit`` recorded."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(journal)
        self.submitted: list[tuple[str, str]] = []

    async def after_submit(self, job: Job, task: Task) -> None:
        self.submitted.append((job.key, task.task_id))
        await super().after_submit(job, task)


def _read_all(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.iterdir())


async def test_stalled_submit_is_adopted_and_journaled_with_its_task_id(tmp_path: Path) -> None:
    """T19: a submit stalled past the read timeout is adopted from its callback and journaled."""
    poll = PollPolicy().scaled(0.2)  # fallback after 12 s: only callbacks end these jobs
    async with (
        Emulator(time_scale=SCALE, faults="submit:stall,times=1,seconds=30", seed=13) as emu,
        emu.client(poll=poll, timeout=0.5) as client,
        Journal(tmp_path / "journal.sqlite") as journal,
    ):
        recorder = RecordingJournal(journal)
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver, journal=recorder) as orch,
        ):
            with anyio.fail_after(10):
                results = await orch.run(requests(3, seconds=100))  # 1 s: past the timeout
        entries = {entry.key: entry for entry in await journal.entries()}
    assert [r.state for r in results] == [JobState.FINISHED] * 3
    # The journal holds the hashes of the callback tokens, never the tokens.
    urls = {attempt.url for attempt in emu.stats.callback_log}
    hashes = {token_hash(url.rsplit("/", 1)[-1]) for url in urls}
    assert {entry.callback_token for entry in entries.values()} == hashes
    journal_bytes = _read_all(tmp_path)
    assert not any(url.rsplit("/", 1)[-1].encode() in journal_bytes for url in urls)
    assert emu.stats.faults_injected["submit:stall"] == 1
    assert receiver.stats.adopted == 1
    assert emu.stats.submits_accepted == 3
    assert sorted(recorder.submitted) == sorted((r.key, r.task_id) for r in results)
    for result in results:
        entry = entries[result.key]
        assert (entry.state, entry.task_id, entry.attempts) == (
            JournalState.FINISHED,
            result.task_id,
            1,
        )
        assert emu.stats.status_requests[result.task_id or ""] == 1


async def test_callback_overtaking_a_slow_submit_answer_resolves_the_job() -> None:
    """A verified callback that arrives before the submit's answer ends the job at once."""
    poll = PollPolicy().scaled(0.2)
    async with (
        Emulator(time_scale=SCALE, faults="submit:slow,times=1,seconds=0.8", seed=17) as emu,
        emu.client(poll=poll) as client,
    ):
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver) as orch,
        ):
            with anyio.fail_after(10):
                results = await orch.run(requests(3, seconds=10))  # 0.1 s: before the answer
            assert orch.polls == 0
    assert [r.state for r in results] == [JobState.FINISHED] * 3
    assert emu.stats.faults_injected["submit:slow"] == 1
    assert receiver.stats.adopted == 1
    assert emu.stats.submits_accepted == 3
    assert all(emu.stats.status_requests[r.task_id or ""] == 1 for r in results)


async def test_fallback_poll_backs_off_so_a_long_job_costs_two_status_requests() -> None:
    """A job running past the first fallback poll is polled once, then its callback ends it."""
    poll = PollPolicy().scaled(0.01)  # first fallback after 0.6 s, the next 1.2 s later
    async with Emulator(time_scale=SCALE, seed=19) as emu, emu.client(poll=poll) as client:
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver) as orch,
        ):
            with anyio.fail_after(10):
                results = await orch.run(requests(4, seconds=140))  # 1.4 s
            polls = orch.polls
    assert [r.state for r in results] == [JobState.FINISHED] * 4
    per_job = [emu.stats.status_requests[r.task_id or ""] for r in results]
    assert max(per_job) <= 2
    assert polls <= 4  # one fallback poll per job at most (a flat schedule would ask twice)
    assert receiver.stats.delivered == 4


async def test_unknown_submit_without_a_callback_stays_unknown_and_is_not_resubmitted() -> None:
    """When the callback of an unanswered submit never comes, the job ends unknown at its timeout."""
    poll = PollPolicy().scaled(0.005)
    async with (
        Emulator(time_scale=SCALE, faults="submit:reset,times=1;callback:lose", seed=23) as emu,
        emu.client(poll=poll) as client,
    ):
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver, job_timeout=1.0) as orch,
        ):
            with anyio.fail_after(10):
                results = await orch.run(requests(3, seconds=20))
    states = sorted(r.state.value for r in results)
    assert states == ["finished", "finished", "unknown"]
    unknown = next(r for r in results if r.state is JobState.UNKNOWN)
    assert isinstance(unknown.error, SubmitOutcomeUnknownError)
    assert unknown.task_id is None
    assert emu.stats.submits_accepted == 3  # the lost one exists on the server: never resent
    assert receiver.stats.adopted == 0


async def test_attached_task_is_polled_normally_even_with_a_receiver() -> None:
    """A task submitted earlier (no callback URL of this run) is polled, not left to a fallback."""
    # A fallback poll would wait 12 s; the jobs' expected duration is the emulator's (20 s).
    poll = PollPolicy(expected_duration=(10, 40)).scaled(0.2)
    async with Emulator(time_scale=SCALE, seed=29) as emu, emu.client(poll=poll) as client:
        task = await client.submit("seedance-2", clip(20))
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver) as orch,
        ):
            handle = orch.attach(requests(1, seconds=20)[0], task)
            with anyio.fail_after(5):
                finished = await handle.wait()
            assert len(receiver.registry) == 0
    assert finished.task_id == task.task_id
    assert emu.stats.callbacks_sent == 0


async def test_leaving_the_block_reports_a_submit_still_awaiting_its_callback(
    tmp_path: Path,
) -> None:
    """An unanswered submit still waiting for its callback is reported unknown on exit."""
    poll = PollPolicy().scaled(0.2)
    waiting = anyio.Event()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for its callback" in record.getMessage():
                waiting.set()

    spy = Spy()
    async with (
        Emulator(time_scale=SCALE, faults="submit:reset,times=1", seed=41) as emu,
        emu.client(poll=poll) as client,
        Journal(tmp_path / "journal.sqlite") as journal,
    ):
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            async with Orchestrator(
                client, receiver=receiver, journal=JournalRecorder(journal)
            ) as orch:
                handle = orch.start(requests(1, seconds=1000)[0])
                logging.getLogger("vidgo_async").addHandler(spy)  # before the submit runs
                try:
                    with anyio.fail_after(5):
                        await waiting.wait()
                finally:
                    logging.getLogger("vidgo_async").removeHandler(spy)
                assert handle.state is JobState.IN_DOUBT  # held open, not ended unknown
            result = await handle.result()
        entry = await journal.get(handle.key)
    assert result.state is JobState.UNKNOWN
    assert isinstance(result.error, SubmitOutcomeUnknownError)
    assert entry is not None
    assert entry.state is JournalState.UNKNOWN
    assert emu.stats.submits_accepted == 1


async def test_attached_task_is_bound_and_its_earlier_callback_resolves_it() -> None:
    """A rerun's re-registered token reaches the attached job: its callback ends it, no polling."""
    slow = PollPolicy(initial_delay=60.0, min_interval=60.0, max_interval=60.0)
    async with (
        Emulator(time_scale=SCALE, seed=31) as emu,
        emu.client(poll=slow) as client,
    ):
        receiver = CallbackReceiver(client)
        async with receiver.serve("127.0.0.1", 0):
            registry = receiver.registry
            earlier = registry.new_token("an earlier run")  # as a rerun re-registers it
            url = registry.url_for(earlier)
            task = await client.submit("seedance-2", clip(30), callback_url=url)  # ends in 0.3 s
            registry.register_hash(token_hash(earlier), "fox-0", task_id=task.task_id)
            async with Orchestrator(client, receiver=receiver) as orch:
                handle = orch.attach(requests(1)[0], task)
                with anyio.fail_after(5):
                    finished = await handle.wait()
                assert orch.polls == 0
            assert registry.owner_of(task.task_id) == token_hash(earlier)
            assert earlier not in registry  # retired with its job: late duplicates get 200
    assert finished.status is TaskStatus.FINISHED
    assert receiver.stats.delivered == 1


async def test_attached_task_without_an_earlier_token_is_guarded() -> None:
    """An attached job's task is bound to it: another token's callback cannot adopt that task."""
    async with Emulator(time_scale=SCALE, seed=37) as emu, emu.client() as client:
        task = await client.submit("seedance-2", clip(20))
        receiver = CallbackReceiver(client)
        async with (
            receiver.serve("127.0.0.1", 0),
            Orchestrator(client, receiver=receiver) as orch,
        ):
            handle = orch.attach(requests(1, seconds=20)[0], task)
            owner = receiver.registry.owner_of(task.task_id)
            stranger = receiver.registry.new_token("a leaked token")
            adopted = receiver.registry.bind(token_hash(stranger), task.task_id)
            with anyio.fail_after(5):
                await handle.wait()
    assert owner is not None
    assert not adopted
