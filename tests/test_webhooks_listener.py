"""The callback listener under abuse: connection cap, header/body deadlines, quiet logs."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import anyio
import pytest
from test_webhooks import TASK_ID, FakeClient, api_task, task_body

from vidgo_async._callbacks import RefusalLog
from vidgo_async.webhooks import CallbackReceiver, ListenerLimits

CAP = 16
SLOW = 200


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refusal_log_says_one_line_per_kind_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RefusalLog(logging.getLogger("vidgo_async"), interval=60.0, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="vidgo_async"):
        for _ in range(1000):
            log.note("too many connections", "cap reached")
            log.note("slow headers", "no headers")
        clock.now = 61.0
        log.note("too many connections", "cap reached")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3
    assert "and 999 more" in lines[-1]
    assert all(record.exc_info is None for record in caplog.records)


async def read_all(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read()
    except ConnectionError:
        return b""


async def test_slow_header_connections_are_capped_and_closed(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Beyond the cap: 503 and closed at once; within it: closed at the header deadline."""
    fake = FakeClient(api_task())
    limits = ListenerLimits(max_connections=CAP, header_timeout=0.3, body_timeout=0.3)
    receiver = CallbackReceiver(fake)
    caplog.set_level(logging.DEBUG, logger="vidgo_async")
    async with receiver.serve("127.0.0.1", 0, limits=limits) as server:
        opened = [await asyncio.open_connection(server.host, server.port) for _ in range(SLOW)]
        for _, writer in opened:
            writer.write(b"POST /abc HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        with anyio.fail_after(10):  # a hang would be a bug, not slowness
            answers = await asyncio.gather(*(read_all(reader) for reader, _ in opened))
        for _, writer in opened:
            writer.close()
        busy = [answer for answer in answers if answer.startswith(b"HTTP/1.1 503")]
        assert len(busy) == SLOW - CAP
        assert server.stats.over_capacity == SLOW - CAP
        assert server.stats.header_timeouts == CAP
        # The slots are free again: a real callback is served.
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        async with aiohttp.ClientSession() as http:
            url = f"{server.base_url}/{token}"
            async with http.post(url, data=task_body()) as response:
                assert response.status == 200
        await receiver.join()
    assert fake.calls == [TASK_ID]
    refusals = [r for r in caplog.records if "callback refused" in r.getMessage()]
    assert len(refusals) <= 2  # one line per kind: "too many connections", "slow headers"
    assert all(record.exc_info is None for record in caplog.records)
    assert capfd.readouterr().err == ""


async def test_a_slow_body_is_cut_off_and_a_hang_up_logs_no_traceback(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient(api_task())
    limits = ListenerLimits(max_connections=4, header_timeout=5.0, body_timeout=0.3)
    receiver = CallbackReceiver(fake)
    caplog.set_level(logging.DEBUG)
    async with receiver.serve("127.0.0.1", 0, limits=limits) as server:
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        head = (
            f"POST /{token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 500\r\n\r\n"
        ).encode()
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(head + b'{"task_id": ')
        with anyio.fail_after(10):
            answer = await read_all(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert server.stats.body_timeouts == 1
        # A client that sends half a body and hangs up.
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(head + b'{"task_id": ')
        await writer.drain()
        writer.transport.abort()
        for _ in range(1000):  # until the handler notices (at most ~10 s)
            if server.stats.hung_up:
                break
            await asyncio.sleep(0.01)
        assert server.stats.hung_up == 1
    assert fake.calls == []
    assert all(record.exc_info is None for record in caplog.records)
    assert capfd.readouterr().err == ""


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        ListenerLimits(max_connections=0)
    with pytest.raises(ValueError, match="timeout"):
        ListenerLimits(header_timeout=0)


async def test_every_answer_closes_its_connection() -> None:
    """404 and 405 too: no idle keep-alive connection keeps a slot until the deadline."""
    fake = FakeClient(api_task())
    limits = ListenerLimits(max_connections=2, header_timeout=30.0)
    async with CallbackReceiver(fake).serve("127.0.0.1", 0, limits=limits) as server:
        async with aiohttp.ClientSession() as http:
            for _ in range(5):  # more requests than slots: each one's slot is freed
                async with http.post(f"{server.base_url}/{'A' * 43}", data=b"{}") as response:
                    assert response.status == 404
                async with http.get(f"{server.base_url}/{'A' * 43}") as response:
                    assert response.status == 405
        assert server.stats.over_capacity == 0
        assert server.stats.header_timeouts == 0
        assert server.stats.connections == 10


async def test_a_body_that_is_not_its_declared_encoding_is_refused_400_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A body that claims gzip and is not gets a 400 through the refusal log, no traceback."""
    fake = FakeClient(api_task())
    receiver = CallbackReceiver(fake)
    caplog.set_level(logging.DEBUG)
    async with receiver.serve("127.0.0.1", 0) as server:
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        body = b"this is not gzip at all" * 4
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            f"POST /{token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        with anyio.fail_after(10):
            answer = await read_all(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400")
    assert receiver.stats.invalid == 1
    assert fake.calls == []
    assert all(record.exc_info is None for record in caplog.records)


def _tls_server_context(folder: Path) -> ssl.SSLContext:
    """A server context with a throwaway self-signed certificate made by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:  # never a skip: CI installs it (.ci/run)
        pytest.fail("the TLS listener test needs the openssl command (apt-get install openssl)")
    key, cert = folder / "key.pem", folder / "cert.pem"
    request = [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
    ]
    subprocess.run(  # noqa: S603 - a fixed command line
        [openssl, *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_failed_tls_handshakes_hold_no_connection_slot(tmp_path: Path) -> None:
    """Plain text on the TLS port fails its handshake and leaves every slot free."""
    fake = FakeClient(api_task())
    receiver = CallbackReceiver(fake)
    limits = ListenerLimits(max_connections=2, header_timeout=2.0)
    context = _tls_server_context(tmp_path)
    async with receiver.serve("127.0.0.1", 0, ssl_context=context, limits=limits) as server:
        token = receiver.registry.new_token("job", task_id=TASK_ID)
        with anyio.fail_after(10):
            for _ in range(3 * limits.max_connections):
                reader, writer = await asyncio.open_connection(server.host, server.port)
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await read_all(reader)  # the server closes it: the handshake failed
                writer.close()
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{server.base_url}/{token}", data=task_body(), ssl=False) as response,
            ):
                assert response.status == 200
        await receiver.join()
        assert server.stats.over_capacity == 0
        assert server.stats.connections == 1
    assert fake.calls == [TASK_ID]
