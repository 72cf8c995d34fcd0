"""Tests for vidgo_async.webhooks: the callback parser, the token registry and the receiver."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidgo_async import (
    InputValidationError,
    ServerError,
    Task,
    TaskNotFoundError,
    TaskStatus,
    _callback_verify,
)
from vidgo_async._models import TaskFile
from vidgo_async.webhooks import (
    CallbackReceiver,
    CallbackRegistry,
    CallbackTooLargeError,
    InvalidCallbackError,
    UnknownCallbackTokenError,
    VerifiedCallback,
    WebhookError,
    parse_callback,
)

STORAGE_URL = "https://storage.vidgo.ai/generated/video-abc.mp4"
TASK_ID = "task-unified-1757165031-uyujaw3d"
BASE = "https://hooks.example.com/vidgo/callbacks"


def task_body(
    task_id: str = TASK_ID,
    status: str = "finished",
    *,
    wrapped: bool = True,
    file_url: str = STORAGE_URL,
) -> bytes:
    data: dict[str, Any] = {
        "task_id": task_id,
        "status": status,
        "files": [{"file_url": file_url, "file_type": "video"}] if status == "finished" else [],
        "created_time": "2026-04-17T10:30:00",
        "progress": 100 if status == "finished" else 40,
        "error_message": "The prompt violates our content policy" if status == "failed" else None,
    }
    return json.dumps({"code": 200, "data": data} if wrapped else data).encode()


def api_task(task_id: str = TASK_ID, status: TaskStatus = TaskStatus.FINISHED) -> Task:
    files = (TaskFile(file_url=STORAGE_URL, file_type="video"),)
    return Task(
        task_id=task_id,
        status=status,
        files=files if status is TaskStatus.FINISHED else (),
        progress=100 if status is TaskStatus.FINISHED else 40,
    )


class FakeClient:
    """A stand-in for VidgoClient.get_task: the API's truth, a call log and an optional gate."""

    def __init__(self, *tasks: Task) -> None:
        self.tasks = {task.task_id: task for task in tasks}
        self.calls: list[str] = []
        self.gate: anyio.Event | None = None
        self.errors: list[Exception] = []

    async def get_task(self, task_id: str) -> Task:
        self.calls.append(task_id)
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        if task_id not in self.tasks:
            raise TaskNotFoundError("not found", status_code=404)
        return self.tasks[task_id]


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the event loop until ``predicate()`` holds (no real sleeping)."""
    with anyio.fail_after(2):
        while not predicate():
            await anyio.lowlevel.checkpoint()


class Inbox:
    """A subscriber recording every verified callback."""

    def __init__(self) -> None:
        self.events: list[VerifiedCallback] = []

    def __call__(self, event: VerifiedCallback) -> None:
        self.events.append(event)


@pytest.fixture
async def fake() -> FakeClient:
    return FakeClient(api_task())


# -- parser ------------------------------------------------------------------------------


def test_parse_wrapped_finished_body() -> None:
    """A {code, data} envelope parses into the task it holds."""
    task = parse_callback(task_body())
    assert task.task_id == TASK_ID
    assert task.status is TaskStatus.FINISHED
    assert task.file_urls == [STORAGE_URL]


def test_parse_bare_failed_body() -> None:
    """A bare task object (the newer documented shape) parses too, failure message included."""
    task = parse_callback(task_body(status="failed", wrapped=False))
    assert task.status is TaskStatus.FAILED
    assert task.error_message == "The prompt violates our content policy"
    assert task.files == ()


def test_parse_accepts_a_utf8_bom_and_unknown_keys() -> None:
    """Tolerant reading: a BOM and extra keys do not break the parse."""
    body = (
        b"\xef\xbb\xbf"
        + json.dumps(
            {
                "code": 200,
                "msg": "ok",
                "data": {"task_id": "KC9IIO8MLOAN18JX", "status": "finished", "x": 1},
            }
        ).encode()
    )
    assert parse_callback(body).task_id == "KC9IIO8MLOAN18JX"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"not json", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "JSON list"),
        (b'{"code": 200}', "neither a task object"),
        (b'{"code": 500, "data": {"task_id": "a"}}', "code is 500"),
        (b'{"code": true, "data": {"task_id": "a"}}', "code is True"),
        (b'{"task_id": 42, "status": "finished"}', "not a task"),
        (b'{"task_id": "../../api/user/balance", "status": "finished"}', "plausible"),
        (b'{"task_id": "..", "status": "finished"}', "plausible"),
        (b"[" * 100_000, "JSON"),
    ],
)
def test_parse_rejects_malformed_bodies(body: bytes, fragment: str) -> None:
    """Malformed bodies raise InvalidCallbackError (a 400) saying what is wrong."""
    with pytest.raises(InvalidCallbackError, match=re.escape(fragment)) as info:
        parse_callback(body, max_bytes=200_000)
    assert info.value.status_code == 400


def test_parse_rejects_oversized_body_before_decoding() -> None:
    """A body over the limit raises CallbackTooLargeError (a 413) with its size and the limit."""
    with pytest.raises(CallbackTooLargeError) as info:
        parse_callback(b" " * 1025, max_bytes=1024)
    assert (info.value.size, info.value.limit, info.value.status_code) == (1025, 1024, 413)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_parse_arbitrary_bytes_raises_only_webhook_errors(body: bytes) -> None:
    """Whatever the bytes, the parser returns a Task or raises a WebhookError, nothing else."""
    try:
        task = parse_callback(body, max_bytes=1024)
    except WebhookError:
        return
    assert isinstance(task, Task)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_task_like = st.fixed_dictionaries(
    {},
    optional={
        "task_id": _json | st.from_regex(r"[A-Za-z0-9-]{1,30}", fullmatch=True),
        "status": _json | st.sampled_from(["finished", "failed", "running", "paused"]),
        "files": _json | st.lists(st.fixed_dictionaries({"file_url": _json}), max_size=3),
        "progress": _json,
        "created_time": _json,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_task_like, st.fixed_dictionaries({"code": _json, "data": _task_like}), _json))
def test_parse_arbitrary_json_raises_only_webhook_errors(document: object) -> None:
    """Arbitrary JSON documents (task-shaped or not) give a Task or a WebhookError only."""
    body = json.dumps(document).encode()
    try:
        task = parse_callback(body)
    except WebhookError:
        return
    assert isinstance(task, Task)
    assert task.task_id


# -- registry ----------------------------------------------------------------------------


def test_tokens_are_long_random_and_url_safe() -> None:
    """Each token carries 256 random bits in 43 URL-safe characters and never repeats."""
    registry = CallbackRegistry(BASE)
    tokens = {registry.new_token(n) for n in range(500)}
    assert len(tokens) == 500
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert len(base64.urlsafe_b64decode(token + "=")) * 8 >= 128


@pytest.mark.parametrize(
    ("base", "expected_prefix"),
    [
        (BASE, BASE + "/"),
        (BASE + "/", BASE + "/"),
        ("https://hooks.example.com", "https://hooks.example.com/"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb/"),
        ("http://localhost:9/", "http://localhost:9/"),
        ("http://[::1]:9/x", "http://[::1]:9/x/"),
    ],
)
def test_url_for_appends_the_token_under_the_base_path(base: str, expected_prefix: str) -> None:
    """The job's URL is the base URL (its path kept, loopback allowed) plus one token segment."""
    registry = CallbackRegistry(base)
    token = registry.new_token("job")
    assert registry.url_for(token) == expected_prefix + token
    assert registry.token_from_path(registry.url_for(token).split("//", 1)[1]) == token


