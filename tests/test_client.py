"""Tests of VidgoClient: construction, submit, get_task grace, wait, generate, balance."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from _client_support import (
    API,
    BALANCE_URL,
    KEY,
    SEEDANCE,
    SUBMIT_URL,
    base_of,
    call_count,
    calls,
    envelope,
    error_body,
    make_client,
    serve,
    status_url,
    task_data,
)
from aiohttp import web
from aioresponses import CallbackResult, aioresponses

from vidgo_async import (
    APIResponseValidationError,
    AuthenticationError,
    Balance,
    InputValidationError,
    PollPolicy,
    RetryPolicy,
    Seedance2Input,
    Task,
    TaskFailedError,
    TaskLostError,
    TaskNotFoundError,
    TaskStatus,
    Timeout,
    UnknownStatusError,
    VidgoClient,
    VidgoError,
    WaitTimeoutError,
)
from vidgo_async._clock import VirtualClock

# -- construction ---------------------------------------------------------------------


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key anywhere is a clear error that says which variable to set."""
    monkeypatch.delenv("VIDGO_API_KEY", raising=False)
    with pytest.raises(VidgoError, match="VIDGO_API_KEY"):
        VidgoClient()


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """VIDGO_API_KEY and VIDGO_BASE_URL configure a client built without arguments."""
    monkeypatch.setenv("VIDGO_API_KEY", "env-key")
    monkeypatch.setenv("VIDGO_BASE_URL", "http://127.0.0.1:9999/")
    client = VidgoClient()
    assert client.base_url == "http://127.0.0.1:9999"
    assert client._transport._headers(with_body=False)["Authorization"] == "Bearer env-key"


def test_default_base_url_and_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configuration the client talks to api.vidgo.ai with default policies."""
    monkeypatch.delenv("VIDGO_BASE_URL", raising=False)
    client = VidgoClient(KEY)
    assert client.base_url == API
    assert client.retry == RetryPolicy()
    assert client.poll == PollPolicy()
    assert client.timeout == Timeout()


def test_seconds_timeout_is_the_total_deadline() -> None:
    """``timeout=10`` bounds the whole request at 10 s."""
    assert VidgoClient(KEY, timeout=10).timeout.total == 10


def test_repr_hides_the_key() -> None:
    """repr(client) shows the base URL and state, never the key."""
    client = VidgoClient("sk-secret-canary")
    assert "sk-secret-canary" not in repr(client)
    assert "api.vidgo.ai" in repr(client)


@pytest.mark.parametrize("bad", [0, -5, True, 1.5])
def test_max_download_bytes_must_be_positive(bad: Any) -> None:
    """An unusable download cap is refused at construction."""
    with pytest.raises(ValueError, match="max_download_bytes"):
        VidgoClient(KEY, max_download_bytes=bad)


async def test_use_after_close_is_a_clear_error() -> None:
    """Calls on a closed client raise a RuntimeError that says so; aclose is idempotent."""
    client = make_client()
    async with client:
        pass
    await client.aclose()
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_task("t1")
    with pytest.raises(RuntimeError, match="closed"):
        await client.submit("seedance-2", SEEDANCE)


# -- submit ---------------------------------------------------------------------------


async def test_submit_sends_the_documented_body() -> None:
    """submit posts {model, input, callback_url} and returns the Task."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            task = await client.submit(
                "seedance-2",
                Seedance2Input(prompt="a fox", duration=5, resolution="720p", seed=42),
                callback_url="https://example.com/cb",
            )
            (call,) = calls(mocked, "POST", SUBMIT_URL)
    assert json.loads(call.kwargs["data"]) == {
        "model": "seedance-2",
        "input": {"prompt": "a fox", "duration": 5, "resolution": "720p", "seed": 42},
        "callback_url": "https://example.com/cb",
    }
    assert task.status is TaskStatus.NOT_STARTED


