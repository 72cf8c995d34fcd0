"""The secret canary (T20): the API key never appears in logs, reprs, errors or tracebacks."""

from __future__ import annotations

import asyncio
import logging
import traceback

import aiohttp
import pytest
from _client_support import SEEDANCE, SUBMIT_URL, envelope, error_body, status_url, task_data
from aioresponses import aioresponses

from vidgo_async import APIConnectionError, RetryPolicy, VidgoClient, VidgoError
from vidgo_async._clock import VirtualClock

CANARY = "sk-CANARY-7f3a9c1e5b2d-do-not-leak"


def _assert_clean(text: str) -> None:
    assert CANARY not in text
    assert CANARY[3:] not in text


async def test_canary_absent_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    """Success, 4xx, 5xx, timeouts and retries at DEBUG never show the key; requests still carry it."""
    caplog.set_level(logging.DEBUG, logger="vidgo_async")
    caplog.set_level(logging.DEBUG)
    captured: list[str] = []
    client = VidgoClient(CANARY, _clock=VirtualClock(), retry=RetryPolicy(max_attempts=2))
    captured += [repr(client), str(client), repr(client._transport), repr(vars(client))]
    captured.append(repr(vars(client._transport)))
    async with client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            mocked.get(status_url("t1"), status=503, payload=error_body(503))
            mocked.get(status_url("t1"), exception=asyncio.TimeoutError())
            mocked.get(status_url("t2"), status=401, payload=error_body(401, "bad key"))
            mocked.post(SUBMIT_URL, exception=aiohttp.ServerDisconnectedError())
            await client.submit("seedance-2", SEEDANCE)
            for call in (
                client.get_task("t1"),
                client.get_task("t2"),
                client.submit("seedance-2", SEEDANCE),
            ):
                try:
                    await call
                except VidgoError as exc:
                    captured += [str(exc), repr(exc), traceback.format_exc()]
                    captured += [repr(vars(exc))]
            sent = [
                c.kwargs["headers"]["Authorization"] for v in mocked.requests.values() for c in v
            ]
    assert all(header == f"Bearer {CANARY}" for header in sent)
    assert len(captured) >= 9
    for record in caplog.records:
        captured += [record.getMessage(), repr(record.args)]
    assert any("retrying" in text for text in captured)
    for text in captured:
        _assert_clean(text)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        b"HTTP/1.1 2xx OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["bad-length", "bad-status-line", "bad-chunk"],
)
async def test_a_malformed_answer_leaves_no_key_in_the_error_chain(answer: bytes) -> None:
    """aiohttp's error for a malformed answer holds the request headers: it is not kept.

    Error trackers serialise an exception's cause, context and args, not only its text.
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with VidgoClient(
            CANARY, base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(max_attempts=1)
        ) as client:
            with pytest.raises(APIConnectionError) as info:
                await client.balance()
    finally:
        server.close()
        await server.wait_closed()
    seen: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None and error not in seen:
        seen.append(error)
        _assert_clean(repr(error))
        _assert_clean(repr(error.args))
        _assert_clean(repr(vars(error)))
        error = error.__cause__ or error.__context__
    _assert_clean("".join(traceback.format_exception(info.value)))
    assert "127.0.0.1" in str(info.value)


def test_missing_key_error_does_not_echo_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key with a stray newline is refused without echoing it."""
    with pytest.raises(VidgoError) as info:
        VidgoClient(CANARY[:10] + "\n" + CANARY[10:])
    assert CANARY[:10] not in str(info.value)
