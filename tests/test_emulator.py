"""The emulator's own contract, checked with plain aiohttp requests (never our client)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from vidgo_async.testing import Emulator, FaultPlan, fingerprint, sample_sha256, sample_video

SUBMIT = "/api/generate/submit"
BALANCE = "/api/user/balance"
SEEDANCE_INPUT: dict[str, Any] = {
    "prompt": "a red fox in snow",
    "resolution": "720p",
    "duration": 5,
}
TASK_ID = re.compile(r"^task-unified-\d{10}-[a-z0-9]{8}$")
CREATED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session."""
    async with aiohttp.ClientSession() as session:
        yield session


def auth(emu: Emulator) -> dict[str, str]:
    """Return the Bearer header for ``emu``."""
    return {"Authorization": f"Bearer {emu.api_key}"}


async def submit(
    http: aiohttp.ClientSession,
    emu: Emulator,
    payload: dict[str, Any] | None = None,
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    """POST a submit and return (HTTP status, JSON body)."""
    body = payload or {"model": "seedance-2", "input": SEEDANCE_INPUT}
    async with http.post(emu.base_url + SUBMIT, json=body, headers={**auth(emu), **headers}) as r:
        return r.status, await r.json()


async def status(
    http: aiohttp.ClientSession, emu: Emulator, task_id: str
) -> tuple[int, dict[str, Any]]:
    """GET a task's status and return (HTTP status, JSON body)."""
    async with http.get(f"{emu.base_url}/api/generate/status/{task_id}", headers=auth(emu)) as r:
        return r.status, await r.json()


async def wait_terminal(http: aiohttp.ClientSession, emu: Emulator, task_id: str) -> dict[str, Any]:
    """Poll until the task ends and return its data."""
    for _ in range(500):
        _, body = await status(http, emu, task_id)
        if body["data"]["status"] in ("finished", "failed"):
            return body["data"]  # type: ignore[no-any-return]
        await asyncio.sleep(0.01)
    raise AssertionError("task did not end")


async def test_submit_returns_the_documented_envelope(http: aiohttp.ClientSession) -> None:
    """A valid submit answers 200 {code:200, data:{task_id, status:not_started, created_time}}."""
    async with Emulator(time_scale=0.01) as emu:
        code, body = await submit(http, emu)
    assert code == 200
    assert body["code"] == 200
    assert set(body["data"]) == {"task_id", "status", "created_time"}
    assert TASK_ID.match(body["data"]["task_id"])
    assert body["data"]["status"] == "not_started"
    assert CREATED.match(body["data"]["created_time"])


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic emulator-key"}],
)
async def test_every_endpoint_refuses_a_missing_or_wrong_key(
    http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """Submit, status and balance answer 401 authentication_error without the right Bearer key."""
    async with Emulator(time_scale=0.01) as emu:
        requests = [
            http.post(emu.base_url + SUBMIT, json={"model": "x", "input": {}}, headers=headers),
            http.get(
                emu.base_url + "/api/generate/status/task-unified-1-abcdefgh", headers=headers
            ),
            http.get(emu.base_url + BALANCE, headers=headers),
        ]
        for request in requests:
            async with request as r:
                assert r.status == 401
                body = await r.json()
                assert body["code"] == 401
                assert body["error"]["type"] == "authentication_error"
                assert "API key" in body["error"]["message"]
        assert emu.stats.submits_accepted == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": "seedance-2", "input": {**SEEDANCE_INPUT, "duration": 3}}, "$.input.duration"),
        (
            {"model": "seedance-2-fast", "input": {**SEEDANCE_INPUT, "resolution": "4k"}},
            "$.input.resolution",
        ),
        (
            {"model": "seedance-2-fast", "input": {"resolution": "720p", "duration": 5}},
            "$.input.prompt",
        ),
        ({"model": "seedance-2", "input": {**SEEDANCE_INPUT, "colour": "red"}}, "$.input.colour"),
        ({"model": "", "input": {}}, "$.model"),
        ({"model": "seedance-2", "input": "text"}, "$.input"),
        (
            {
                "model": "seedance-2",
                "input": SEEDANCE_INPUT,
                "callback_url": "http://example.com/cb",
            },
            "$.callback_url",
        ),
        ({"model": "seedance-2", "input": SEEDANCE_INPUT, "extra": 1}, "$.extra"),
        ({"model": "generate-lyrics", "input": {"prompt": "the sea"}}, "$.callback_url"),
    ],
)
async def test_invalid_submits_are_refused_naming_the_field(
    http: aiohttp.ClientSession, payload: dict[str, Any], field: str
) -> None:
    """A submit that breaks a shared input rule answers 400 validation_error naming the field."""
    async with Emulator(time_scale=0.01) as emu:
        code, body = await submit(http, emu, payload)
        assert emu.stats.submits_accepted == 0
        assert emu.stats.submit_attempts == 1
    assert code == 400
    assert body == {
        "code": 400,
        "error": {"message": body["error"]["message"], "type": "validation_error"},
    }
    assert field in body["error"]["message"]


