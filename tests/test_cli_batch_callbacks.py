"""Tests for ``vidgo-async batch --callback-base-url URL --listen HOST:PORT``."""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_webhooks import FakeClient, api_task, task_body

from vidgo_async import TaskStatus
from vidgo_async._cli import main
from vidgo_async._cli._batch_callbacks import (
    CallbackSetupError,
    add_arguments,
    parse_listen,
    reregister_tokens,
    settings_from_args,
)
from vidgo_async._jobs import GenerationRequest, request_fingerprint
from vidgo_async._journal import Journal, JournalState
from vidgo_async._resume import plan_resume
from vidgo_async.testing import Emulator
from vidgo_async.webhooks import CallbackReceiver, CallbackRegistry, token_hash

JOBS = 6


def write_jobs(path: Path, n: int = JOBS, *, extra: str = "") -> Path:
    with path.open("w") as stream:
        for i in range(n):
            prompt = f"take {i}: a red fox trots through fresh snow at dawn{extra}"
            stream.write(json.dumps({"id": f"clip-{i}", "prompt": prompt}) + "\n")
    return path


def read_results(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def outcome(rows: list[dict[str, object]]) -> list[tuple[object, object, int]]:
    """What a user sees of a batch, independent of task ids and timings."""
    return [(row["id"], row["status"], len(row["files"])) for row in rows]  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A threaded emulator with 0.2-0.4 s jobs that calls loopback callback URLs."""
    with Emulator(job_seconds=(20, 40), time_scale=0.01, seed=31).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        yield emu


def run_batch(source: Path, out: Path, emu: Emulator, *extra: str) -> int:
    return main(
        [
            "batch",
            str(source),
            "--out",
            str(out),
            "--base-url",
            emu.base_url,
            "--poll-scale",
            "0.01",  # a fallback poll would come after 0.6 s: later than these jobs
            *extra,
        ]
    )


def test_batch_with_callbacks_equals_polling_with_at_most_two_status_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Acceptance through the CLI: callbacks end every job like polling, <= 2 status GETs each."""
    source = write_jobs(tmp_path / "jobs.jsonl")
    with Emulator(job_seconds=(20, 40), time_scale=0.01, seed=31).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        assert run_batch(source, tmp_path / "polled", emu) == 0
    polled = read_results(tmp_path / "polled")
    with Emulator(job_seconds=(20, 40), time_scale=0.01, seed=31).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        capsys.readouterr()
        code = run_batch(source, tmp_path / "called", emu, "--listen", "127.0.0.1:0")
        stats = emu.stats
    err = capsys.readouterr().err
    called = read_results(tmp_path / "called")
    assert code == 0
    assert outcome(called) == outcome(polled)
    assert all(row["status"] == "finished" for row in called)
    for row in called:
        assert 1 <= stats.status_requests[str(row["task_id"])] <= 2
        assert (tmp_path / "called" / f"{row['id']}.mp4").stat().st_size > 0
    assert stats.callbacks_delivered == JOBS
    assert all(attempt.url.startswith("http://127.0.0.1:") for attempt in stats.callback_log)
    assert f"callbacks: {JOBS} verified" in err


def test_callbacks_arrive_under_the_base_urls_path(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each job's URL is URL/<token> under the base URL's path, and that path is served."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/hooks/vidgo"
    source = write_jobs(tmp_path / "jobs.jsonl", 3)
    code = run_batch(
        source,
        tmp_path / "out",
        emulator,
        "--no-download",
        "--callback-base-url",
        base,
        "--listen",
        f"127.0.0.1:{port}",
    )
    stats = emulator.stats
    assert code == 0
    urls = [attempt.url for attempt in stats.callback_log]
    assert len(set(urls)) == 3
    for url in urls:
        token = url.removeprefix(base + "/")
        assert len(token) == 43
        assert "/" not in token
    assert stats.callbacks_delivered == 3
    assert stats.callbacks_given_up == 0
    assert f"callbacks: {base}/<token>" in capsys.readouterr().err


def test_unknown_submit_is_adopted_through_the_cli_not_resubmitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """T19 in the CLI: a submit whose answer was reset ends finished with its task id, sent once."""
    source = write_jobs(tmp_path / "jobs.jsonl", 4)
    faults = "submit:reset,times=1"
    with Emulator(
        job_seconds=(20, 40), time_scale=0.01, seed=37, faults=faults
    ).run_in_thread() as emu:
        monkeypatch.setenv("VIDGO_API_KEY", emu.api_key)
        code = run_batch(source, tmp_path / "out", emu, "--no-download", "--listen", "127.0.0.1:0")
        stats = emu.stats
    rows = read_results(tmp_path / "out")
    assert code == 0
    assert stats.faults_injected["submit:reset"] == 1
    assert [row["status"] for row in rows] == ["finished"] * 4
    assert len({row["task_id"] for row in rows}) == 4
    assert stats.submits_accepted == 4
    assert all(count == 1 for count in stats.jobs_by_fingerprint.values())
    assert "(1 revealed an unknown submit)" in capsys.readouterr().err


def test_emulator_with_listen_derives_a_loopback_callback_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--emulator --listen 127.0.0.1:0` needs no base URL: the jobs call back on loopback."""
    source = write_jobs(tmp_path / "jobs.jsonl", 2)
    args = ["batch", str(source), "--emulator", "--no-download", "--out", str(tmp_path / "out")]
    assert main([*args, "--listen", "127.0.0.1:0"]) == 0
    err = capsys.readouterr().err
    assert "callbacks: http://127.0.0.1:" in err
    assert "callbacks: 2 verified" in err
    assert [row["status"] for row in read_results(tmp_path / "out")] == ["finished"] * 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--emulator", "--callback-base-url", "http://example.com/hooks", "--listen", ":1"],
            "--listen must be HOST:PORT",
        ),
        (
            ["--emulator", "--callback-base-url", "http://example.com/h", "--listen", "[::1]:0"],
            "--callback-base-url must use https",
        ),
        (
            ["--emulator", "--callback-base-url", "https://10.1.2.3/h", "--listen", "127.0.0.1:0"],
            "--callback-base-url must be publicly reachable",
        ),
        (
            ["--emulator", "--callback-base-url", "https://example.com/h?a", "--listen", "[::1]:0"],
            "--callback-base-url must not carry a query",
        ),
        (["--emulator", "--callback-base-url", "https://example.com/hooks"], "needs --listen"),
        (["--listen", "127.0.0.1:0"], "--listen needs --callback-base-url"),
        (
            ["--callback-base-url", "http://127.0.0.1:8080/h", "--listen", "127.0.0.1:8080"],
            "is a loopback URL, which Vidgo's servers cannot call",
        ),
        (["--emulator", "--listen", "0.0.0.0:0"], "needs --callback-base-url"),
        (["--emulator", "--listen", "127.0.0.1:70000"], "port from 0 to 65535"),
    ],
)
def test_unusable_callback_options_exit_2_before_anything_is_sent(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    """Plain-http public, private, loopback-for-Vidgo URLs and bad addresses exit 2 clearly."""
    monkeypatch.setenv("VIDGO_API_KEY", "not-used")
    source = write_jobs(tmp_path / "jobs.jsonl", 1)
    out = tmp_path / "out"
    assert main(["batch", str(source), "--out", str(out), *options]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_busy_listen_address_exits_2_and_submits_nothing(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the receiver cannot listen, the command exits 2 before the first submit."""
    source = write_jobs(tmp_path / "jobs.jsonl", 2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = run_batch(source, tmp_path / "out", emulator, "--listen", f"127.0.0.1:{port}")
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert emulator.stats.submit_attempts == 0


def test_listen_addresses_parse_with_ipv6_brackets() -> None:
    """HOST:PORT parses IPv4, names and bracketed IPv6; anything else is refused."""
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("localhost:0") == ("localhost", 0)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("8080", "::1:8080", "host:", "host:-1", ":8080", "[::1]"):
        with pytest.raises(CallbackSetupError):
            parse_listen(bad)


# -- a rerun recognises an earlier run's tokens by their journaled hashes ------------------

BASE_URL = "https://hooks.example.com/vidgo"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--emulator", action="store_true")
    parser.add_argument("--base-url")
    return parser.parse_args(list(argv))


def _resume_input(key: str) -> dict[str, object]:
    return {"prompt": f"clip {key}", "duration": 5, "resolution": "720p"}


async def test_rerun_re_registers_journaled_token_hashes(tmp_path: Path) -> None:
    """An unknown submit's old token reveals its task (journaled); an attached task is bound."""
    earlier = CallbackRegistry(BASE_URL)
    lost, attached = earlier.new_token("lost"), earlier.new_token("attached")
    requests = [
        GenerationRequest("seedance-2", _resume_input(k), key=k) for k in ("lost", "attached")
    ]
    fake = FakeClient(api_task("task-lost"), api_task("task-attached", TaskStatus.RUNNING))
    said: list[str] = []
    async with Journal(tmp_path / "journal.sqlite") as journal:
        for key, token in (("lost", lost), ("attached", attached)):
            data = _resume_input(key)
            fingerprint = request_fingerprint("seedance-2", data)
            await journal.record_intent(
                key, fingerprint, "seedance-2", data, callback_token=token_hash(token)
            )
        await journal.record_unknown("lost", "the submit timed out")
        await journal.record_submitted("attached", "task-attached")
        plan = await plan_resume(journal, requests)
        assert (len(plan.in_doubt), len(plan.attach)) == (1, 1)
        async with CallbackReceiver(fake, BASE_URL) as receiver:
            assert await reregister_tokens(receiver, journal, plan, said.append) == 2
            assert receiver.registry.owner_of("task-attached") == token_hash(attached)
            # The lost job's old token names the attached task: never adopted.
            await receiver.handle(lost, task_body("task-attached", wrapped=False))
            await receiver.join()
            assert fake.calls == []
            await receiver.handle(lost, task_body("task-lost", wrapped=False))
            await receiver.join()
        entry = await journal.get("lost")
    assert fake.calls == ["task-lost"]
    assert entry is not None
    assert (entry.state, entry.task_id) == (JournalState.IN_FLIGHT, "task-lost")
    assert any("task-lost" in line for line in said)


def test_http_base_url_needs_allow_insecure_callbacks() -> None:
    base = ["--callback-base-url", "http://hooks.example.com/cb", "--listen", "0.0.0.0:8080"]
    with pytest.raises(CallbackSetupError) as refused:
        settings_from_args(_args(*base))
    assert "--allow-insecure-callbacks" in " ".join(refused.value.lines)
    settings = settings_from_args(_args(*base, "--allow-insecure-callbacks"))
    assert settings is not None
    assert settings.allow_insecure


def test_signing_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["--listen", "127.0.0.1:0", "--emulator", "--callback-signing-key-env", "HOOK_KEY"]
    with pytest.raises(CallbackSetupError, match="HOOK_KEY"):
        settings_from_args(_args(*base))
    monkeypatch.setenv("HOOK_KEY", "s3cret")
    settings = settings_from_args(_args(*base))
    assert settings is not None
    assert settings.signing_key == "s3cret"
    assert "s3cret" not in repr(settings)
