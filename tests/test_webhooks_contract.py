"""The callback receiver per the current contract: flat bodies, late duplicates, HMAC, adoption.

RELIABILITY.md T18 (signature verification, adapted to the [P] scheme: one signature over
``task_id.timestamp``; rotation is several trusted keys) and T19 (delivery faults) are
covered here, with an injected clock (no timing assertions).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st
from test_webhooks import BASE, TASK_ID, FakeClient, Inbox, api_task

from vidgo_async import InputValidationError, TaskStatus, VidgoClient
from vidgo_async._tokens import RETIRED_TOKEN_TTL
from vidgo_async.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackReceiver,
    CallbackRegistry,
    CallbackSignatureError,
    CallbackSigning,
    sign_callback,
    token_hash,
)

KEY = "whsec-test-key"
NOW = 1_783_680_000.0

# The documented callback bodies, verbatim (api-manual/task-management/webhooks.mdx).
DOC_FINISHED = {
    "task_id": "task-unified-1757165031-uyujaw3d",
    "status": "finished",
    "files": [
        {"file_url": "https://storage.vidgo.ai/generated/image-abc123.jpg", "file_type": "image"}
    ],
    "created_time": "2025-11-12T10:30:00",
    "error_message": None,
}
DOC_FAILED = {
    "task_id": "task-unified-1757165031-uyujaw3d",
    "status": "failed",
    "files": [],
    "created_time": "2025-11-12T10:30:00",
    "error_message": "The prompt violates our content policy",
}


class Clock:
    """A settable clock (monotonic or wall)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def signed(task_id: str = TASK_ID, *, at: float = NOW, key: str = KEY) -> dict[str, str]:
    timestamp = str(int(at))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign_callback(task_id, timestamp, key)}


# -- the documented flat body ------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "status"), [(DOC_FINISHED, TaskStatus.FINISHED), (DOC_FAILED, TaskStatus.FAILED)]
)
async def test_documented_flat_bodies_resolve_jobs(
    document: dict[str, Any], status: TaskStatus
) -> None:
    """The flat task objects of the docs resolve their job (through one status request)."""
    fake = FakeClient(api_task(TASK_ID, status))
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        assert (await receiver.handle(token, body(document))).status == 200
        outcome = await receiver.wait(token)
    assert outcome.task.status is status
    assert fake.calls == [TASK_ID]
    assert [event.task.status for event in inbox.events] == [status]


async def test_wrapped_bodies_are_still_accepted() -> None:
    fake = FakeClient(api_task())
    async with CallbackReceiver(fake, BASE) as receiver:
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        wrapped = {"code": 200, "data": DOC_FINISHED}
        assert (await receiver.handle(token, body(wrapped))).status == 200
        assert (await receiver.wait(token)).task.status is TaskStatus.FINISHED


# -- late duplicates ---------------------------------------------------------------------


async def test_a_late_duplicate_for_an_ended_job_gets_2xx_and_changes_nothing() -> None:
    """A 4xx would be final for the sender: an ended job's token still answers 200."""
    fake = FakeClient(api_task())
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        await receiver.handle(token, body(DOC_FINISHED))
        await receiver.wait(token)
        # Resolved but not yet forgotten, then forgotten (what the orchestrator does).
        assert (await receiver.handle(token, body(DOC_FINISHED))).status == 200
        receiver.registry.forget(token)
        for payload in (body(DOC_FINISHED), body(DOC_FAILED), b"junk"):
            assert (await receiver.handle(token, payload)).status == 200
        await receiver.join()
    assert fake.calls == [TASK_ID]
    assert len(inbox.events) == 1
    assert receiver.stats.late == 4