async def test_a_body_that_is_not_json_is_a_validation_error(http: aiohttp.ClientSession) -> None:
    """A non-JSON submit body answers 400 validation_error."""
    async with (
        Emulator(time_scale=0.01) as emu,
        http.post(emu.base_url + SUBMIT, data=b"{nope", headers=auth(emu)) as r,
    ):
        assert r.status == 400
        assert (await r.json())["error"]["type"] == "validation_error"


async def test_other_models_are_checked_against_the_catalog(http: aiohttp.ClientSession) -> None:
    """Any catalogued model is accepted with a valid input; unknown ids and fields are refused."""
    async with Emulator(time_scale=0.01) as emu:
        code, body = await submit(
            http, emu, {"model": "seedream-5.0-lite", "input": {"prompt": "x", "n": 2}}
        )
        extra, _ = await submit(
            http, emu, {"model": "seedream-5.0-lite", "input": {"prompt": "x", "extra": [1, 2]}}
        )
        unknown, refusal = await submit(http, emu, {"model": "seedance2", "input": {"prompt": "x"}})
    assert code == 200
    assert body["data"]["status"] == "not_started"
    assert extra == 400
    assert unknown == 400
    assert "did you mean 'seedance-2'" in refusal["error"]["message"]


async def test_allow_unknown_models_accepts_an_unknown_id(http: aiohttp.ClientSession) -> None:
    """``allow_unknown_models=True`` runs an unknown id; known ids keep their rules."""
    async with Emulator(time_scale=0.01, allow_unknown_models=True) as emu:
        code, body = await submit(http, emu, {"model": "brand-new-1", "input": {"prompt": "x"}})
        done = await wait_terminal(http, emu, body["data"]["task_id"])
        bad, _ = await submit(http, emu, {"model": "seedance-2", "input": {"prompt": 1}})
        not_json, _ = await submit(http, emu, {"model": "brand-new-1", "input": "x"})
        async with emu.client() as client:
            allowed = client.allow_unknown_models
    assert code == 200
    assert done["status"] == "finished"
    assert bad == 400
    assert not_json == 400
    assert allowed


async def test_unknown_task_is_404_with_the_status_pages_detail_body(
    http: aiohttp.ClientSession,
) -> None:
    """Status of an id the emulator never issued answers 404 {"detail": "Task not found"}."""
    async with Emulator(time_scale=0.01) as emu:
        code, body = await status(http, emu, "task-unified-1757165031-uyujaw3d")
    assert code == 404
    assert body == {"detail": "Task not found"}


async def test_another_keys_task_is_403(http: aiohttp.ClientSession) -> None:
    """A task queried with another accepted key answers 403; its own key still reads it."""
    async with Emulator(time_scale=0.01, job_seconds=1000, other_api_keys=("key-b",)) as emu:
        _, created = await submit(http, emu)
        task_id = created["data"]["task_id"]
        url = f"{emu.base_url}/api/generate/status/{task_id}"
        async with http.get(url, headers={"Authorization": "Bearer key-b"}) as r:
            other = r.status, await r.json()
        own, _ = await status(http, emu, task_id)
    assert other == (403, {"detail": "Task belongs to another user"})
    assert own == 200


