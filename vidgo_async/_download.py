"""Downloads of result files: safe URLs, streaming to a temporary file, one deadline per file.

A download never carries the API key (it has its own session with no credentials), only
fetches URLs that pass ``_urls.check_result_url`` and connects only to addresses that
``_hosts`` allows: a guarding DNS resolver checks every answer, on every redirect hop, and a
socket hook checks the address each connection is actually opened to (IP literals skip the
resolver). Bytes stream to ``<name>.part`` opened with ``O_EXCL | O_NOFOLLOW``; a short or
oversized body deletes the partial file; a complete one is linked into place without ever
replacing an existing file with different content (``_partfiles``); names come from
``_filenames``. Each file has an overall deadline
(``Timeout.download``) across every attempt and the whole body, so a server that drips
bytes cannot hold a download longer than that.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio.to_thread
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ._backoff import full_jitter
from ._clock import Clock
from ._config import Timeout
from ._errors import DownloadError, UnsafeURLError
from ._filenames import ALLOWED_EXTENSIONS, extension_for, file_name_for
from ._hosts import is_blocked_address
from ._http import USER_AGENT, translate_exception
from ._partfiles import (
    WRITE_BUFFER,
    FileId,
    finish,
    open_part,
    place,
    remove_quietly,
    write_all,
)
from ._urls import check_result_url

__all__ = [
    "ALLOWED_EXTENSIONS",
    "BlockedAddressError",
    "Downloader",
    "ExpiredURLError",
    "GuardedResolver",
    "GuardedSockets",
    "extension_for",
    "file_name_for",
]

logger = logging.getLogger("vidgo_async")

MAX_REDIRECTS = 3
DOWNLOAD_ATTEMPTS = 3
_CHUNK_SIZE = 64 * 1024
_EXPIRED_STATUSES = frozenset({403, 404, 410})
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class ExpiredURLError(DownloadError):
    """The storage answered 403/404/410: the signed URL probably expired."""


class _TransientDownloadError(DownloadError):
    """A failure worth another attempt (connection, 5xx, short body)."""


class BlockedAddressError(OSError):
    """Raised inside the resolver so aiohttp aborts before connecting."""

    def __init__(self, host: str, address: str) -> None:
        what = f"{host} resolves to {address}" if host != address else address
        super().__init__(f"{what}, which is not a public address, was not connected to")
        self.host = host
        self.address = address


class GuardedResolver(AbstractResolver):
    """A DNS resolver that refuses hosts resolving to blocked (private, loopback...) addresses."""

    def __init__(self, inner: AbstractResolver | None = None, *, allow_loopback: bool) -> None:
        self._inner = inner
        self._owns_inner = inner is None
        self.allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and check every address before aiohttp may connect to one."""
        if self._inner is None:
            self._inner = aiohttp.DefaultResolver()
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = str(result["host"])
            if is_blocked_address(address, allow_loopback=self.allow_loopback):
                raise BlockedAddressError(host.rstrip("."), address)
        return results

    async def close(self) -> None:
        """Close the inner resolver if this one created it."""
        if self._inner is not None and self._owns_inner:
            await self._inner.close()