async def test_submit_answer_without_status_is_not_started() -> None:
    """A submit answer that omits status (seedream-5.0-lite) gives a not_started Task."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(
                SUBMIT_URL,
                payload=envelope(
                    {"task_id": "KC9IIO8MLOAN18JX", "created_time": "2026-04-16T18:36:35"}
                ),
            )
            task = await client.submit("seedream-5.0-lite", {"prompt": "a cat"})
    assert task.task_id == "KC9IIO8MLOAN18JX"
    assert task.status is TaskStatus.NOT_STARTED


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("seedance-2", {**SEEDANCE, "duration": 3}),
        ("seedance-2", {"prompt": "  ", "duration": 5, "resolution": "720p"}),
        ("seedance-2-fast", {**SEEDANCE, "resolution": "1080p"}),
        ("seedance2", SEEDANCE),
        ("seedance-2", {**SEEDANCE, "image_urls": ["ftp://x/y.png"]}),
        ("", {"prompt": "x"}),
    ],
)
async def test_bad_input_raises_before_any_request(model: str, data: dict[str, Any]) -> None:
    """An input breaking a rule raises InputValidationError with zero requests sent."""
    async with make_client() as client:
        with aioresponses() as mocked:
            with pytest.raises(InputValidationError):
                await client.submit(model, data)
            assert call_count(mocked) == 0


@pytest.mark.parametrize(
    "url", ["http://example.com/cb", "https://10.0.0.1/cb", "not a url", "https://x/" + "a" * 2100]
)
async def test_bad_callback_url_raises_before_any_request(url: str) -> None:
    """A callback URL Vidgo would not call is refused before sending."""
    async with make_client() as client:
        with aioresponses() as mocked:
            with pytest.raises(InputValidationError, match="callback_url"):
                await client.submit("seedance-2", SEEDANCE, callback_url=url)
            assert call_count(mocked) == 0


async def test_mapping_for_any_other_model_is_sent_as_given() -> None:
    """A catalogued model's mapping is sent unchanged (minus None values)."""
    data = {"prompt": "x", "sound": True, "duration": 5, "aspect_ratio": "16:9"}
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("k1", "not_started")))
            await client.submit("kling-2.6", {**data, "end_image_url": None})
            (call,) = calls(mocked, "POST", SUBMIT_URL)
    assert json.loads(call.kwargs["data"])["input"] == data


async def test_wrong_key_raises_authentication_error() -> None:
    """A 401 becomes AuthenticationError."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=401, payload=error_body(401, "Invalid API key"))
            with pytest.raises(AuthenticationError, match="Invalid API key"):
                await client.submit("seedance-2", SEEDANCE)


# -- get_task and the not-found grace -----------------------------------------------


async def test_get_task_parses_the_task() -> None:
    """get_task returns the structured Task."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), payload=envelope(task_data("t1", "running", progress=40)))
            task = await client.get_task("t1")
    assert task.status is TaskStatus.RUNNING
    assert task.progress == 40


async def test_get_task_refuses_an_answer_about_another_task() -> None:
    """An answer naming another task id is not returned as this task's state."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), payload=envelope(task_data("t2", "finished")))
            with pytest.raises(APIResponseValidationError, match="describes task 't2'"):
                await client.get_task("t1")


async def test_get_task_escapes_the_id() -> None:
    """A hostile task id cannot change the request path."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(
                f"{API}/api/generate/status/..%2Fuser%2Fbalance",
                payload=envelope(task_data("../user/balance")),
            )
            await client.get_task("../user/balance")
            assert call_count(mocked) == 1