async def test_credits_amount_is_present_from_not_started(http: aiohttp.ClientSession) -> None:
    """credits_amount shows the price deducted at submit, from the first status answer on."""
    async with Emulator(job_seconds=1000, time_scale=0.01) as emu:
        _, created = await submit(http, emu)
        _, body = await status(http, emu, created["data"]["task_id"])
    assert body["data"]["status"] == "not_started"
    assert body["data"]["credits_amount"] == 50  # 10 credits/s x 5 s


async def test_a_new_task_is_not_started_with_the_documented_fields(
    http: aiohttp.ClientSession,
) -> None:
    """Right after submit the status shows not_started, no files, progress 0, no error."""
    async with Emulator(job_seconds=1000, time_scale=0.01) as emu:
        _, created = await submit(http, emu)
        task_id = created["data"]["task_id"]
        code, body = await status(http, emu, task_id)
    assert code == 200
    data = body["data"]
    assert {"task_id", "status", "files", "created_time", "progress", "error_message"} <= set(data)
    assert data["task_id"] == task_id
    assert data["status"] == "not_started"
    assert (data["files"], data["progress"], data["error_message"]) == ([], 0, None)
    assert data["created_time"] == created["data"]["created_time"]


async def test_a_task_runs_with_rising_progress_then_finishes(http: aiohttp.ClientSession) -> None:
    """Statuses only move forward, progress rises strictly inside (0, 100) while running."""
    async with Emulator(job_seconds=40, time_scale=0.01) as emu:
        _, created = await submit(http, emu)
        task_id = created["data"]["task_id"]
        seen: list[tuple[str, int]] = []
        while not seen or seen[-1][0] not in ("finished", "failed"):
            _, body = await status(http, emu, task_id)
            seen.append((body["data"]["status"], body["data"]["progress"]))
            last = body["data"]
            await asyncio.sleep(0.01)
    order = ["not_started", "running", "finished"]
    ranks = [order.index(state) for state, _ in seen]
    assert ranks == sorted(ranks)
    running = [progress for state, progress in seen if state == "running"]
    assert running, "never observed running"
    assert all(0 < p < 100 for p in running)
    assert running == sorted(running)
    assert last["progress"] == 100
    assert last["error_message"] is None
    assert last["files"] == [{"file_url": emu_file_url(last), "file_type": "video"}]


def emu_file_url(data: dict[str, Any]) -> str:
    """Return the file URL listed by a finished status, checked for the emulator's form."""
    url = data["files"][0]["file_url"]
    assert re.match(
        r"^http://127\.0\.0\.1:\d+/files/" + re.escape(data["task_id"]) + r"\.mp4$", url
    )
    return str(url)


async def test_the_finished_file_is_the_bundled_mp4(http: aiohttp.ClientSession) -> None:
    """The file URL serves the bundled MP4 without a key; unfinished or unknown files are 404."""
    async with Emulator(job_seconds=1, time_scale=0.01) as emu:
        _, created = await submit(http, emu)
        task_id = created["data"]["task_id"]
        data = await wait_terminal(http, emu, task_id)
        async with http.get(data["files"][0]["file_url"]) as r:
            assert r.status == 200
            assert r.content_type == "video/mp4"
            content = await r.read()
        async with http.get(emu.base_url + "/files/task-unified-1-nothere1.mp4") as r:
            assert r.status == 404
        assert emu.stats.download_requests[task_id] == 1
        assert emu.stats.download_requests_with_credentials == 0
    assert content == sample_video()
    assert content[4:8] == b"ftyp"
    assert len(content) < 50_000
    assert len(sample_sha256()) == 64


