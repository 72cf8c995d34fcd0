"""Tests for resuming from a journal (vidgo_async._resume) with the orchestrator and emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgo_async import JournalConflictError, PollPolicy, TaskStatus
from vidgo_async._jobs import (
    GenerationRequest,
    Job,
    JobAbandonedError,
    JobState,
    request_fingerprint,
)
from vidgo_async._journal import Journal, JournalState
from vidgo_async._orchestrator import Orchestrator
from vidgo_async._resume import JournalRecorder, plan_resume
from vidgo_async.testing import Emulator

MODEL = "seedance-2"
FAST = PollPolicy().scaled(0.01)


def _request(n: int, prompt: str | None = None) -> GenerationRequest:
    data = {"prompt": prompt or f"clip {n}", "duration": 5, "resolution": "720p"}
    return GenerationRequest(MODEL, data, key=f"k{n}")


async def test_orchestrator_writes_every_step_through_the_recorder(tmp_path: Path) -> None:
    """A run through JournalRecorder leaves every job finished with its task id, once each."""
    requests = [_request(n) for n in range(6)]
    async with (
        Emulator(job_seconds=0.0, seed=3) as emu,
        emu.client() as client,
        Journal(tmp_path / "journal.sqlite") as journal,
    ):
        async with Orchestrator(
            client, max_in_flight=3, poll=FAST, journal=JournalRecorder(journal)
        ) as orch:
            results = await orch.run(requests)
        entries = {e.key: e for e in await journal.entries()}
        assert all(r.state is JobState.FINISHED for r in results)
        for result in results:
            entry = entries[result.key]
            assert entry.state is JournalState.FINISHED
            assert entry.task_id == result.task_id
            assert entry.attempts == 1
            assert entry.task is not None
            assert entry.task.files
        assert emu.stats.submits_accepted == 6


async def test_orchestrator_takes_a_bare_journal_and_records_through_it(tmp_path: Path) -> None:
    """``Orchestrator(journal=Journal.open(...))`` wraps the journal in a JournalRecorder."""
    async with Emulator(job_seconds=0.0, seed=4) as emu, emu.client() as client:
        journal = await Journal.open(str(tmp_path / "journal.sqlite"))
        try:
            async with Orchestrator(client, poll=FAST, journal=journal) as orch:
                results = await orch.run([_request(n) for n in range(2)])
            entries = {e.key: e for e in await journal.entries()}
        finally:
            await journal.aclose()
    assert [entries[r.key].task_id for r in results] == [r.task_id for r in results]
    assert all(entries[r.key].state is JournalState.FINISHED for r in results)


async def test_rejected_and_unknown_outcomes_are_recorded(tmp_path: Path) -> None:
    """A server-failed task and an unanswered submit reach the journal as failed and unknown."""
    bad = GenerationRequest(
        MODEL,
        {"prompt": 'x [[vidgo-emulator: fail="boom"]]', "duration": 5, "resolution": "720p"},
        key="bad",
    )
    async with (
        Emulator(job_seconds=0.0, seed=4, faults="submit:503,times=1") as emu,
        emu.client() as client,
        Journal(tmp_path / "journal.sqlite") as journal,
    ):
        async with Orchestrator(
            client, max_in_flight=1, poll=FAST, journal=JournalRecorder(journal)
        ) as orch:
            results = {r.key: r for r in await orch.run([_request(1), bad])}
        lost = await journal.get("k1")
        failed = await journal.get("bad")
    assert results["k1"].state is JobState.UNKNOWN
    assert lost is not None
    assert lost.state is JournalState.UNKNOWN
    assert lost.submit_in_doubt
    assert results["bad"].state is JobState.FAILED
    assert failed is not None
    assert (failed.state, failed.task_id) == (JournalState.FAILED, results["bad"].task_id)
    assert failed.error is not None
    assert "boom" in failed.error["message"]


async def test_plan_resume_sorts_requests_by_journal_state(tmp_path: Path) -> None:
    """Finished skip, task ids attach, unknowns wait, failures resubmit, changes conflict."""
    async with Journal(tmp_path / "journal.sqlite") as journal:
        for n, outcome in enumerate(["finished", "in_flight", "unknown", "failed", "intent", "x"]):
            request = _request(n)
            data = dict(request.input)
            await journal.record_intent(request.key or "", request_fingerprint(MODEL, data), MODEL, data)  # fmt: skip
            if outcome in ("finished", "in_flight"):
                await journal.record_submitted(f"k{n}", f"task-{n}")
            if outcome == "finished":
                await journal.record_terminal(
                    f"k{n}", "finished", {"task_id": f"task-{n}", "status": "finished"}
                )
            elif outcome == "unknown":
                await journal.record_unknown(f"k{n}", "read timeout")
            elif outcome == "failed":
                await journal.record_failed(f"k{n}", "InsufficientCreditsError", "top up")
        requests = [_request(n) for n in range(5)] + [_request(5, "changed"), _request(6)]
        plan = await plan_resume(journal, requests)
        assert [r.key for r, _ in plan.done] == ["k0"]
        assert [(r.key, t.task_id, t.status) for r, t in plan.attach] == [
            ("k1", "task-1", TaskStatus.NOT_STARTED)
        ]
        assert [r.key for r, _ in plan.in_doubt] == ["k2", "k4"]
        assert [r.key for r in plan.submit] == ["k3", "k6"]
        assert [c.key for c in plan.conflicts] == ["k5"]
        assert isinstance(plan.conflicts[0], JournalConflictError)
        assert plan.resuming
        retry = await plan_resume(journal, requests[:4], retry_unknown=True)
        assert [r.key for r in retry.submit] == ["k2", "k3"]
        assert [e.key for e in retry.orphans] == ["k4", "k5"]
        with pytest.raises(ValueError, match="key"):
            await plan_resume(journal, [GenerationRequest(MODEL, dict(_request(9).input))])


async def test_resumed_run_attaches_instead_of_submitting(tmp_path: Path) -> None:
    """A journaled task id is polled to the end by a new orchestrator, which journals its end."""
    request = _request(1)
    async with (
        Emulator(job_seconds=0.0, seed=5) as emu,
        emu.client() as client,
        Journal(tmp_path / "journal.sqlite") as journal,
    ):
        task = await client.submit(MODEL, request.input)
        data = dict(request.input)
        await journal.record_intent("k1", request_fingerprint(MODEL, data), MODEL, data)
        await journal.record_submitted("k1", task.task_id)
        plan = await plan_resume(journal, [request, _request(2)])
        assert [r.key for r in plan.submit] == ["k2"]
        async with Orchestrator(
            client, max_in_flight=2, poll=FAST, journal=JournalRecorder(journal)
        ) as orch:
            attached = [orch.attach(r, t) for r, t in plan.attach]
            fresh = await orch.run(plan.submit)
            resumed = [await handle.result() for handle in attached]
        # The orchestrator journals the end of an attached job itself.
        entry = await journal.get("k1")
        assert entry is not None
        assert (entry.state, entry.attempts) == (JournalState.FINISHED, 1)
        recorder = JournalRecorder(journal)
        for result in resumed:
            await recorder.record_result(result)  # recording it again changes nothing
        again = await journal.get("k1")
        assert again is not None
        assert again.state is JournalState.FINISHED
        assert resumed[0].state is JobState.FINISHED
        assert resumed[0].task_id == task.task_id
        assert fresh[0].state is JobState.FINISHED
        assert emu.stats.submits_accepted == 2
        assert emu.stats.submits_by_prompt["clip 1"] == 1


@pytest.mark.parametrize("status", ["401", "403", "400", "302", "word,word=paused"])
async def test_a_confusing_status_answer_ends_lost_and_the_rerun_polls_it(
    tmp_path: Path, status: str
) -> None:
    """A 401/403/400/302 or unknown status loses the job (journaled lost); a rerun polls it once."""
    request = _request(7)
    async with Journal(tmp_path / "journal.sqlite") as journal:
        async with (
            Emulator(job_seconds=0.0, seed=9, faults=f"status:{status},times=1") as emu,
            emu.client() as client,
        ):
            async with Orchestrator(
                client, max_in_flight=1, poll=FAST, journal=JournalRecorder(journal)
            ) as orch:
                (result,) = await orch.run([request])
            assert result.state is JobState.LOST
            assert result.task_id is not None
            entry = await journal.get("k7")
            assert entry is not None
            assert (entry.state, entry.task_id) == (JournalState.LOST, result.task_id)
            plan = await plan_resume(journal, [request])
            assert [task.task_id for _, task in plan.attach] == [result.task_id]
            assert plan.submit == []
            async with Orchestrator(
                client, max_in_flight=1, poll=FAST, journal=JournalRecorder(journal)
            ) as orch:
                handle = orch.attach(*plan.attach[0])
                assert (await handle.result()).state is JobState.FINISHED
            assert emu.stats.submits_accepted == 1
        finished = await journal.get("k7")
        assert finished is not None
        assert finished.state is JournalState.FINISHED


async def test_fingerprint_input_names_the_job_whatever_input_is_sent(tmp_path: Path) -> None:
    """With ``fingerprint_input`` the journal and the rerun plan know the job by it, not the input."""
    identity = {"prompt": "clip", "duration": 5, "resolution": "720p", "aspect_ratio": "auto"}
    identity["image_urls"] = ["https://x.invalid/sha256/ab"]

    def sent(url: str) -> GenerationRequest:
        data = {**identity, "image_urls": [url]}
        return GenerationRequest(MODEL, data, key="k", fingerprint_input=identity)

    async with (
        Emulator(job_seconds=0.0, seed=6) as emu,
        emu.client() as client,
        Journal(tmp_path / "journal.sqlite") as journal,
    ):
        async with Orchestrator(client, poll=FAST, journal=JournalRecorder(journal)) as orch:
            [first] = await orch.run([sent("https://cdn.example/1.png")])
        entry = await journal.get("k")
        assert entry is not None
        assert entry.fingerprint == request_fingerprint(MODEL, identity)
        assert entry.input == identity  # the journal records what the fingerprint is over
        assert emu.stats.jobs_for(MODEL, {**identity, "image_urls": ["https://cdn.example/1.png"]})
        plan = await plan_resume(journal, [sent("https://cdn.example/2.png")])
    assert first.state is JobState.FINISHED
    assert (len(plan.done), plan.conflicts) == (1, [])


async def test_the_recorder_withdraws_only_an_intent_it_wrote(tmp_path: Path) -> None:
    """A job cancelled unsent withdraws this recorder's intent, never one another submit wrote."""
    mine, theirs = _request(1), _request(2)
    async with Journal(tmp_path / "journal.sqlite") as journal:
        recorder = JournalRecorder(journal)
        data = dict(theirs.input)
        # Another submit (an earlier run, another process) holds k2's intent.
        await journal.record_intent("k2", request_fingerprint(MODEL, data), MODEL, data)
        jobs = [Job(r, key=r.key or "", input=r.input, wall_clock=lambda: 0.0) for r in (mine, theirs)]  # fmt: skip
        await recorder.before_submit(jobs[0])  # only k1's intent is this recorder's
        for job in jobs:
            # Ended unsent: a stop cut k2's own intent write short, before it was made.
            job.cancel(JobAbandonedError(job.key, None, reason="stopped"))
            await recorder.after_end(job)
        mine_entry, theirs_entry = await journal.get("k1"), await journal.get("k2")
    assert mine_entry is None  # withdrawn: a rerun submits it afresh
    assert theirs_entry is not None
    assert theirs_entry.state is JournalState.SUBMITTING  # still in doubt: never paid twice
