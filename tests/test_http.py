"""Tests of the transport: headers, envelope, error map, retries, budget, timeouts, redirects."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from datetime import datetime, timezone
from email.utils import format_datetime
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
from aioresponses import aioresponses

from vidgo_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmitOutcomeUnknownError,
    Timeout,
    VidgoClient,
)
from vidgo_async._clock import VirtualClock
from vidgo_async._http import (
    USER_AGENT,
    Transport,
    client_timeout,
    normalise_base_url,
    translate_exception,
)

# -- base URL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://api.vidgo.ai", "http://10.0.0.5:8080", "http://example.com/"],
)
def test_plain_http_base_url_is_refused(url: str) -> None:
    """A non-loopback http base URL is refused because the key would travel in clear (T21)."""
    with pytest.raises(ValueError, match="allow_insecure"):
        normalise_base_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:1234/", "http://[::1]:9"]
)
def test_loopback_http_base_url_is_allowed(url: str) -> None:
    """Loopback http (the emulator) is accepted and the trailing slash dropped."""
    assert normalise_base_url(url) == url.rstrip("/")


def test_allow_insecure_accepts_http() -> None:
    """``allow_insecure=True`` is the explicit opt-in for plain http."""
    assert normalise_base_url("http://api.example.com", allow_insecure=True) == (
        "http://api.example.com"
    )


@pytest.mark.parametrize(
    "url",
    ["", "api.vidgo.ai", "ftp://api.vidgo.ai", "https://user:pw@api.vidgo.ai", "https://a/?q=1"],
)
def test_unusable_base_urls_are_refused(url: str) -> None:
    """Relative, non-http, credential-carrying or query-carrying base URLs raise ValueError."""
    with pytest.raises(ValueError, match="base_url"):
        normalise_base_url(url)


def test_client_refuses_http_base_url_at_construction() -> None:
    """The client applies the same rule at construction."""
    with pytest.raises(ValueError, match="plain http"):
        VidgoClient(KEY, base_url="http://api.vidgo.ai")


# -- timeouts and exception translation ---------------------------------------------


def test_timeout_maps_to_aiohttp() -> None:
    """connect bounds the pool wait and the connect, read the gap between bytes, total all."""
    mapped = client_timeout(Timeout(connect=1, read=2, total=3))
    assert (mapped.connect, mapped.sock_connect, mapped.sock_read, mapped.total) == (1, 1, 2, 3)


@pytest.mark.parametrize(
    ("exc", "cls", "sent"),
    [
        (aiohttp.ConnectionTimeoutError("x"), APITimeoutError, False),
        (aiohttp.SocketTimeoutError("x"), APITimeoutError, True),
        (asyncio.TimeoutError(), APITimeoutError, True),
        (aiohttp.ServerDisconnectedError(), APIConnectionError, True),
        (aiohttp.ClientPayloadError("cut"), APIConnectionError, True),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), APIConnectionError, True),
    ],
)
def test_translate_exception(exc: BaseException, cls: type[Exception], sent: bool) -> None:
    """Each aiohttp failure maps to one error, and only connect-phase ones count as not sent."""
    error = translate_exception(exc, method="GET", url=f"{API}/x")
    assert type(error) is cls
    assert error.request_sent is sent
    assert error.method == "GET"


def test_translate_connector_error_is_not_sent() -> None:
    """A refused connection provably sent nothing."""
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    exc = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))
    error = translate_exception(exc, method="POST", url=SUBMIT_URL)
    assert type(error) is APIConnectionError
    assert error.request_sent is False
    assert "Connection refused" in str(error)


def _refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("api.vidgo.ai", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


# -- headers and envelope -------------------------------------------------------------


async def test_api_calls_carry_key_user_agent_and_json_headers() -> None:
    """Every API call sends the Bearer key, the User-Agent and JSON Accept/Content-Type."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            await client.submit("seedance-2", SEEDANCE)
            (call,) = calls(mocked, "POST", SUBMIT_URL)
    headers = call.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("vidgo-async/")
    assert "Python/" in USER_AGENT
    assert "aiohttp/" in USER_AGENT
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"
    assert call.kwargs["allow_redirects"] is False
    assert json.loads(call.kwargs["data"]) == {"model": "seedance-2", "input": SEEDANCE}


