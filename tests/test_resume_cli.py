"""Tests for resuming ``vidgo-async batch`` from its journal, and for its spend guard.

The batch runs as a subprocess (so it can be SIGKILLed) against an emulator that is a
separate process too (``vidgo-async emulator``), read through its ``/_emulator/stats`` route.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _batch_support import (
    KEY,
    MODEL,
    EmulatorProcess,
    assert_complete,
    batch_command,
    batch_env,
    emulator,
    journal_entries,
    journal_entries_when_readable,
    prompt_of,
    read_results,
    run_batch,
    sha256,
    submits,
    wait_for,
    write_jobs,
)

from vidgo_async import GenerationRequest, JobState, Task, TaskStatus
from vidgo_async._cli import main
from vidgo_async._cli._batch_input import BatchLine
from vidgo_async._cli._batch_recorded import RecordedError
from vidgo_async._cli._batch_resume import BatchResume
from vidgo_async._journal import Journal, JournalState, fingerprint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorProcess]:
    """One emulator for the quick tests (each uses its own prompts): 0.4-0.8 s jobs."""
    with emulator("--job-seconds", "20-40", "--time-scale", "0.02", "--seed", "3") as server:
        yield server


def in_process(
    source: Path, out: Path, emu: EmulatorProcess, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> int:
    """Run the batch command in this process (quicker than a subprocess)."""
    monkeypatch.setenv("VIDGO_API_KEY", KEY)
    return main(batch_command(source, out, emu, *extra)[3:])


def kill_after(command: list[str], seconds: float) -> None:
    process = subprocess.Popen(  # noqa: S603 - a fixed command line of this test
        command, env=batch_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(seconds)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def finish(source: Path, out: Path, emu: EmulatorProcess) -> set[str]:
    """Rerun until exit 0; return the ids reported ``unknown`` on the way (then retried)."""
    reported: set[str] = set()
    for _ in range(3):
        extra = ("--retry-unknown",) if reported else ()
        result = run_batch(source, out, emu, *extra)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 0:
            return reported
        # Only an unanswered submit of a killed run may keep a resumed run from finishing;
        # the exit status says the run is over (and results.jsonl written) before it is read.
        assert result.returncode == 1, result.stderr
        unknown = {row["id"] for row in read_results(out) if row["status"] == "unknown"}
        assert unknown, result.stderr
        assert "--retry-unknown" in result.stderr
        reported |= unknown
    raise AssertionError("the batch did not finish after three reruns")


def journal_as_left(
    out: Path, job_id: str, *, task_id: str | None = None, server: str | None = None
) -> None:
    """Journal a shorthand job of ``write_jobs`` as an earlier run left it: its intent (a
    submit in doubt), with ``task_id`` its task too (in flight), on ``server`` if given."""
    data = {"prompt": prompt_of(job_id), "duration": 5, "resolution": "720p"}
    data["aspect_ratio"] = "16:9"

    async def write() -> None:
        async with Journal(out / "journal.sqlite") as journal:
            if server is not None:
                await journal.bind_server(server)
            await journal.record_intent(job_id, fingerprint(MODEL, data), MODEL, data)
            if task_id is not None:
                await journal.record_submitted(job_id, task_id)

    anyio.run(write)


# -- T15: SIGKILL at random points, then resume ---------------------------------------------


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_submits_each_job_once(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    """T15: a batch SIGKILLed at random points and rerun ends with each job once, paid once."""
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        source = tmp_path / f"jobs-{seed}.jsonl"
        out = tmp_path / f"out-{seed}"
        ids = write_jobs(source, f"kill{seed}", 10)
        command = batch_command(source, out, emu, "--concurrency", "4")
        for _ in range(2):
            kill_after(command, rng.uniform(0.4, 1.8))
        unknown = finish(source, out, emu)
        assert_complete(out, ids)
        counts = submits(emu.stats(), ids)
        for job_id, count in counts.items():
            if job_id in unknown:
                # Reported unknown, then retried on request: the killed submit may have landed.
                assert count in (1, 2), (job_id, count)
            else:
                assert count == 1, (job_id, count)
        entries = journal_entries(out / "journal.sqlite")
        assert {entry.key for entry in entries} == set(ids)
        assert all(entry.state is JournalState.FINISHED and entry.files for entry in entries)


@pytest.mark.slow
def test_acceptance_40_jobs_killed_between_waves_resume_with_each_prompt_once(
    tmp_path: Path,
) -> None:
    """Acceptance: 40 jobs at concurrency 8, SIGKILL between two waves, rerun: exit 0, paid once."""
    source = tmp_path / "prompts.jsonl"
    out = tmp_path / "out"
    ids = write_jobs(source, "accept", 40)
    journal = out / "journal.sqlite"
    # 40 emulated seconds at 0.04: each wave of 8 jobs takes 1.6 s.
    with emulator("--job-seconds", "40", "--time-scale", "0.04", "--seed", "7") as server:
        command = batch_command(source, out, server, "--concurrency", "8")
        process = subprocess.Popen(  # noqa: S603 - a fixed command line of this test
            command, env=batch_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def first_wave_in_flight() -> bool:
            assert process.poll() is None, "the batch exited before it was killed"
            entries = journal_entries_when_readable(journal)
            return sum(entry.state is JournalState.IN_FLIGHT for entry in entries) == 8

        try:
            # Killed once the first wave is in flight (and journaled): a condition, not a
            # time, so that it is always before the wave ends (1.6 s later) and the second
            # wave is sent, however slow the machine.
            wait_for(first_wave_in_flight, timeout=30, what="8 jobs journaled in flight")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        states = [entry.state for entry in journal_entries(journal)]
        assert states == [JournalState.IN_FLIGHT] * 8
        assert server.stats()["submits_accepted"] == 8
        result = run_batch(source, out, server, "--concurrency", "8")
        stats = server.stats()
    assert result.returncode == 0, result.stderr
    assert "8 to poll (not submitted again)" in result.stderr
    assert_complete(out, ids)
    assert len(list(out.glob("*.mp4"))) == 40
    assert len(stats["submits_by_prompt"]) == 40
    assert set(stats["submits_by_prompt"].values()) == {1}
    # The 8 re-attached tasks held their slots: never more than 8 tasks in flight.
    assert stats["peak_in_flight"] <= 8


# -- resume behaviour, one case at a time -------------------------------------------------------


def test_rerun_skips_finished_jobs_and_downloads_missing_or_partial_videos(
    tmp_path: Path, emu: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun submits nothing, fetches a deleted video again and removes a stale .part."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "rerun", 3)
    assert in_process(source, out, emu, monkeypatch) == 0
    before = emu.stats()
    (out / "rerun-1.mp4").unlink()
    (out / "rerun-2.mp4.part").write_bytes(b"half a vid")  # a download cut by a crash
    (out / ".results-x.part").write_text("{}")  # results cut by a crash
    assert in_process(source, out, emu, monkeypatch) == 0
    after = emu.stats()
    assert after["submit_attempts"] == before["submit_attempts"]
    assert_complete(out, ids)
    tasks = {row["id"]: row["task_id"] for row in read_results(out)}
    fetched = {
        job_id: after["download_requests"][task] - before["download_requests"][task]
        for job_id, task in tasks.items()
    }
    assert fetched == {"rerun-0": 0, "rerun-1": 1, "rerun-2": 0}  # only the deleted video


def test_unknown_submits_are_reported_and_retried_only_on_request(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A journaled submit without an answer is reported unknown (exit 1) until --retry-unknown."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "doubt", 2)
    journal_as_left(out, "doubt-0")  # crashed mid-submit
    assert in_process(source, out, emu, monkeypatch) == 1
    err = capsys.readouterr().err
    assert "unknown: doubt-0" in err
    assert "--retry-unknown" in err
    rows = {row["id"]: row for row in read_results(out)}
    assert rows["doubt-0"]["status"] == "unknown"
    assert rows["doubt-0"]["error"]["type"] == "SubmitOutcomeUnknownError"
    assert rows["doubt-1"]["status"] == "finished"
    assert submits(emu.stats(), ids) == {"doubt-0": 0, "doubt-1": 1}
    assert in_process(source, out, emu, monkeypatch, "--retry-unknown") == 0
    assert submits(emu.stats(), ids) == {"doubt-0": 1, "doubt-1": 1}
    assert_complete(out, ids)


def test_a_changed_request_under_the_same_id_is_refused_before_any_submit(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An edited line under a journaled id exits 2 naming it; nothing is sent; --fresh starts over."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "edit", 3)
    assert in_process(source, out, emu, monkeypatch) == 0
    results = (out / "results.jsonl").read_bytes()
    lines = source.read_text().splitlines()
    lines[1] = json.dumps({"id": "edit-1", "prompt": prompt_of("edit-1") + ", at night"})
    lines.append(json.dumps({"id": "edit-9", "prompt": "a new job that must not be sent"}))
    source.write_text("\n".join(lines) + "\n")
    before = emu.stats()
    capsys.readouterr()
    assert in_process(source, out, emu, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "'edit-1'" in err
    assert "different request" in err
    assert "--fresh" in err
    assert emu.stats()["requests"] == before["requests"]  # not even a balance request
    assert (out / "results.jsonl").read_bytes() == results
    # --fresh moves the old journal aside (kept) and submits every job again.
    assert in_process(source, out, emu, monkeypatch, "--fresh") == 0
    kept = list(out.glob("journal-*.sqlite"))
    assert len(kept) == 1
    assert {e.key for e in journal_entries(kept[0])} == set(ids)
    assert len(journal_entries(out / "journal.sqlite")) == 4
    assert "moved to" in capsys.readouterr().err
    assert emu.stats()["submits_accepted"] == before["submits_accepted"] + 4


def test_emulator_reruns_submit_again_what_the_dead_emulator_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --emulator a journaled task died with its process: the rerun submits it again."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "gone", 2)
    journal_as_left(out, "gone-0", task_id="task-of-a-dead-emulator")  # killed in flight
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["batch", str(source), "--out", str(out), "--emulator"]) == 0
    assert_complete(out, ids)
    entry = {e.key: e for e in journal_entries(out / "journal.sqlite")}["gone-0"]
    assert entry.attempts == 2
    assert entry.task_id != "task-of-a-dead-emulator"


def test_a_journal_of_another_server_is_refused_before_any_request(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real run's tasks are never given up by --emulator, nor polled on another --base-url."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "elsewhere", 2)
    journal_as_left(out, "elsewhere-0", task_id="task-paid-for-elsewhere", server=emu.base_url)
    before = journal_entries(out / "journal.sqlite")
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["batch", str(source), "--out", str(out), "--emulator"]) == 2
    err = capsys.readouterr().err
    assert f"its tasks were created on {emu.base_url}" in err
    assert "the built-in emulator" in err
    assert "nothing was submitted" in err
    assert journal_entries(out / "journal.sqlite") == before  # not marked failed
    monkeypatch.setenv("VIDGO_API_KEY", KEY)
    other = "http://127.0.0.1:9"  # nothing listens there: the refusal comes first
    assert main(["batch", str(source), "--out", str(out), "--base-url", other]) == 2
    assert f"this run uses {other}" in capsys.readouterr().err
    assert journal_entries(out / "journal.sqlite") == before
    assert not (out / f"{ids[1]}.mp4").exists()


# -- T16: a torn, damaged or foreign journal -------------------------------------------------


def tear_last_frame(wal: Path, rng: random.Random) -> None:
    """Cut the WAL inside its last frame (a write torn by a crash), then append garbage."""
    data = wal.read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    frame = 24 + page_size
    assert len(data) >= 32 + frame
    cut = rng.randrange(len(data) - frame + 1, len(data))
    wal.write_bytes(data[:cut] + os.urandom(300))


@pytest.mark.slow
def test_torn_wal_tail_after_a_kill_resumes_without_paying_twice(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    """T16: a killed run's WAL torn in its last frame, plus garbage: earlier commits all hold."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "torn", 8)
    kill_after(batch_command(source, out, emu, "--concurrency", "4"), 1.2)
    journal = out / "journal.sqlite"
    before = {entry.key: entry for entry in journal_entries(journal)}
    tear_last_frame(out / "journal.sqlite-wal", random.Random(16))
    after = {entry.key: entry for entry in journal_entries(journal)}
    # At most the last commit is lost: every other record is intact. The journal
    # group-commits, so that commit may hold one pending write per job in flight: at most
    # --concurrency (4) jobs.
    changed = [key for key in before if after.get(key) != before[key]]
    assert len(changed) <= 4
    assert set(after) <= set(before)
    unknown = finish(source, out, emu)
    assert_complete(out, ids)
    counts = submits(emu.stats(), ids)
    for job_id, count in counts.items():
        entry = after.get(job_id)
        if entry is not None and entry.task_id is not None:
            assert count == 1, job_id  # its task id survived: polled, never sent again
        elif job_id in unknown or job_id in changed:
            # In doubt (retried on request), or its one torn record was the intent of a
            # submit that had in fact been sent (a real crash tears only unfinished writes).
            assert count in (1, 2), job_id
        else:
            assert count == 1, job_id


