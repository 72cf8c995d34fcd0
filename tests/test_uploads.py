"""Tests of uploads: the local checks, the three endpoints, the shared gate, 429s and errors."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from _client_support import API, KEY, call_count, calls, make_client
from aioresponses import aioresponses

from vidgo_async import (
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    InputValidationError,
    RateLimitError,
    RetryPolicy,
    UploadedFile,
)
from vidgo_async._clock import VirtualClock
from vidgo_async._converter import structure
from vidgo_async._uploads import (
    BASE64_PATH,
    STREAM_PATH,
    URL_PATH,
    UploadGate,
    check_file_name,
    multipart_body,
    sniff_image_type,
)

STREAM_URL = API + STREAM_PATH
BASE64_URL = API + BASE64_PATH
URL_URL = API + URL_PATH
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 10
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8


def uploaded(name: str = "a.png", **extra: Any) -> dict[str, Any]:
    """Return the documented upload success envelope."""
    data = {
        "file_id": "872defd8180ee9c6d32265ef4e8d255b",
        "file_name": name,
        "original_name": name,
        "file_size": 32,
        "mime_type": "image/png",
        "upload_path": "temp/x",
        "file_url": f"https://storage.vidgo.ai/temp/x/{name}",
        "download_url": f"https://storage.vidgo.ai/temp/x/{name}",
        "upload_time": "2025-12-29T13:09:04.731057",
        "expires_at": "2026-01-01T13:09:04.731057",
        **extra,
    }
    return {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data}


def sent_json(mocked: aioresponses, url: str, index: int = 0) -> Any:
    return json.loads(calls(mocked, "POST", url)[index].kwargs["data"])


# -- pure checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_the_four_documented_types_are_recognised(data: bytes, mime: str) -> None:
    assert sniff_image_type(data) == mime


@pytest.mark.parametrize(
    "data", [b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.7", b"\x00\x00\x00\x18ftypmp42"]
)
def test_other_types_are_not_images(data: bytes) -> None:
    assert sniff_image_type(data) is None


@pytest.mark.parametrize("name", ["", "  ", "a/b.png", "..\\x.png", 'a".png', "a\nb.png", 7])
def test_bad_file_names_are_refused(name: object) -> None:
    issues = check_file_name(name)
    assert issues
    assert issues[0].field == "filename"


def test_multipart_body_carries_the_file_and_the_fields() -> None:
    body = multipart_body(
        PNG,
        filename="a.png",
        content_type="image/png",
        fields={"file_name": "b.png"},
        boundary="XY",
    )
    assert body.content_type == "multipart/form-data; boundary=XY"
    assert body.data.startswith(b"--XY\r\n")
    assert b'name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n' + PNG in body.data
    assert b'name="file_name"\r\n\r\nb.png\r\n' in body.data
    assert body.data.endswith(b"--XY--\r\n")


def test_upload_answers_are_parsed_tolerantly() -> None:
    full = structure(uploaded()["data"], UploadedFile)
    assert full.file_url == "https://storage.vidgo.ai/temp/x/a.png"
    assert full.expires_at == datetime(2026, 1, 1, 13, 9, 4, 731057)
    assert full.file_size == 32
    sparse = structure(
        {"file_url": "https://s/x.png", "file_size": "big", "extra": 1}, UploadedFile
    )
    assert sparse.file_size is None
    assert sparse.expires_at is None
    with pytest.raises(APIResponseValidationError, match="file_url"):
        structure({"file_name": "x.png"}, UploadedFile)


# -- the three endpoints ---------------------------------------------------------------


async def test_a_local_path_goes_as_multipart_to_the_stream_endpoint(tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    image.write_bytes(PNG)
    with aioresponses() as mocked:
        mocked.post(STREAM_URL, payload=uploaded("frame.png"))
        async with make_client() as client:
            result = await client.upload(image, upload_path="frames")
        request = calls(mocked, "POST", STREAM_URL)[0]
    assert result.file_url.endswith("/frame.png")
    assert result.expires_at is not None
    content_type = request.kwargs["headers"]["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    body: bytes = request.kwargs["data"]
    assert b'filename="frame.png"' in body
    assert PNG in body
    assert b'name="upload_path"\r\n\r\nframes' in body
    assert request.kwargs["headers"]["Authorization"] == f"Bearer {KEY}"


async def test_bytes_go_as_a_data_url_to_the_base64_endpoint() -> None:
    with aioresponses() as mocked:
        mocked.post(BASE64_URL, payload=uploaded("b.jpg"))
        async with make_client() as client:
            result = await client.upload(JPEG, filename="b.jpg")
        body = sent_json(mocked, BASE64_URL)
    assert result.file_name == "b.jpg"
    assert body["file_name"] == "b.jpg"
    prefix = "data:image/jpeg;base64,"
    assert body["base64_data"].startswith(prefix)
    assert base64.b64decode(body["base64_data"][len(prefix) :]) == JPEG


async def test_a_url_goes_to_the_url_endpoint() -> None:
    with aioresponses() as mocked:
        mocked.post(URL_URL, payload=uploaded("c.webp"))
        async with make_client() as client:
            await client.upload("https://example.com/c.webp", filename="c.webp")
        assert sent_json(mocked, URL_URL) == {
            "file_url": "https://example.com/c.webp",
            "file_name": "c.webp",
        }


# -- refused before any request --------------------------------------------------------


async def test_local_problems_send_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    pdf = tmp_path / "doc.png"
    pdf.write_bytes(b"%PDF-1.7 not an image")
    cases: list[tuple[Any, dict[str, Any], str, str]] = [
        (empty, {}, "source", "must not be empty"),
        (pdf, {}, "source", "JPEG, PNG, GIF or WebP"),
        (tmp_path / "missing.png", {}, "source", "readable file"),
        (PNG, {}, "filename", "is required when uploading bytes"),
        (b"", {"filename": "x.png"}, "source", "must not be empty"),
        ("ftp://example.com/a.png", {}, "source", "http(s) URL"),
        (PNG, {"filename": "a/b.png"}, "filename", "plain file name"),
    ]
    with aioresponses() as mocked:
        async with make_client() as client:
            for source, kwargs, field, rule in cases:
                with pytest.raises(InputValidationError) as info:
                    await client.upload(source, **kwargs)
                assert info.value.field == field
                assert rule in info.value.rule
        assert call_count(mocked) == 0


# -- errors, 429 and the gate ----------------------------------------------------------


async def test_a_detail_string_maps_to_the_error_tree() -> None:
    with aioresponses() as mocked:
        mocked.post(
            BASE64_URL, status=400, payload={"detail": "Unsupported file type: image/svg+xml"}
        )
        async with make_client() as client:
            with pytest.raises(BadRequestError, match="Unsupported file type") as info:
                await client.upload(PNG, filename="a.png")
        assert call_count(mocked) == 1
    assert info.value.status_code == 400
    assert info.value.body == {"detail": "Unsupported file type: image/svg+xml"}


async def test_a_422_detail_list_names_the_field(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    detail = [{"loc": ["body", "file"], "msg": "field required", "type": "value_error.missing"}]
    with aioresponses() as mocked:
        mocked.post(STREAM_URL, status=422, payload={"detail": detail})
        mocked.post(URL_URL, status=401, payload={"detail": "Not authenticated"})
        async with make_client() as client:
            with pytest.raises(BadRequestError, match=r"body\.file: field required") as info:
                await client.upload(image)
            assert info.value.status_code == 422
            with pytest.raises(AuthenticationError, match="Not authenticated"):
                await client.upload("https://example.com/a.png")
        assert call_count(mocked) == 2  # 4xx are final: no retries


async def test_a_429_holds_the_upload_for_its_retry_after() -> None:
    clock = VirtualClock()
    with aioresponses() as mocked:
        mocked.post(
            URL_URL,
            status=429,
            payload={"detail": "Rate limit exceeded"},
            headers={"Retry-After": "7"},
        )
        mocked.post(URL_URL, payload=uploaded())
        async with make_client(clock) as client:
            result = await client.upload("https://example.com/a.png")
        assert len(calls(mocked, "POST", URL_URL)) == 2
    assert result.file_name == "a.png"
    assert clock.sleeps == [pytest.approx(7.0)]
    assert clock.monotonic() >= 7.0


async def test_a_429_without_retry_after_waits_a_slot_of_the_documented_limit() -> None:
    clock = VirtualClock()
    with aioresponses() as mocked:
        mocked.post(URL_URL, status=429, payload={"detail": "Rate limit exceeded"})
        mocked.post(URL_URL, payload=uploaded())
        async with make_client(clock) as client:
            await client.upload("https://example.com/a.png")
    assert clock.sleeps == [pytest.approx(12.0)]


async def test_a_long_retry_after_is_raised_not_slept() -> None:
    clock = VirtualClock()
    with aioresponses() as mocked:
        mocked.post(
            URL_URL,
            status=429,
            payload={"detail": "Rate limit exceeded"},
            headers={"Retry-After": "600"},
        )
        async with make_client(clock) as client:
            with pytest.raises(RateLimitError) as info:
                await client.upload("https://example.com/a.png")
        assert call_count(mocked) == 1
    assert info.value.retry_after == pytest.approx(600.0)
    assert clock.sleeps == []


async def test_429s_on_every_attempt_end_in_rate_limit_error() -> None:
    clock = VirtualClock()
    with aioresponses() as mocked:
        for _ in range(2):
            mocked.post(URL_URL, status=429, payload={"detail": "Rate limit exceeded"})
        async with make_client(clock, retry=RetryPolicy(max_attempts=2)) as client:
            with pytest.raises(RateLimitError):
                await client.upload("https://example.com/a.png")
        assert call_count(mocked) == 2


async def test_a_server_error_is_retried_because_an_upload_creates_no_paid_job() -> None:
    with aioresponses() as mocked:
        mocked.post(URL_URL, status=500, payload={"detail": "Upload failed: S3 connection error"})
        mocked.post(URL_URL, payload=uploaded())
        async with make_client() as client:
            await client.upload("https://example.com/a.png")
        assert len(calls(mocked, "POST", URL_URL)) == 2


async def test_the_sixth_upload_in_a_minute_waits_for_the_window() -> None:
    clock = VirtualClock()
    with aioresponses() as mocked:
        for _ in range(6):
            mocked.post(URL_URL, payload=uploaded())
        async with make_client(clock) as client:
            for _ in range(5):
                await client.upload("https://example.com/a.png")
            assert clock.monotonic() == 0.0
            await client.upload("https://example.com/a.png")
    assert clock.monotonic() == pytest.approx(60.0)


async def test_the_gate_is_shared_and_a_throttle_holds_every_waiter() -> None:
    clock = VirtualClock()
    gate = UploadGate(clock=clock, limit=2, window=10.0)
    await gate.acquire()
    gate.on_throttle(3.0)
    await gate.acquire()
    assert clock.monotonic() == pytest.approx(3.0)
    await gate.acquire()  # third in the window: waits for the first to leave it
    assert clock.monotonic() == pytest.approx(10.0)
    assert gate.grants == 3
    assert gate.throttles == 1
    with pytest.raises(ValueError, match="limit"):
        UploadGate(clock=clock, limit=0)