async def test_404_right_after_submit_is_retried_within_the_grace() -> None:
    """A 404 for the first 20 s after this client's submit is ridden out (T13)."""
    clock = VirtualClock()

    def eventually(_url: Any, **_kwargs: Any) -> CallbackResult:
        if clock.monotonic() < 20:
            return CallbackResult(status=404, payload=error_body(404))
        return CallbackResult(payload=envelope(task_data("t1", "running")))

    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            await client.submit("seedance-2", SEEDANCE)
            mocked.get(status_url("t1"), callback=eventually, repeat=True)
            task = await client.get_task("t1")
            assert len(calls(mocked, "POST", SUBMIT_URL)) == 1
            assert len(calls(mocked, "GET", status_url("t1"))) >= 2
    assert task.status is TaskStatus.RUNNING
    assert 20 <= clock.monotonic() <= client.poll.not_found_grace


async def test_wait_rides_out_404_within_the_grace() -> None:
    """wait after submit treats early 404s as 'not visible yet' (T13)."""
    clock = VirtualClock()

    def eventually(_url: Any, **_kwargs: Any) -> CallbackResult:
        if clock.monotonic() < 20:
            return CallbackResult(status=404, payload=error_body(404))
        return CallbackResult(payload=envelope(task_data("t1", "finished")))

    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            task = await client.submit("seedance-2", SEEDANCE)
            mocked.get(status_url("t1"), callback=eventually, repeat=True)
            done = await client.wait(task)
            assert len(calls(mocked, "POST", SUBMIT_URL)) == 1
    assert done.is_finished


async def test_404_past_the_grace_is_task_not_found() -> None:
    """After the grace period a 404 becomes TaskNotFoundError, without resubmitting."""
    clock = VirtualClock()
    async with make_client(clock, poll=PollPolicy(not_found_grace=5)) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            await client.submit("seedance-2", SEEDANCE)
            mocked.get(status_url("t1"), status=404, payload=error_body(404), repeat=True)
            with pytest.raises(TaskNotFoundError):
                await client.get_task("t1")
            assert len(calls(mocked, "POST", SUBMIT_URL)) == 1
    assert clock.monotonic() >= 5


async def test_404_for_a_foreign_task_is_immediate() -> None:
    """A task this client did not submit gets no grace."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(status_url("nope"), status=404, payload=error_body(404), repeat=True)
            with pytest.raises(TaskNotFoundError) as info:
                await client.get_task("nope")
            assert call_count(mocked) == 1
    assert info.value.status_code == 404


async def test_query_status_returns_the_server_hint() -> None:
    """query_status sends one request and returns the Retry-After hint."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(
                status_url("t1"), payload=envelope(task_data("t1")), headers={"Retry-After": "4"}
            )
            task, hint = await client.query_status("t1")
    assert task.task_id == "t1"
    assert hint == 4