@pytest.mark.parametrize(
    ("base", "fragment"),
    [
        ("http://hooks.example.com/cb", "https"),
        ("https://10.0.0.5/cb", "publicly reachable"),
        ("https://192.168.1.20/cb", "publicly reachable"),
        ("https://metadata.internal/cb", "publicly reachable"),
        ("ftp://hooks.example.com/cb", "http(s) URL"),
        ("https://hooks.example.com/" + "a" * 2000, "2048"),
        ("https://hooks.example.com/cb?x=1", "query"),
        ("https://user:pw@hooks.example.com/cb", "credentials"),
    ],
)
def test_registry_refuses_urls_vidgo_cannot_call(base: str, fragment: str) -> None:
    """http, private, non-http, too-long and query-carrying base URLs fail with a clear message."""
    with pytest.raises(InputValidationError, match=re.escape(fragment)) as info:
        CallbackRegistry(base)
    assert info.value.field == "$.callback_base_url"


def test_lookup_refuses_near_misses_and_junk() -> None:
    """A token differing in one character, or of the wrong shape, is unknown."""
    registry = CallbackRegistry(BASE)
    token = registry.new_token("job")
    near = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert token in registry
    assert near not in registry
    assert "../../etc" not in registry
    assert "" not in registry
    with pytest.raises(UnknownCallbackTokenError):
        registry.url_for(near)