async def test_prompt_directive_fails_the_job_with_its_message(http: aiohttp.ClientSession) -> None:
    """A [[vidgo-emulator: fail=...]] prompt ends failed with that message, no files, progress 0."""
    prompt = 'a fox [[vidgo-emulator: seconds=2 fail="boom, it broke"]]'
    async with Emulator(job_seconds=1000, time_scale=0.01) as emu:
        _, created = await submit(
            http, emu, {"model": "seedance-2", "input": {**SEEDANCE_INPUT, "prompt": prompt}}
        )
        data = await wait_terminal(http, emu, created["data"]["task_id"])
        assert emu.stats.tasks_failed == 1
    assert data["status"] == "failed"
    assert data["error_message"] == "boom, it broke"
    assert (data["files"], data["progress"]) == ([], 0)


async def test_progress_none_directive_keeps_progress_at_zero(http: aiohttp.ClientSession) -> None:
    """With progress=none the task runs at progress 0 and jumps to 100 when finished."""
    prompt = "a fox [[vidgo-emulator: seconds=30 progress=none]]"
    async with Emulator(time_scale=0.01) as emu:
        _, created = await submit(
            http, emu, {"model": "seedance-2", "input": {**SEEDANCE_INPUT, "prompt": prompt}}
        )
        task_id = created["data"]["task_id"]
        progresses = []
        while True:
            _, body = await status(http, emu, task_id)
            progresses.append((body["data"]["status"], body["data"]["progress"]))
            if body["data"]["status"] == "finished":
                break
            await asyncio.sleep(0.01)
    assert all(p == 0 for s, p in progresses if s != "finished")
    assert ("running", 0) in progresses
    assert progresses[-1] == ("finished", 100)


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [
        ("x [[vidgo-emulator: colour=red]]", "colour=red"),
        ("x [[vidgo-emulator: seconds=-1]]", "seconds"),
    ],
)
async def test_an_unreadable_directive_is_refused(
    http: aiohttp.ClientSession, prompt: str, needle: str
) -> None:
    """A malformed directive answers 400 naming the directive, so typos never go unnoticed."""
    async with Emulator(time_scale=0.01) as emu:
        code, body = await submit(
            http, emu, {"model": "seedance-2", "input": {**SEEDANCE_INPUT, "prompt": prompt}}
        )
    assert code == 400
    assert "vidgo-emulator" in body["error"]["message"]
    assert needle in body["error"]["message"]


async def test_reject_directive_answers_content_moderation(http: aiohttp.ClientSession) -> None:
    """reject=content_moderation_error refuses the submit with that error type."""
    prompt = "a fox [[vidgo-emulator: reject=content_moderation_error]]"
    async with Emulator(time_scale=0.01) as emu:
        code, body = await submit(
            http, emu, {"model": "seedance-2", "input": {**SEEDANCE_INPUT, "prompt": prompt}}
        )
        assert emu.stats.submits_accepted == 0
    assert code == 400
    assert body["error"]["type"] == "content_moderation_error"


async def test_failure_rate_one_fails_every_job(http: aiohttp.ClientSession) -> None:
    """failure_rate=1 ends every job failed with the content-policy message."""
    async with Emulator(job_seconds=1, time_scale=0.01, failure_rate=1.0) as emu:
        _, created = await submit(http, emu)
        data = await wait_terminal(http, emu, created["data"]["task_id"])
    assert data["status"] == "failed"
    assert data["error_message"] == "The prompt violates our content policy"


async def test_random_job_seconds_range_is_seeded(http: aiohttp.ClientSession) -> None:
    """A (low, high) duration range draws per job; the same seed gives the same ids."""
    ids = []
    for _ in range(2):
        async with Emulator(job_seconds=(1, 3), time_scale=0.01, seed=7) as emu:
            _, created = await submit(http, emu)
            ids.append(created["data"]["task_id"][-8:])
    assert ids[0] == ids[1]