async def test_envelope_is_unwrapped() -> None:
    """The transport returns the envelope's data."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, payload=envelope({"credits_amount": 17276, "email": "a@b"}))
            response = await client._transport.request("GET", "/api/user/balance")
    assert response.data == {"credits_amount": 17276, "email": "a@b"}


async def test_unwrapped_object_is_tolerated() -> None:
    """A body without the envelope is accepted as the data itself."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), payload=task_data("t1", "running"))
            task = await client.get_task("t1")
    assert task.task_id == "t1"


async def test_code_without_data_is_a_validation_error() -> None:
    """``{"code": 200}`` without data is not the documented shape."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, payload={"code": 200})
            with pytest.raises(APIResponseValidationError):
                await client.balance()


async def test_non_json_success_is_a_validation_error() -> None:
    """A 200 whose body is not JSON raises APIResponseValidationError, not a decode crash."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, body="<html>hi</html>", content_type="text/html")
            with pytest.raises(APIResponseValidationError, match="not a JSON object"):
                await client.balance()


# JSON nested deeper than Python's parser goes, far under the 1 MiB cap.
DEEPLY_NESTED = b'{"code":200,"data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"


async def test_too_deeply_nested_answers_map_into_the_error_tree() -> None:
    """A 200 or a 500 nested too deeply raises from the error tree, never RecursionError."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, body=DEEPLY_NESTED, content_type="application/json")
            mocked.get(BALANCE_URL, status=400, body=DEEPLY_NESTED, content_type="application/json")
            with pytest.raises(APIResponseValidationError, match="not a JSON object"):
                await client.balance()
            with pytest.raises(BadRequestError):
                await client.balance()


STATUS_CASES: list[tuple[int, type[APIStatusError]]] = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (402, InsufficientCreditsError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, ConflictError),
    (413, BadRequestError),
    (422, BadRequestError),
    (429, RateLimitError),
    (408, ServerError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CASES)
async def test_http_status_maps_to_error_class(status: int, cls: type[APIStatusError]) -> None:
    """Each HTTP error status maps to its class with status, type, message and body."""
    body = error_body(status, "something broke", "some_error")
    async with make_client(retry=RetryPolicy.none()) as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=status, payload=body)
            with pytest.raises(cls) as info:
                await client.balance()
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.error_type == "some_error"
    assert error.message == "something broke"
    assert error.body == body
    assert str(status) in str(error)


@pytest.mark.parametrize(("status", "cls"), STATUS_CASES)
async def test_error_code_under_http_200_is_mapped(status: int, cls: type[APIStatusError]) -> None:
    """A body whose code is >= 400 under HTTP 200 maps like the HTTP status would."""
    async with make_client(retry=RetryPolicy.none()) as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=200, payload=error_body(status, "under 200"))
            with pytest.raises(cls) as info:
                await client.balance()
    assert info.value.status_code == status
    assert info.value.message == "under 200"


async def test_fastapi_detail_string_is_the_message() -> None:
    """A FastAPI ``{"detail": "..."}`` body gives its message."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=401, payload={"detail": "Invalid API key"})
            with pytest.raises(AuthenticationError, match="Invalid API key"):
                await client.balance()


async def test_fastapi_detail_list_names_the_fields() -> None:
    """A FastAPI validation list is rendered as ``loc: msg`` parts."""
    detail = [{"loc": ["body", "input", "prompt"], "msg": "field required", "type": "missing"}]
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=422, payload={"detail": detail})
            with pytest.raises(BadRequestError) as info:
                await client.submit("seedance-2", SEEDANCE)
    assert info.value.message == "body.input.prompt: field required"
    assert info.value.body == {"detail": detail}


