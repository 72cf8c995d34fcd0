"""Tests for ``vidgo-async batch``: input checks, outputs, exit codes, the acceptance run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

import vidgo_async._download as download_module
from vidgo_async._cli import main
from vidgo_async._cli._batch_input import BatchDefaults, read_batch
from vidgo_async._journal import Journal
from vidgo_async.testing import Emulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def read_results(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_every_bad_line_is_named_and_nothing_is_submitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with bad lines exits 2 naming each of them, before any submit."""
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        "\n".join(
            [
                '{"id": "ok", "prompt": "a quiet harbor at dawn"}',
                "{not json",
                '{"id": ".hidden", "prompt": "a fox"}',
                '{"id": "short", "input": {"prompt": "a fox", "duration": 3, "resolution": "720p"}}',
                '{"id": "ok", "prompt": "a second ok"}',
                '{"id": "extra", "prompt": "a fox", "colour": "red"}',
                "",
                '["a list"]',
            ]
        )
        + "\n"
    )
    code = main(["batch", str(source), "--out", str(tmp_path / "out"), "--emulator"])
    err = capsys.readouterr().err
    assert code == 2
    for line in (2, 3, 4, 5, 6, 8):
        assert f"line {line}:" in err
    assert "line 1:" not in err
    assert "duration" in err
    assert "already used on line 1" in err
    assert not (tmp_path / "out").exists()