async def test_query_status_does_not_retry() -> None:
    """query_status raises the mapped error of its single attempt."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), status=503, payload=error_body(503), repeat=True)
            with pytest.raises(Exception, match="503"):
                await client.query_status("t1")
            assert call_count(mocked) == 1


# -- wait -----------------------------------------------------------------------------


def _status_sequence(mocked: aioresponses, task_id: str, statuses: list[Any]) -> None:
    for item in statuses:
        if isinstance(item, int):
            mocked.get(status_url(task_id), status=item, payload=error_body(item))
        elif isinstance(item, BaseException):
            mocked.get(status_url(task_id), exception=item)
        else:
            mocked.get(status_url(task_id), payload=envelope(item))


async def test_wait_returns_the_finished_task() -> None:
    """wait polls until finished and returns the task with its files."""
    clock = VirtualClock()
    done = task_data(
        "t1",
        "finished",
        progress=100,
        files=[{"file_url": "https://s/x.mp4", "file_type": "video"}],
    )
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            _status_sequence(
                mocked, "t1", [task_data("t1", "not_started"), task_data("t1", "running"), done]
            )
            task = await client.wait("t1")
    assert task.is_finished
    assert task.file_urls == ["https://s/x.mp4"]


async def test_wait_polls_through_an_answer_about_another_task() -> None:
    """A finished answer naming another task neither ends the wait nor becomes its result."""
    clock = VirtualClock()
    other = task_data(
        "t2", "finished", files=[{"file_url": "https://s/other.mp4", "file_type": "video"}]
    )
    done = task_data(
        "t1", "finished", files=[{"file_url": "https://s/x.mp4", "file_type": "video"}]
    )
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            _status_sequence(mocked, "t1", [task_data("t1", "running"), other, done])
            task = await client.wait("t1")
    assert task.task_id == "t1"
    assert task.file_urls == ["https://s/x.mp4"]


async def test_wait_on_a_terminal_task_sends_nothing() -> None:
    """A Task that is already finished is returned without a request."""
    task = Task(task_id="t1", status=TaskStatus.FINISHED)
    async with make_client() as client:
        with aioresponses() as mocked:
            assert await client.wait(task) is task
            assert call_count(mocked) == 0


async def test_wait_raises_task_failed_with_the_server_message() -> None:
    """A failed task raises TaskFailedError whose task carries error_message."""
    failed = task_data("t1", "failed", error_message="The prompt violates our content policy")
    async with make_client() as client:
        with aioresponses() as mocked:
            _status_sequence(mocked, "t1", [failed])
            with pytest.raises(TaskFailedError) as info:
                await client.wait("t1")
    assert info.value.task.error_message == "The prompt violates our content policy"


async def test_wait_rides_out_an_answer_nested_too_deeply() -> None:
    """A status answer nested past Python's parser is one unreadable answer: wait polls on."""
    nested = b'{"code":200,"data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    clock = VirtualClock()
    async with make_client(clock, poll=PollPolicy(timeout=600)) as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), body=nested, content_type="application/json")
            mocked.get(status_url("t1"), payload=envelope(task_data("t1", "finished")))
            task = await client.wait("t1")
    assert task.status is TaskStatus.FINISHED


async def test_wait_rides_out_transient_errors() -> None:
    """503s, 429s, resets and timeouts on status queries never fail a wait (T07)."""
    clock = VirtualClock()
    sequence: list[Any] = [
        503,
        task_data("t1", "running", progress=10),
        502,
        aiohttp.ServerDisconnectedError(),
        asyncio.TimeoutError(),
        429,
        500,
        task_data("t1", "finished", progress=100),
    ]
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            _status_sequence(mocked, "t1", sequence)
            task = await client.wait("t1", timeout=3600)
            assert call_count(mocked) == len(sequence)
    assert task.is_finished
    assert all(delay >= client.poll.min_interval for delay in clock.sleeps)


async def test_wait_times_out_with_the_last_seen_task() -> None:
    """The deadline raises WaitTimeoutError (a TimeoutError) carrying the last Task."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.get(
                status_url("t1"),
                payload=envelope(task_data("t1", "running", progress=5)),
                repeat=True,
            )
            with pytest.raises(WaitTimeoutError) as info:
                await client.wait("t1", timeout=120)
            polls = call_count(mocked)
    assert isinstance(info.value, TimeoutError)
    assert info.value.task.status is TaskStatus.RUNNING
    assert info.value.timeout == 120
    assert clock.monotonic() <= 120 + 1e-6
    assert polls <= 120 / client.poll.min_interval


async def test_wait_times_out_when_every_poll_fails() -> None:
    """Even if no status query succeeds the wait ends at its deadline."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), status=503, payload=error_body(503), repeat=True)
            with pytest.raises(WaitTimeoutError) as info:
                await client.wait("t1", timeout=60)
    assert info.value.task.task_id == "t1"
    assert not info.value.task.status.is_known


@pytest.mark.parametrize("status", ["paused", "cancelled", "expired", ""])
async def test_unknown_status_raises_within_one_poll(status: str) -> None:
    """A status the client does not know raises UnknownStatusError at once (T12)."""
    async with make_client() as client:
        with aioresponses() as mocked:
            _status_sequence(mocked, "t1", [task_data("t1", status)])
            with pytest.raises(UnknownStatusError) as info:
                await client.wait("t1")
            assert call_count(mocked) == 1
    assert info.value.task.status.value == status