async def test_html_502_from_a_proxy_maps_cleanly() -> None:
    """A proxy's HTML 502 page becomes a ServerError naming the page title, body kept as text."""
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    async with make_client(retry=RetryPolicy.none()) as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=502, body=page, content_type="text/html")
            with pytest.raises(ServerError) as info:
                await client.balance()
    assert info.value.status_code == 502
    assert "502 Bad Gateway" in info.value.message
    assert isinstance(info.value.body, str)


async def test_empty_error_body_uses_the_reason() -> None:
    """An error without a body still has a readable message."""
    async with make_client(retry=RetryPolicy.none()) as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=503, body="", reason="Service Unavailable")
            with pytest.raises(ServerError, match="Service Unavailable"):
                await client.balance()


# -- retries of GET -------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_get_is_retried_on_retryable_statuses(status: int) -> None:
    """A status query is retried on 408/429/5xx and succeeds on the next attempt."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), status=status, payload=error_body(status))
            mocked.get(status_url("t1"), payload=envelope(task_data("t1")))
            task = await client.get_task("t1")
            assert len(calls(mocked, "GET", status_url("t1"))) == 2
    assert task.task_id == "t1"
    assert len(clock.sleeps) == 1


async def test_get_retry_sleeps_stay_in_full_jitter_bounds() -> None:
    """Each retry sleep of a GET lies in [0, min(max_delay, initial_delay * 2**(n-1))]."""
    clock = VirtualClock()
    policy = RetryPolicy(max_attempts=5, initial_delay=1.0, max_delay=3.0)
    async with make_client(clock, retry=policy) as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), status=500, payload=error_body(500), repeat=True)
            with pytest.raises(ServerError):
                await client.get_task("t1")
            assert len(calls(mocked, "GET", status_url("t1"))) == 5
    bounds = [1.0, 2.0, 3.0, 3.0]
    assert len(clock.sleeps) == 4
    for delay, bound in zip(clock.sleeps, bounds, strict=True):
        assert 0 <= delay <= bound


async def test_get_is_retried_on_connection_errors_and_timeouts() -> None:
    """Dropped connections and timeouts on a GET are retried."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), exception=aiohttp.ServerDisconnectedError())
            mocked.get(status_url("t1"), exception=asyncio.TimeoutError())
            mocked.get(status_url("t1"), payload=envelope(task_data("t1")))
            await client.get_task("t1")
            assert len(calls(mocked, "GET", status_url("t1"))) == 3


@pytest.mark.parametrize("status", [400, 401, 402, 403, 422])
async def test_get_is_not_retried_on_client_errors(status: int) -> None:
    """Client errors are final."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=status, payload=error_body(status), repeat=True)
            with pytest.raises(APIStatusError):
                await client.balance()
            assert call_count(mocked) == 1


async def test_response_retry_after_is_honoured_for_get() -> None:
    """A 503 with Retry-After waits that long (plus at most 10 %) before the retry."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=503, headers={"Retry-After": "7"}, payload={})
            mocked.get(BALANCE_URL, payload=envelope({"credits_amount": 1}))
            await client.balance()
    assert 7.0 <= clock.sleeps[0] <= 7.7


# -- retries of submit ------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 402, 403, 422])
async def test_submit_not_created_statuses_are_not_retried(status: int) -> None:
    """A rejected submit created nothing and is not retried (T03)."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=status, payload=error_body(status), repeat=True)
            with pytest.raises(APIStatusError) as info:
                await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 1
    assert info.value.status_code == status


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_submit_after_server_error_is_outcome_unknown(status: int) -> None:
    """A submit answered by 5xx is not retried and raises SubmitOutcomeUnknownError (T01)."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=status, payload=error_body(status), repeat=True)
            with pytest.raises(SubmitOutcomeUnknownError) as info:
                await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 1
    error = info.value
    assert error.model == "seedance-2"
    assert error.payload == {"model": "seedance-2", "input": SEEDANCE}
    assert isinstance(error.cause, ServerError)
    assert "retry_ambiguous_submits" in str(error)