def test_retired_tokens_cover_the_whole_retry_schedule_and_stay_bounded() -> None:
    """Kept for 5 retries x 10 min + 6 x 30 s; dropped after; at most max_retired kept."""
    assert RETIRED_TOKEN_TTL >= 5 * 600 + 6 * 30
    clock = Clock()
    registry = CallbackRegistry(BASE, clock=clock, max_retired=3)
    token = registry.new_token("job", task_id="t-0")
    registry.forget(token)
    clock.now = 5 * 600 + 6 * 30
    found = registry.find(token)
    assert found is not None
    assert found.ended
    clock.now = RETIRED_TOKEN_TTL + 1
    assert registry.find(token) is None
    tokens = [registry.new_token(n, task_id=f"t-{n}") for n in range(1, 6)]
    for item in tokens:
        registry.forget(item)
    assert registry.retired_count == 3
    assert registry.find(tokens[0]) is None  # the oldest went first
    assert registry.find(tokens[-1]) is not None
    assert registry.owner_of("t-1") is None  # its task binding went with it


def test_tokens_are_kept_as_hashes_only() -> None:
    registry = CallbackRegistry(BASE)
    token = registry.new_token("job")
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(vars(registry))
    registry.forget(token)
    assert token not in repr(vars(registry))


# -- HMAC signatures (T18, [P]) ----------------------------------------------------------


def receiver_with_key(fake: FakeClient, clock: Clock, **kwargs: Any) -> CallbackReceiver:
    signing = CallbackSigning(keys=kwargs.pop("keys", KEY), clock=clock)
    return CallbackReceiver(fake, BASE, signing_key=signing, **kwargs)


async def test_a_valid_signature_is_accepted_but_the_task_is_still_re_fetched() -> None:
    fake = FakeClient(api_task(TASK_ID, TaskStatus.RUNNING))
    async with receiver_with_key(fake, Clock(NOW)) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        answer = await receiver.handle(token, body({**DOC_FINISHED, "task_id": TASK_ID}), signed())
        assert answer.status == 200
        await receiver.join()
    assert fake.calls == [TASK_ID]  # a signature never replaces the re-fetch
    assert inbox.events == []  # the API says running: the signed "finished" changed nothing
    assert receiver.stats.unconfirmed == 1


def bad_headers() -> list[tuple[str, dict[str, str]]]:
    good = signed()
    return [
        ("unsigned", {}),
        ("no timestamp", {SIGNATURE_HEADER: good[SIGNATURE_HEADER]}),
        ("no signature", {TIMESTAMP_HEADER: good[TIMESTAMP_HEADER]}),
        ("wrong key", signed(key="another-key")),
        ("other task", signed("task-someone-else")),
        ("not base64", {**good, SIGNATURE_HEADER: "%%%not base64%%%"}),
        ("non-ascii signature", {**good, SIGNATURE_HEADER: "é" * 44}),
        ("non-ascii timestamp", {**good, TIMESTAMP_HEADER: "١٧٨٣٦٨٠٠٠٠"}),
        ("64 kB signature", {**good, SIGNATURE_HEADER: "A" * 65536}),
        ("64 kB timestamp", {**good, TIMESTAMP_HEADER: "1" * 65536}),
        ("negative timestamp", {**good, TIMESTAMP_HEADER: "-1"}),
        ("301 s old", signed(at=NOW - 301)),
        ("301 s ahead", signed(at=NOW + 301)),
    ]


@pytest.mark.parametrize(("case", "headers"), bad_headers(), ids=[c for c, _ in bad_headers()])
async def test_bad_signatures_get_401_and_change_nothing(
    case: str, headers: dict[str, str]
) -> None:
    fake = FakeClient(api_task())
    async with receiver_with_key(fake, Clock(NOW)) as receiver:
        inbox = Inbox()
        token = receiver.registry.new_token("job", task_id=TASK_ID, subscriber=inbox)
        answer = await receiver.handle(token, body({**DOC_FINISHED, "task_id": TASK_ID}), headers)
        assert answer.status == 401, case
        await receiver.join()
    assert fake.calls == []
    assert inbox.events == []
    assert receiver.stats.unsigned == 1