def test_a_damaged_or_foreign_journal_is_refused_untouched(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """T16: a damaged journal or a foreign file exits 2 before any request and is not modified."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "damaged", 2)
    assert in_process(source, out, emu, monkeypatch) == 0
    journal = out / "journal.sqlite"
    data = bytearray(journal.read_bytes())
    data[100:4096] = os.urandom(4096 - 100)  # the header's tail and the schema page
    journal.write_bytes(bytes(data))
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes, not a journal\n" * 200)
    before = emu.stats()
    for extra in ((), ("--journal", str(foreign))):
        damaged = sha256(journal), sha256(foreign)
        capsys.readouterr()
        assert in_process(source, out, emu, monkeypatch, *extra) == 2
        err = capsys.readouterr().err
        assert "cannot use the journal" in err
        assert "--fresh" in err
        assert (sha256(journal), sha256(foreign)) == damaged
    assert emu.stats()["requests"] == before["requests"]
    assert in_process(source, out, emu, monkeypatch, "--fresh") == 0
    assert_complete(out, ids)
    assert len(list(out.glob("journal-*.sqlite"))) == 1


# -- the spend guard --------------------------------------------------------------------------


def test_insufficient_balance_exits_2_and_submits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch the balance cannot pay for (at the given price) exits 2 before any submit."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    write_jobs(source, "poor", 3)
    with emulator("--credits", "100", "--job-seconds", "1") as server:
        # 3 jobs x 5 s x 10 credits/s = 150 > 100
        code = in_process(source, out, server, monkeypatch, "--price", "seedance-2=10")
        first = capsys.readouterr().err
        # Without a price the balance is read but cannot be compared: the run is not blocked
        # by a guess; an empty account is refused whatever the price.
        stats = server.stats()
    with emulator("--credits", "0", "--job-seconds", "1") as empty:
        empty_code = in_process(source, out, empty, monkeypatch)
        second = capsys.readouterr().err
        empty_stats = empty.stats()
    assert code == 2
    assert empty_code == 2
    assert "150 credits but the balance is 100" in first
    assert "nothing was submitted" in first
    assert "balance is 0 credits" in second
    assert stats["submit_attempts"] == 0
    assert stats["balance_requests"] == 1
    assert empty_stats["submit_attempts"] == 0
    assert not (out / "results.jsonl").exists()


def test_balance_is_not_compared_without_a_price_for_every_model(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --price the run goes on and says the balance was not checked against the cost."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "unpriced", 1)
    assert in_process(source, out, emu, monkeypatch) == 0
    err = capsys.readouterr().err
    assert "not compared with the cost: no --price for seedance-2" in err
    assert_complete(out, ids)


def test_max_credits_exceeded_exits_2_without_any_request(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--max-credits below the estimate (or without a price) exits 2; the server sees nothing."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    write_jobs(source, "ceiling", 3)
    before = emu.stats()
    priced = ("--price", "seedance-2=10")
    assert in_process(source, out, emu, monkeypatch, *priced, "--max-credits", "149") == 2
    assert "above --max-credits 149" in capsys.readouterr().err
    assert in_process(source, out, emu, monkeypatch, "--max-credits", "1000") == 2
    assert "needs a price for every model" in capsys.readouterr().err
    assert emu.stats()["requests"] == before["requests"]
    assert not (out / "results.jsonl").exists()


def test_files_where_new_videos_would_go_stop_the_run_before_any_submit(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file at a to-be-submitted job's video name exits 2 before any submit; it is kept."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "occupied", 3)
    out.mkdir()
    (out / f"{ids[1]}.mp4").write_bytes(b"my own video")
    (out / f"{ids[2]}~2.MOV").write_bytes(b"another")
    (out / f"{ids[0]}.txt").write_bytes(b"notes, not a video name")
    before = emu.stats()
    assert in_process(source, out, emu, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "2 file(s) already sit where the videos of jobs to submit would go" in err
    assert f"{ids[1]}.mp4" in err
    assert "nothing was submitted" in err
    assert emu.stats()["submit_attempts"] == before["submit_attempts"]
    assert (out / f"{ids[1]}.mp4").read_bytes() == b"my own video"


def test_identical_requests_and_duplicate_ids_are_refused_before_sending(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Identical requests exit 2 unless --allow-duplicates; a repeated id always exits 2."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    same = "a heron standing in the rain, identical twice"
    source.write_text(
        json.dumps({"id": "twin-a", "prompt": same})
        + "\n"
        + json.dumps({"id": "twin-b", "prompt": same})
        + "\n"
    )
    before = emu.stats()
    assert in_process(source, out, emu, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "identical requests" in err
    assert "twin-a, twin-b" in err
    assert "--allow-duplicates" in err
    assert emu.stats()["requests"] == before["requests"]
    assert in_process(source, out, emu, monkeypatch, "--allow-duplicates") == 0
    assert emu.stats()["submits_by_prompt"][same] == 2
    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text('{"id": "x", "prompt": "one"}\n{"id": "x", "prompt": "two"}\n')
    assert in_process(repeated, tmp_path / "out2", emu, monkeypatch) == 2
    assert "already used on line 1" in capsys.readouterr().err


def test_dry_run_on_1000_lines_prints_the_plan_and_sends_nothing(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    """--dry-run checks 1000 lines and prints jobs, models, seconds and credits; no request."""
    source, out = tmp_path / "big.jsonl", tmp_path / "out"
    with source.open("w") as stream:
        for n in range(1000):
            line: dict[str, Any] = {"id": f"big-{n}", "prompt": f"shot {n} of a long river"}
            if n % 4 == 0:
                line = {
                    "id": f"big-{n}",
                    "model": "seedance-2-fast",
                    "input": {"prompt": f"fast shot {n}", "duration": 10, "resolution": "480p"},
                }
            stream.write(json.dumps(line) + "\n")
    before = emu.stats()
    started = time.monotonic()
    result = run_batch(source, out, emu, "--dry-run", "--price", "seedance-2=10")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    assert "1000 line(s) checked, no request sent" in plan
    assert "Plan: 1000 jobs, 6250 s of video" in plan
    assert "seedance-2: 750 jobs, 3750 s, ~37500 credits" in plan
    assert "seedance-2-fast: 250 jobs, 2500 s, price unknown" in plan
    assert emu.stats()["requests"] == before["requests"]
    assert not out.exists()
    # The plan itself takes well under a second; the bound is generous for the interpreter's start.
    assert elapsed < 10


def test_a_damaged_row_is_refused_with_exit_2_not_a_traceback(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """T16: one row failing its checksum exits 2 ("cannot use the journal"), nothing sent or changed."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    write_jobs(source, "rowrot", 1)
    assert in_process(source, out, emu, monkeypatch) == 0
    journal = out / "journal.sqlite"
    with contextlib.closing(sqlite3.connect(journal)) as db:
        db.execute("UPDATE jobs SET attempts = 7 WHERE key = 'rowrot-0'")
        db.commit()
    damaged = sha256(journal)
    before = emu.stats()
    capsys.readouterr()
    assert in_process(source, out, emu, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "cannot use the journal" in err
    assert "Traceback" not in err
    assert sha256(journal) == damaged
    assert emu.stats()["requests"] == before["requests"]


def test_emulator_rerun_submits_again_a_finished_job_whose_video_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --emulator a deleted video's URL died with its emulator: the rerun submits the job again."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "regone", 2)
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    command = ["batch", str(source), "--out", str(out), "--emulator", "-q"]
    assert main(command) == 0
    (out / "regone-0.mp4").unlink()
    kept = {e.key: e.task_id for e in journal_entries(out / "journal.sqlite")}
    assert main(command) == 0
    assert_complete(out, ids)
    now = {e.key: e.task_id for e in journal_entries(out / "journal.sqlite")}
    assert now["regone-0"] != kept["regone-0"]  # submitted again (to the emulator, for free)
    assert now["regone-1"] == kept["regone-1"]  # its video is on disk: not submitted again


async def test_a_stopped_run_reports_each_job_as_its_journal_recorded_it(tmp_path: Path) -> None:
    """T17: jobs that ended as a run stopped get their journaled state and task id, not 'cancelled'."""
    data = {"prompt": "a lantern", "duration": 5, "resolution": "720p", "aspect_ratio": "16:9"}
    requests = {
        key: GenerationRequest(model=MODEL, input={**data, "prompt": key}, key=key)
        for key in ("cut", "done", "refused", "never")
    }
    async with Journal(tmp_path / "journal.sqlite") as journal:
        for key in ("cut", "done", "refused"):
            given = {**data, "prompt": key}
            await journal.record_intent(key, fingerprint(MODEL, given), MODEL, given)
        await journal.record_unknown("cut", "the submit was cut off by Ctrl-C")
        await journal.record_submitted("done", "task-done")
        task = Task(task_id="task-done", status=TaskStatus.FINISHED)
        await journal.record_terminal("done", JournalState.FINISHED, task)
        await journal.record_failed("refused", "InputValidationError", "prompt too long")
        resume = BatchResume([], argparse.Namespace(journal=None, out=tmp_path), journal=journal)
        lines = [
            BatchLine(line=n, id=key, request=request, input=request.input)
            for n, (key, request) in enumerate(requests.items(), start=1)
        ]
        results = await resume.recorded(lines)
    assert set(results) == {"cut", "done", "refused"}  # "never": never submitted
    assert results["cut"].state is JobState.UNKNOWN
    assert "cut off by Ctrl-C" in str(results["cut"].error)
    assert (results["done"].state, results["done"].task_id) == (JobState.FINISHED, "task-done")
    refused = results["refused"]
    assert refused.state is JobState.FAILED
    assert isinstance(refused.error, RecordedError)
    assert (refused.error.error_type, str(refused.error)) == (
        "InputValidationError",
        "prompt too long",
    )


def test_fresh_moves_earlier_videos_aside_before_submitting_again(
    tmp_path: Path,
    emu: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--fresh keeps the earlier videos in out/earlier-<time>/ and saves the new ones."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "again", 2)
    out.mkdir()
    (out / f"{ids[0]}.mp4").write_bytes(b"an earlier, different video")
    assert in_process(source, out, emu, monkeypatch, "--fresh") == 0
    assert "--fresh: 1 earlier file(s) moved to" in capsys.readouterr().err
    (folder,) = out.glob("earlier-*")
    assert (folder / f"{ids[0]}.mp4").read_bytes() == b"an earlier, different video"
    assert (out / f"{ids[0]}.mp4").read_bytes() != b"an earlier, different video"
    assert {row["status"] for row in read_results(out)} == {"finished"}
