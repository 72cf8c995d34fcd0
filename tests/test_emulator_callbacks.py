"""Callbacks from the emulator: body, headers, the 1/2/4 s retry schedule, lost and duplicates."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from vidgo_async.testing import Emulator

SCALE = 0.05  # delays of 0.05, 0.1 and 0.2 s


@attrs.define
class Receiver:
    """A loopback callback receiver whose answers a test scripts."""

    answer: Callable[[int], int | None]  # attempt number -> status, or None to never answer
    calls: list[tuple[float, dict[str, Any], dict[str, str]]] = attrs.field(factory=list)
    release: asyncio.Event = attrs.field(factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        """Record the delivery and answer as scripted."""
        body = await request.json()
        self.calls.append((asyncio.get_running_loop().time(), body, dict(request.headers)))
        status = self.answer(len(self.calls))
        if status is None:
            await self.release.wait()
            status = 200
        return web.Response(status=status)


@pytest.fixture
async def make_receiver() -> AsyncIterator[Callable[[Callable[[int], int | None]], Any]]:
    """Yield a factory of started receivers; stop them all (stalled handlers released) after."""
    runners: list[tuple[web.AppRunner, Receiver]] = []

    async def start(answer: Callable[[int], int | None]) -> Receiver:
        receiver = Receiver(answer)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        runners.append((runner, receiver))
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        return receiver

    yield start
    for runner, receiver in runners:
        receiver.release.set()
        await runner.cleanup()


async def submit_with_callback(emu: Emulator, url: str, prompt: str = "a red fox in snow") -> str:
    """Submit a job with ``callback_url`` and return its id."""
    payload = {
        "model": "seedance-2",
        "callback_url": url,
        "input": {"prompt": prompt, "resolution": "720p", "duration": 5},
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            emu.base_url + "/api/generate/submit",
            json=payload,
            headers={"Authorization": f"Bearer {emu.api_key}"},
        ) as r,
    ):
        assert r.status == 200
        return str((await r.json())["data"]["task_id"])


async def test_finished_callback_is_the_status_shaped_body(make_receiver: Any) -> None:
    """One POST with {code:200, data:<status>}, JSON content type and no signature header."""
    receiver = await make_receiver(lambda n: 200)
    async with Emulator(job_seconds=1, time_scale=SCALE) as emu:
        task_id = await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(SCALE * 2)
        await emu.wait_callbacks()
        assert emu.stats.callbacks_sent == emu.stats.callbacks_delivered == 1
        assert emu.stats.callback_attempts == 1
    assert len(receiver.calls) == 1
    _, body, headers = receiver.calls[0]
    assert body["code"] == 200
    data = body["data"]
    assert data["task_id"] == task_id
    assert data["status"] == "finished"
    assert data["progress"] == 100
    assert data["files"][0]["file_type"] == "video"
    assert data["error_message"] is None
    assert headers["Content-Type"] == "application/json"
    assert not [
        name for name in headers if "signature" in name.lower() or "webhook" in name.lower()
    ]


async def test_failed_callback_carries_the_error(make_receiver: Any) -> None:
    """A failed task's callback has status failed, files [] and the error message."""
    receiver = await make_receiver(lambda n: 204)
    async with Emulator(job_seconds=1, time_scale=SCALE) as emu:
        await submit_with_callback(emu, receiver.url, 'x [[vidgo-emulator: fail="nope"]]')
        await asyncio.sleep(SCALE * 2)
        await emu.wait_callbacks()
    data = receiver.calls[0][1]["data"]
    assert (data["status"], data["files"], data["error_message"]) == ("failed", [], "nope")


async def test_bare_callback_shape(make_receiver: Any) -> None:
    """callback_shape='bare' posts the task object without the envelope."""
    receiver = await make_receiver(lambda n: 200)
    async with Emulator(job_seconds=1, time_scale=SCALE, callback_shape="bare") as emu:
        task_id = await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(SCALE * 2)
        await emu.wait_callbacks()
    assert receiver.calls[0][1]["task_id"] == task_id


