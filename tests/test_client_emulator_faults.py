"""VidgoClient against a faulty emulator: status faults, 404 grace, deadlines, downloads, cancellation.

Every fault kind the emulator injects on status queries is either ridden out by ``wait``
or reported as the client's docstrings say; deadlines fire on time and leave no open
connection; downloads never carry the key; a canary key never shows up in logs or errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _emulator_support import (
    FAST,
    FAST_RETRY,
    POLL,
    TIME_SCALE,
    ScaledClock,
    fast_client,
    listing,
    scaled_emulator,
    sha256_of,
)

from vidgo_async import (
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    DownloadError,
    PollPolicy,
    RetryPolicy,
    SubmitOutcomeUnknownError,
    Task,
    TaskFailedError,
    TaskLostError,
    TaskNotFoundError,
    Timeout,
    VidgoClient,
    WaitTimeoutError,
)
from vidgo_async._clock import VirtualClock
from vidgo_async.testing import Emulator, Fault, sample_sha256

TIMEOUT = Timeout(connect=1.0, read=0.5, total=0.6)
MODEL = "seedance-2-fast"


def emulator(**kwargs: Any) -> Emulator:
    """Return an emulator with fast jobs (10 emulated s = 0.1 s) and a fixed seed."""
    return scaled_emulator(seed=11, **kwargs)


def client_for(emu: Emulator, **kwargs: Any) -> VidgoClient:
    """Return a client for ``emu`` with scaled polling, short timeouts and quick retries."""
    kwargs.setdefault("timeout", TIMEOUT)
    return fast_client(emu, **kwargs)


def open_connections(session: aiohttp.ClientSession) -> int:
    """Return the connections a session's pool holds, in use or idle (aiohttp internals)."""
    connector = session.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    acquired = len(connector._acquired)
    idle = sum(len(conns) for conns in connector._conns.values())
    return acquired + idle


