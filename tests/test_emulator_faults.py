"""Every fault kind of the emulator, observed with plain aiohttp requests."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest
from multidict import CIMultiDictProxy

from vidgo_async.testing import Emulator, Fault, FaultPlan, sample_video

SUBMIT = "/api/generate/submit"
BALANCE = "/api/user/balance"
PAYLOAD: dict[str, Any] = {
    "model": "seedance-2",
    "input": {"prompt": "a red fox in snow", "resolution": "720p", "duration": 5},
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session."""
    async with aiohttp.ClientSession() as session:
        yield session


def auth(emu: Emulator) -> dict[str, str]:
    """Return the Bearer header for ``emu``."""
    return {"Authorization": f"Bearer {emu.api_key}"}


@attrs.frozen
class Reply:
    """A read response."""

    status: int
    headers: CIMultiDictProxy[str]
    content_type: str
    body: bytes

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.body)


async def read(response: aiohttp.ClientResponse) -> Reply:
    """Read ``response`` whole."""
    body = await response.read()
    return Reply(response.status, response.headers, response.content_type, body)


async def get_balance(http: aiohttp.ClientSession, emu: Emulator) -> Reply:
    """GET the balance and return the read response."""
    async with http.get(emu.base_url + BALANCE, headers=auth(emu)) as r:
        return await read(r)


async def post_submit(http: aiohttp.ClientSession, emu: Emulator, **kwargs: Any) -> Reply:
    """POST the standard submit and return the read response."""
    async with http.post(emu.base_url + SUBMIT, json=PAYLOAD, headers=auth(emu), **kwargs) as r:
        return await read(r)


@pytest.mark.parametrize(
    ("code", "error_type"),
    [(500, "internal_error"), (502, "upstream_error"), (503, "service_error")],
)
async def test_server_errors_use_the_documented_body(
    http: aiohttp.ClientSession, code: int, error_type: str
) -> None:
    """A 5xx fault answers with HTTP status == body code and the table's error type."""
    async with Emulator(faults=[Fault(endpoint="balance", kind=code)]) as emu:
        r = await get_balance(http, emu)
        assert emu.stats.faults_injected[f"balance:{code}"] == 1
    assert r.status == code
    body = r.json()
    assert body["code"] == code
    assert body["error"]["type"] == error_type


async def test_html_error_bodies(http: aiohttp.ClientSession) -> None:
    """html=True answers a text/html page, as a proxy in front of the API would."""
    async with Emulator(faults="balance:502,html") as emu:
        r = await get_balance(http, emu)
    assert r.status == 502
    assert r.content_type == "text/html"
    assert (r.body.decode()).startswith("<html>")


async def test_429_retry_after_headers(http: aiohttp.ClientSession) -> None:
    """429 faults carry Retry-After seconds, retry-after-ms, or an HTTP-date, as configured."""
    spec = "balance:429,burst=1,retry_after=3;balance:429,burst=2:1,retry_after_ms=3000;balance:429,burst=3:1,retry_after_date=3;balance:429,burst=4:1"
    async with Emulator(faults=spec) as emu:
        first, second, third, fourth, fifth = [await get_balance(http, emu) for _ in range(5)]
    assert [r.status for r in (first, second, third, fourth, fifth)] == [429, 429, 429, 429, 200]
    assert first.headers["Retry-After"] == "3"
    assert second.headers["retry-after-ms"] == "3000"
    assert "Retry-After" not in second.headers
    ahead = (
        email.utils.parsedate_to_datetime(third.headers["Retry-After"]).timestamp() - time.time()
    )
    assert 0 <= ahead <= 5
    assert "Retry-After" not in fourth.headers
    assert first.json()["error"]["type"] == "rate_limit_error"


async def test_malformed_retry_after_is_sent_verbatim(http: aiohttp.ClientSession) -> None:
    """A hostile Retry-After value reaches the client unchanged (for parser tests)."""
    async with Emulator(faults=[Fault(endpoint="balance", kind=429, retry_after="1e40")]) as emu:
        r = await get_balance(http, emu)
    assert r.headers["Retry-After"] == "1e40"


async def test_every_nth_request(http: aiohttp.ClientSession) -> None:
    """every=3 faults the 3rd, 6th... request to the endpoint."""
    async with Emulator(faults="balance:500,every=3") as emu:
        codes = [(await get_balance(http, emu)).status for _ in range(7)]
    assert codes == [200, 200, 500, 200, 200, 500, 200]


async def test_burst_and_times(http: aiohttp.ClientSession) -> None:
    """burst=2:3 faults requests 2-4; times caps the firings of a rule."""
    async with Emulator(faults="balance:503,burst=2:3") as emu:
        codes = [(await get_balance(http, emu)).status for _ in range(6)]
    assert codes == [200, 503, 503, 503, 200, 200]
    fault = Fault(endpoint="balance", kind=500, times=2)
    async with Emulator(faults=[fault]) as emu:
        codes = [(await get_balance(http, emu)).status for _ in range(4)]
        assert emu.faults.fired(fault) == 2
    assert codes == [500, 500, 200, 200]


