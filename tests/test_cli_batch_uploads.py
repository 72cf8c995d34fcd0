"""``vidgo-async batch`` with local files in ``*_urls``: checked first, uploaded once, journaled."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from vidgo_async import BadRequestError, Journal, UploadedFile
from vidgo_async._cli import main
from vidgo_async._cli._batch_input import BatchDefaults, read_batch
from vidgo_async._cli._batch_uploads import (
    PLACEHOLDER_PREFIX,
    BatchUploads,
    expiry_of,
    swap_local_files,
)
from vidgo_async.testing import Emulator

PNG_A = b"\x89PNG\r\n\x1a\n" + b"\x0a" * 40
PNG_B = b"\x89PNG\r\n\x1a\n" + b"\x0b" * 40


def _line(job_id: str, *images: str, prompt: str = "a lighthouse at dusk") -> str:
    data = {
        "id": job_id,
        "model": "seedance-2",
        "input": {
            "prompt": f"{prompt} ({job_id})",
            "duration": 5,
            "resolution": "720p",
            "image_urls": list(images),
        },
    }
    return json.dumps(data) + "\n"


def _batch_folder(tmp_path: Path) -> Path:
    frames = tmp_path / "job" / "frames"
    frames.mkdir(parents=True)
    (frames / "a.png").write_bytes(PNG_A)
    (frames / "b.png").write_bytes(PNG_B)
    (frames / "a-copy.png").write_bytes(PNG_A)  # same content, other name: one upload
    source = tmp_path / "job" / "jobs.jsonl"
    source.write_text(
        _line("one", "./frames/a.png")
        + _line("two", "./frames/a.png")
        + _line("three", "frames/b.png")
        + _line("four", "./frames/a-copy.png")
    )
    return source


def _journal_inputs(path: Path) -> dict[str, list[str]]:
    async def read() -> dict[str, list[str]]:
        async with await Journal.open(path, readonly=True) as journal:
            return {e.key: list(e.input["image_urls"]) for e in await journal.entries()}

    return anyio.run(read)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _journal_upload(path: Path, data: bytes) -> tuple[str, float]:
    async def read() -> tuple[str, float]:
        async with await Journal.open(path, readonly=True) as journal:
            found = await journal.find_upload(_sha(data))
        assert found is not None
        return found

    return anyio.run(read)


def _run(source: Path, out: Path, emu: Emulator, *extra: str) -> int:
    command = ["batch", str(source), "--out", str(out), "--base-url", emu.base_url]
    return main([*command, "--poll-scale", "0.01", "--no-download", *extra])


def test_local_files_are_uploaded_once_and_reused_by_a_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance run: one upload per distinct file, submits carry the URLs, a rerun uploads nothing."""
    source = _batch_folder(tmp_path)
    out = tmp_path / "out"
    with Emulator(job_seconds=2, time_scale=0.01).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        assert _run(source, out, emu, "--dry-run") == 0
        planned = capsys.readouterr().out
        assert "Uploads: 2 local file(s) to upload, 0 already uploaded" in planned
        assert emu.uploads.total == 0
        assert emu.stats.peak_concurrent_requests == 0  # a dry run sends nothing

        assert _run(source, out, emu) == 0
        assert emu.uploads.total == 2
        stored = {f.data: f for f in emu.uploads.files.values()}
        assert set(stored) == {PNG_A, PNG_B}
        assert emu.stats.submits_accepted == 4
        # The journal knows each job by its placeholders; the submits carried the URLs.
        inputs = _journal_inputs(out / "journal.sqlite")
        held_a, held_b = PLACEHOLDER_PREFIX + _sha(PNG_A), PLACEHOLDER_PREFIX + _sha(PNG_B)
        assert inputs == {"one": [held_a], "two": [held_a], "four": [held_a], "three": [held_b]}
        url_a, _ = _journal_upload(out / "journal.sqlite", PNG_A)
        url_b, _ = _journal_upload(out / "journal.sqlite", PNG_B)
        assert url_a.startswith(emu.base_url + "/uploads/")
        assert url_b.endswith("/" + stored[PNG_B].file_name)
        sent = {line.id: line.input for line in read_batch(source, BatchDefaults())}
        assert emu.stats.jobs_for("seedance-2", {**sent["one"], "image_urls": [url_a]}) == 1
        assert emu.stats.jobs_for("seedance-2", {**sent["three"], "image_urls": [url_b]}) == 1

        capsys.readouterr()
        assert _run(source, out, emu, "--dry-run") == 0
        assert "Uploads: 0 local file(s) to upload, 2 already uploaded" in capsys.readouterr().out
        assert _run(source, out, emu) == 0  # the rerun: finished jobs skipped, nothing uploaded
        assert emu.uploads.total == 2
        assert emu.stats.submits_accepted == 4
    rows = [json.loads(row) for row in (out / "results.jsonl").read_text().splitlines()]
    assert [row["status"] for row in rows] == ["finished"] * 4