async def submit_clean(emu: Emulator, client: VidgoClient, data: dict[str, Any] = FAST) -> Task:
    """Submit with the fault plan set aside, so that faults hit only what the test aims at."""
    saved = list(emu.faults)
    emu.faults.clear()
    try:
        return await client.submit(MODEL, data)
    finally:
        for fault in saved:
            emu.faults.add(fault)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A user session whose pool the test can inspect (the client leaves it open)."""
    async with aiohttp.ClientSession() as user_session:
        yield user_session


# -- status faults are ridden out by wait -------------------------------------------------

RIDDEN_OUT = [
    "status:503,every=2",
    "status:503,every=2,html",
    "status:502,every=2",
    "status:500,every=2",
    "status:504,every=2",
    "status:429,every=2,retry_after=0.05",
    "status:429,every=2,retry_after_ms=50",
    "status:429,every=2",
    "status:drop,every=2",
    "status:reset,every=2",
    "status:reset,bytes=30,every=2",
    "status:code_in_body,every=2",
    "status:code_in_body,code=503,every=2",
    "status:slow,seconds=2,times=1",
    "status:stall,seconds=5,times=1",
    "status:drip,chunk=2,interval=0.05,times=1",
    "status:503,burst=1:5",
    "status:malformed,every=2",
    "status:oversized,times=1",
]


@pytest.mark.parametrize("spec", RIDDEN_OUT)
async def test_wait_rides_out_status_faults(spec: str) -> None:
    """wait keeps polling through every transient status fault and returns the finished task."""
    async with emulator(faults=spec) as emu, client_for(emu) as client:
        task = await submit_clean(emu, client)
        done = await client.wait(task, timeout=15)
        polls = emu.stats.status_requests[task.task_id]
        faults = sum(emu.stats.faults_injected.values())
        assert emu.stats.submits_accepted == 1  # a poll error never resubmits
    assert done.is_finished
    assert faults >= 1
    assert faults < polls <= 60


async def test_status_faults_on_every_other_poll_of_a_long_job() -> None:
    """T07: a long job with 30 % mixed status failures still ends finished, submitted once."""
    faults = [
        Fault(endpoint="status", kind=500, probability=0.1),
        Fault(endpoint="status", kind=502, probability=0.1),
        Fault(endpoint="status", kind="reset", probability=0.1),
    ]
    async with emulator(job_seconds=60, faults=faults) as emu, client_for(emu) as client:
        task = await submit_clean(emu, client)
        done = await client.wait(task, timeout=15)
        assert emu.stats.submits_accepted == 1
        assert emu.stats.status_requests[task.task_id] <= 80
    assert done.is_finished


async def test_a_persistently_oversized_status_body_is_reported_not_polled_to_the_deadline() -> (
    None
):
    """A status answer always over the 1 MiB JSON cap ends wait with APIResponseValidationError, quickly."""
    async with emulator(faults="status:oversized,endless") as emu, client_for(emu) as client:
        task = await submit_clean(emu, client)
        started = time.monotonic()
        with pytest.raises(TaskLostError) as caught:
            await client.wait(task, timeout=3)
        assert time.monotonic() - started < 2.0
        assert 1 <= emu.stats.status_requests[task.task_id] <= 5
    assert isinstance(caught.value.cause, APIResponseValidationError)
    assert "larger than" in str(caught.value.cause)


# -- 404 right after submit, and unknown tasks -------------------------------------------


async def test_wait_rides_out_404_within_the_grace() -> None:
    """T13: 404s for the first emulated 20 s after submit are ridden out by wait."""
    faults = "status:404,within=20"
    async with emulator(job_seconds=30, faults=faults) as emu, client_for(emu) as client:
        task = await client.submit(MODEL, FAST)
        done = await client.wait(task, timeout=15)
        assert emu.stats.faults_injected["status:404"] >= 1
        assert emu.stats.submits_accepted == 1
    assert done.is_finished


async def test_get_task_rides_out_404_within_the_grace() -> None:
    """get_task right after a submit retries a 404 within the grace, then returns the task."""
    async with (
        emulator(job_seconds=30, faults="status:404,within=20") as emu,
        client_for(emu) as client,
    ):
        task = await client.submit(MODEL, FAST)
        seen = await client.get_task(task.task_id)
        assert emu.stats.faults_injected["status:404"] >= 1
    assert seen.task_id == task.task_id


async def test_404_past_the_grace_is_task_not_found() -> None:
    """A task that stays 404 past not_found_grace is lost by wait (TaskNotFoundError as cause)."""
    poll = PollPolicy(not_found_grace=0.2).scaled(TIME_SCALE * 10)  # grace 0.2 s
    async with emulator(faults="status:404") as emu, client_for(emu, poll=poll) as client:
        task = await client.submit(MODEL, FAST)
        started = time.monotonic()
        with pytest.raises(TaskLostError) as lost:
            await client.wait(task, timeout=15)
        assert time.monotonic() - started < 3.0
        with pytest.raises(TaskNotFoundError):
            await client.get_task(task.task_id)
    caught = lost.value.cause
    assert isinstance(caught, TaskNotFoundError)
    assert caught.status_code == 404
    assert task.task_id in str(caught)


async def test_an_unknown_task_id_is_task_not_found_at_once() -> None:
    """A task id this client never submitted gets no grace: its first 404 ends the wait."""
    unknown = "task-unified-1757165031-zzzzzzzz"
    async with emulator() as emu, client_for(emu) as client:
        with pytest.raises(TaskNotFoundError) as caught:
            await client.get_task(unknown)
        with pytest.raises(TaskLostError) as lost:
            await client.wait(unknown, timeout=5)
        assert isinstance(lost.value.cause, TaskNotFoundError)
        assert emu.stats.status_requests[unknown] == 2
    # The status page's documented body: {"detail": "Task not found"}.
    assert caught.value.message.endswith("Task not found")
    assert caught.value.body == {"detail": "Task not found"}


# -- T14: deadlines fire on time and close their connection ------------------------------


@pytest.mark.parametrize(
    "spec",
    ["status:drip,chunk=1,interval=0.1", "status:stall,seconds=30", "status:slow,seconds=30"],
)
async def test_a_status_answer_past_the_total_deadline_times_out_and_closes(
    spec: str, session: aiohttp.ClientSession
) -> None:
    """A dripping or stalled status answer fails within total + 0.5 s and leaves no connection."""
    timeout = Timeout(connect=1.0, read=1.0, total=0.5)
    async with (
        emulator(faults=spec) as emu,
        client_for(emu, session=session, timeout=timeout, retry=RetryPolicy.none()) as client,
    ):
        task = await submit_clean(emu, client)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.get_task(task.task_id)
        elapsed = time.monotonic() - started
        assert open_connections(session) == 0
    assert 0.4 <= elapsed <= 1.0


@pytest.mark.parametrize("spec", ["submit:drip,chunk=1,interval=0.1", "submit:stall,seconds=30"])
async def test_a_submit_answer_past_the_total_deadline_is_unknown_and_closes(
    spec: str, session: aiohttp.ClientSession
) -> None:
    """A dripping or stalled submit answer is an unknown outcome within total + 0.5 s, one job."""
    timeout = Timeout(connect=1.0, read=1.0, total=0.5)
    async with (
        emulator(faults=spec) as emu,
        client_for(emu, session=session, timeout=timeout) as client,
    ):
        started = time.monotonic()
        with pytest.raises(SubmitOutcomeUnknownError) as caught:
            await client.submit(MODEL, FAST)
        elapsed = time.monotonic() - started
        assert open_connections(session) == 0
        assert emu.stats.submit_attempts == 1
        assert emu.stats.jobs_for(MODEL, FAST) == 1
    assert isinstance(caught.value.cause, APITimeoutError)
    assert 0.4 <= elapsed <= 1.0


async def test_wait_deadline_during_a_stalled_poll_is_wait_timeout() -> None:
    """A wait whose polls all stall ends with WaitTimeoutError near its deadline, nothing open."""
    timeout = Timeout(connect=1.0, read=5.0, total=5.0)
    async with (
        emulator(job_seconds=1000, faults="status:stall,seconds=30") as emu,
        client_for(emu, timeout=timeout) as client,
    ):
        task = await submit_clean(emu, client)
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as caught:
            await client.wait(task, timeout=0.5)
        elapsed = time.monotonic() - started
    # One poll is bounded by what is left of the wait, but by at least a second.
    assert elapsed <= 1.6
    assert caught.value.task.task_id == task.task_id


# -- downloads -------------------------------------------------------------------------


async def finished_task(emu: Emulator) -> Task:
    """Generate one task to the end with a plain client."""
    async with client_for(emu) as client:
        saved = list(emu.faults)
        emu.faults.clear()
        try:
            return await client.generate(MODEL, FAST, timeout=10)
        finally:
            for fault in saved:
                emu.faults.add(fault)


@pytest.mark.parametrize(
    "spec",
    [
        "download:reset,bytes=1000,times=2",
        "download:drop,times=1",
        "download:503,times=2",
        "download:404,times=1",
    ],
)
async def test_download_faults_are_retried_then_succeed(spec: str, tmp_path: Path) -> None:
    """A reset, drop, 503 or expired (404) download is retried and ends with the exact file."""
    async with emulator(faults=spec) as emu:
        task = await finished_task(emu)
        async with client_for(emu, _clock=ScaledClock()) as client:
            paths = await client.download(task, tmp_path)
        assert emu.stats.download_requests[task.task_id] >= 2
        assert emu.stats.download_requests_with_credentials == 0
    assert [p.name for p in paths] == [f"{task.task_id}.mp4"]
    assert sha256_of(paths[0]) == sample_sha256()
    assert listing(tmp_path) == [f"{task.task_id}.mp4"]  # no .part left


async def test_an_expired_url_fetches_fresh_urls_once(tmp_path: Path) -> None:
    """A 404 on the result URL triggers exactly one fresh get_task before the retry."""
    async with emulator(faults="download:404,times=1") as emu:
        task = await finished_task(emu)
        polls = emu.stats.status_requests[task.task_id]
        async with client_for(emu) as client:
            await client.download(task, tmp_path)
        assert emu.stats.status_requests[task.task_id] == polls + 1


async def test_a_download_that_keeps_failing_is_download_error_with_no_part(
    tmp_path: Path,
) -> None:
    """A download reset on every attempt raises DownloadError and leaves no file or .part."""
    async with emulator(faults="download:reset,bytes=1000") as emu:
        task = await finished_task(emu)
        async with client_for(emu, _clock=ScaledClock()) as client:
            with pytest.raises(DownloadError) as caught:
                await client.download(task, tmp_path)
        assert emu.stats.download_requests[task.task_id] == 3
        assert emu.stats.download_requests_with_credentials == 0
    assert caught.value.task_id == task.task_id
    assert listing(tmp_path) == []


class _HeldClock(VirtualClock):
    """A clock whose sleeps wait until the test lets them go (``release``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()
        self.release = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self.release.wait()
        await super().sleep(seconds)


async def test_a_download_retrying_when_its_client_closes_fails_and_opens_no_session(
    tmp_path: Path,
) -> None:
    """Closed during the wait before a retry: no new session (nothing would close it)."""
    async with emulator(faults="download:503,times=1") as emu:
        task = await finished_task(emu)
        clock = _HeldClock()
        async with client_for(emu, _clock=clock) as client:
            download = asyncio.create_task(client.download(task, tmp_path))
            await clock.sleeping.wait()  # the first attempt got its 503
        clock.release.set()
        with pytest.raises(RuntimeError, match="closed during the download"):
            await download
        assert client._downloader._session is None
        assert emu.stats.download_requests[task.task_id] == 1
    assert listing(tmp_path) == []


# -- cancellation (T17) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", [None, "status:stall,seconds=30"], ids=["between-polls", "mid-poll"]
)
async def test_cancelling_a_wait_leaves_no_task_and_no_connection(
    spec: str | None, session: aiohttp.ClientSession
) -> None:
    """Cancelling wait (between polls or inside a stalled poll) leaves no task, connection or session."""
    async with emulator(job_seconds=1000, faults=spec) as emu:
        async with client_for(emu, session=session, timeout=Timeout(total=30)) as client:
            task = await submit_clean(emu, client)
            waiter = asyncio.create_task(client.wait(task, timeout=60))
            await asyncio.sleep(0.2)
            assert not waiter.done()
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert open_connections(session) <= 1  # at most one idle keep-alive connection
            if spec is not None:
                assert open_connections(session) == 0  # the stalled one was closed
                assert emu.stats.faults_injected["status:stall"] >= 1
        assert client.closed
        owned = VidgoClient(emu.api_key, base_url=emu.base_url, poll=POLL)
        async with owned:
            waiter = asyncio.create_task(owned.wait(task, timeout=60))
            await asyncio.sleep(0.1)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        assert owned._transport._session is None
    assert asyncio.all_tasks() == {asyncio.current_task()}