def test_renew_restarts_a_tokens_time_to_live() -> None:
    """A renewed token lives a full ttl from the renewal; a dead one cannot be renewed."""
    now = [0.0]
    registry = CallbackRegistry(BASE, ttl=60, clock=lambda: now[0])
    renewed, dead = registry.new_token("renewed"), registry.new_token("dead")
    now[0] = 50.0
    assert registry.renew(renewed) is True
    now[0] = 100.0
    assert renewed in registry
    assert dead not in registry
    assert registry.renew(dead) is False
    now[0] = 111.0
    assert renewed not in registry


def test_forget_and_expire_tokens() -> None:
    """Forgotten tokens and tokens past their time to live become unknown."""
    now = [0.0]
    registry = CallbackRegistry(BASE, ttl=60, clock=lambda: now[0])
    kept, dropped, old = (registry.new_token(n) for n in range(3))
    assert registry.forget(dropped) is True
    assert registry.forget(dropped) is False
    now[0] = 30.0
    fresh = registry.new_token("fresh")
    now[0] = 61.0
    assert registry.expire() == 2
    assert kept not in registry
    assert old not in registry
    assert fresh in registry
    assert len(registry) == 1


def test_registry_base_url_rules() -> None:
    """No URL before a base is set, and the base cannot move once tokens exist."""
    registry = CallbackRegistry()
    token = registry.new_token("job")
    with pytest.raises(RuntimeError, match="base URL"):
        registry.url_for(token)
    registry.set_base_url(BASE)
    assert registry.url_for(token).startswith(BASE)
    with pytest.raises(RuntimeError, match="cannot change"):
        registry.set_base_url("https://other.example.com/")
    assert "tokens=1" in repr(registry)
    assert token not in repr(registry)


# -- receiver ----------------------------------------------------------------------------


async def test_answers_at_once_and_verifies_off_the_request_path(fake: FakeClient) -> None:
    """The 200 comes back while the verification is still blocked; the task arrives afterwards."""
    fake.gate = anyio.Event()
    inbox = Inbox()
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("clip-1", task_id=TASK_ID, subscriber=inbox)
        with anyio.fail_after(2):
            answer = await receiver.handle("/vidgo/callbacks/" + token, task_body(), {})
        assert answer.status == 200
        assert json.loads(answer.body) == {"received": True}
        assert inbox.events == []
        fake.gate.set()
        with anyio.fail_after(2):
            outcome = await receiver.wait(token)
    assert inbox.events == [outcome]
    assert outcome.job_ref == "clip-1"
    assert outcome.task == api_task()
    assert outcome.adopted is False
    assert fake.calls == [TASK_ID]


@pytest.mark.parametrize(
    ("make_body", "status"),
    [
        (lambda: b"{not json", 400),
        (lambda: b'{"code": 200, "data": []}', 400),
        (lambda: b" " * 70_000, 413),
    ],
)
async def test_bad_bodies_get_4xx_and_leave_no_trace(
    fake: FakeClient, make_body: Any, status: int
) -> None:
    """Malformed bodies get 400, oversized 413; nothing is queued, fetched or delivered."""
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        answer = await receiver.handle(token, make_body())
        await receiver.join()
        assert answer.status == status
        assert json.loads(answer.body)["error"]["message"]
        assert fake.calls == []
        assert inbox.events == []
        assert receiver.stats.accepted == 0


async def test_unknown_token_gets_404_without_parsing(fake: FakeClient) -> None:
    """A wrong token is refused with 404 and never reaches the API."""
    async with CallbackReceiver(fake, BASE) as receiver:
        receiver.registry.new_token("job", task_id=TASK_ID)
        for path in ("/vidgo/callbacks/" + "A" * 43, "/vidgo/callbacks/x", ""):
            answer = await receiver.handle(path, b"\xff junk")
            assert answer.status == 404
        await receiver.join()
        assert fake.calls == []
        assert receiver.stats.not_found == 3


async def test_duplicate_deliveries_resolve_once(fake: FakeClient) -> None:
    """The same (task_id, finished) delivered three times, wrapped and bare, resolves once."""
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        fake.gate = anyio.Event()
        answers = [await receiver.handle(token, task_body(wrapped=w)) for w in (True, False)]
        fake.gate.set()
        await receiver.join()
        answers.append(await receiver.handle(token, task_body()))
        await receiver.join()
        assert [a.status for a in answers] == [200, 200, 200]
        assert len(inbox.events) == 1
        assert fake.calls == [TASK_ID]
        assert receiver.stats.duplicates == 2