async def test_missing_status_is_unknown() -> None:
    """A task object without status is an unknown status, not a crash."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), payload=envelope({"task_id": "t1"}))
            with pytest.raises(UnknownStatusError):
                await client.wait("t1")


async def test_unknown_status_can_be_polled_through_until_the_deadline() -> None:
    """With unknown_status='poll' the wait keeps polling and still ends at the deadline."""
    clock = VirtualClock()
    policy = PollPolicy(unknown_status="poll")
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), payload=envelope(task_data("t1", "paused")), repeat=True)
            with pytest.raises(WaitTimeoutError):
                await client.wait("t1", timeout=100, poll=policy)


async def test_unknown_status_then_finished_with_poll_policy() -> None:
    """With unknown_status='poll' a later known terminal status ends the wait."""
    policy = PollPolicy(unknown_status="poll")
    async with make_client(poll=policy) as client:
        with aioresponses() as mocked:
            _status_sequence(mocked, "t1", [task_data("t1", "queued"), task_data("t1", "finished")])
            task = await client.wait("t1")
    assert task.is_finished


async def test_wait_404_for_foreign_task_is_task_lost() -> None:
    """wait on an id the API does not know loses track of it, the 404 kept as the cause."""
    async with make_client() as client:
        with aioresponses() as mocked:
            _status_sequence(mocked, "t1", [404])
            with pytest.raises(TaskLostError) as caught:
                await client.wait("t1")
    assert isinstance(caught.value.cause, TaskNotFoundError)
    assert caught.value.task_id == "t1"


async def test_wait_polls_slowly_once_the_budget_is_empty() -> None:
    """With the retry budget spent, failing polls come at the slowest interval (T08)."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        client._transport.retry_budget.tokens = 0
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), status=500, payload=error_body(500), repeat=True)
            with pytest.raises(WaitTimeoutError):
                await client.wait("t1", timeout=300)
    assert clock.sleeps
    assert all(delay == client.poll.max_interval for delay in clock.sleeps[:-1])


async def test_wait_timeout_none_waits_past_the_policy_timeout() -> None:
    """timeout=None removes the deadline."""
    clock = VirtualClock()
    policy = PollPolicy(timeout=10)
    seq: list[Any] = [task_data("t1", "running")] * 10 + [task_data("t1", "finished")]
    async with make_client(clock, poll=policy) as client:
        with aioresponses() as mocked:
            _status_sequence(mocked, "t1", seq)
            task = await client.wait("t1", timeout=None)
    assert task.is_finished
    assert clock.monotonic() > 10


async def test_cancelling_a_wait_leaves_nothing_behind() -> None:
    """Cancelling wait (with a real clock) ends it without stray tasks or open sockets."""

    async def running(_request: web.Request) -> web.Response:
        return web.json_response(envelope(task_data("t1", "running")))

    app = web.Application()
    app.router.add_get("/api/generate/status/t1", running)
    async with serve(app) as server:
        client = VidgoClient(KEY, base_url=base_of(server), poll=PollPolicy().scaled(0.01))
        async with client:
            waiter = asyncio.create_task(client.wait("t1", timeout=60))
            await asyncio.sleep(0.1)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        assert client._transport._session is None
    assert asyncio.all_tasks() == {asyncio.current_task()}


# -- generate, balance, end to end --------------------------------------------------------


async def test_generate_submits_then_waits() -> None:
    """generate returns the finished task after one submit."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("g1", "not_started")))
            _status_sequence(
                mocked, "g1", [task_data("g1", "running"), task_data("g1", "finished")]
            )
            task = await client.generate("seedance-2-fast", {**SEEDANCE, "resolution": "480p"})
            assert len(calls(mocked, "POST", SUBMIT_URL)) == 1
    assert task.is_finished


async def test_balance() -> None:
    """balance returns the credits."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, payload=envelope({"email": "a@b.c", "credits_amount": 17276}))
            balance = await client.balance()
    assert balance == Balance(credits_amount=17276, email="a@b.c")