async def test_probability_is_seeded(http: aiohttp.ClientSession) -> None:
    """p=0.5 with the same seed faults the same requests; p=0 and p=1 never and always."""
    runs = []
    for _ in range(2):
        async with Emulator(faults="balance:500,p=0.5", seed=3) as emu:
            runs.append([(await get_balance(http, emu)).status for _ in range(12)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}
    async with Emulator(faults="balance:500,p=0;status:500,p=1") as emu:
        assert (await get_balance(http, emu)).status == 200


async def test_api_endpoint_covers_submit_status_and_balance(http: aiohttp.ClientSession) -> None:
    """An 'api' rule applies to submit, status and balance but not downloads."""
    async with Emulator(faults="api:503") as emu:
        assert (await post_submit(http, emu)).status == 503
        assert (await get_balance(http, emu)).status == 503
        async with http.get(emu.base_url + "/api/generate/status/x", headers=auth(emu)) as r:
            assert r.status == 503
        async with http.get(emu.base_url + "/files/x.mp4") as r:
            assert r.status == 404
        assert emu.stats.submits_accepted == 0


async def test_404_within_the_first_seconds_after_submit(http: aiohttp.ClientSession) -> None:
    """status:404,within=20 answers 404 for 20 emulated seconds after submit, then the task."""
    async with Emulator(job_seconds=1000, time_scale=0.01, faults="status:404,within=20") as emu:
        created = (await post_submit(http, emu)).json()
        url = f"{emu.base_url}/api/generate/status/{created['data']['task_id']}"
        codes = []
        while 200 not in codes:
            async with http.get(url, headers=auth(emu)) as r:
                codes.append(r.status)
                if r.status == 404:
                    assert (await r.json())["error"]["type"] == "resource_not_found_error"
            await asyncio.sleep(0.02)
    assert codes[0] == 404
    assert codes[-1] == 200
    assert emu.stats.submits_accepted == 1


async def test_rate_limit_rule(http: aiohttp.ClientSession) -> None:
    """rate=3 lets 3 submits per emulated second through and answers 429 above that."""
    async with Emulator(job_seconds=1000, time_scale=10.0, faults="submit:429,rate=3") as emu:
        codes = [(await post_submit(http, emu)).status for _ in range(6)]
        assert emu.stats.submits_accepted == 3
    assert codes == [200, 200, 200, 429, 429, 429]


async def test_submit_before_faults_create_no_job(http: aiohttp.ClientSession) -> None:
    """A status-code fault on submit means the job was not created."""
    async with Emulator(faults="submit:500,times=1") as emu:
        assert (await post_submit(http, emu)).status == 500
        assert emu.stats.submits_accepted == 0
        assert emu.stats.submit_attempts == 1
        assert (await post_submit(http, emu)).status == 200
        assert emu.stats.submits_accepted == 1


async def test_submit_500_after_creates_the_job(http: aiohttp.ClientSession) -> None:
    """submit:500,after creates the job and still answers 500 (an ambiguous outcome)."""
    async with Emulator(job_seconds=1000, faults="submit:500,after") as emu:
        assert (await post_submit(http, emu)).status == 500
        assert emu.stats.submits_accepted == 1


async def test_drop_closes_without_an_answer(http: aiohttp.ClientSession) -> None:
    """drop closes the connection without a response; on submit the job exists by default."""
    async with Emulator(job_seconds=1000, faults="submit:drop,times=1;balance:drop") as emu:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post_submit(http, emu)
        assert emu.stats.submits_accepted == 1
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await get_balance(http, emu)
    async with Emulator(job_seconds=1000, faults="submit:drop,before") as emu:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post_submit(http, emu)
        assert emu.stats.submits_accepted == 0


async def test_stall_after_reading_the_request_outlasts_the_client_timeout(
    http: aiohttp.ClientSession,
) -> None:
    """A stalled submit times the client out after the job was created (RELIABILITY T01)."""
    async with Emulator(job_seconds=1000, faults="submit:stall") as emu:
        with pytest.raises(asyncio.TimeoutError):
            await post_submit(http, emu, timeout=aiohttp.ClientTimeout(total=0.3))
        assert emu.stats.submits_accepted == 1
        assert emu.stats.jobs_for(PAYLOAD["model"], PAYLOAD["input"]) == 1


async def test_short_stall_then_hang_up(http: aiohttp.ClientSession) -> None:
    """stall,seconds=S stays silent S seconds, then closes without an answer."""
    async with Emulator(faults="balance:stall,seconds=0.1") as emu:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await get_balance(http, emu)


async def test_slow_answers_arrive_late_but_whole(http: aiohttp.ClientSession) -> None:
    """slow answers normally after the delay."""
    async with Emulator(faults="balance:slow,seconds=0.1") as emu:
        started = time.monotonic()
        r = await get_balance(http, emu)
        elapsed = time.monotonic() - started
    assert r.status == 200
    assert r.json()["data"]["credits_amount"] == 1_000_000
    assert elapsed >= 0.1


async def test_drip_sends_the_whole_body_slowly(http: aiohttp.ClientSession) -> None:
    """drip sends the normal body in small chunks; a short read timeout trips on it."""
    async with Emulator(faults="balance:drip,chunk=16,interval=0.005") as emu:
        r = await get_balance(http, emu)
        assert r.json()["data"]["email"] == "emulator@example.com"
    async with Emulator(faults="balance:drip,chunk=1,interval=0.5") as emu:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(get_balance(http, emu), 0.3)


async def test_reset_after_n_bytes(http: aiohttp.ClientSession) -> None:
    """reset sends N bytes of the answer, then resets the connection."""
    async with Emulator(faults="balance:reset,bytes=10") as emu:
        with pytest.raises(aiohttp.ClientPayloadError):
            await get_balance(http, emu)
    async with Emulator(faults="balance:reset") as emu:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await get_balance(http, emu)


async def test_download_reset_mid_file(http: aiohttp.ClientSession) -> None:
    """A download reset after 1000 bytes never yields the whole file; the next one does."""
    async with Emulator(
        job_seconds=0, time_scale=0.01, faults="download:reset,bytes=1000,times=1"
    ) as emu:
        created = (await post_submit(http, emu)).json()
        url = emu.file_url(created["data"]["task_id"])
        await asyncio.sleep(0.01)
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.get(url) as r:
                await r.read()
        async with http.get(url) as r:
            assert await r.read() == sample_video()


async def test_malformed_json(http: aiohttp.ClientSession) -> None:
    """malformed answers HTTP 200 with a JSON content type and a body that does not parse."""
    async with Emulator(faults="balance:malformed") as emu:
        r = await get_balance(http, emu)
    assert r.status == 200
    assert r.content_type == "application/json"
    with pytest.raises(json.JSONDecodeError):
        r.json()


async def test_oversized_body(http: aiohttp.ClientSession) -> None:
    """oversized answers a valid JSON body of exactly the configured size."""
    async with Emulator(faults="balance:oversized,bytes=3000000") as emu:
        r = await get_balance(http, emu)
        body = r.body
    assert len(body) == 3_000_000
    assert json.loads(body)["code"] == 200


async def test_endless_body_until_the_client_gives_up(http: aiohttp.ClientSession) -> None:
    """oversized,endless streams without end; the emulator survives the client hanging up."""
    async with Emulator(faults="balance:oversized,endless,times=1") as emu:
        async with http.get(emu.base_url + BALANCE, headers=auth(emu)) as r:
            received = 0
            async for chunk in r.content.iter_chunked(65536):
                received += len(chunk)
                if received > 5_000_000:
                    break
            r.close()
        assert (await get_balance(http, emu)).status == 200
    assert received > 5_000_000


async def test_error_code_under_http_200(http: aiohttp.ClientSession) -> None:
    """code_in_body answers HTTP 200 whose body says code>=400."""
    async with Emulator(faults="balance:code_in_body,code=503") as emu:
        r = await get_balance(http, emu)
    assert r.status == 200
    body = r.json()
    assert body["code"] == 503
    assert body["error"]["type"] == "service_error"


def test_spec_parsing_round_trips_the_options() -> None:
    """The mini-language sets every option it names."""
    plan = FaultPlan.parse(
        "submit:429,every=3,retry_after=2 ; status:503,p=0.25,html;download:drip,chunk=4,interval=0.5;"
        "status:404,within=20;callback:duplicate;submit:reset,bytes=7,before;submit:500,burst=3"
    )
    faults = list(plan)
    assert faults[0] == Fault(endpoint="submit", kind=429, every=3, retry_after="2")
    assert faults[1].probability == 0.25
    assert faults[1].html
    assert (faults[2].chunk, faults[2].interval) == (4, 0.5)
    assert faults[3].within == 20
    assert faults[4].kind == "duplicate"
    assert not faults[5].after
    assert (faults[6].burst_start, faults[6].burst_count) == (1, 3)
    assert len(plan) == 7


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nowhere:500", "endpoint"),
        ("status:teapot", "kind"),
        ("status:500,every=0", "every"),
        ("status:500,p=2", "probability"),
        ("status:500,colour=red", "colour"),
        ("status", "ENDPOINT:KIND"),
        ("callback:500", "callback"),
        ("status:lose", "callback"),
        ("status:500,every=x", "every=x"),
    ],
)
def test_bad_specs_are_refused_with_the_part_named(spec: str, needle: str) -> None:
    """An unreadable rule raises ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=needle):
        FaultPlan.parse(spec)


async def test_plan_can_change_while_running(http: aiohttp.ClientSession) -> None:
    """Rules added or removed at run time apply to the next request."""
    async with Emulator() as emu:
        fault = emu.faults.add(Fault(endpoint="balance", kind=500))
        assert (await get_balance(http, emu)).status == 500
        emu.faults.remove(fault)
        assert (await get_balance(http, emu)).status == 200
        emu.faults.add(Fault(endpoint="balance", kind=503))
        emu.faults.clear()
        assert (await get_balance(http, emu)).status == 200
