"""Helpers for tests that run ``vidgo-async batch`` and ``vidgo-async emulator`` as processes.

The emulator is a separate process, read through its ``/_emulator/stats`` route; every
helper that reads an output first needs the process that writes it to have exited.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

from vidgo_async import JournalError
from vidgo_async._journal import Journal, JournalEntry
from vidgo_async.testing import sample_sha256

KEY = "resume-test-key"
MODEL = "seedance-2"


class EmulatorProcess:
    """``vidgo-async emulator`` in its own process, and a way to read its counters."""

    def __init__(self, *options: str) -> None:
        command = [sys.executable, "-m", "vidgo_async", "emulator", "--port", "0"]
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line of this test
            [*command, "--api-key", KEY, *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("Vidgo emulator serving at "), first + self._stderr()
        self.base_url = first.rsplit(" ", 1)[1].strip()

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def stats(self) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL
            self.base_url + "/_emulator/stats", headers={"Authorization": f"Bearer {KEY}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            data: dict[str, Any] = json.load(response)["data"]
        return data

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck emulator
                self.process.kill()
                self.process.communicate()


@contextlib.contextmanager
def emulator(*options: str) -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(*options)
    try:
        yield emu
    finally:
        emu.stop()


def write_jobs(path: Path, tag: str, count: int) -> list[str]:
    """Write ``count`` shorthand lines with prompts unique to ``tag``; return their ids."""
    ids = [f"{tag}-{n}" for n in range(count)]
    with path.open("w") as stream:
        for job_id in ids:
            prompt = f"{tag}: {job_id}, a paper lantern drifting over a dark lake"
            stream.write(json.dumps({"id": job_id, "prompt": prompt}) + "\n")
    return ids


def prompt_of(job_id: str) -> str:
    return f"{job_id.rsplit('-', 1)[0]}: {job_id}, a paper lantern drifting over a dark lake"


def batch_command(source: Path, out: Path, emu: EmulatorProcess, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vidgo_async",
        "batch",
        str(source),
        "--out",
        str(out),
        "--base-url",
        emu.base_url,
        "--poll-scale",
        "0.02",
        *extra,
    ]


def batch_env() -> dict[str, str]:
    return {**os.environ, "VIDGO_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}


def run_batch(
    source: Path, out: Path, emu: EmulatorProcess, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - a fixed command line of this test
        batch_command(source, out, emu, *extra),
        env=batch_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_entries(path: Path) -> list[JournalEntry]:
    async def read() -> list[JournalEntry]:
        async with Journal(path, readonly=True) as journal:
            return await journal.entries()

    return anyio.run(read)


def submits(stats: dict[str, Any], ids: list[str]) -> dict[str, int]:
    """How many submits the emulator accepted for each job's prompt."""
    by_prompt: dict[str, int] = stats["submits_by_prompt"]
    return {job_id: by_prompt.get(prompt_of(job_id), 0) for job_id in ids}


def assert_complete(out: Path, ids: list[str]) -> None:
    """Every job once in results.jsonl, finished, its video whole on disk; no partial file."""
    rows = read_results(out)
    assert [row["id"] for row in rows] == ids
    assert {row["status"] for row in rows} == {"finished"}, rows
    expected = sample_sha256()
    for row in rows:
        assert row["task_id"]
        assert row["error"] is None
        (file,) = row["files"]
        assert file["path"] == str(out / f"{row['id']}.mp4")
        assert sha256(Path(file["path"])) == expected
    assert list(out.glob("*.part")) == []
    assert list(out.glob(".*.part")) == []


def journal_entries_when_readable(path: Path) -> list[JournalEntry]:
    """Read a journal another process may be creating: empty until it can be read."""
    if not path.exists():
        return []
    try:
        return journal_entries(path)
    except JournalError:
        return []  # created but not yet initialised by its writer


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds (polling), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