@pytest.mark.parametrize(
    "exc",
    [asyncio.TimeoutError(), aiohttp.ServerDisconnectedError(), aiohttp.SocketTimeoutError()],
)
async def test_submit_after_timeout_or_reset_is_outcome_unknown(exc: BaseException) -> None:
    """A timeout or reset after sending is ambiguous: one attempt, then SubmitOutcomeUnknownError."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, exception=exc, repeat=True)
            with pytest.raises(SubmitOutcomeUnknownError) as info:
                await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 1
    assert isinstance(info.value.cause, APIConnectionError)


async def test_submit_is_retried_when_the_connection_could_not_open() -> None:
    """A refused connection sent nothing, so the submit is retried (T02)."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, exception=_refused())
            mocked.post(SUBMIT_URL, exception=aiohttp.ConnectionTimeoutError("connect"))
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t9", "not_started")))
            task = await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 3
    assert task.task_id == "t9"
    policy = client.retry
    for attempt, delay in enumerate(clock.sleeps, start=1):
        assert 0 <= delay <= min(policy.max_delay, policy.initial_delay * 2 ** (attempt - 1))


async def test_submit_refused_until_attempts_run_out_is_a_connection_error() -> None:
    """When the connection never opens, the last error is raised (nothing was created)."""
    async with make_client(retry=RetryPolicy(max_attempts=2)) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, exception=_refused(), repeat=True)
            with pytest.raises(APIConnectionError) as info:
                await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 2
    assert info.value.request_sent is False


async def test_a_submit_refused_before_it_left_is_not_retried_past_the_callers_deadline() -> None:
    """No attempt starts at or after ``give_up_at``: the error is raised instead (nothing sent)."""
    clock = VirtualClock()
    async with make_client(clock, retry=RetryPolicy(max_attempts=5)) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, exception=_refused(), repeat=True)
            with pytest.raises(APIConnectionError) as info:
                # Any retry would start after the deadline: the first delay is above 0.
                await client._send_submit("seedance-2", SEEDANCE, give_up_at=clock.monotonic())
            assert call_count(mocked) == 1
        assert info.value.request_sent is False
        assert clock.sleeps == []
        with aioresponses() as mocked:  # a deadline far away leaves the retries as they were
            mocked.post(SUBMIT_URL, exception=_refused())
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t9", "not_started")))
            task = await client._send_submit(
                "seedance-2", SEEDANCE, give_up_at=clock.monotonic() + 3600.0
            )
            assert call_count(mocked) == 2
    assert task.task_id == "t9"


class _OversleepingClock(VirtualClock):
    """A busy event loop: every sleep ends ``late`` seconds after the time asked for."""

    def __init__(self, late: float) -> None:
        super().__init__()
        self.late = late

    async def sleep(self, seconds: float) -> None:
        self.advance(self.late)
        await super().sleep(seconds)


async def test_a_retry_whose_wait_ran_past_the_callers_deadline_is_not_sent() -> None:
    """The deadline is checked again after the wait: a late wake-up sends nothing more."""
    clock = _OversleepingClock(late=60.0)
    async with make_client(clock, retry=RetryPolicy(max_attempts=5)) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, exception=_refused(), repeat=True)
            with pytest.raises(APIConnectionError) as info:
                # The first wait (under 1 s) is before the deadline; the loop woke 60 s late.
                await client._send_submit(
                    "seedance-2", SEEDANCE, give_up_at=clock.monotonic() + 30.0
                )
            assert call_count(mocked) == 1
    assert info.value.request_sent is False
    assert len(clock.sleeps) == 1


def _http_date_in(seconds: float, now: float) -> str:
    return format_datetime(datetime.fromtimestamp(now + seconds, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "3"},
        {"retry-after-ms": "3000"},
        {"Retry-After": _http_date_in(3, VirtualClock().time())},
    ],
    ids=["seconds", "ms", "http-date"],
)
async def test_submit_is_retried_after_429_honouring_retry_after(headers: dict[str, str]) -> None:
    """A 429 on submit is retried after the server's wait (T04): >= 3 s and <= 3 s + 10 %."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=429, headers=headers, payload=error_body(429))
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            task = await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 2
    assert task.task_id == "t1"
    assert 3.0 <= clock.sleeps[0] <= 3.3


async def test_submit_429_without_header_uses_computed_backoff() -> None:
    """Without Retry-After a 429 falls back to full-jitter backoff."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=429, payload=error_body(429))
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            await client.submit("seedance-2", SEEDANCE)
    assert 0 <= clock.sleeps[0] <= client.retry.initial_delay