@pytest.mark.parametrize("skew", [-300, 300, 0])
async def test_timestamps_within_300_s_either_way_are_accepted(skew: int) -> None:
    fake = FakeClient(api_task())
    async with receiver_with_key(fake, Clock(NOW)) as receiver:
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        headers = signed(at=NOW + skew)
        assert (await receiver.handle(token, body({**DOC_FINISHED}), headers)).status == 200
        assert (await receiver.wait(token)).task.status is TaskStatus.FINISHED


async def test_rotation_accepts_every_trusted_key() -> None:
    """While rotating, the previous and the current key both verify."""
    fake = FakeClient(api_task(), api_task("task-2"))
    async with receiver_with_key(fake, Clock(NOW), keys=("old-key", "new-key")) as receiver:
        first = receiver.registry.new_token("a", task_id=TASK_ID)
        second = receiver.registry.new_token("b", task_id="task-2")
        old = await receiver.handle(first, body(DOC_FINISHED), signed(key="old-key"))
        new = await receiver.handle(
            second, body({**DOC_FINISHED, "task_id": "task-2"}), signed("task-2", key="new-key")
        )
        assert (old.status, new.status) == (200, 200)
        await receiver.join()
    assert sorted(fake.calls) == sorted([TASK_ID, "task-2"])


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    checker = CallbackSigning(keys=("k1", "k2"), clock=Clock(NOW))
    checker.check(TASK_ID, signed(key="k2"))
    with pytest.raises(CallbackSignatureError):
        checker.check(TASK_ID, signed(key="k3"))
    assert len(seen) == 4  # every trusted key is compared, each time


def test_the_signature_is_the_documented_formula() -> None:
    expected = base64.b64encode(
        hmac.new(KEY.encode(), f"{TASK_ID}.1783680000".encode(), "sha256").digest()
    ).decode()
    assert sign_callback(TASK_ID, 1783680000, KEY) == expected


@given(st.dictionaries(st.sampled_from([TIMESTAMP_HEADER, SIGNATURE_HEADER, "X-Other"]), st.text()))
def test_arbitrary_headers_raise_only_signature_errors(headers: dict[str, str]) -> None:
    checker = CallbackSigning(keys=KEY, clock=Clock(NOW))
    with contextlib.suppress(CallbackSignatureError):
        checker.check(TASK_ID, headers)


@pytest.mark.parametrize("offset", [-300, 300])
def test_the_window_is_whole_seconds_both_ways_mid_second(offset: int) -> None:
    """A timestamp 300 s old or ahead is accepted and 301 s refused, whatever the clock's fraction."""
    checker = CallbackSigning(keys=KEY, clock=Clock(NOW + 0.5))
    checker.check(TASK_ID, signed(at=NOW + offset))
    with pytest.raises(CallbackSignatureError):
        checker.check(TASK_ID, signed(at=NOW + offset + (1 if offset > 0 else -1)))


def test_header_names_are_case_insensitive() -> None:
    checker = CallbackSigning(keys=KEY, clock=Clock(NOW))
    checker.check(TASK_ID, {name.lower(): value for name, value in signed().items()})


# -- adoption (T19) ----------------------------------------------------------------------


async def test_a_task_bound_to_another_job_is_never_adopted() -> None:
    """An in-doubt job's token naming a task another job owns: ignored, no status request."""
    fake = FakeClient(api_task())
    async with CallbackReceiver(fake, BASE) as receiver:
        owner = receiver.registry.new_token("owner", task_id=TASK_ID)
        leaked = receiver.registry.new_token("in-doubt")  # its task id is unknown
        assert (await receiver.handle(leaked, body(DOC_FINISHED))).status == 200
        await receiver.join()
        assert fake.calls == []
        assert receiver.registry.task_id(leaked) is None
        assert receiver.registry.owner_of(TASK_ID) == token_hash(owner)
        with pytest.raises(ValueError, match="already bound"):
            receiver.registry.set_task_id(leaked, TASK_ID)