class GuardedSockets:
    """aiohttp's socket factory: refuse to open a socket to a blocked address.

    The resolver never sees IP literals (aiohttp skips it for them), so this is the check
    on the address that is actually connected to, whatever the URL said.
    """

    def __init__(self, *, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback

    def __call__(self, addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if is_blocked_address(address, allow_loopback=self.allow_loopback):
            raise BlockedAddressError(address, address)
        return socket.socket(family=family, type=type_, proto=proto)


class Downloader:
    """Fetch result files with their own credential-free session.

    Args:
        clock: sleeps between attempts.
        timeout: ``connect`` and ``read`` bound each attempt (no total: files are large).
        max_bytes: the largest file accepted.
        allow_loopback: accept loopback URLs (the client talks to a local emulator).
        resolver: the DNS resolver to guard (tests inject a fake one).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        timeout: Timeout,
        max_bytes: int,
        allow_loopback: bool,
        resolver: AbstractResolver | None = None,
        attempts: int = DOWNLOAD_ATTEMPTS,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_loopback = allow_loopback
        self.attempts = attempts
        self._inner_resolver = resolver
        self._resolver: GuardedResolver | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # The .part paths being written, with how many downloads use (or wait for) each.
        self._parts: dict[Path, tuple[anyio.Lock, int]] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._closed:
                # A download still retrying when its client closed: no new session, which
                # nothing would close.
                raise RuntimeError(
                    "This VidgoClient was closed during the download. HINT: finish downloads "
                    "inside the client's `async with` block."
                )
            self._resolver = GuardedResolver(
                self._inner_resolver, allow_loopback=self.allow_loopback
            )
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                use_dns_cache=False,
                socket_factory=GuardedSockets(allow_loopback=self.allow_loopback),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
                auto_decompress=False,
                trust_env=False,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the download session (idempotent); a download still running fails."""
        self._closed = True
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        try:
            if session is not None:
                await session.close()
        finally:
            if resolver is not None:
                await resolver.close()

    async def ensure_directory(self, directory: Path) -> None:
        """Create ``directory`` (and parents) if missing."""
        await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))

    async def fetch(
        self,
        url: str,
        *,
        directory: Path,
        stem: str,
        task_id: str | None,
        hint_type: str | None = None,
    ) -> Path:
        """Download ``url`` into ``directory`` as ``<stem>.<ext>``; return the path."""
        part = directory / f"{stem}.part"
        async with self._only_one(part):
            content_type, written = await self._fetch_with_retries(url, part, task_id)
            ext = extension_for(url, content_type or hint_type)
            return await self._place(part, written, directory / f"{stem}.{ext}", url, task_id)

    async def fetch_to(self, url: str, destination: Path, *, task_id: str | None) -> Path:
        """Download ``url`` to exactly ``destination``; return it."""
        part = destination.with_name(destination.name + ".part")
        async with self._only_one(part):
            _, written = await self._fetch_with_retries(url, part, task_id)
            return await self._place(part, written, destination, url, task_id)

    @asynccontextmanager
    async def _only_one(self, part: Path) -> AsyncIterator[None]:
        """Let one download at a time write ``part`` (the same file, asked for twice, waits).

        Another process writing the same name is caught when the file is placed (``place``).
        """
        lock, users = self._parts.get(part) or (anyio.Lock(), 0)
        self._parts[part] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._parts[part]
            if users == 1:
                del self._parts[part]
            else:
                self._parts[part] = (lock, users - 1)

    async def _place(
        self, part: Path, written: FileId, destination: Path, url: str, task_id: str | None
    ) -> Path:
        try:
            outcome = await anyio.to_thread.run_sync(place, part, destination, written)
        except OSError as exc:
            remove_quietly(part, written)
            raise DownloadError(
                f"Could not move the download into {destination}: {exc}", task_id=task_id, url=url
            ) from exc
        if outcome == "replaced":
            raise DownloadError(
                f"Another download of {destination.name} (another process?) replaced this "
                f"one's partial file {part.name}; nothing was kept. HINT: download a task "
                "into one directory from one process at a time.",
                task_id=task_id,
                url=url,
            )
        if outcome in ("symlink", "different"):
            remove_quietly(part, written)
            what = "a symbolic link" if outcome == "symlink" else "a different file"
            raise DownloadError(
                f"{destination} already exists as {what}; it was not overwritten.",
                task_id=task_id,
                url=url,
            )
        return destination

    async def _fetch_with_retries(
        self, url: str, part: Path, task_id: str | None
    ) -> tuple[str | None, FileId]:
        """Download ``url`` into ``part``; return its content type and the file written."""
        try:
            check_result_url(url, allow_loopback=self.allow_loopback)
        except UnsafeURLError as exc:
            exc.task_id = task_id
            raise
        deadline = self.timeout.download
        if deadline is None:
            return await self._attempts(url, part, task_id)
        with anyio.move_on_after(deadline):
            return await self._attempts(url, part, task_id)
        # Cancelled at the deadline: ``_save`` has already closed and removed the .part file.
        raise DownloadError(
            f"The download did not finish within Timeout.download={deadline:g} s "
            "(the file is too large or the storage too slow); nothing was kept.",
            task_id=task_id,
            url=url,
        )

    async def _attempts(
        self, url: str, part: Path, task_id: str | None
    ) -> tuple[str | None, FileId]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._fetch_once(url, part, task_id)
            except _TransientDownloadError as exc:
                if attempt >= self.attempts:
                    raise DownloadError(str(exc), task_id=task_id, url=url) from exc
                delay = full_jitter(attempt, base=0.5, cap=5.0, rng=self.clock.rng)
                logger.info(
                    "vidgo retrying download of %s in %.2f s (attempt %d of %d): %s",
                    task_id or url,
                    delay,
                    attempt + 1,
                    self.attempts,
                    exc,
                )
                await self.clock.sleep(delay)

    async def _fetch_once(
        self, url: str, part: Path, task_id: str | None
    ) -> tuple[str | None, FileId]:
        session = self._open_session()
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.timeout.connect,
            sock_connect=self.timeout.connect,
            sock_read=self.timeout.read,
        )
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            try:
                async with session.get(current, allow_redirects=False, timeout=timeout) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location or hop == MAX_REDIRECTS:
                            raise DownloadError(
                                "Too many redirects or a redirect without a Location.",
                                task_id=task_id,
                                url=url,
                            )
                        target = str(response.url.join(URL(location)))
                        current = check_result_url(target, allow_loopback=self.allow_loopback)
                        continue
                    return await self._save(response, part, task_id, url)
            except BlockedAddressError as exc:
                raise UnsafeURLError(str(exc), task_id=task_id, url=url) from exc
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, BlockedAddressError):
                    raise UnsafeURLError(str(exc.os_error), task_id=task_id, url=url) from exc
                raise self._transient(exc, current, task_id) from exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise self._transient(exc, current, task_id) from exc
            except UnsafeURLError as exc:
                exc.task_id = exc.task_id or task_id
                raise
        raise DownloadError("Too many redirects.", task_id=task_id, url=url)  # pragma: no cover

    @staticmethod
    def _transient(exc: BaseException, url: str, task_id: str | None) -> DownloadError:
        error = translate_exception(exc, method="GET", url=url)
        return _TransientDownloadError(f"Download failed: {error}", task_id=task_id, url=url)

    async def _save(
        self, response: aiohttp.ClientResponse, part: Path, task_id: str | None, url: str
    ) -> tuple[str | None, FileId]:
        status = response.status
        if status in _EXPIRED_STATUSES:
            raise ExpiredURLError(
                f"The result URL answered HTTP {status}; it may have expired.",
                task_id=task_id,
                url=url,
            )
        if status in _RETRY_STATUSES:
            raise _TransientDownloadError(
                f"The storage answered HTTP {status}.", task_id=task_id, url=url
            )
        if status != 200:
            raise DownloadError(f"The storage answered HTTP {status}.", task_id=task_id, url=url)
        expected = response.content_length
        if expected is not None and expected > self.max_bytes:
            raise DownloadError(
                f"The file is {expected} bytes, above max_download_bytes={self.max_bytes}.",
                task_id=task_id,
                url=url,
            )
        try:
            fd, part_id = await anyio.to_thread.run_sync(open_part, part)
        except OSError as exc:
            raise _disk_error(part, exc, task_id, url) from exc
        complete = False
        try:
            written = await self._stream(response, fd, part, task_id, url)
            if expected is not None and written != expected:
                raise _TransientDownloadError(
                    f"The body ended after {written} of {expected} bytes.", task_id=task_id, url=url
                )
            complete = True
        finally:
            if not complete:
                # Runs on cancellation too: these calls are quick and must not be skipped.
                os.close(fd)
                remove_quietly(part, part_id)
        try:
            await anyio.to_thread.run_sync(finish, fd)
        except OSError as exc:  # the flush to disk failed (ENOSPC, EIO): the file is not whole
            remove_quietly(part, part_id)
            raise _disk_error(part, exc, task_id, url) from exc
        content_type: Any = response.headers.get("Content-Type")
        return (content_type if isinstance(content_type, str) else None), part_id

    async def _stream(
        self, response: aiohttp.ClientResponse, fd: int, part: Path, task_id: str | None, url: str
    ) -> int:
        written = 0
        buffer = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_SIZE):
            written += len(chunk)
            if written > self.max_bytes:
                response.close()
                raise DownloadError(
                    f"The file is larger than max_download_bytes={self.max_bytes}.",
                    task_id=task_id,
                    url=url,
                )
            buffer += chunk
            if len(buffer) >= WRITE_BUFFER:
                data, buffer = bytes(buffer), bytearray()
                await _write(fd, data, part, task_id, url)
        if buffer:
            await _write(fd, bytes(buffer), part, task_id, url)
        return written


async def _write(fd: int, data: bytes, part: Path, task_id: str | None, url: str) -> None:
    """Write ``data`` to the ``.part`` file; a file-system error is this download's failure."""
    try:
        await anyio.to_thread.run_sync(write_all, fd, data)
    except OSError as exc:  # ENOSPC, EIO, EFBIG...: final for this file, never retried
        raise _disk_error(part, exc, task_id, url) from exc


def _disk_error(part: Path, exc: OSError, task_id: str | None, url: str) -> DownloadError:
    """The ``DownloadError`` of a local file-system failure, naming the file and the OS error.

    Only the disk's own calls are mapped here: a network ``OSError`` (a reset, a timeout)
    is translated where the response is read, and retried.
    """
    return DownloadError(
        f"Could not write the download to {part}: {exc}; nothing was kept.",
        task_id=task_id,
        url=url,
    )