@pytest.mark.parametrize("value", ["-1", "0", "inf", "nan", "Zun, 29 Sep 2024", "x" * 10000])
async def test_malformed_retry_after_falls_back_to_backoff(value: str) -> None:
    """A malformed Retry-After never crashes nor sleeps past the cap (T05)."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=429, headers={"Retry-After": value}, payload={})
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            await client.submit("seedance-2", SEEDANCE)
    assert 0 <= clock.sleeps[0] <= client.retry.initial_delay


@pytest.mark.parametrize(("value", "expected"), [("300", 300.0), ("1e40", 1e40)])
async def test_retry_after_above_the_cap_is_raised_not_slept(value: str, expected: float) -> None:
    """A Retry-After above max_retry_after surfaces as RateLimitError(retry_after=v) at once."""
    clock = VirtualClock()
    async with make_client(clock) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=429, headers={"Retry-After": value}, payload={})
            with pytest.raises(RateLimitError) as info:
                await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 1
    assert info.value.retry_after == expected
    assert clock.sleeps == []


async def test_429_until_attempts_run_out_is_a_rate_limit_error() -> None:
    """When 429s outlast the attempts, RateLimitError carries the last retry_after."""
    async with make_client(retry=RetryPolicy(max_attempts=3)) as client:
        with aioresponses() as mocked:
            mocked.post(
                SUBMIT_URL, status=429, headers={"Retry-After": "2"}, payload={}, repeat=True
            )
            with pytest.raises(RateLimitError) as info:
                await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 3
    assert info.value.retry_after == 2


async def test_retry_ambiguous_submits_opt_in_retries_a_500() -> None:
    """With retry_ambiguous_submits=True a 500 on submit is retried (at-least-once)."""
    policy = RetryPolicy(retry_ambiguous_submits=True)
    async with make_client(retry=policy) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, status=500, payload=error_body(500))
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t2", "not_started")))
            task = await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 2
    assert task.task_id == "t2"


async def test_opt_in_still_reports_unknown_when_every_attempt_fails() -> None:
    """Even with the opt-in, a submit that never got an answer is reported as unknown."""
    policy = RetryPolicy(retry_ambiguous_submits=True, max_attempts=2)
    async with make_client(retry=policy) as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, exception=asyncio.TimeoutError(), repeat=True)
            with pytest.raises(SubmitOutcomeUnknownError):
                await client.submit("seedance-2", SEEDANCE)
            assert call_count(mocked) == 2


# -- retry budget -----------------------------------------------------------------------


async def test_exhausted_budget_stops_retries() -> None:
    """Once the client's budget is spent a failing GET is tried exactly once (T08)."""
    async with make_client() as client:
        client._transport.retry_budget.tokens = 4
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, status=503, payload=error_body(503), repeat=True)
            with pytest.raises(ServerError):
                await client.balance()
            assert call_count(mocked) == 1


async def test_first_try_success_refunds_the_budget() -> None:
    """A request that succeeds on its first try adds a token."""
    async with make_client() as client:
        client._transport.retry_budget.tokens = 100
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, payload=envelope({"credits_amount": 3}))
            await client.balance()
        assert client._transport.retry_budget.tokens == 101


# -- sessions ----------------------------------------------------------------------------


async def test_user_session_is_used_and_left_open() -> None:
    """A session passed in is used for API calls and not closed by aclose()."""
    session = aiohttp.ClientSession()
    try:
        client = VidgoClient(KEY, session=session, _clock=VirtualClock())
        with aioresponses() as mocked:
            mocked.get(BALANCE_URL, payload=envelope({"credits_amount": 3}))
            await client.balance()
        await client.aclose()
        assert not session.closed
    finally:
        await session.close()