def test_no_api_key_without_emulator_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without VIDGO_API_KEY (and without --emulator) the command exits 2 with a hint."""
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"prompt": "a fox"}\n')
    assert main(["batch", str(source), "--out", str(tmp_path / "out")]) == 2
    assert "--emulator" in capsys.readouterr().err


def test_readme_command_runs_the_examples_against_the_emulator(tmp_path: Path) -> None:
    """`batch examples/prompts.jsonl --emulator` finishes every job with a video on disk."""
    out = tmp_path / "out"
    assert main(["batch", str(EXAMPLES / "prompts.jsonl"), "--emulator", "--out", str(out)]) == 0
    rows = read_results(out)
    assert len(rows) == 12
    for row in rows:
        assert row["status"] == "finished"
        assert row["error"] is None
        assert row["task_id"]
        assert (out / f"{row['id']}.mp4").stat().st_size > 0


def test_acceptance_33_jobs_with_429s_503s_and_3_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """33 jobs at concurrency 4 with 429/503 faults and 3 server failures: exit 1, all reported once."""
    source = tmp_path / "prompts.jsonl"
    failing = {5, 17, 29}
    with source.open("w") as stream:
        for n in range(33):
            prompt = f"clip {n}: a lighthouse in a storm, waves crashing, shot {n}"
            if n in failing:
                prompt += ' [[vidgo-emulator: fail="The prompt violates our content policy"]]'
            stream.write(json.dumps({"id": f"clip-{n}", "prompt": prompt}) + "\n")
    faults = "submit:429,burst=3:3;status:503,p=0.2;status:429,burst=10:3"
    emulator = Emulator(job_seconds=(30, 60), time_scale=0.01, seed=5, faults=faults)
    out = tmp_path / "out"
    with emulator.run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        code = main(
            [
                "batch",
                str(source),
                "--out",
                str(out),
                "--concurrency",
                "4",
                "--base-url",
                emu.base_url,
                "--poll-scale",
                "0.01",
            ]
        )
        stats = emu.stats
    assert code == 1
    rows = read_results(out)
    assert [row["id"] for row in rows] == [f"clip-{n}" for n in range(33)]
    finished = [row for row in rows if row["status"] == "finished"]
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(finished) == 30, [r for r in rows if r["status"] != "finished"]
    assert len(failed) == 3
    assert {row["id"] for row in failed} == {f"clip-{n}" for n in failing}
    for row in failed:
        assert row["error"]["message"].endswith("The prompt violates our content policy")  # type: ignore[index]
        assert row["task_id"]
    for row in finished:
        assert (out / f"{row['id']}.mp4").stat().st_size > 0
    assert len(stats.submits_by_prompt) == 33
    assert all(count == 1 for count in stats.submits_by_prompt.values())
    assert stats.peak_in_flight <= 4
    assert stats.faults_injected["submit:429"] > 0
    assert stats.faults_injected["status:503"] > 0


def test_no_download_writes_results_without_videos(tmp_path: Path) -> None:
    """--no-download reports the file URLs and writes no video."""
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"prompt": "a fox in snow"}\n{"prompt": "a cat on a roof"}\n')
    out = tmp_path / "out"
    assert main(["batch", str(source), "--emulator", "--no-download", "--out", str(out)]) == 0
    rows = read_results(out)
    assert [row["id"] for row in rows] == ["1", "2"]  # ids default to line numbers
    assert all(row["files"][0]["path"] is None for row in rows)  # type: ignore[index]
    assert list(out.glob("*.mp4")) == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_exits_130_and_writes_every_submitted_task_id(tmp_path: Path) -> None:
    """Ctrl-C mid-batch exits 130 after writing results with the task ids of submitted jobs."""
    source = tmp_path / "jobs.jsonl"
    with source.open("w") as stream:
        for n in range(10):
            prompt = f"a very long take {n} [[vidgo-emulator: seconds=100000]]"
            stream.write(json.dumps({"id": f"long-{n}", "prompt": prompt}) + "\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "vidgo_async", "batch", str(source), "--emulator"]
    process = subprocess.Popen(  # noqa: S603 - a fixed command line of this test
        [*command, "--concurrency", "3", "--out", str(out)],
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        time.sleep(2.0)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err.decode()
    rows = read_results(out)
    in_flight = [row for row in rows if row["status"] == "in_flight"]
    assert len(in_flight) == 3
    assert all(row["task_id"] for row in in_flight)
    assert {row["status"] for row in rows} == {"in_flight", "cancelled"}


def _write_jobs(path: Path, *ids: str) -> None:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"a lantern {i}"}) + "\n" for i in ids))


def test_a_different_file_at_the_destination_is_kept_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's own file at a video's destination is never deleted: that job's download fails."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    _write_jobs(source, "clip-1")
    out.mkdir()
    (out / "clip-1.mp4").write_bytes(b"my own edit of clip-1")
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["batch", str(source), "--out", str(out), "--emulator", "-q"]) == 1
    assert (out / "clip-1.mp4").read_bytes() == b"my own edit of clip-1"
    (row,) = read_results(out)
    assert row["task_id"]
    assert row["error"]["type"] == "DownloadError"  # type: ignore[index]
    assert "not overwritten" in row["error"]["message"]  # type: ignore[index]


def test_a_complete_video_the_journal_missed_is_kept_on_a_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T15 'after download, before the journal write': the rerun keeps the whole video on disk."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    _write_jobs(source, "clip-1")
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    command = ["batch", str(source), "--out", str(out), "--emulator", "-q"]
    assert main(command) == 0
    video = out / "clip-1.mp4"
    content = video.read_bytes()

    async def forget_files() -> None:
        async with Journal(out / "journal.sqlite") as journal:
            assert (await journal.record_download("clip-1")).files == ()

    anyio.run(forget_files)
    assert main(command) == 0
    assert video.read_bytes() == content


def test_a_directory_at_the_destination_fails_that_job_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory where a video goes fails that job's download; the other jobs finish (exit 1)."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    _write_jobs(source, "clip-1", "clip-2")
    (out / "clip-1.mp4").mkdir(parents=True)
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["batch", str(source), "--out", str(out), "--emulator", "-q"]) == 1
    rows = {row["id"]: row for row in read_results(out)}
    assert rows["clip-2"]["status"] == "finished"
    assert rows["clip-1"]["task_id"]
    assert rows["clip-1"]["error"]["type"] == "DownloadError"  # type: ignore[index]
    assert (out / "clip-1.mp4").is_dir()


def test_a_full_disk_fails_the_download_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC during one download ends that job with its task id and an error (T23), exit 1."""
    source, out = tmp_path / "jobs.jsonl", tmp_path / "out"
    _write_jobs(source, "clip-1")

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download_module, "write_all", disk_full)
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["batch", str(source), "--out", str(out), "--emulator", "-q"]) == 1
    (row,) = read_results(out)
    assert row["task_id"]
    assert "No space left on device" in row["error"]["message"]  # type: ignore[index]
    assert list(out.glob("*.part")) == []


def test_an_input_with_a_byte_order_mark_and_crlf_is_read(tmp_path: Path) -> None:
    """A UTF-8 file with a BOM (as Windows editors write it) and CRLF line ends is read."""
    source = tmp_path / "jobs.jsonl"
    source.write_bytes(
        b'\xef\xbb\xbf{"id": "a", "prompt": "a lantern"}\r\n\r\n{"id": "b", "prompt": "a boat"}\r\n'
    )
    assert [line.id for line in read_batch(source, BatchDefaults())] == ["a", "b"]