async def test_non_2xx_is_retried_after_1_2_4_seconds_then_given_up(make_receiver: Any) -> None:
    """Four attempts in all, spaced 1, 2 and 4 scaled seconds, then no more."""
    receiver = await make_receiver(lambda n: 500)
    async with Emulator(job_seconds=0, time_scale=SCALE) as emu:
        await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(0.01)
        await emu.wait_callbacks()
        stats = emu.stats
        assert stats.callback_attempts == 4
        assert stats.callbacks_given_up == 1
        assert stats.callbacks_delivered == 0
        assert [a.attempt for a in stats.callback_log] == [1, 2, 3, 4]
        assert [a.status_code for a in stats.callback_log] == [500] * 4
    times = [t for t, _, _ in receiver.calls]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, expected in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert expected * SCALE * 0.9 <= gap <= expected * SCALE + 0.5


async def test_a_later_success_stops_the_retries(make_receiver: Any) -> None:
    """Two failures then a 200: three attempts, delivered."""
    receiver = await make_receiver(lambda n: 503 if n < 3 else 200)
    async with Emulator(job_seconds=0, time_scale=SCALE) as emu:
        await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(0.01)
        await emu.wait_callbacks()
        assert emu.stats.callback_attempts == 3
        assert emu.stats.callbacks_delivered == 1
    assert len(receiver.calls) == 3


async def test_no_answer_within_the_timeout_counts_as_a_failure(make_receiver: Any) -> None:
    """A receiver that never answers is retried after the timeout, like a non-2xx."""
    receiver = await make_receiver(lambda n: None if n == 1 else 200)
    async with Emulator(job_seconds=0, time_scale=SCALE, callback_timeout=0.1) as emu:
        await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(0.01)
        await emu.wait_callbacks()
        log = emu.stats.callback_log
        assert [a.status_code for a in log] == [None, 200]
        assert log[0].error is not None
        assert emu.stats.callbacks_delivered == 1


async def test_unreachable_receiver_is_given_up(make_receiver: Any) -> None:
    """A refused connection is a failed attempt, retried, then given up."""
    receiver = await make_receiver(lambda n: 200)
    dead = receiver.url.replace("/hook", "/missing")  # 404 from the receiver app
    async with Emulator(job_seconds=0, time_scale=0.01) as emu:
        await submit_with_callback(emu, dead)
        await asyncio.sleep(0.01)
        await emu.wait_callbacks()
        assert emu.stats.callback_attempts == 4
        assert emu.stats.callbacks_given_up == 1


async def test_lost_and_duplicated_callbacks(make_receiver: Any) -> None:
    """callback:lose never delivers; callback:duplicate delivers the same body twice."""
    receiver = await make_receiver(lambda n: 200)
    async with Emulator(
        job_seconds=0, time_scale=SCALE, faults="callback:lose,times=1;callback:duplicate"
    ) as emu:
        await submit_with_callback(emu, receiver.url, "first")
        await asyncio.sleep(0.02)
        await emu.wait_callbacks()
        assert receiver.calls == []
        assert emu.stats.callbacks_lost == 1
        task_id = await submit_with_callback(emu, receiver.url, "second")
        await asyncio.sleep(0.02)
        await emu.wait_callbacks()
        assert emu.stats.callbacks_sent == 2
        assert emu.stats.callbacks_delivered == 2
        assert [a.duplicate for a in emu.stats.callback_log] == [False, True]
    assert [call[1]["data"]["task_id"] for call in receiver.calls] == [task_id, task_id]
    assert receiver.calls[0][1] == receiver.calls[1][1]


async def test_close_cancels_pending_deliveries(make_receiver: Any) -> None:
    """Closing during a delivery that waits for retries leaves no task behind."""
    before = asyncio.all_tasks()
    receiver = await make_receiver(lambda n: 500)
    async with Emulator(job_seconds=0, time_scale=1.0) as emu:
        await submit_with_callback(emu, receiver.url)
        for _ in range(100):
            if emu.stats.callback_attempts:
                break
            await asyncio.sleep(0.01)
    assert emu.stats.callbacks_given_up == 0
    # The receiver's own connection handler notices the hang-up a loop turn later.
    for _ in range(50):
        if not asyncio.all_tasks() - before:
            break
        await asyncio.sleep(0.01)
    assert asyncio.all_tasks() - before == set()
