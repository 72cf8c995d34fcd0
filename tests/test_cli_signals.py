"""Ctrl-C and SIGTERM: exit 130 / 143, no traceback, results.jsonl holding every started task."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _batch_support import batch_command, batch_env, emulator, journal_entries, wait_for

from vidgo_async._cli._signals import Stopped, exit_code, signum_of

ROOT = Path(__file__).resolve().parent.parent


def long_jobs(path: Path, count: int) -> None:
    with path.open("w") as stream:
        for n in range(count):
            prompt = f"a very long take {n} [[vidgo-emulator: seconds=100000]]"
            stream.write(json.dumps({"id": f"long-{n}", "prompt": prompt}) + "\n")


def start_batch(source: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "vidgo_async", "batch", str(source), "--emulator", *extra]
    return subprocess.Popen(  # noqa: S603 - a fixed command line of this test
        [*command, "--concurrency", "3", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def stop_with_output(process: subprocess.Popen[bytes]) -> tuple[str, str]:
    """Wait (bounded) for the process to end; return its stdout and stderr."""
    try:
        output, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return (output or b"").decode(), (err or b"").decode()  # None: that stream not piped


def stop(process: subprocess.Popen[bytes]) -> str:
    return stop_with_output(process)[1]


def wait_for_submits(out: Path, process: subprocess.Popen[bytes], count: int) -> None:
    """Wait (bounded) until ``count`` submits are journaled: they are then started jobs."""
    import sqlite3

    journal = out / "journal.sqlite"
    for _ in range(300):
        if process.poll() is not None:
            return
        if journal.exists():
            try:
                with contextlib.closing(sqlite3.connect(journal)) as db:
                    rows = db.execute("select count(*) from jobs where task_id is not null")
                    if rows.fetchone()[0] >= count:
                        return
            except sqlite3.Error:
                pass
        time.sleep(0.1)


def test_sigterm_mid_run_exits_143_with_every_started_task_id(tmp_path: Path) -> None:
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    long_jobs(source, 8)
    process = start_batch(source, out)
    wait_for_submits(out, process, 3)
    process.send_signal(signal.SIGTERM)
    err = stop(process)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert "SIGTERM" in err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    started = [row for row in rows if row["status"] != "cancelled"]
    assert len(started) == 3
    assert all(row["task_id"] for row in started)


def test_the_json_summary_gives_the_exit_status_of_a_stopped_run(tmp_path: Path) -> None:
    """--json: a run stopped by SIGTERM says 143 in its summary object, as its exit status."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    long_jobs(source, 6)
    process = start_batch(source, out, "--json")
    wait_for_submits(out, process, 2)
    process.send_signal(signal.SIGTERM)
    output, err = stop_with_output(process)
    assert process.returncode == 143, err
    objects = [json.loads(line) for line in output.splitlines()]
    assert objects[-1]["summary"]["exit_status"] == 143


def test_ctrl_c_during_start_up_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """SIGINT right after the plan line (the journal and the emulator are starting)."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    long_jobs(source, 4)
    process = start_batch(source, out)
    assert process.stderr is not None
    first = process.stderr.readline()  # the plan: the CLI's code is running
    process.send_signal(signal.SIGINT)
    err = first.decode() + stop(process)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "Ctrl-C" in err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("delay", [0.05, 0.2])
def test_the_console_script_stops_cleanly_from_the_first_moment(
    tmp_path: Path, signum: int, code: int, delay: float
) -> None:
    """Through the console script's entry, a signal while the package imports is clean too."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    long_jobs(source, 4)
    entry = "import _vidgo_async_entry as entry; entry.main()"
    process = subprocess.Popen(  # noqa: S603 - a fixed command line of this test
        [sys.executable, "-c", entry, "batch", str(source), "--emulator", "--out", str(out)],
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    time.sleep(delay)
    process.send_signal(signum)
    err = stop(process)
    assert process.returncode == code, err
    assert "Traceback" not in err


def test_exit_codes_follow_the_signal() -> None:
    assert exit_code(KeyboardInterrupt()) == 130
    assert exit_code(Stopped(signal.SIGTERM)) == 143
    assert signum_of(Stopped(signal.SIGTERM)) == signal.SIGTERM
    assert signum_of(KeyboardInterrupt()) == signal.SIGINT


@pytest.mark.parametrize("form", [["-m", "vidgo_async"], ["-mvidgo_async"]])
def test_python_dash_m_stops_cleanly_on_ctrl_c_during_the_import(
    tmp_path: Path, form: list[str]
) -> None:
    """``python -m vidgo_async`` ends a Ctrl-C inside the package import with 130, no traceback."""
    # A stand-in aiohttp that raises KeyboardInterrupt: the Ctrl-C lands mid-import, every time.
    shadow = tmp_path / "shadow" / "aiohttp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    done = subprocess.run(  # noqa: S603 - a fixed command line of this test
        [sys.executable, *form, "--help"], capture_output=True, cwd=ROOT, env=env, timeout=60
    )
    err = done.stderr.decode()
    assert done.returncode == 130, err
    assert "Traceback" not in err
    assert "stopped by Ctrl-C" in err


def test_other_modules_keep_the_default_excepthook(tmp_path: Path) -> None:
    """Importing the package anywhere else installs no hook: a KeyboardInterrupt stays Python's."""
    probe = "import sys, vidgo_async; print(sys.excepthook is sys.__excepthook__)"
    done = subprocess.run(  # noqa: S603 - a fixed command line of this test
        [sys.executable, "-c", probe], capture_output=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.decode().strip() == "True", done.stderr.decode()


def _journal_state(path: Path, key: str) -> str | None:
    """The journaled state of ``key`` (``None`` while it cannot be read yet)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            row = db.execute("SELECT state FROM jobs WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_a_submit_reports_it_unknown_with_the_hint(tmp_path: Path) -> None:
    """T17: a submit cut off by Ctrl-C is reported 'unknown' (sent, maybe billed), not 'cancelled'."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    source.write_text(json.dumps({"id": "stuck-0", "prompt": "a stalled submit"}) + "\n")
    with emulator("--faults", "submit:stall", "--time-scale", "0.02") as emu:
        process = subprocess.Popen(  # noqa: S603 - a fixed command line of this test
            batch_command(source, out, emu), env=batch_env(), stderr=subprocess.PIPE
        )
        try:
            wait_for(
                lambda: (
                    emu.stats()["submits_accepted"] >= 1
                    and _journal_state(out / "journal.sqlite", "stuck-0") == "submitting"
                ),
                timeout=30,
                what="the submit to reach the emulator",
            )
            process.send_signal(signal.SIGINT)
            err = stop(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, err
    (entry,) = journal_entries(out / "journal.sqlite")
    (row,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["status"] == entry.state.value == "unknown", row
    assert row["error"]["type"] == "SubmitOutcomeUnknownError"
    assert "stuck-0" in err
    assert "--retry-unknown" in err
    assert "Traceback" not in err
