"""Uploads: local files, bytes and remote URLs through ``/api/common/upload/{stream,base64,url}``.

What the upload pages (``api-manual/file-series/*``) state, checked here before a request:

- only JPEG, PNG, GIF and WebP images, one per request; the type is read from the bytes
  ("the system automatically identifies the file type from the binary data"), not the name;
- an empty file is refused ("File is empty");
- a URL must be public HTTP or HTTPS (its type can only be checked by the server);
- at most 5 uploads per minute per API key, then 429.

The pages state no size limit, so none is enforced here (the platform's other brand
documents 100 MiB for videos, not for Vidgo images). An upload lives 72 hours.

One :class:`UploadGate` per client paces every upload of that client: at most 5 grants in
any 60 s window, and a 429 (with its ``Retry-After``, or a fifth of the window without one)
holds every waiter.
"""

from __future__ import annotations

import base64
import math
import os
import secrets
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import attrs

from ._clock import Clock
from ._config import RetryPolicy
from ._converter import structure
from ._errors import InputValidationError, RateLimitError, ValidationIssue
from ._http import RawBody, Transport
from ._image_types import ALLOWED_IMAGE_TYPES, sniff_image_type
from ._models import UploadedFile

__all__ = [
    "ALLOWED_IMAGE_TYPES",
    "BASE64_PATH",
    "STREAM_PATH",
    "UPLOADS_PER_WINDOW",
    "UPLOAD_WINDOW",
    "URL_PATH",
    "UploadGate",
    "UploadSource",
    "Uploader",
    "check_file_name",
    "check_image_bytes",
    "multipart_body",
    "sniff_image_type",
]

STREAM_PATH = "/api/common/upload/stream"
BASE64_PATH = "/api/common/upload/base64"
URL_PATH = "/api/common/upload/url"

# "Rate Limit: 5 requests per minute per API key" (each of the three upload pages).
UPLOADS_PER_WINDOW = 5
UPLOAD_WINDOW = 60.0
# A 429 without Retry-After: wait the average spacing of the documented limit.
_NO_HINT_WAIT = UPLOAD_WINDOW / UPLOADS_PER_WINDOW
_MAX_FILE_NAME = 255

UploadSource = str | os.PathLike[str] | bytes


def check_image_bytes(data: bytes, field: str) -> tuple[str | None, list[ValidationIssue]]:
    """Return (MIME type, issues) for the bytes of an upload: non-empty, a supported image."""
    if not data:
        return None, [ValidationIssue(field, "must not be empty (Vidgo refuses empty files)", 0)]
    mime = sniff_image_type(data)
    if mime is None:
        return None, [
            ValidationIssue(
                field,
                "must be a JPEG, PNG, GIF or WebP image (the only types Vidgo uploads accept); "
                "convert it first",
                data[:8],
            )
        ]
    return mime, []


def check_file_name(name: object, field: str = "filename") -> list[ValidationIssue]:
    """Check a file name sent as ``file_name``: a plain name, no folders or control characters."""
    if not isinstance(name, str) or not name.strip():
        return [ValidationIssue(field, "must be a non-empty file name such as 'frame.png'", name)]
    if len(name) > _MAX_FILE_NAME:
        return [ValidationIssue(field, f"must be at most {_MAX_FILE_NAME} characters", name)]
    if any(ch in name for ch in '/\\"') or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return [
            ValidationIssue(
                field,
                "must be a plain file name without folders, quotes or control characters "
                "(use upload_path for a folder)",
                name,
            )
        ]
    return []


def multipart_body(
    data: bytes,
    *,
    filename: str,
    content_type: str,
    fields: Mapping[str, str],
    boundary: str,
) -> RawBody:
    """Build a ``multipart/form-data`` body: the ``file`` part, then each text field."""
    parts: list[bytes] = []
    marker = f"--{boundary}\r\n".encode("ascii")
    parts.append(marker)
    parts.append(
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
    )
    parts.append(data)
    parts.append(b"\r\n")
    for name, value in fields.items():
        parts.append(marker)
        parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        parts.append(value.encode("utf-8"))
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return RawBody(b"".join(parts), f"multipart/form-data; boundary={boundary}")