async def test_forged_finished_for_a_running_task_changes_nothing(fake: FakeClient) -> None:
    """A 'finished' body for a task the API says is running is verified and dropped."""
    fake.tasks[TASK_ID] = api_task(status=TaskStatus.RUNNING)
    inbox = Inbox()
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        assert (await receiver.handle(token, task_body())).status == 200
        await receiver.join()
        assert inbox.events == []
        assert receiver.stats.unconfirmed == 1
        # The genuine callback later (same claim) is verified afresh and resolves the job.
        fake.tasks[TASK_ID] = api_task()
        assert (await receiver.handle(token, task_body())).status == 200
        with anyio.fail_after(2):
            outcome = await receiver.wait(token)
    assert outcome.task.status is TaskStatus.FINISHED
    assert len(inbox.events) == 1
    assert fake.calls == [TASK_ID, TASK_ID]


async def test_body_file_urls_are_never_used(fake: FakeClient) -> None:
    """A body naming an attacker's file URL delivers the API's files, not the body's."""
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        evil = task_body(file_url="https://evil.example.net/malware.mp4")
        await receiver.handle(token, evil)
        await receiver.join()
        assert [event.task.file_urls for event in inbox.events] == [[STORAGE_URL]]


async def test_a_foreign_task_id_is_ignored_for_a_known_job(fake: FakeClient) -> None:
    """A body naming another task than the token's job is answered 200 and ignored, unfetched."""
    async with CallbackReceiver(fake, BASE) as receiver:
        fake.tasks["OTHER1234567890X"] = api_task("OTHER1234567890X")
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        answer = await receiver.handle(token, task_body("OTHER1234567890X"))
        await receiver.join()
        assert answer.status == 200
        assert fake.calls == []
        assert inbox.events == []
        assert receiver.stats.ignored == 1


async def test_unknown_outcome_job_adopts_the_verified_task(fake: FakeClient) -> None:
    """A job whose submit outcome was unknown adopts the task_id once the GET confirms it (T19)."""
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("in-doubt", subscriber=inbox)
        await receiver.handle(token, task_body("NOPE000000000000"))  # unknown to the API
        await receiver.join()
        assert inbox.events == []
        assert receiver.registry.task_id(token) is None
        await receiver.handle(token, task_body())
        await receiver.join()
        assert [(e.adopted, e.task.task_id) for e in inbox.events] == [(True, TASK_ID)]
        assert receiver.registry.task_id(token) == TASK_ID
        assert fake.calls == ["NOPE000000000000", TASK_ID]
        # From now on the job is tracked: another task id is foreign.
        await receiver.handle(token, task_body("NOPE000000000000"))
        await receiver.join()
        assert len(fake.calls) == 2


async def test_adoption_is_reported_even_before_the_task_ends(fake: FakeClient) -> None:
    """An adopted task that is still running is reported (adopted) without resolving the job."""
    fake.tasks[TASK_ID] = api_task(status=TaskStatus.RUNNING)
    inbox = Inbox()
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("in-doubt", subscriber=inbox)
        await receiver.handle(token, task_body())
        await receiver.join()
        assert [(e.adopted, e.task.status) for e in inbox.events] == [(True, TaskStatus.RUNNING)]
        with pytest.raises(TimeoutError):
            await receiver.wait(token, timeout=0.01)


