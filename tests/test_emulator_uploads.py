"""The emulator's upload endpoints: validation, the 5/min/key limit, errors, serving files back."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from vidgo_async import BadRequestError
from vidgo_async.testing import Emulator

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
GIF = b"GIF89a" + b"\x02" * 20
STREAM = "/api/common/upload/stream"
BASE64 = "/api/common/upload/base64"
URL = "/api/common/upload/url"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post_json(
    http: aiohttp.ClientSession, emu: Emulator, path: str, body: Any, key: str | None = None
) -> tuple[int, Any, Any]:
    async with http.post(emu.base_url + path, json=body, headers=auth(key or emu.api_key)) as r:
        return r.status, await r.json(), r.headers


async def post_file(
    http: aiohttp.ClientSession, emu: Emulator, data: bytes, **fields: str
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="x.bin", content_type="application/octet-stream")
    for name, value in fields.items():
        form.add_field(name, value)
    async with http.post(emu.base_url + STREAM, data=form, headers=auth(emu.api_key)) as r:
        return r.status, await r.json()


async def test_the_three_endpoints_store_and_serve_the_file(http: aiohttp.ClientSession) -> None:
    async with Emulator(time_scale=0.01) as emu:
        code, body = await post_file(http, emu, PNG, file_name="a.png", upload_path="frames")
        assert code == 200
        assert (body["success"], body["code"]) == (True, 200)
        data = body["data"]
        assert data["file_url"].startswith(emu.base_url + "/uploads/")
        assert data["download_url"] == data["file_url"]
        assert (data["file_name"], data["mime_type"], data["file_size"]) == (
            "a.png",
            "image/png",
            len(PNG),
        )
        assert data["upload_path"] == "temp/frames"
        async with http.get(data["file_url"]) as r:  # public: no key needed
            assert r.status == 200
            assert await r.read() == PNG
        encoded = "data:image/gif;base64," + base64.b64encode(GIF).decode()
        code, body, _ = await post_json(http, emu, BASE64, {"base64_data": encoded})
        assert code == 200
        assert body["data"]["file_name"].endswith(".gif")
        code, body, _ = await post_json(http, emu, URL, {"file_url": data["file_url"]})
        assert code == 200
        async with http.get(body["data"]["file_url"]) as r:
            assert await r.read() == PNG
        async with http.get(emu.base_url + "/_emulator/stats", headers=auth(emu.api_key)) as r:
            assert (await r.json())["data"]["uploads_accepted"] == 3
    assert dict(emu.uploads.accepted) == {"stream": 1, "base64": 1, "url": 1}


async def test_documented_errors_use_detail_bodies(http: aiohttp.ClientSession) -> None:
    # Refused uploads count against the limit too: the last ones use a second key.
    async with Emulator(time_scale=0.01, other_api_keys=("key-b",)) as emu:
        assert await post_file(http, emu, b"") == (400, {"detail": "File is empty"})
        code, body = await post_file(http, emu, b"%PDF-1.7")
        assert code == 400
        assert body["detail"].startswith("Unsupported file type")
        code, body, _ = await post_json(http, emu, BASE64, {"base64_data": "@@@"})
        assert (code, body) == (400, {"detail": "Invalid Base64 encoding"})
        code, body, _ = await post_json(http, emu, BASE64, {"base64_data": "data:image/png,xyz"})
        assert (code, body) == (400, {"detail": "Invalid data URL format"})
        code, body, _ = await post_json(http, emu, BASE64, {})
        assert code == 422
        assert body["detail"][0]["loc"] == ["body", "base64_data"]
        code, body, _ = await post_json(
            http, emu, URL, {"file_url": "https://example.com/a.png"}, key="key-b"
        )
        assert code == 400
        assert body["detail"].startswith("Failed to download file")
        code, body, _ = await post_json(http, emu, URL, {"file_url": "x"}, key="wrong")
        assert (code, body) == (401, {"detail": "Not authenticated"})
    assert emu.uploads.total == 0


async def test_five_uploads_per_minute_per_key_then_429(http: aiohttp.ClientSession) -> None:
    encoded = base64.b64encode(PNG).decode()
    async with Emulator(time_scale=1.0, other_api_keys=("key-b",)) as emu:
        codes = [
            (await post_json(http, emu, BASE64, {"base64_data": encoded}))[0] for _ in range(5)
        ]
        code, body, headers = await post_json(http, emu, BASE64, {"base64_data": encoded})
        other, _, _ = await post_json(http, emu, BASE64, {"base64_data": encoded}, key="key-b")
    assert codes == [200] * 5
    assert (code, body) == (429, {"detail": "Rate limit exceeded"})
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert other == 200  # the limit is per key
    assert emu.uploads.refused[429] == 1


async def test_the_client_uploads_to_the_emulator(tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    image.write_bytes(PNG)
    async with Emulator(time_scale=0.01) as emu, emu.client() as client:
        from_path = await client.upload(image)
        from_bytes = await client.upload(GIF, filename="g.gif")
        from_url = await client.upload(from_path.file_url, filename="copy.png")
        with pytest.raises(BadRequestError, match="Failed to download file"):
            await client.upload("https://example.com/a.png")
        stored = {f.file_name: f.data for f in emu.uploads.files.values()}
    assert from_path.expires_at is not None
    assert from_path.upload_time is not None
    assert from_path.expires_at - from_path.upload_time == timedelta(hours=72)
    assert from_bytes.mime_type == "image/gif"
    assert from_url.file_name == "copy.png"
    assert stored["copy.png"] == PNG
    assert stored["g.gif"] == GIF