async def test_end_to_end_against_a_loopback_server() -> None:
    """submit, a 429 with Retry-After: 1, 503s and a finished status work end to end."""
    state: dict[str, Any] = {"submits": 0, "accepted": 0, "polls": 0}

    async def submit(request: web.Request) -> web.Response:
        state["submits"] += 1
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        if state["submits"] == 1:
            return web.json_response(error_body(429), status=429, headers={"Retry-After": "1"})
        state["accepted"] += 1
        return web.json_response(envelope(task_data("e1", "not_started")))

    async def status(_request: web.Request) -> web.Response:
        state["polls"] += 1
        if state["polls"] in (1, 3):
            return web.json_response(error_body(503), status=503)
        if state["polls"] < 5:
            return web.json_response(envelope(task_data("e1", "running", progress=50)))
        return web.json_response(envelope(task_data("e1", "finished", progress=100)))

    app = web.Application()
    app.router.add_post("/api/generate/submit", submit)
    app.router.add_get("/api/generate/status/e1", status)
    async with serve(app) as server:
        clock = VirtualClock()
        async with VidgoClient(KEY, base_url=base_of(server), _clock=clock) as client:
            task = await client.generate("seedance-2", SEEDANCE)
    assert task.is_finished
    assert state["accepted"] == 1
    assert state["submits"] == 2
    assert clock.sleeps[0] >= 1.0


@pytest.mark.parametrize("task_id", [".", "..", "..."])
async def test_dot_only_task_ids_are_refused_before_sending(task_id: str) -> None:
    """A task id of dots would resolve as a path segment, so it is refused unsent."""
    async with VidgoClient("key", base_url="https://api.example.com") as client:
        with pytest.raises(InputValidationError, match="only dots"):
            await client.get_task(task_id)


@pytest.mark.parametrize("task_id", ["", "   ", None, 123])
def test_blank_or_non_string_task_ids_are_refused(task_id: Any) -> None:
    """An empty, blank or non-string task id is refused before any path is built."""
    from vidgo_async._status_reader import status_path

    with pytest.raises(InputValidationError, match="non-empty string"):
        status_path(task_id)


@pytest.mark.parametrize(
    ("task_id", "path"),
    [
        ("task-unified-1757165031-uyujaw3d", "task-unified-1757165031-uyujaw3d"),
        ("KC9IIO8MLOAN18JX", "KC9IIO8MLOAN18JX"),
        ("a/b?c", "a%2Fb%3Fc"),
        ("a.b", "a.b"),
        (" x", "%20x"),
        ("é", "%C3%A9"),
    ],
)
def test_status_path_quotes_only_what_needs_it(task_id: str, path: str) -> None:
    """Documented id forms go in as they are; anything else is percent-quoted."""
    from vidgo_async._status_reader import status_path

    assert status_path(task_id) == "/api/generate/status/" + path


@pytest.mark.parametrize(
    "answer",
    [
        {"code": 200, "data": {"status": "not_started"}},  # no task_id
        {"code": 200, "data": {"task_id": 42}},  # not a string
        {"code": 200, "data": []},
    ],
)
async def test_submit_success_without_a_readable_task_is_an_unknown_outcome(
    answer: dict[str, object],
) -> None:
    """A 200 whose task cannot be read may still have created a task: not retried, not failed."""
    from vidgo_async import SubmitOutcomeUnknownError

    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=answer)
            with pytest.raises(SubmitOutcomeUnknownError) as caught:
                await client.submit("seedream-5.0-lite", {"prompt": "a cat"})
            assert len(calls(mocked, "POST", SUBMIT_URL)) == 1
    assert caught.value.payload["model"] == "seedream-5.0-lite"
