"""Callbacks from the emulator per the current contract: flat body, 30 s, 5 retries, 4xx final.

The retry schedule is checked against an injected sleep (no real minutes): exponential
from 60 s, jittered, capped at 10 minutes, multiplied by the time scale.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async.testing import Emulator, EmulatorStats, FaultPlan
from vidgo_async.testing._callbacks import (
    MAX_RETRIES,
    RETRY_CAP,
    CallbackSender,
    retry_delay,
)
from vidgo_async.webhooks import CallbackSignatureError, CallbackSigning

SCALE = 0.02  # job seconds; the callback tests that retry use TINY
TINY = 0.0002  # the whole retry schedule (<= 1 500 emulated s) takes at most 0.3 s


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


async def test_finished_callback_is_the_flat_task_object(make_receiver: Any) -> None:
    """One POST of the flat task object (no {code, data}), JSON, and no signature header."""
    receiver = await make_receiver(lambda n: 200)
    async with Emulator(job_seconds=1, time_scale=SCALE) as emu:
        task_id = await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(SCALE * 2)
        await emu.wait_callbacks()
        assert emu.stats.callbacks_sent == emu.stats.callbacks_delivered == 1
        assert emu.stats.callback_attempts == 1
    assert len(receiver.calls) == 1
    _, data, headers = receiver.calls[0]
    assert "code" not in data
    assert "data" not in data
    assert data["task_id"] == task_id
    assert data["status"] == "finished"
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
    data = receiver.calls[0][1]
    assert (data["status"], data["files"], data["error_message"]) == ("failed", [], "nope")


async def test_wrapped_callback_shape_is_an_option(make_receiver: Any) -> None:
    """callback_shape='wrapped' posts {code: 200, data: <task>} (the older shape)."""
    receiver = await make_receiver(lambda n: 200)
    async with Emulator(job_seconds=1, time_scale=SCALE, callback_shape="wrapped") as emu:
        task_id = await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(SCALE * 2)
        await emu.wait_callbacks()
    assert receiver.calls[0][1]["code"] == 200
    assert receiver.calls[0][1]["data"]["task_id"] == task_id


async def test_signed_callbacks_verify_with_the_key(make_receiver: Any) -> None:
    """With a signing key the emulator sends the [P] headers, which the key verifies."""
    receiver = await make_receiver(lambda n: 200)
    async with Emulator(job_seconds=0, time_scale=SCALE, callback_signing_key="k-123") as emu:
        task_id = await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(0.01)
        await emu.wait_callbacks()
    headers = receiver.calls[0][2]
    CallbackSigning(keys="k-123").check(task_id, headers)  # raises if wrong
    with pytest.raises(CallbackSignatureError, match="does not match"):
        CallbackSigning(keys="another").check(task_id, headers)


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_retry_delays_are_exponential_jittered_and_capped(retry: int, seed: int) -> None:
    """Each delay lies in the upper half of min(600, 60 * 2**(retry-1)); never above 10 min."""
    step = min(RETRY_CAP, 60.0 * 2 ** (retry - 1))
    delay = retry_delay(retry, random.Random(seed))
    assert step / 2 <= delay <= step <= RETRY_CAP


def test_jitter_spreads_the_delays() -> None:
    """Two senders with different seeds do not retry in lockstep."""
    delays = {retry_delay(1, random.Random(seed)) for seed in range(20)}
    assert len(delays) == 20


@attrs.define
class Sleeps:
    """An injected sleep: records each delay and returns at once."""

    delays: list[float] = attrs.field(factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


async def deliver(url: str, *, scale: float, seed: int = 7) -> tuple[EmulatorStats, Sleeps]:
    """Deliver one callback to ``url`` with an injected sleep; return the stats and sleeps."""
    stats = EmulatorStats()
    sleeps = Sleeps()
    sender = CallbackSender(
        stats=stats,
        faults=FaultPlan.coerce(None),
        time_scale=scale,
        timeout=2.0,
        now=asyncio.get_running_loop().time,
        rng=random.Random(seed),
        sleep=sleeps,
    )
    await sender.start()
    try:
        sender.send(url, "task-1", {"task_id": "task-1", "status": "finished", "files": []})
        await sender.drain()
    finally:
        await sender.close()
    return stats, sleeps


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retried_five_times_on_the_scaled_schedule(
    make_receiver: Any, status: int
) -> None:
    """1 attempt + 5 retries, spaced by the jittered exponential delays times the scale."""
    receiver = await make_receiver(lambda n: status)
    stats, sleeps = await deliver(receiver.url, scale=0.5, seed=11)
    rng = random.Random(11)
    expected = [retry_delay(n, rng) * 0.5 for n in range(1, MAX_RETRIES + 1)]
    assert sleeps.delays == pytest.approx(expected)
    assert stats.callback_attempts == MAX_RETRIES + 1 == len(receiver.calls)
    assert [a.attempt for a in stats.callback_log] == [1, 2, 3, 4, 5, 6]
    assert stats.callbacks_given_up == 1
    assert stats.callbacks_delivered == stats.callbacks_refused == 0


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422, 429])
async def test_a_4xx_is_final(make_receiver: Any, status: int) -> None:
    """A 4xx answer is recorded and never retried (429 included: the docs say 4xx)."""
    receiver = await make_receiver(lambda n: status)
    stats, sleeps = await deliver(receiver.url, scale=1.0)
    assert sleeps.delays == []
    assert stats.callback_attempts == 1 == len(receiver.calls)
    assert stats.callbacks_refused == 1
    assert stats.callbacks_given_up == stats.callbacks_delivered == 0


async def test_a_later_success_stops_the_retries(make_receiver: Any) -> None:
    """Two 5xx then a 200: three attempts, delivered, two delays slept."""
    receiver = await make_receiver(lambda n: 503 if n < 3 else 200)
    stats, sleeps = await deliver(receiver.url, scale=1.0)
    assert stats.callback_attempts == 3 == len(receiver.calls)
    assert stats.callbacks_delivered == 1
    assert len(sleeps.delays) == 2


async def test_unreachable_receiver_is_retried_then_given_up() -> None:
    """A refused connection (a network error) is retried like a 5xx, then given up."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stats, sleeps = await deliver(f"http://127.0.0.1:{port}/hook", scale=1.0)
    assert stats.callback_attempts == MAX_RETRIES + 1
    assert len(sleeps.delays) == MAX_RETRIES
    assert stats.callbacks_given_up == 1
    assert all(a.error is not None for a in stats.callback_log)


async def test_no_answer_within_the_timeout_is_retried(make_receiver: Any) -> None:
    """A receiver that does not answer in time is retried (the emulator's own scaled sleep)."""
    receiver = await make_receiver(lambda n: None if n == 1 else 200)
    async with Emulator(job_seconds=0, time_scale=TINY, callback_timeout=0.1) as emu:
        await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(0.01)
        await emu.wait_callbacks()
        log = emu.stats.callback_log
        assert [a.status_code for a in log] == [None, 200]
        assert log[0].error is not None
        assert emu.stats.callbacks_delivered == 1


async def test_emulator_gives_up_after_five_retries(make_receiver: Any) -> None:
    """End to end at a tiny time scale: six attempts against a 500, then given up."""
    receiver = await make_receiver(lambda n: 500)
    async with Emulator(job_seconds=0, time_scale=TINY) as emu:
        await submit_with_callback(emu, receiver.url)
        await asyncio.sleep(0.01)
        await emu.wait_callbacks()
        assert emu.stats.callback_attempts == MAX_RETRIES + 1
        assert emu.stats.callbacks_given_up == 1
    assert len(receiver.calls) == MAX_RETRIES + 1


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
    assert [call[1]["task_id"] for call in receiver.calls] == [task_id, task_id]
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
