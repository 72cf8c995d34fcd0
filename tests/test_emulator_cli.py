"""The ``vidgo-async emulator`` command, run as a real subprocess."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

from vidgo_async._cli import build_parser, main


async def test_serves_until_sigint_and_exits_zero() -> None:
    """It prints the base URL and key, answers the documented shapes, and stops on SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vidgo_async",
        "emulator",
        "--port",
        "0",
        "--api-key",
        "cli-key",
        "--job-seconds",
        "0.5",
        "--time-scale",
        "0.1",
        "--faults",
        "balance:503,burst=1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first)
        assert match, first
        base_url = match.group(1)
        lines = [(await process.stdout.readline()).decode() for _ in range(2)]
        assert f"VIDGO_BASE_URL={base_url}" in lines[0]
        assert "VIDGO_API_KEY=cli-key" in lines[1]
        headers = {"Authorization": "Bearer cli-key"}
        async with aiohttp.ClientSession() as http:
            async with http.get(base_url + "/api/user/balance", headers=headers) as r:
                assert r.status == 503
            async with http.get(base_url + "/api/user/balance", headers=headers) as r:
                assert (await r.json())["data"]["credits_amount"] == 1_000_000
            async with http.get(base_url + "/api/user/balance") as r:
                assert r.status == 401
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        assert stderr.decode() == ""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_bad_fault_spec_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable --faults spec is reported with the bad part and exit code 2."""
    assert main(["emulator", "--faults", "status:teapot"]) == 2
    assert "teapot" in capsys.readouterr().err


def test_options_are_parsed() -> None:
    """Job seconds accept a range; the other options reach the namespace."""
    args = build_parser().parse_args(
        [
            "emulator",
            "--job-seconds",
            "20-40",
            "--failure-rate",
            "0.1",
            "--credits",
            "5",
            "--time-scale",
            "0.5",
        ]
    )
    assert args.job_seconds == (20.0, 40.0)
    assert (args.failure_rate, args.credits, args.time_scale) == (0.1, 5, 0.5)
    assert not args.allow_unknown_models
    assert build_parser().parse_args(["emulator", "--allow-unknown-models"]).allow_unknown_models
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--time-scale", "0"])
