"""``vidgo-async batch``'s pre-flight: a bad start exits 2 with one line, sends nothing, leaves nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidgo_async._cli import main
from vidgo_async._cli._preflight import (
    check_base_url,
    check_input,
    check_journal,
    check_out,
    display_base_url,
)
from vidgo_async.testing import Emulator

KEY = "emulator-key"


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can create anything in (root ignores file modes: /proc then)."""
    if os.geteuid() == 0:
        yield Path("/proc/vidgo-async-read-only")
        return
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        yield directory
    finally:
        directory.chmod(0o755)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"id": "a", "prompt": "a fox"}\n{"id": "b", "prompt": "a heron"}\n')
    return source


def files_under(path: Path) -> set[Path]:
    return set(path.rglob("*"))


def run_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> tuple[int, str]:
    before = files_under(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert files_under(tmp_path) == before, "the refused start left files behind"
    return code, err


@pytest.mark.parametrize(
    "case", ["out-is-a-file", "out-under-a-file", "out-read-only", "journal-is-a-directory"]
)
def test_an_unusable_out_or_journal_is_one_line_and_exit_2(
    case: str,
    tmp_path: Path,
    jobs: Path,
    read_only: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    out = {
        "out-is-a-file": a_file,
        "out-under-a-file": a_file / "out",
        "out-read-only": read_only / "out",
        "journal-is-a-directory": tmp_path / "out",
    }[case]
    extra = ["--journal", str(tmp_path)] if case == "journal-is-a-directory" else []
    code, err = run_refused(
        capsys, tmp_path, ["batch", str(jobs), "--emulator", "--out", str(out), *extra]
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert "--journal" in err if extra else "--out" in err


@pytest.mark.parametrize("url", ["http://example.com", "ftp://x", "notaurl"])
@pytest.mark.parametrize("source", ["option", "environment"])
def test_a_bad_base_url_is_one_line_and_exit_2(
    url: str,
    source: str,
    tmp_path: Path,
    jobs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VIDGO_API_KEY", KEY)
    argv = ["batch", str(jobs), "--out", str(tmp_path / "out")]
    if source == "option":
        argv += ["--base-url", url]
    else:
        monkeypatch.setenv("VIDGO_BASE_URL", url)
    code, err = run_refused(capsys, tmp_path, argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "allow_insecure=True" not in err  # a CLI hint, not a Python one
    assert ("--base-url" if source == "option" else "VIDGO_BASE_URL") in err


def test_invalid_utf8_and_no_key_are_one_line_and_exit_2(
    tmp_path: Path, jobs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b'{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": "caf\xe9"}\n')
    code, err = run_refused(
        capsys, tmp_path, ["batch", str(broken), "--emulator", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "line 2 is not UTF-8" in err
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    code, err = run_refused(capsys, tmp_path, ["batch", str(jobs), "--out", str(tmp_path / "o")])
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "VIDGO_API_KEY" in err
    assert "VidgoClient(" not in err


async def test_a_read_only_out_with_the_journal_elsewhere_submits_nothing(
    tmp_path: Path, jobs: Path, read_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio.to_thread

    async with Emulator() as emulator:
        monkeypatch.setenv("VIDGO_API_KEY", emulator.api_key)
        argv = [
            "batch",
            str(jobs),
            "--base-url",
            emulator.base_url,
            "--out",
            str(read_only / "out"),
            "--journal",
            str(tmp_path / "journal.sqlite"),
        ]
        code = await anyio.to_thread.run_sync(main, argv)
        assert code == 2
        assert sum(emulator.stats.requests.values()) == 0
        assert not (tmp_path / "journal.sqlite").exists()


def test_checks_create_nothing_and_accept_what_the_client_accepts(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    assert check_out(deep) is None
    assert not (tmp_path / "a").exists()  # the check removed what it created
    assert check_journal(tmp_path / "new" / "journal.sqlite") is None
    assert not (tmp_path / "new").exists()
    assert check_base_url("http://127.0.0.1:8089", allow_insecure=False) is None
    assert check_base_url("http://example.com", allow_insecure=True) is None
    assert check_base_url("https://api.vidgo.ai", allow_insecure=False) is None
    assert check_input(tmp_path) is not None  # a directory
    assert display_base_url("https://api.vidgo.ai/") is None
    assert display_base_url("http://127.0.0.1:9") == "http://127.0.0.1:9"


def test_an_invalid_option_is_one_option_error_not_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text("".join(f'{{"id": "j{n}", "prompt": "a fox {n}"}}\n' for n in range(200)))
    code, err = run_refused(
        capsys,
        tmp_path,
        ["batch", str(source), "--emulator", "--out", str(tmp_path / "o"), "--duration", "3"],
    )
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("vidgo-async batch: --duration 3: ")


def test_shorthand_lines_carry_their_own_options_and_messages_do_not_double(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "a fox", "duration": 8, "resolution": "480p", "aspect_ratio": "1:1"}\n'
        '{"id": "b", "prompt": "a heron", "duration": 99}\n'
        f'{{"id": "c", "prompt": "{"x" * 25000}"}}\n'
    )
    code = main(["batch", str(source), "--emulator", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "line 1" not in err
    assert "line 2: $.input.duration" in err
    assert "(has 25000)" in err
    assert "(got 'xxx" not in err
    source.write_text('{"id": "a", "prompt": "a fox", "duration": 8, "resolution": "480p"}\n')
    assert main(["batch", str(source), "--emulator", "--out", str(tmp_path / "o"), "--json"]) == 0
    assert '"status": "finished"' in capsys.readouterr().out


def test_a_line_whose_model_needs_a_callback_url_stops_a_run_without_callbacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """generate-lyrics' submit requires callback_url: without callbacks nothing is sent."""
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "a fox"}\n'
        '{"id": "b", "model": "generate-lyrics", "input": {"prompt": "the sea"}}\n'
    )
    code, err = run_refused(
        capsys, tmp_path, ["batch", str(source), "--emulator", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "nothing was submitted" in err
    assert "line 2: $.callback_url is required for generate-lyrics" in err
    assert "line 1" not in err
    assert "--callback-base-url" in err
