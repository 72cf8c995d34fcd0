"""``vidgo-async balance``."""

from __future__ import annotations

import json

import anyio.to_thread
import pytest

from vidgo_async._cli import main
from vidgo_async.testing import Emulator


async def test_balance_prints_the_credits_and_the_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Emulator(credits=1234) as emulator:
        monkeypatch.setenv("VIDGO_API_KEY", emulator.api_key)
        argv = ["balance", "--base-url", emulator.base_url]
        assert await anyio.to_thread.run_sync(main, argv) == 0
        out = capsys.readouterr().out
        assert "credits: 1234" in out
        assert f"server:  {emulator.base_url}" in out
        assert await anyio.to_thread.run_sync(main, [*argv, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["credits"] == 1234
        monkeypatch.setenv("VIDGO_API_KEY", "wrong-key")
        assert await anyio.to_thread.run_sync(main, argv) == 1
        assert "refused the key" in capsys.readouterr().err


def test_balance_without_a_key_or_with_a_bad_url_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["balance"]) == 2
    assert "VIDGO_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("VIDGO_API_KEY", "k")
    assert main(["balance", "--base-url", "ftp://x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--base-url" in err


def test_status_gives_command_line_hints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    assert main(["status", "task-1"]) == 2
    err = capsys.readouterr().err
    assert "VIDGO_API_KEY" in err
    assert "VidgoClient(" not in err
    monkeypatch.setenv("VIDGO_API_KEY", "k")
    assert main(["status", "task-1", "--base-url", "http://example.com"]) == 2
    err = capsys.readouterr().err
    assert "--allow-insecure" in err
    assert "allow_insecure=True" not in err
