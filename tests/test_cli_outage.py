"""An outage stops the batch early with one line instead of failing every job one by one."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from vidgo_async._cli import main
from vidgo_async._cli._outage import OutageBreaker
from vidgo_async._errors import APIConnectionError, SubmitOutcomeUnknownError
from vidgo_async._jobs import GenerationRequest, JobResult, JobState
from vidgo_async.testing import Emulator


def ended(state: JobState, error: BaseException | None) -> JobResult:
    request = GenerationRequest("seedance-2", {"prompt": "a fox"}, key="k")
    return JobResult(
        request=request,
        key="k",
        state=state,
        task=None,
        error=error,
        queued_at=None,
        submitted_at=None,
        finished_at=None,
    )


def test_the_breaker_trips_only_on_jobs_in_a_row_that_never_connected() -> None:
    no_connection = ended(JobState.FAILED, APIConnectionError("Could not connect"))
    breaker = OutageBreaker(threshold=3)
    assert not breaker.observe(no_connection)
    assert not breaker.observe(no_connection)
    assert not breaker.observe(ended(JobState.FINISHED, None))  # a success resets
    assert not breaker.observe(no_connection)
    assert not breaker.observe(no_connection)
    assert breaker.observe(no_connection)
    unknown = ended(JobState.UNKNOWN, SubmitOutcomeUnknownError("seedance-2", {}, OSError("x")))
    assert not OutageBreaker(threshold=1).observe(unknown)  # it may have reached the API
    assert not OutageBreaker(threshold=1).observe(ended(JobState.FAILED, ValueError("x")))


async def test_a_server_that_goes_away_stops_the_run_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"j{n}", "prompt": f"a fox, take {n}"}) + "\n" for n in range(40))
    )
    with socket.socket() as probe:  # a port nothing listens on once the emulator is gone
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = Emulator(port=port, job_seconds=0.2)
    monkeypatch.setenv("VIDGO_API_KEY", emulator.api_key)
    argv = ["batch", str(source), "--out", str(tmp_path / "out"), "--no-download"]
    argv += ["--base-url", f"http://127.0.0.1:{port}", "--concurrency", "2", "--poll-scale", "0.02"]
    argv += ["--timeout", "3"]  # the two jobs in flight give up polling soon
    async with emulator, anyio.create_task_group() as group:

        async def stop_the_server() -> None:
            while emulator.stats.submits_accepted < 2:  # noqa: ASYNC110 - a counter, no event
                await anyio.sleep(0.01)
            await emulator.close()

        group.start_soon(stop_the_server)
        code = await anyio.to_thread.run_sync(main, argv)
    err = capsys.readouterr().err
    assert code == 1
    assert f"stopped early: http://127.0.0.1:{port} cannot be reached" in err
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    ]
    never_sent = [row for row in rows if row["status"] == "cancelled"]
    assert len(never_sent) > 20  # the rest were left for the rerun, not failed one by one
