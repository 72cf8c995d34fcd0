"""The emulator's upload endpoints: ``/api/common/upload/{stream,base64,url}`` and the stored files.

As documented (``api-manual/file-series/*``): JPEG, PNG, GIF and WebP only, the type read
from the bytes; an empty file is refused; FastAPI-style ``{"detail": ...}`` error bodies
(a list for a missing field, 422); at most 5 uploads per minute per API key, then 429; the
``{success, code, msg, data}`` answer with ``expires_at`` 72 hours after ``upload_time``.
The bytes are kept in memory and served back at ``GET /uploads/<file_id>/<file_name>``
(public, like a storage URL). A URL upload is fetched only from a loopback host: tests
never reach the internet.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import json
import math
import secrets
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs
from aiohttp import web

from .._image_types import ALLOWED_IMAGE_TYPES, sniff_image_type

__all__ = ["EmulatedUploads", "StoredUpload"]

# "5 requests per minute per API key" (each upload page), in emulated seconds.
UPLOAD_LIMIT = 5
UPLOAD_WINDOW = 60.0
LIFETIME = timedelta(hours=72)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
_MAX_FETCH_BYTES = 16 * 1024 * 1024


@attrs.frozen
class StoredUpload:
    """One stored file."""

    file_id: str
    file_name: str
    original_name: str
    mime_type: str
    data: bytes
    upload_path: str
    key: str
    endpoint: str


def _detail(status: int, detail: object, **headers: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers or None)


def _missing(field: str) -> web.Response:
    return _detail(
        422, [{"loc": ["body", field], "msg": "field required", "type": "value_error.missing"}]
    )


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EmulatedUploads:
    """The upload routes and the stored files of one emulator.

    Args:
        caller: returns the API key of a request when it is a known one, else ``None``.
        time_scale: real seconds per emulated second (scales the rate-limit window).
    """

    def __init__(self, *, caller: Callable[[web.Request], str | None], time_scale: float) -> None:
        self._caller = caller
        self._time_scale = time_scale
        self._windows: dict[str, deque[float]] = {}
        self.files: dict[str, StoredUpload] = {}
        self.accepted: Counter[str] = Counter()  # by endpoint
        self.refused: Counter[int] = Counter()  # by HTTP status
        self.served = 0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the three upload endpoints and the file route."""
        router.add_post("/api/common/upload/stream", self.stream)
        router.add_post("/api/common/upload/base64", self.base64)
        router.add_post("/api/common/upload/url", self.url)
        router.add_get("/uploads/{file_id}/{name}", self.serve)

    @property
    def total(self) -> int:
        """Uploads accepted on every endpoint."""
        return sum(self.accepted.values())

    # ----------------------------------------------------------------- gate

    def _admit(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        """Return (key, None) for an authorised request within the limit, else (None, refusal)."""
        key = self._caller(request)
        if key is None:
            self.refused[401] += 1
            return None, _detail(401, "Not authenticated")
        now = asyncio.get_running_loop().time()
        window = UPLOAD_WINDOW * self._time_scale
        sent = self._windows.setdefault(key, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) >= UPLOAD_LIMIT:
            self.refused[429] += 1
            wait = sent[0] + window - now
            return None, _detail(
                429,
                "Rate limit exceeded",
                **{
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
                },
            )
        sent.append(now)
        return key, None

    def _refuse(self, status: int, detail: str) -> web.Response:
        self.refused[status] += 1
        return _detail(status, detail)

    # ----------------------------------------------------------------- endpoints

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Handle ``POST /api/common/upload/stream`` (multipart ``file``)."""
        key, refusal = self._admit(request)
        if refusal is not None or key is None:
            return refusal or self._refuse(401, "Not authenticated")
        if not request.content_type.startswith("multipart/"):
            return _missing("file")
        form = await request.post()
        part = form.get("file")
        if not isinstance(part, web.FileField):
            return _missing("file")
        data = part.file.read()
        name = _text(form, "file_name", "fileName")
        path = _text(form, "upload_path", "uploadPath")
        if not data:
            return self._refuse(400, "File is empty")
        return self._store(request, key, "stream", data, name, path, part.filename or "")

    async def base64(self, request: web.Request) -> web.StreamResponse:
        """Handle ``POST /api/common/upload/base64``."""
        key, refusal = self._admit(request)
        if refusal is not None or key is None:
            return refusal or self._refuse(401, "Not authenticated")
        body = await _json_object(request)
        raw = body.get("base64_data") if body is not None else None
        if not isinstance(raw, str):
            return _missing("base64_data")
        text = raw
        if raw.startswith("data:"):
            header, sep, text = raw.partition(",")
            if not sep or not header.endswith(";base64"):
                return self._refuse(400, "Invalid data URL format")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return self._refuse(400, "Invalid Base64 encoding")
        if not data:
            return self._refuse(400, "Invalid file data")
        name, path = _opt(body, "file_name"), _opt(body, "upload_path")
        return self._store(request, key, "base64", data, name, path, name or "")

    async def url(self, request: web.Request) -> web.StreamResponse:
        """Handle ``POST /api/common/upload/url`` (loopback URLs only, see the module docstring)."""
        key, refusal = self._admit(request)
        if refusal is not None or key is None:
            return refusal or self._refuse(401, "Not authenticated")
        body = await _json_object(request)
        source = body.get("file_url") if body is not None else None
        if not isinstance(source, str):
            return _missing("file_url")
        parts = urlsplit(source)
        if parts.scheme not in ("http", "https") or not _is_loopback(parts.hostname):
            return self._refuse(
                400,
                f"Failed to download file: {source!r} (the emulator fetches loopback URLs only)",
            )
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(source, timeout=aiohttp.ClientTimeout(total=10)) as answer,
            ):
                if answer.status != 200:
                    return self._refuse(400, f"Failed to download file: HTTP {answer.status}")
                data = await answer.content.read(_MAX_FETCH_BYTES)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return self._refuse(400, f"Failed to download file: {exc}")
        name, path = _opt(body, "file_name"), _opt(body, "upload_path")
        original = parts.path.rsplit("/", 1)[-1]
        return self._store(request, key, "url", data, name, path, original)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Handle ``GET /uploads/<file_id>/<name>``: the stored bytes (no key needed)."""
        stored = self.files.get(request.match_info["file_id"])
        if stored is None or stored.file_name != request.match_info["name"]:
            return _detail(404, "File not found")
        self.served += 1
        return web.Response(body=stored.data, content_type=stored.mime_type)

    # ----------------------------------------------------------------- storing

    def _store(
        self,
        request: web.Request,
        key: str,
        endpoint: str,
        data: bytes,
        name: str | None,
        path: str | None,
        original: str,
    ) -> web.Response:
        if not data:
            return self._refuse(400, "Invalid file data")
        mime = sniff_image_type(data)
        if mime is None or mime not in ALLOWED_IMAGE_TYPES:
            return self._refuse(400, "Unsupported file type: application/octet-stream")
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        file_id = hashlib.md5(data + secrets.token_bytes(8)).hexdigest()  # noqa: S324 - an id
        if not name or "/" in name or "\\" in name:
            name = f"{now:%Y%m%d%H%M%S}_{secrets.token_hex(4)}.{_EXTENSIONS[mime]}"
        stored = StoredUpload(
            file_id=file_id,
            file_name=name,
            original_name=original or name,
            mime_type=mime,
            data=data,
            upload_path=f"temp/{path.strip('/') if path else 'uploads'}",
            key=key,
            endpoint=endpoint,
        )
        self.files[file_id] = stored
        self.accepted[endpoint] += 1
        url = f"{request.scheme}://{request.host}/uploads/{file_id}/{name}"
        data_out = {
            "file_id": file_id,
            "file_name": name,
            "original_name": stored.original_name,
            "file_size": len(data),
            "mime_type": mime,
            "upload_path": stored.upload_path,
            "file_url": url,
            "download_url": url,
            "upload_time": now.isoformat(timespec="microseconds"),
            "expires_at": (now + LIFETIME).isoformat(timespec="microseconds"),
        }
        return web.json_response(
            {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data_out}
        )


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _opt(body: dict[str, Any] | None, name: str) -> str | None:
    value = None if body is None else body.get(name)
    return value if isinstance(value, str) and value else None


def _text(form: Any, *names: str) -> str | None:
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value:
            return value
    return None