async def test_verification_errors_leave_the_job_for_a_later_delivery(
    fake: FakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed GET drops nothing: the retry by Vidgo is verified again and delivered."""
    async with CallbackReceiver(fake, BASE) as receiver:
        fake.errors.append(ServerError("boom", status_code=503))
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        with caplog.at_level(logging.WARNING, logger="vidgo_async"):
            await receiver.handle(token, task_body())
            await receiver.join()
        assert inbox.events == []
        assert "polling continues" in caplog.text
        await receiver.handle(token, task_body())
        await receiver.join()
        assert len(inbox.events) == 1
        assert token not in caplog.text


async def test_a_failed_confirmation_of_an_in_doubt_callback_is_tried_again(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-doubt token's claim is confirmed again after a 404 or 503, since its 200 is final."""
    monkeypatch.setattr(_callback_verify, "FIRST_RETRY_DELAY", 0.0, raising=False)
    fake.errors += [
        TaskNotFoundError("not yet", status_code=404),
        ServerError("boom", status_code=503),
    ]
    inbox = Inbox()
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("in-doubt", subscriber=inbox)
        answer = await receiver.handle(token, task_body())
        await until(lambda: bool(inbox.events))
    assert answer.status == 200
    assert [(e.adopted, e.task.task_id) for e in inbox.events] == [(True, TASK_ID)]
    assert fake.calls == [TASK_ID] * 3


@pytest.mark.parametrize("first_check", ["says running", "fails"])
async def test_a_token_someone_awaits_is_confirmed_again_after_a_lagging_or_failed_check(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch, first_check: str
) -> None:
    """A receiver used on its own polls nothing: while ``wait(token)`` runs, the claim is
    checked again after a status read that lags behind the callback, or fails (its 200
    was final: Vidgo never sends it again)."""
    monkeypatch.setattr(_callback_verify, "FIRST_RETRY_DELAY", 0.0)
    if first_check == "fails":
        fake.errors.append(ServerError("boom", status_code=503))
    else:
        fake.tasks[TASK_ID] = api_task(status=TaskStatus.RUNNING)
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        outcomes = []

        async def wait() -> None:
            outcomes.append(await receiver.wait(token))

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.lowlevel.checkpoint()  # the waiter is in
            assert (await receiver.handle(token, task_body())).status == 200
            await until(lambda: len(fake.calls) == 1)
            fake.tasks[TASK_ID] = api_task()  # the API catches up
            with anyio.fail_after(2):
                await until(lambda: bool(outcomes))
    assert outcomes[0].task.status is TaskStatus.FINISHED
    assert fake.calls == [TASK_ID, TASK_ID]


async def test_retries_stop_once_the_in_doubt_token_is_retired(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token retired (its job ended) while a confirmation waits to be retried is not retried."""
    monkeypatch.setattr(_callback_verify, "FIRST_RETRY_DELAY", 0.0)
    fake.errors.append(ServerError("boom", status_code=503))
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("in-doubt")
        await receiver.handle(token, task_body())
        await until(lambda: len(fake.calls) == 1)
        receiver.registry.forget(token)
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
    assert fake.calls == [TASK_ID]


async def test_async_and_failing_subscribers(
    fake: FakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Async subscribers are awaited; one that raises is logged and others still get served."""
    async with CallbackReceiver(fake, BASE) as receiver:
        fake.tasks["SECOND0000000000"] = api_task("SECOND0000000000")
        seen: list[str] = []

        async def good(event: VerifiedCallback) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append(event.task.task_id)

        def bad(event: VerifiedCallback) -> None:
            raise RuntimeError("subscriber bug")

        bad_token = receiver.registry.new_token("bad", task_id=TASK_ID, subscriber=bad)
        good_token = receiver.registry.new_token(
            "good", task_id="SECOND0000000000", subscriber=good
        )
        with caplog.at_level(logging.ERROR, logger="vidgo_async"):
            await receiver.handle(bad_token, task_body())
            await receiver.handle(good_token, task_body("SECOND0000000000"))
            await receiver.join()
        assert seen == ["SECOND0000000000"]
        assert "subscriber bug" in caplog.text
        assert (await receiver.wait(bad_token)).task.task_id == TASK_ID


async def test_a_leaked_token_cannot_make_the_receiver_hammer_the_api(fake: FakeClient) -> None:
    """After max_verifications_per_token unresolved checks, further claims are not fetched."""
    fake.tasks[TASK_ID] = api_task(status=TaskStatus.RUNNING)
    async with CallbackReceiver(fake, BASE, max_verifications_per_token=3) as receiver:
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        for _ in range(10):
            assert (await receiver.handle(token, task_body())).status == 200
            await receiver.join()
    assert len(fake.calls) == 3


async def test_busy_and_stopped_receivers_answer_503(fake: FakeClient) -> None:
    """A full queue asks Vidgo to retry (503, Retry-After); so does a receiver not running."""
    fake.gate = anyio.Event()
    fake.tasks["SECOND0000000000"] = api_task("SECOND0000000000")
    receiver = CallbackReceiver(fake, BASE, workers=1, queue_size=1)
    token = receiver.registry.new_token("job", task_id=TASK_ID)
    assert (await receiver.handle(token, task_body())).status == 503
    async with receiver:
        other = receiver.registry.new_token("other", task_id="SECOND0000000000")
        third = receiver.registry.new_token("third")
        fake.tasks["THIRD00000000000"] = api_task("THIRD00000000000")
        assert (await receiver.handle(token, task_body())).status == 200
        await until(lambda: fake.calls == [TASK_ID])  # the worker blocks on the gate
        assert (await receiver.handle(other, task_body("SECOND0000000000"))).status == 200
        busy = await receiver.handle(third, task_body("THIRD00000000000"))
        assert busy.status == 503
        assert busy.headers["Retry-After"] == "1"
        fake.gate.set()
        await receiver.join()
    assert (await receiver.handle(token, task_body())).status == 200  # already resolved
    await receiver.aclose()


async def test_wait_on_a_forgotten_token_raises(fake: FakeClient) -> None:
    """wait() fails clearly for an unknown token and wakes up when its token is forgotten."""
    async with CallbackReceiver(fake, BASE) as receiver:
        with pytest.raises(UnknownCallbackTokenError):
            await receiver.wait("A" * 43)
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        async with anyio.create_task_group() as tg:

            async def forget_soon() -> None:
                await anyio.lowlevel.checkpoint()
                receiver.registry.forget(token)

            tg.start_soon(forget_soon)
            with pytest.raises(UnknownCallbackTokenError), anyio.fail_after(2):
                await receiver.wait(token)


async def test_receiver_is_entered_once(fake: FakeClient) -> None:
    """A receiver cannot be restarted after it was closed."""
    receiver = CallbackReceiver(fake, BASE)
    async with receiver:
        pass
    with pytest.raises(RuntimeError, match="once"):
        await receiver.__aenter__()


# -- aiohttp -----------------------------------------------------------------------------


async def test_aiohttp_app_serves_exactly_the_token_paths(fake: FakeClient) -> None:
    """The aiohttp app answers POST <base path>/<token>; other paths and methods are refused."""
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        async with TestClient(TestServer(receiver.aiohttp_app())) as http:
            bad = await http.post(f"/vidgo/callbacks/{token}", data=b"nope")
            assert bad.status == 400
            big = await http.post(f"/vidgo/callbacks/{token}", data=b"x" * 70_000)
            assert big.status == 413
            assert (await http.post(f"/other/{token}", data=task_body())).status == 404
            assert (await http.post("/vidgo/callbacks/" + "B" * 43, data=task_body())).status == 404
            assert (await http.get(f"/vidgo/callbacks/{token}")).status == 405
            ok = await http.post(f"/vidgo/callbacks/{token}", data=task_body())
            assert ok.status == 200
            await receiver.join()
        assert len(inbox.events) == 1


async def test_aiohttp_chunked_oversized_body_gets_413(fake: FakeClient) -> None:
    """A body without Content-Length is cut at the limit and refused with 413."""
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("job", task_id=TASK_ID)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 10_000

        async with TestClient(TestServer(receiver.aiohttp_app())) as http:
            answer = await http.post(f"/vidgo/callbacks/{token}", data=chunks())
            assert answer.status == 413
        assert receiver.stats.too_large == 1


async def test_aiohttp_subapp_mount(fake: FakeClient) -> None:
    """The sub-application mounts under the base path of an existing app."""
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        parent = web.Application()
        parent.add_subapp(receiver.registry.base_path, receiver.aiohttp_app(subapp=True))
        async with TestClient(TestServer(parent)) as http:
            assert (await http.post(f"/vidgo/callbacks/{token}", data=task_body())).status == 200
            await receiver.join()
        assert len(inbox.events) == 1


async def test_serve_on_loopback_derives_the_base_url(fake: FakeClient) -> None:
    """serve() on 127.0.0.1:0 starts the receiver and gives jobs reachable loopback URLs."""
    receiver = CallbackReceiver(fake)
    async with receiver.serve("127.0.0.1", 0) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        async with (
            aiohttp.ClientSession() as session,
            session.post(receiver.registry.url_for(token), data=task_body()) as answer,
        ):
            assert answer.status == 200
        with anyio.fail_after(2):
            outcome = await receiver.wait(token)
    assert outcome.task == api_task()
    assert not receiver.running


async def test_serve_on_a_public_interface_needs_a_base_url(fake: FakeClient) -> None:
    """Listening on all interfaces without a public base URL is refused with a hint."""
    receiver = CallbackReceiver(fake)
    with pytest.raises(ValueError, match="base_url"):
        async with receiver.serve("0.0.0.0", 0):
            pass