async def test_credits_are_reserved_charged_on_success_and_released_on_failure(
    http: aiohttp.ClientSession,
) -> None:
    """A submit reserves its price, a finished job is charged, a failed job is free."""
    async with Emulator(job_seconds=1, time_scale=0.01, credits=1000) as emu:

        async def balance() -> int:
            async with http.get(emu.base_url + BALANCE, headers=auth(emu)) as r:
                body = await r.json()
                assert r.status == 200
                assert body == {
                    "code": 200,
                    "data": {
                        "email": "emulator@example.com",
                        "credits_amount": body["data"]["credits_amount"],
                    },
                }
                assert isinstance(body["data"]["credits_amount"], int)
                return int(body["data"]["credits_amount"])

        assert await balance() == 1000
        prompt = "fail me [[vidgo-emulator: seconds=1000 fail]]"
        _, failing = await submit(
            http, emu, {"model": "seedance-2", "input": {**SEEDANCE_INPUT, "prompt": prompt}}
        )
        assert await balance() == 950  # 10 credits/s x 5 s reserved
        assert emu.ledger.reserved == 50
        _, fast = await submit(
            http, emu, {"model": "seedance-2-fast", "input": {**SEEDANCE_INPUT, "duration": 10}}
        )
        data = await wait_terminal(http, emu, fast["data"]["task_id"])
        assert data["credits_amount"] == 60  # 6 credits/s x 10 s
        assert emu.ledger.balance == 940
        assert await balance() == 890
        await asyncio.sleep(0)  # the failing job is still running: nothing charged for it
        assert emu.ledger.reserved == 50
        emu._store.settle(emu._store.get(failing["data"]["task_id"]))  # type: ignore[union-attr, arg-type]
        assert await balance() == 940


async def test_submit_is_402_when_balance_minus_reservations_cannot_pay(
    http: aiohttp.ClientSession,
) -> None:
    """A submit whose price exceeds the unreserved credits answers 402 insufficient_credits_error."""
    async with Emulator(job_seconds=1000, time_scale=0.01, credits=60, prices={"*": 1}) as emu:
        first, _ = await submit(http, emu)
        code, body = await submit(http, emu)
        other, _ = await submit(http, emu, {"model": "seedream-5.0-lite", "input": {"prompt": "x"}})
        assert emu.stats.submits_accepted == 2
    assert first == 200
    assert code == 402
    assert body["code"] == 402
    assert body["error"]["type"] == "insufficient_credits_error"
    assert other == 200  # 1 credit/s x 5 s default length fits in the remaining 10


async def test_stats_count_submits_statuses_and_peaks(http: aiohttp.ClientSession) -> None:
    """Submits per prompt and fingerprint, statuses per task and in-flight peaks are counted."""
    async with Emulator(
        job_seconds=1000, time_scale=0.01, faults="balance:slow,seconds=0.2"
    ) as emu:
        ids = [(await submit(http, emu))[1]["data"]["task_id"] for _ in range(3)]
        await submit(
            http, emu, {"model": "seedance-2", "input": {**SEEDANCE_INPUT, "prompt": "other"}}
        )
        await status(http, emu, ids[0])
        await status(http, emu, ids[0])

        async def slow_balance() -> None:
            async with http.get(emu.base_url + BALANCE, headers=auth(emu)) as r:
                assert r.status == 200

        await asyncio.gather(*(slow_balance() for _ in range(5)))
        stats = emu.stats
        assert stats.submit_attempts == stats.submits_accepted == 4
        assert stats.submits_by_prompt == {"a red fox in snow": 3, "other": 1}
        assert stats.jobs_for("seedance-2", dict(reversed(SEEDANCE_INPUT.items()))) == 3
        assert stats.jobs_by_fingerprint[fingerprint("seedance-2", SEEDANCE_INPUT)] == 3
        assert stats.status_requests[ids[0]] == 2
        assert stats.in_flight == stats.peak_in_flight == 4
        assert stats.peak_concurrent_requests == 5
        assert stats.concurrent_requests == 0
        stats.reset()
        assert stats.submit_attempts == 0
        assert stats.in_flight == 4