def test_a_rerun_after_the_upload_expired_knows_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Upload expired: no conflict; finished skipped, in flight polled, failed resubmitted afresh."""
    frames = tmp_path / "job" / "frames"
    frames.mkdir(parents=True)
    (frames / "a.png").write_bytes(PNG_A)
    source = tmp_path / "job" / "jobs.jsonl"
    source.write_text(
        _line("done", "./frames/a.png")
        + _line("late", "./frames/a.png", prompt="a slow take [[vidgo-emulator: seconds=300]]")
        + _line("bad", "./frames/a.png", prompt="a refused take [[vidgo-emulator: fail]]")
    )
    out = tmp_path / "out"
    journal = out / "journal.sqlite"
    with Emulator(job_seconds=2, time_scale=0.01).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        # "late" (3 s) outlives its 0.5 s timeout: it ends ``timeout``, its task id journaled.
        assert _run(source, out, emu, "--timeout", "0.5") == 1
        assert (emu.uploads.total, emu.stats.submits_accepted) == (1, 3)
        first_url, _ = _journal_upload(journal, PNG_A)

        async def expire() -> None:
            async with await Journal.open(journal) as opened:
                await opened.record_upload(
                    _sha(PNG_A), first_url, expires_at=time.time() - 1, size=len(PNG_A), source="a"
                )

        anyio.run(expire)
        capsys.readouterr()
        assert _run(source, out, emu) == 1  # "bad" fails again; nothing conflicts
        err = capsys.readouterr().err
        assert "different request" not in err
        assert "1 finished earlier" in err
        assert "1 to poll" in err
        assert "1 to submit" in err
        assert (emu.uploads.total, emu.stats.submits_accepted) == (2, 4)  # one fresh upload
        fresh_url, _ = _journal_upload(journal, PNG_A)
        assert fresh_url != first_url
        sent = {line.id: line.input for line in read_batch(source, BatchDefaults())}
        assert emu.stats.jobs_for("seedance-2", {**sent["bad"], "image_urls": [fresh_url]}) == 1
        assert emu.stats.jobs_for("seedance-2", {**sent["late"], "image_urls": [first_url]}) == 1
    rows = {
        row["id"]: row for row in map(json.loads, (out / "results.jsonl").read_text().splitlines())
    }
    assert {key: row["status"] for key, row in rows.items()} == {
        "done": "finished",
        "late": "finished",
        "bad": "failed",
    }


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("./frames/missing.png", "no such file"),
        ("./frames", "is a folder"),
        ("./frames/empty.png", "is empty"),
        ("./frames/notes.png", "is not a JPEG, PNG, GIF or WebP image"),
    ],
)
def test_a_bad_local_file_stops_the_run_before_any_request(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    entry: str,
    problem: str,
) -> None:
    source = _batch_folder(tmp_path)
    (source.parent / "frames" / "empty.png").write_bytes(b"")
    (source.parent / "frames" / "notes.png").write_text("not an image")
    with source.open("a") as stream:
        stream.write(_line("bad", entry))
    out = tmp_path / "out"
    with Emulator(time_scale=0.01).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        assert _run(source, out, emu) == 2
        assert emu.stats.peak_concurrent_requests == 0  # no request at all
        assert emu.uploads.total == 0
    err = capsys.readouterr().err
    assert "nothing was submitted" in err
    assert f"line 5: input.image_urls[0]: {entry}" in err
    assert problem in err


def test_local_paths_become_placeholders_urls_stay(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG_A)
    seen: dict[Path, object] = {}
    swapped, files, problems = swap_local_files(
        {
            "prompt": "x",
            "image_urls": ["https://example.com/x.png", str(tmp_path / "a.png")],
            "reference_video_urls": ["https://example.com/v.mp4"],
            "note_urls": "./a.png",  # not a list: left to the validator
        },
        Path("/nonexistent"),
        seen,  # type: ignore[arg-type]
    )
    assert problems == []
    assert [f.size for f in files] == [len(PNG_A)]
    assert swapped["image_urls"][0] == "https://example.com/x.png"
    assert swapped["image_urls"][1] == PLACEHOLDER_PREFIX + files[0].sha256
    assert swapped["reference_video_urls"] == ["https://example.com/v.mp4"]
    assert swapped["note_urls"] == "./a.png"


def test_expiry_is_never_trusted_beyond_72_hours() -> None:
    from datetime import datetime

    now = 1_700_000_000.0
    assert expiry_of(None, now) == now + 72 * 3600
    late = datetime(2100, 1, 1)
    assert expiry_of(late, now) == now + 72 * 3600
    early = datetime(2023, 11, 15)
    assert expiry_of(early, now) < now + 72 * 3600


class _FakeUploads:
    """A client whose uploads take a few loop turns; one path fails with a 400."""

    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.calls: list[Path] = []

    async def upload(self, source: Path) -> UploadedFile:
        self.calls.append(source)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()  # let the other lines ask for the same file meanwhile
        if source.name == self.failing:
            raise BadRequestError("Unsupported file type: image/svg+xml", status_code=400)
        return UploadedFile(file_url=f"https://storage.example/{source.name}")


async def test_lines_sharing_a_file_wait_for_one_upload_and_a_failed_upload_fails_its_jobs(
    tmp_path: Path,
) -> None:
    source = _batch_folder(tmp_path)
    lines = read_batch(source, BatchDefaults())
    uploads = BatchUploads.of(lines)
    fake = _FakeUploads(failing="b.png")
    ready, failed = await uploads.resolve(
        fake,  # type: ignore[arg-type]
        None,
        [line.request for line in lines],
        now=1_700_000_000.0,
    )
    assert sorted(path.name for path in fake.calls) == ["a.png", "b.png"]  # a-copy.png: same bytes
    assert [request.key for request in ready] == ["one", "two", "four"]
    assert {request.input["image_urls"][0] for request in ready} == {  # type: ignore[index]
        "https://storage.example/a.png"
    }
    assert [(result.key, result.state.value) for result in failed] == [("three", "failed")]
    assert isinstance(failed[0].error, BadRequestError)
