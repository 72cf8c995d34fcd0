"""Acceptance of the fleet batch: three ``vidgo-async batch`` processes share one PostgreSQL journal.

The emulator runs as its own process (``vidgo-async emulator``, short jobs), like a Vidgo
server on loopback; one batch process is SIGKILLed once it holds jobs. Every line must end
``finished`` with its video, each prompt must be submitted exactly once, and the server
must never see more than ``--concurrency`` jobs in flight.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

LINES = 150
CAP = 6
CLI = [sys.executable, "-m", "vidgo_async"]


def _stats(base: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the loopback emulator
        base.rstrip("/") + "/_emulator/stats", headers={"Authorization": "Bearer emulator-key"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        data: dict[str, Any] = json.loads(answer.read())["data"]
    return data


def _owned_by(url: str, pid: int, state: str = "in_flight") -> int:
    """How many of the journal's jobs the process ``pid`` holds in ``state``."""
    owner = f"{socket.gethostname()}:{pid}"
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM vidgo_jobs WHERE owner = %s AND state = %s", (owner, state)
            )
            found = row.fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return 0 if found is None else int(found[0])


def _kill_between_submits(url: str, victim: subprocess.Popen[str], deadline: float) -> None:
    """SIGKILL ``victim`` once it holds a task of its own and no submit of it is in doubt.

    A process killed between a submit's intent and its recorded answer leaves that job
    ``unknown`` by design (it may have been created; it is never sent again), so this test,
    whose oracle is "every line finished", freezes the process (SIGSTOP) and kills it only at
    a moment when none of its jobs is ``submitting``; otherwise it lets it run a little more.
    """
    while True:
        assert victim.poll() is None, "the first process ended before it could be killed"
        assert time.monotonic() < deadline, "the first process never held a task of its own"
        victim.send_signal(signal.SIGSTOP)
        if _owned_by(url, victim.pid) >= 1 and _owned_by(url, victim.pid, "submitting") == 0:
            victim.send_signal(signal.SIGKILL)
            victim.send_signal(signal.SIGCONT)  # a stopped process dies once continued
            return
        victim.send_signal(signal.SIGCONT)
        time.sleep(0.05)


@pytest.mark.slow
def test_three_processes_share_a_batch_one_is_killed_every_line_finishes(
    tmp_path: Path, pg_url: str
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"job{n:03d}", "prompt": f"prompt number {n}"}) + "\n"
            for n in range(LINES)
        )
    )
    emulator = subprocess.Popen(  # noqa: S603 - our own CLI
        [*CLI, "emulator", "--port", "0", "--job-seconds", "10", "--time-scale", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    batches: list[subprocess.Popen[str]] = []
    logs = [(tmp_path / f"batch{n}.err").open("w") for n in range(3)]
    try:
        assert emulator.stdout is not None
        base = emulator.stdout.readline().split("serving at ")[1].strip()
        out = tmp_path / "out"
        env = dict(os.environ, VIDGO_API_KEY="emulator-key")
        command = [*CLI, "batch", str(source), "--journal", pg_url, "--out", str(out),
                   "--concurrency", str(CAP), "--base-url", base, "--allow-insecure",
                   "--poll-scale", "0.05"]  # fmt: skip
        for n in range(3):
            batches.append(
                subprocess.Popen(  # noqa: S603 - our own CLI
                    command,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=logs[n],
                    text=True,
                )
            )
        victim = batches[0]
        _kill_between_submits(pg_url, victim, time.monotonic() + 60)
        codes = [batch.wait(timeout=120) for batch in batches]
        errors = [(tmp_path / f"batch{n}.err").read_text() for n in range(3)]
        assert codes == [-signal.SIGKILL, 0, 0], errors

        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert [row["id"] for row in rows] == [f"job{n:03d}" for n in range(LINES)]
        assert Counter(row["status"] for row in rows) == {"finished": LINES}, errors
        for row in rows:
            assert row["files"], row
            for file in row["files"]:
                assert file["path"] is not None, row
                assert Path(file["path"]).stat().st_size > 0

        stats = _stats(base)
        assert set(stats["submits_by_prompt"].values()) == {1}  # each prompt exactly once
        assert len(stats["submits_by_prompt"]) == LINES
        assert stats["submits_accepted"] == LINES
        assert 1 <= stats["peak_in_flight"] <= CAP  # never more than the fleet cap
        assert "adopted" in errors[1] + errors[2]  # the killed process's jobs were taken over
    finally:
        for process in [*batches, emulator]:
            if process.poll() is None:
                process.send_signal(signal.SIGINT if process is emulator else signal.SIGKILL)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log in logs:
            log.close()
        if emulator.stdout is not None:
            emulator.stdout.close()
        if emulator.stderr is not None:
            emulator.stderr.close()


@pytest.mark.parametrize(
    ("flag", "named"),
    [(["--emulator"], "--emulator"), (["--fresh"], "--fresh"), (["--dry-run"], "--dry-run")],
)
def test_options_a_fleet_cannot_honour_are_refused_before_anything_is_sent(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flag: list[str],
    named: str,
) -> None:
    from vidgo_async._cli import main

    monkeypatch.setenv("VIDGO_API_KEY", "k")
    source = tmp_path / "jobs.jsonl"
    source.write_text(json.dumps({"id": "a", "prompt": "a quiet harbor"}) + "\n")
    url = "postgresql://nobody@/nothing?host=/nonexistent"
    code = main(["batch", str(source), "--journal", url, "--out", str(tmp_path / "o"), *flag])
    assert code == 2
    assert f"{named} cannot be used with a PostgreSQL journal" in capsys.readouterr().err


def test_worker_needs_a_postgres_journal(capsys: pytest.CaptureFixture[str]) -> None:
    from vidgo_async._cli import main

    assert main(["worker", "--journal", "out/journal.sqlite"]) == 2
    assert "must be a postgresql:// URL" in capsys.readouterr().err


def test_a_fleet_process_submits_nothing_when_a_file_sits_at_a_video_name(
    tmp_path: Path,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in a SQLite batch: a video is never paid for with nowhere to be saved."""
    from vidgo_async._cli import main

    monkeypatch.setenv("VIDGO_API_KEY", "k")
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    source.write_text(
        "".join(json.dumps({"id": name, "prompt": f"{name} at dusk"}) + "\n" for name in "ab")
    )
    out.mkdir()
    (out / "b.mp4").write_bytes(b"my own video")
    nowhere = "http://127.0.0.1:9"  # nothing listens there: the refusal comes first
    command = ["batch", str(source), "--journal", pg_url, "--out", str(out), "--base-url", nowhere]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "1 file(s) already sit where the videos of jobs to submit would go" in err
    assert "nothing was submitted" in err
    assert (out / "b.mp4").read_bytes() == b"my own video"
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM vidgo_jobs").fetchone() == (0,)