async def test_idempotency_mode_returns_the_original_task(http: aiohttp.ClientSession) -> None:
    """With idempotency=True a repeated Idempotency-Key gets the original task, creating one job."""
    async with Emulator(job_seconds=1000, time_scale=0.01, idempotency=True) as emu:
        _, first = await submit(http, emu, None, **{"Idempotency-Key": "k-1"})
        _, again = await submit(http, emu, None, **{"Idempotency-Key": "k-1"})
        _, other = await submit(http, emu, None, **{"Idempotency-Key": "k-2"})
        assert emu.stats.submits_accepted == 2
        assert emu.stats.idempotency_keys == {"k-1": 2, "k-2": 1}
        assert emu.stats.jobs_for("seedance-2", SEEDANCE_INPUT) == 2
    assert again["data"]["task_id"] == first["data"]["task_id"]
    assert other["data"]["task_id"] != first["data"]["task_id"]


async def test_without_idempotency_mode_a_key_is_ignored(http: aiohttp.ClientSession) -> None:
    """The real API has no idempotency key, so by default a repeated key creates a second job."""
    async with Emulator(job_seconds=1000, time_scale=0.01) as emu:
        await submit(http, emu, None, **{"Idempotency-Key": "k-1"})
        await submit(http, emu, None, **{"Idempotency-Key": "k-1"})
        assert emu.stats.submits_accepted == 2


def test_run_in_thread_serves_synchronous_code() -> None:
    """run_in_thread() serves from a background loop and stops when the block ends."""
    emulator = Emulator(time_scale=0.01)
    with emulator.run_in_thread() as emu:
        request = urllib.request.Request(emu.base_url + BALANCE, headers=auth(emu))  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback URL
            body = json.loads(response.read())
        assert emu.stats.balance_requests == 1
    assert body["data"]["credits_amount"] == 1_000_000
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.base_url


async def test_closing_with_a_stalled_request_leaves_nothing_behind(
    http: aiohttp.ClientSession,
) -> None:
    """Cancelling a test mid-request closes the emulator promptly with no tasks left over."""
    before = asyncio.all_tasks()

    async def scenario() -> None:
        async with Emulator(job_seconds=1000, time_scale=0.01, faults="status:stall") as emu:
            _, created = await submit(http, emu)
            await status(http, emu, created["data"]["task_id"])

    runner = asyncio.create_task(scenario())
    await asyncio.sleep(0.3)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert asyncio.all_tasks() - before == set()


async def test_emulator_validates_its_settings() -> None:
    """Impossible settings are refused at construction with the setting named."""
    with pytest.raises(ValueError, match="time_scale"):
        Emulator(time_scale=0)
    with pytest.raises(ValueError, match="failure_rate"):
        Emulator(failure_rate=2)
    with pytest.raises(ValueError, match="job_seconds"):
        Emulator(job_seconds=(3, 1))
    assert isinstance(Emulator(faults="status:503").faults, FaultPlan)


def test_progress_back_directive_is_back_loaded() -> None:
    """With progress=back the progress rises slowly first and mostly near the end."""
    from vidgo_async.testing._tasks import EmulatedTask, parse_directive

    directive = parse_directive("a fox [[vidgo-emulator: seconds=10 progress=back]]")
    assert directive is not None
    assert directive.progress == "back"
    task = EmulatedTask(
        task_id="t",
        model="seedance-2",
        input={},
        callback_url=None,
        created_time="2026-01-01T00:00:00",
        started_at=0.0,
        duration=10.0,
        fail_message=None,
        progress_mode="back",
        price=1,
        time_scale=1.0,
    )
    halfway = task.snapshot(1.0 + 4.5, lambda task_id: task_id)["progress"]
    late = task.snapshot(1.0 + 8.1, lambda task_id: task_id)["progress"]
    assert 20 <= halfway <= 30  # a quarter at half of the running time
    assert late >= 75