class UploadGate:
    """At most ``limit`` uploads per ``window`` seconds for one client, and a 429 holds everyone.

    Grants are remembered for one window; a caller waits until the oldest one leaves it.
    ``on_throttle`` pushes a shared not-before time (the server's ``Retry-After``).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        limit: int = UPLOADS_PER_WINDOW,
        window: float = UPLOAD_WINDOW,
    ) -> None:
        if limit < 1 or not (math.isfinite(window) and window > 0):
            raise ValueError(
                f"an upload gate needs limit >= 1 and window > 0 (got {limit}, {window})"
            )
        self._clock = clock
        self.limit = limit
        self.window = window
        self._granted: deque[float] = deque()
        self._not_before = -math.inf
        self._lock = anyio.Lock()
        self.grants = 0
        self.throttles = 0

    def __repr__(self) -> str:
        return f"UploadGate(limit={self.limit}, window={self.window:g})"

    def _ready_at(self, now: float) -> float:
        granted = self._granted
        while granted and granted[0] <= now - self.window:
            granted.popleft()
        ready = self._not_before
        if len(granted) >= self.limit:
            ready = max(ready, granted[0] + self.window)
        return ready

    async def acquire(self) -> None:
        """Wait for a turn (FIFO among the waiters of this client)."""
        async with self._lock:
            while True:
                now = self._clock.monotonic()
                ready = self._ready_at(now)
                if now >= ready:
                    break
                await self._clock.sleep(ready - now)
            self._granted.append(now)
            self.grants += 1

    def on_throttle(self, retry_after: float | None) -> float:
        """Record a 429: hold every upload for ``retry_after`` (or a slot's spacing); return it."""
        wait = _NO_HINT_WAIT if retry_after is None or not retry_after > 0 else retry_after
        self.throttles += 1
        self._not_before = max(self._not_before, self._clock.monotonic() + wait)
        return wait


@attrs.frozen
class _Prepared:
    """One checked upload, ready to send."""

    path: str
    json_body: Mapping[str, Any] | None = None
    content: RawBody | None = None


def _is_url(source: str) -> bool:
    scheme = source.split(":", 1)[0].lower() if ":" in source else ""
    return scheme in ("http", "https") or "://" in source


class Uploader:
    """Check and send uploads for one client, all through one :class:`UploadGate`."""

    def __init__(
        self, transport: Transport, *, clock: Clock, gate: UploadGate | None = None
    ) -> None:
        self._transport = transport
        self._clock = clock
        self.gate = gate if gate is not None else UploadGate(clock=clock)

    async def upload(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        upload_path: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> UploadedFile:
        """Check ``source`` locally, send it through its endpoint and return the stored file."""
        prepared = await self.prepare(source, filename=filename, upload_path=upload_path)
        return await self.send(prepared, retry=retry)

    async def prepare(
        self, source: UploadSource, *, filename: str | None, upload_path: str | None
    ) -> _Prepared:
        """Check everything the docs state and build the request (reads a local file)."""
        issues: list[ValidationIssue] = []
        if filename is not None:
            issues += check_file_name(filename)
        if upload_path is not None and (
            not isinstance(upload_path, str) or not upload_path.strip()
        ):
            issues.append(
                ValidationIssue("upload_path", "must be a non-empty folder name", upload_path)
            )
        extra: dict[str, str] = {}
        if upload_path is not None:
            extra["upload_path"] = upload_path
        if filename is not None:
            extra["file_name"] = filename
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            if filename is None:
                issues.append(
                    ValidationIssue(
                        "filename",
                        "is required when uploading bytes (e.g. filename='frame.png')",
                        None,
                    )
                )
            mime, problems = check_image_bytes(data, "source")
            issues += problems
            if issues:
                raise InputValidationError(issues)
            encoded = base64.b64encode(data).decode("ascii")
            body = {"base64_data": f"data:{mime};base64,{encoded}", **extra}
            return _Prepared(BASE64_PATH, json_body=body)
        if isinstance(source, str) and _is_url(source):
            parts = urlsplit(source)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                issues.append(
                    ValidationIssue(
                        "source",
                        "must be a public http(s) URL, a local path or bytes",
                        source,
                    )
                )
            if issues:
                raise InputValidationError(issues)
            return _Prepared(URL_PATH, json_body={"file_url": source, **extra})
        checked: object = source  # typed callers cannot get here; untyped ones can
        if not isinstance(checked, (str, os.PathLike)):
            issues.append(
                ValidationIssue("source", "must be a local path, bytes or an http(s) URL", source)
            )
            raise InputValidationError(issues)
        path = Path(source)
        try:
            data = await anyio.to_thread.run_sync(path.read_bytes)
        except OSError as exc:
            issues.append(
                ValidationIssue(
                    "source", f"must be a readable file ({exc.strerror or exc})", str(path)
                )
            )
            raise InputValidationError(issues) from exc
        mime, problems = check_image_bytes(data, "source")
        issues += problems
        if issues or mime is None:
            raise InputValidationError(issues)
        # The part's own name is informative only; an odd local name is not sent as is.
        part_name = path.name if not check_file_name(path.name) else "upload"
        content = multipart_body(
            data,
            filename=part_name,
            content_type=mime,
            fields=extra,
            boundary=secrets.token_hex(16),
        )
        return _Prepared(STREAM_PATH, content=content)

    async def send(self, prepared: _Prepared, *, retry: RetryPolicy | None = None) -> UploadedFile:
        """Send a prepared upload through the gate, riding out 429s; return the stored file.

        Raises:
            RateLimitError: a ``Retry-After`` above ``RetryPolicy.max_retry_after``, or
                429s on every attempt.
            APIStatusError, APIConnectionError: the upload failed.
        """
        policy = retry if retry is not None else self._transport.retry
        # 429s come back here, so that the gate holds every upload of the client; the
        # transport still retries connection errors and 5xx itself.
        statuses = policy.retry_statuses - {429}
        inner = attrs.evolve(policy, retry_statuses=statuses)  # type: ignore[arg-type]
        attempt = 0
        while True:
            attempt += 1
            await self.gate.acquire()
            try:
                # Retried like an idempotent GET (idempotent=True), unlike a submit: an upload
                # creates no paid job, so sending it twice at worst stores one more temporary
                # file, which Vidgo deletes after 72 hours.
                response = await self._transport.request(
                    "POST",
                    prepared.path,
                    json_body=prepared.json_body,
                    content=prepared.content,
                    idempotent=True,
                    retry=inner,
                )
            except RateLimitError as exc:
                too_long = exc.retry_after is not None and exc.retry_after > policy.max_retry_after
                if too_long or attempt >= policy.max_attempts:
                    raise
                self.gate.on_throttle(exc.retry_after)
                continue
            return structure(response.data, UploadedFile)
