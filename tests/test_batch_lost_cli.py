"""Acceptance tests of issue 11 against ``vidgo-async emulator`` in its own process.

- status answers of 401, 403, 400, 302 and unknown words never turn a job ``failed``; rerunning
  the same command until every job ends submits no prompt twice;
- two ``vidgo-async batch`` processes on one file and ``--out`` (started together, 0.5 s and
  2 s apart) never submit a prompt twice, print no traceback, and leave a correct
  ``results.jsonl`` once the last one exits.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _batch_support import (
    EmulatorProcess,
    assert_complete,
    batch_command,
    batch_env,
    emulator,
    read_results,
    run_batch,
    submits,
    write_jobs,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process handling")

# Each status query has about a 1 in 4 chance of an answer that says nothing about the task.
_CONFUSING = ";".join(
    [
        "status:401,p=0.05",
        "status:403,p=0.05",
        "status:400,p=0.05",
        "status:302,p=0.05",
        "status:word,word=paused,p=0.05",
        "status:word,word=,p=0.02",
    ]
)


@pytest.fixture(scope="module")
def confusing() -> Iterator[EmulatorProcess]:
    """An emulator whose status answers include 401, 403, 400, 302 and unknown statuses."""
    options = ("--job-seconds", "20-40", "--time-scale", "0.02", "--seed", "11")
    with emulator(*options, "--faults", _CONFUSING) as server:
        yield server


@pytest.fixture(scope="module")
def plain() -> Iterator[EmulatorProcess]:
    """A fault-free emulator: 0.4-0.8 s jobs."""
    with emulator("--job-seconds", "20-40", "--time-scale", "0.02", "--seed", "5") as server:
        yield server


def test_confusing_status_answers_lose_jobs_and_reruns_poll_them_never_resubmit(
    tmp_path: Path, confusing: EmulatorProcess
) -> None:
    """No job is ``failed`` unless the API said so; reruns until all end submit each prompt once."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, "confused", 12)
    lost_seen: set[str] = set()
    for _ in range(12):
        result = run_batch(source, out, confusing, "--concurrency", "4")
        # The run is over and results.jsonl written before anything is read.
        assert result.returncode in (0, 1), result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        rows = read_results(out)
        assert {row["status"] for row in rows} <= {"finished", "lost"}, rows
        for row in rows:
            if row["status"] == "lost":
                lost_seen.add(row["id"])
                assert row["task_id"], row
                assert row["error"]["type"] in ("TaskLostError", "UnknownStatusError"), row
        if result.returncode == 0:
            break
        assert "rerun the same command to poll them again" in result.stderr
    else:
        pytest.fail("the batch did not end after 12 runs")
    assert lost_seen, "the fault plan never lost a job: the test proved nothing"
    assert_complete(out, ids)
    assert set(submits(confusing.stats(), ids).values()) == {1}


@pytest.mark.parametrize("gap", [0.0, 0.5, 2.0], ids=["together", "0.5s-apart", "2s-apart"])
def test_two_batches_on_one_journal_never_submit_a_line_twice(
    tmp_path: Path, plain: EmulatorProcess, gap: float
) -> None:
    """Two batch processes on one --out: one writer at a time, each prompt submitted once."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    ids = write_jobs(source, f"twice{int(gap * 10)}", 12)
    command = batch_command(source, out, plain, "--concurrency", "4")
    processes = []
    for index in range(2):
        if index:
            time.sleep(gap)
        processes.append(
            subprocess.Popen(  # noqa: S603 - a fixed command line of this test
                command,
                env=batch_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outcomes = [process.communicate(timeout=90) for process in processes]
    codes = [process.returncode for process in processes]
    for (_, err), code in zip(outcomes, codes, strict=True):
        assert "Traceback" not in err, err
        assert code in (0, 2), err
        if code == 2:
            refusal = [line for line in err.splitlines() if "another process" in line]
            assert len(refusal) == 1, err
            assert "nothing was submitted" in refusal[0]
    assert 0 in codes, outcomes
    assert_complete(out, ids)
    assert set(submits(plain.stats(), ids).values()) == {1}
    # Whichever ran, a rerun now finds everything finished and submits nothing.
    before = plain.stats()["submit_attempts"]
    assert run_batch(source, out, plain).returncode == 0
    assert plain.stats()["submit_attempts"] == before