async def test_a_binding_that_happens_during_verification_wins() -> None:
    """The claim was queued while the task was free; its submit bound it meanwhile."""
    fake = FakeClient(api_task())
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        leaked = receiver.registry.new_token("in-doubt", subscriber=inbox)
        owner = receiver.registry.new_token("owner")
        assert (await receiver.handle(leaked, body(DOC_FINISHED))).status == 200
        receiver.registry.set_task_id(owner, TASK_ID)  # before the worker runs
        await receiver.join()
    assert inbox.events == []
    assert receiver.stats.adopted == 0


async def test_a_later_run_recognises_an_earlier_runs_token_by_its_hash() -> None:
    """Only the hash was journaled; the rerun's receiver still adopts through it."""
    earlier = CallbackRegistry(BASE)
    token = earlier.new_token("job")
    stored = token_hash(token)  # what the journal keeps
    fake = FakeClient(api_task())
    async with CallbackReceiver(fake, BASE) as receiver:
        inbox = Inbox()
        receiver.registry.register_hash(stored, "job", subscriber=inbox)
        assert (await receiver.handle(token, body(DOC_FINISHED))).status == 200
        await receiver.join()
    assert [event.adopted for event in inbox.events] == [True]
    assert inbox.events[0].task.task_id == TASK_ID
    with pytest.raises(ValueError, match="64"):
        receiver.registry.register_hash(token)


# -- plain http callback URLs --------------------------------------------------------------


def test_http_callback_base_urls_need_the_opt_in() -> None:
    with pytest.raises(InputValidationError, match="allow_insecure_callbacks"):
        CallbackRegistry("http://hooks.example.com/cb")
    registry = CallbackRegistry("http://hooks.example.com/cb", allow_insecure_callbacks=True)
    assert registry.url_for(registry.new_token()).startswith("http://hooks.example.com/cb/")
    with pytest.raises(InputValidationError, match="publicly reachable"):
        CallbackRegistry("http://10.0.0.1/cb", allow_insecure_callbacks=True)


async def test_client_submit_accepts_http_callback_urls_only_when_opted_in() -> None:
    url = "http://hooks.example.com/cb/x"
    payload = {
        "model": "seedance-2",
        "input": {"prompt": "a fox", "duration": 5, "resolution": "720p"},
    }
    submit = "https://api.vidgo.ai/api/generate/submit"
    answer = {"code": 200, "data": {"task_id": "t1", "status": "not_started"}}
    async with VidgoClient(api_key="k") as strict:
        with aioresponses() as mocked, pytest.raises(InputValidationError, match="https"):
            await strict.submit(payload["model"], payload["input"], callback_url=url)  # type: ignore[arg-type]
        assert not mocked.requests
    async with VidgoClient(api_key="k", allow_insecure_callbacks=True) as lenient:
        assert lenient.allow_insecure_callbacks
        with aioresponses() as mocked:
            mocked.post(submit, payload=answer)
            task = await lenient.submit(payload["model"], payload["input"], callback_url=url)  # type: ignore[arg-type]
            (call,) = next(iter(mocked.requests.values()))
    assert task.task_id == "t1"
    assert json.loads(call.kwargs["data"])["callback_url"] == url


def test_the_submits_answer_rebinds_a_token() -> None:
    """set_task_id is the submit's answer: it replaces an earlier binding of the same token."""
    registry = CallbackRegistry(BASE)
    token = registry.new_token("job", task_id="task-early")
    registry.set_task_id(token, "task-real")
    assert registry.task_id(token) == "task-real"
    assert registry.owner_of("task-early") is None
    assert registry.owner_of("task-real") == token_hash(token)
    other = registry.new_token("other")
    with pytest.raises(ValueError, match="already bound"):
        registry.set_task_id(other, "task-real")
