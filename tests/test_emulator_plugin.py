"""The opt-in pytest fixtures of ``vidgo_async.testing.pytest_plugin``."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import aiohttp
import pytest

from vidgo_async.testing import Emulator

pytest_plugins = ["vidgo_async.testing.pytest_plugin", "pytester"]


@pytest.fixture
def vidgo_emulator_options() -> dict[str, Any]:
    """Override the plugin's options for this module."""
    return {"job_seconds": 2, "time_scale": 0.02, "credits": 42, "api_key": "module-key"}


async def test_async_fixture_gives_a_running_emulator(vidgo_emulator: Emulator) -> None:
    """The vidgo_emulator fixture is started with the overridden options."""
    assert vidgo_emulator.time_scale == 0.02
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            vidgo_emulator.base_url + "/api/user/balance",
            headers={"Authorization": "Bearer module-key"},
        ) as r,
    ):
        assert (await r.json())["data"]["credits_amount"] == 42


def test_thread_fixture_serves_sync_code(vidgo_emulator_thread: Emulator) -> None:
    """The thread fixture serves synchronous code."""
    request = urllib.request.Request(  # noqa: S310 - loopback URL
        vidgo_emulator_thread.base_url + "/api/user/balance",
        headers={"Authorization": "Bearer module-key"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback URL
        assert json.loads(response.read())["data"]["credits_amount"] == 42


def test_marker_configures_the_fixture_in_a_user_project(pytester: pytest.Pytester) -> None:
    """A user's conftest opts in; a vidgo_emulator marker passes keyword arguments through."""
    pytester.makeconftest('pytest_plugins = ["vidgo_async.testing.pytest_plugin"]\n')
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vidgo_emulator(credits=7, time_scale=0.5)
        def test_marked(vidgo_emulator_thread):
            assert vidgo_emulator_thread.ledger.available == 7
            assert vidgo_emulator_thread.time_scale == 0.5

        def test_default(vidgo_emulator_thread):
            assert vidgo_emulator_thread.time_scale == 0.01
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--strict-markers", "-W", "error"
    )
    result.assert_outcomes(passed=2)