# -- T20: a canary key never leaks --------------------------------------------------------

CANARY = "sk-CANARY-7f3a9c1e5b"


async def test_a_canary_key_never_appears_in_logs_or_errors(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Across success, 4xx, 5xx, timeouts, retries and failures the key is in no log or error text."""
    caplog.set_level(logging.DEBUG)
    seen: list[BaseException] = []
    faults = [
        Fault(endpoint="submit", kind=429, times=1, retry_after="0.05"),
        Fault(endpoint="status", kind=503, every=3),
        Fault(endpoint="status", kind="reset", every=5),
    ]
    async with emulator(api_key=CANARY, faults=faults) as emu:
        async with client_for(emu) as client:
            texts = [repr(client)]
            task = await client.generate(MODEL, FAST, timeout=10)
            await client.download(task, tmp_path)
            emu.faults.add(Fault(endpoint="submit", kind=500, times=1))
            with pytest.raises(SubmitOutcomeUnknownError) as unknown:
                await client.submit(MODEL, FAST)
            seen.append(unknown.value)
            emu.faults.add(Fault(endpoint="submit", kind="stall", seconds=5, times=1))
            with pytest.raises(SubmitOutcomeUnknownError) as stalled:
                await client.submit(MODEL, FAST)
            seen.append(stalled.value)
            failing = {**FAST, "prompt": 'x y z [[vidgo-emulator: seconds=2 fail="boom"]]'}
            with pytest.raises(TaskFailedError) as failed:
                await client.generate(MODEL, failing, timeout=10)
            seen.append(failed.value)
        async with VidgoClient(CANARY + "-wrong", base_url=emu.base_url, retry=FAST_RETRY) as bad:
            texts.append(repr(bad))
            with pytest.raises(AuthenticationError) as refused:
                await bad.balance()
            seen.append(refused.value)
    for error in seen:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        cause = getattr(error, "cause", None)
        if cause is not None:
            texts += [str(cause), repr(cause)]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args)]
    texts += listing(tmp_path)
    assert len(caplog.records) > 5  # DEBUG logging really was on
    assert not [text for text in texts if CANARY in text]