async def test_own_session_is_created_lazily_and_closed() -> None:
    """The client's own session appears on first use and is closed by aclose()."""
    client = make_client()
    assert client._transport._session is None
    async with client:
        session = client._transport._session
        assert session is not None
    assert session.closed
    await client.aclose()


# -- loopback servers: stalls, drips, resets, redirects, size caps ----------------------


def _loopback_client(server_base: str, **kwargs: Any) -> VidgoClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=1))
    return VidgoClient(KEY, base_url=server_base, _clock=VirtualClock(), **kwargs)


async def test_slow_drip_is_cut_by_the_total_deadline() -> None:
    """A server trickling bytes cannot hold a call past its total deadline (T14)."""

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(100):
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    app = web.Application()
    app.router.add_get("/api/user/balance", drip)
    async with serve(app) as server:
        timeout = Timeout(connect=1, read=0.5, total=0.6)
        async with _loopback_client(base_of(server), timeout=timeout) as client:
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                await client.balance()
            assert time.monotonic() - started < 0.6 + 1.5


async def test_submit_answer_slower_than_timeout_is_outcome_unknown_after_one_attempt() -> None:
    """A submit whose answer takes longer than the client timeout is unknown, sent once (T01)."""
    hits: list[str] = []

    async def stall(request: web.Request) -> web.Response:
        hits.append(await request.text())
        await asyncio.sleep(5)
        return web.json_response(envelope(task_data("late", "not_started")))

    app = web.Application()
    app.router.add_post("/api/generate/submit", stall)
    async with serve(app) as server:
        client = _loopback_client(base_of(server), timeout=0.3, retry=RetryPolicy())
        async with client:
            with pytest.raises(SubmitOutcomeUnknownError) as info:
                await client.submit("seedance-2", SEEDANCE)
    assert len(hits) == 1
    assert isinstance(info.value.cause, APITimeoutError)


async def test_reset_after_reading_the_request_is_outcome_unknown() -> None:
    """A connection dropped after the request was read leaves a submit in doubt (T01 variant)."""
    hits = 0

    async def reset(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        await request.read()
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.5)
        return web.Response()

    app = web.Application()
    app.router.add_post("/api/generate/submit", reset)
    async with (
        serve(app) as server,
        _loopback_client(base_of(server), retry=RetryPolicy()) as client,
    ):
        with pytest.raises(SubmitOutcomeUnknownError):
            await client.submit("seedance-2", SEEDANCE)
    assert hits == 1


async def test_cross_origin_redirect_is_not_followed_and_key_not_sent() -> None:
    """A 307 from the API is an error; the redirect target never sees the key (T21)."""
    seen: list[dict[str, str]] = []

    async def target(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response(envelope({"credits_amount": 1}))

    other = web.Application()
    other.router.add_get("/steal", target)
    async with serve(other) as other_server:

        async def redirect(_request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(location=base_of(other_server) + "/steal")

        app = web.Application()
        app.router.add_get("/api/user/balance", redirect)
        async with serve(app) as server, _loopback_client(base_of(server)) as client:
            with pytest.raises(APIStatusError) as info:
                await client.balance()
    assert info.value.status_code == 307
    assert "not followed" in str(info.value)
    assert seen == []


async def test_oversized_json_body_is_refused() -> None:
    """A 50 MB status answer is cut at the 1 MiB cap (T23)."""

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"code":200,"data":{"task_id":"t","pad":"')
        block = b"x" * (1024 * 1024)
        try:
            for _ in range(50):
                await response.write(block)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        return response

    app = web.Application()
    app.router.add_get("/api/generate/status/t", huge)
    async with serve(app) as server, _loopback_client(base_of(server)) as client:
        with pytest.raises(APIResponseValidationError, match="larger than"):
            await client.get_task("t")


async def test_declared_oversized_body_is_refused_without_reading() -> None:
    """A Content-Length above the cap is refused before reading the body."""

    async def big(_request: web.Request) -> web.Response:
        return web.Response(body=b"{" + b" " * (2 * 1024 * 1024) + b"}")

    app = web.Application()
    app.router.add_get("/api/user/balance", big)
    async with serve(app) as server, _loopback_client(base_of(server)) as client:
        with pytest.raises(APIResponseValidationError, match="larger than"):
            await client.balance()


async def test_compressed_body_is_capped_after_decompression() -> None:
    """A small gzip body that inflates past the cap is refused, not read whole (T23)."""
    packed = gzip.compress(b'{"code":200,"data":{"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}}')

    async def bomb(_request: web.Request) -> web.Response:
        return web.Response(
            body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    app = web.Application()
    app.router.add_get("/api/user/balance", bomb)
    async with serve(app) as server, _loopback_client(base_of(server)) as client:
        assert len(packed) < client._transport.max_json_bytes
        with pytest.raises(APIResponseValidationError, match="larger than"):
            await client.balance()


@pytest.mark.parametrize("compressed", [False, True])
async def test_small_bodies_are_read_whole_with_or_without_compression(compressed: bool) -> None:
    """A body under the cap is read in one go, or streamed and inflated when compressed."""
    raw = json.dumps(envelope({"credits_amount": 12.5, "email": "a@b"})).encode()

    async def answer(_request: web.Request) -> web.Response:
        if compressed:
            return web.Response(
                body=gzip.compress(raw),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        return web.Response(body=raw, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/user/balance", answer)
    async with serve(app) as server, _loopback_client(base_of(server)) as client:
        balance = await client.balance()
    assert (balance.credits_amount, balance.email) == (12.5, "a@b")


async def test_retry_after_of_a_success_is_parsed_once_into_the_response() -> None:
    """A status answer's Retry-After is carried on the Response, read case-insensitively."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.get(
                BALANCE_URL,
                payload=envelope({"credits_amount": 1}),
                headers={"RETRY-AFTER": "4", "X-Request-Id": "req-1"},
            )
            mocked.get(BALANCE_URL, payload=envelope({"credits_amount": 1}))
            first = await client._transport.send_once("GET", "/api/user/balance")
            second = await client._transport.send_once("GET", "/api/user/balance")
    assert first.retry_after == 4.0
    assert first.headers["retry-after"] == "4"
    assert second.retry_after is None


async def test_request_id_header_is_found_in_any_case() -> None:
    """``X-Request-Id`` as servers spell it fills the error's request_id."""
    async with make_client(retry=RetryPolicy.none()) as client:
        with aioresponses() as mocked:
            mocked.get(
                BALANCE_URL, status=400, payload=error_body(400), headers={"X-Request-Id": "r-9"}
            )
            with pytest.raises(BadRequestError) as info:
                await client.balance()
    assert info.value.request_id == "r-9"


def test_headers_and_default_timeout_are_built_once_and_hide_the_key() -> None:
    """Requests reuse one headers dict and one aiohttp timeout; no dump of the transport shows the key."""
    client = make_client()
    transport = client._transport
    assert transport._headers(with_body=False) is transport._headers(with_body=False)
    assert transport._headers(with_body=True)["Content-Type"] == "application/json"
    assert "Content-Type" not in transport._headers(with_body=False)
    assert KEY not in repr(vars(transport))
    assert transport._client_timeout(None) is transport._client_timeout(transport.timeout)


def test_per_call_and_reassigned_timeouts_are_mapped() -> None:
    """A per-call timeout gets its own aiohttp timeout; a new default replaces the cached one."""
    transport = make_client()._transport
    assert isinstance(transport, Transport)
    mapped = transport._client_timeout(Timeout(connect=1, read=2, total=3))
    assert (mapped.sock_connect, mapped.sock_read, mapped.total) == (1, 2, 3)
    transport.timeout = Timeout(total=9)
    assert transport._client_timeout(None).total == 9
    assert transport._client_timeout(None) is transport._client_timeout(None)
