"""Tests of downloads: names, streaming to .part, caps, retries, expiry, symlinks, SSRF, no key."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest
from _client_support import KEY, base_of, envelope, serve, task_data
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given
from hypothesis import strategies as st

import vidgo_async._download as download_module
from vidgo_async import (
    DownloadError,
    Task,
    TaskFile,
    TaskStatus,
    Timeout,
    UnsafeURLError,
    VidgoClient,
)
from vidgo_async._clock import VirtualClock
from vidgo_async._download import extension_for, file_name_for
from vidgo_async._partfiles import open_part, place, remove_quietly

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000


def _entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def _finished(task_id: str, *urls: str) -> Task:
    files = tuple(TaskFile(file_url=u, file_type="video") for u in urls)
    return Task(task_id=task_id, status=TaskStatus.FINISHED, files=files)


class _Storage:
    """A loopback storage + API server that records what it saw."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.seen: list[dict[str, str]] = []
        self.hits: dict[str, int] = {}
        self.app.router.add_get("/files/{name}", self.file)
        self.app.router.add_get("/short/{name}", self.short)
        self.app.router.add_get("/slow/{name}", self.slow)
        self.app.router.add_get("/expired/{name}", self.expired)
        self.app.router.add_get("/redirect", self.redirect)
        self.app.router.add_get("/api/generate/status/{task_id}", self.status)
        self.base = ""
        self.redirect_to = ""
        self.slow_started = anyio.Event()

    def _hit(self, request: web.Request) -> None:
        self.seen.append(dict(request.headers))
        self.hits[request.path] = self.hits.get(request.path, 0) + 1

    async def file(self, request: web.Request) -> web.Response:
        self._hit(request)
        kind = "image/png" if request.match_info["name"].endswith("noext") else "video/mp4"
        return web.Response(body=VIDEO, content_type=kind)

    async def short(self, request: web.Request) -> web.StreamResponse:
        self._hit(request)
        response = web.StreamResponse(headers={"Content-Length": str(len(VIDEO) * 3)})
        await response.prepare(request)
        await response.write(VIDEO)
        assert request.transport is not None
        request.transport.close()
        return response

    async def slow(self, request: web.Request) -> web.StreamResponse:
        """The file in two halves, 200 ms apart (downloads of it overlap)."""
        self._hit(request)
        response = web.StreamResponse(headers={"Content-Length": str(len(VIDEO))})
        response.content_type = "video/mp4"
        await response.prepare(request)
        self.slow_started.set()
        half = len(VIDEO) // 2
        await response.write(VIDEO[:half])
        await anyio.sleep(0.2)
        await response.write(VIDEO[half:])
        return response

    async def expired(self, request: web.Request) -> web.Response:
        self._hit(request)
        return web.Response(status=403, text="AccessDenied")

    async def redirect(self, request: web.Request) -> web.Response:
        self._hit(request)
        raise web.HTTPFound(location=self.redirect_to)

    async def status(self, request: web.Request) -> web.Response:
        self._hit(request)
        task_id = request.match_info["task_id"]
        files = [{"file_url": f"{self.base}/files/{task_id}.mp4", "file_type": "video"}]
        return web.json_response(envelope(task_data(task_id, "finished", files=files)))


@pytest.fixture
async def storage() -> Any:
    store = _Storage()
    async with serve(store.app) as server:
        store.base = base_of(server)
        yield store


def _client(base_url: str, **kwargs: Any) -> VidgoClient:
    return VidgoClient(KEY, base_url=base_url, _clock=VirtualClock(), **kwargs)


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task_id",
    [
        "../../etc/passwd",
        "a/b",
        "..\\evil",
        "/abs",
        "nul\x00byte",
        "rtl\u202eexe.mp4",
        "x" * 300,
        "CON",
        "con.txt",
        ".hidden",
        "",
        "...",
    ],
)
def test_hostile_task_ids_give_safe_names(task_id: str, tmp_path: Path) -> None:
    """Every derived name is a plain file name inside the directory (T24)."""
    name = file_name_for(task_id)
    assert name
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert not name.startswith(".")
    assert len(name) <= 120
    assert name.split(".")[0].lower() not in {"con", "prn", "aux", "nul"}
    assert name.isascii()
    resolved = (tmp_path / f"{name}.mp4").resolve()
    assert resolved.parent == tmp_path.resolve()


def test_plain_task_ids_are_kept() -> None:
    """A normal task id is the file name, with ~n for several files."""
    assert file_name_for("task-unified-1757165031-uyujaw3d") == "task-unified-1757165031-uyujaw3d"
    assert file_name_for("KC9IIO8MLOAN18JX", 2) == "KC9IIO8MLOAN18JX~2"


@given(
    st.tuples(st.text(max_size=130), st.none() | st.integers(1, 12)),
    st.tuples(st.text(max_size=130), st.none() | st.integers(1, 12)),
)
def test_derived_names_are_distinct_for_distinct_ids_and_numbers(
    first: tuple[str, int | None], second: tuple[str, int | None]
) -> None:
    """No two (id, file number) pairs share a name: job j1's file 1 is never job j1-1's file."""
    if first != second:
        assert file_name_for(*first) != file_name_for(*second)


def test_distinct_hostile_ids_stay_distinct() -> None:
    """Two ids that sanitise alike get different names."""
    assert file_name_for("a/b") != file_name_for("a_b")


@pytest.mark.parametrize(
    ("url", "content_type", "ext"),
    [
        ("https://s/generated/x.MP4", None, "mp4"),
        ("https://s/generated/x.jpeg?sig=1", None, "jpeg"),
        ("https://s/generated/x.exe", "video/mp4", "mp4"),
        ("https://s/generated/x", "image/png; charset=x", "png"),
        ("https://s/generated/x.sh", "text/x-sh", "bin"),
        ("https://s/generated/x", None, "bin"),
        ("https://s/a.glb", None, "glb"),
    ],
)
def test_extension_is_whitelisted(url: str, content_type: str | None, ext: str) -> None:
    """The extension comes from the URL or content type, only from the whitelist."""
    assert extension_for(url, content_type) == ext


# -- happy path and the key ------------------------------------------------------------


async def test_download_writes_task_named_files_without_the_key(
    storage: _Storage, tmp_path: Path
) -> None:
    """Files are named from the task id, complete, and the storage never sees the key."""
    task = _finished("t1", f"{storage.base}/files/a.mp4", f"{storage.base}/files/b.noext")
    async with _client(storage.base) as client:
        paths = await client.download(task, tmp_path / "out")
    assert [p.name for p in paths] == ["t1~1.mp4", "t1~2.png"]
    assert all(p.read_bytes() == VIDEO for p in paths)
    assert not list((tmp_path / "out").glob("*.part"))
    assert storage.seen
    for headers in storage.seen:
        assert "Authorization" not in headers
        assert KEY not in str(headers)


async def test_single_file_has_no_index(storage: _Storage, tmp_path: Path) -> None:
    """One file is named <task_id>.<ext>."""
    task = _finished("solo", f"{storage.base}/files/x.mp4")
    async with _client(storage.base) as client:
        (path,) = await client.download(task, tmp_path)
    assert path == tmp_path / "solo.mp4"


async def test_download_of_unfinished_task_is_refused(tmp_path: Path) -> None:
    """Only a finished task has files to download."""
    async with _client("http://127.0.0.1:9") as client:
        with pytest.raises(DownloadError, match="not finished"):
            await client.download(Task(task_id="t", status=TaskStatus.RUNNING), tmp_path)


async def test_download_file_to_custom_destination(storage: _Storage, tmp_path: Path) -> None:
    """download_file writes exactly the given destination."""
    async with _client(storage.base) as client:
        path = await client.download_file(f"{storage.base}/files/x.mp4", tmp_path / "mine.mp4")
    assert path.read_bytes() == VIDEO


# -- caps, short bodies, expiry ----------------------------------------------------------


async def test_download_above_the_cap_is_refused_and_cleaned(
    storage: _Storage, tmp_path: Path
) -> None:
    """A file above max_download_bytes fails and leaves no file behind (T23)."""
    async with _client(storage.base, max_download_bytes=1000) as client:
        with pytest.raises(DownloadError, match="max_download_bytes"):
            await client.download(_finished("big", f"{storage.base}/files/x.mp4"), tmp_path)
    assert _entries(tmp_path) == []


async def test_short_body_is_retried_then_fails_without_a_file(
    storage: _Storage, tmp_path: Path
) -> None:
    """A body cut before its Content-Length is deleted and retried, then reported (T23)."""
    async with _client(storage.base) as client:
        with pytest.raises(DownloadError) as info:
            await client.download(_finished("cut", f"{storage.base}/short/x.mp4"), tmp_path)
    assert info.value.task_id == "cut"
    assert storage.hits["/short/x.mp4"] == 3
    assert _entries(tmp_path) == []


async def test_expired_url_triggers_one_fresh_get_task(storage: _Storage, tmp_path: Path) -> None:
    """A 403 on the result URL fetches the task again and downloads from the new URL."""
    task = _finished("fresh", f"{storage.base}/expired/fresh.mp4")
    async with _client(storage.base) as client:
        (path,) = await client.download(task, tmp_path)
    assert path.read_bytes() == VIDEO
    assert storage.hits["/api/generate/status/fresh"] == 1


# -- existing files and symlinks ---------------------------------------------------------


async def test_existing_different_file_is_not_overwritten(
    storage: _Storage, tmp_path: Path
) -> None:
    """A different file at the destination is kept and the download reported."""
    (tmp_path / "keep.mp4").write_bytes(b"mine")
    async with _client(storage.base) as client:
        with pytest.raises(DownloadError, match="not overwritten"):
            await client.download(_finished("keep", f"{storage.base}/files/x.mp4"), tmp_path)
    assert (tmp_path / "keep.mp4").read_bytes() == b"mine"
    assert not [n for n in _entries(tmp_path) if n.endswith(".part")]


async def test_existing_identical_file_is_accepted(storage: _Storage, tmp_path: Path) -> None:
    """A file with the same content counts as done."""
    (tmp_path / "same.mp4").write_bytes(VIDEO)
    async with _client(storage.base) as client:
        (path,) = await client.download(_finished("same", f"{storage.base}/files/x.mp4"), tmp_path)
    assert path.read_bytes() == VIDEO


async def test_symlink_at_destination_is_not_followed(storage: _Storage, tmp_path: Path) -> None:
    """A planted symlink at the destination is refused and its target untouched (T24)."""
    target = tmp_path / "victim.txt"
    target.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(target, out / "sym.mp4")
    os.symlink(target, out / "sym.part")
    async with _client(storage.base) as client:
        with pytest.raises(DownloadError, match="symbolic link"):
            await client.download(_finished("sym", f"{storage.base}/files/x.mp4"), out)
    assert target.read_bytes() == b"precious"
    assert (out / "sym.mp4").is_symlink()


@pytest.mark.parametrize("second", ["finishes", "is cancelled"])
async def test_two_downloads_of_one_task_at_once_both_end_with_the_whole_file(
    storage: _Storage, tmp_path: Path, second: str
) -> None:
    """The same file asked for twice at once: one .part is written at a time.

    Before, the second download removed the first one's .part as stale, and a second one
    cancelled then took its own .part with it: the first could not place its file.
    """
    task = _finished("twice", f"{storage.base}/slow/x.mp4")
    results: list[list[Path]] = []
    second_scope = anyio.CancelScope()
    async with _client(storage.base) as client:

        async def one(scope: anyio.CancelScope | None = None) -> None:
            with scope or anyio.CancelScope():
                results.append(await client.download(task, tmp_path))

        async with anyio.create_task_group() as group:
            group.start_soon(one)
            with anyio.fail_after(5):
                await storage.slow_started.wait()  # the first one is streaming
            group.start_soon(one, second_scope)
            if second == "is cancelled":
                await anyio.sleep(0.02)
                second_scope.cancel()
    expected = 1 if second == "is cancelled" else 2
    assert results == [[tmp_path / "twice.mp4"]] * expected
    assert (tmp_path / "twice.mp4").read_bytes() == VIDEO
    assert _entries(tmp_path) == ["twice.mp4"]
    assert client._downloader._parts == {}


def test_a_part_file_another_process_replaced_is_neither_placed_nor_removed(
    tmp_path: Path,
) -> None:
    """A .part another download re-created under the same name is not this download's file."""
    part, destination = tmp_path / "x.part", tmp_path / "x.mp4"
    ours_fd, ours = open_part(part)  # still being written: held open
    fd, theirs = open_part(part)  # the other process removes ours as stale, writes its own
    os.write(fd, b"half of theirs")
    os.close(fd)
    os.close(ours_fd)
    assert ours != theirs
    assert place(part, destination, ours) == "replaced"
    remove_quietly(part, ours)
    assert not destination.exists()
    assert part.read_bytes() == b"half of theirs"
    assert place(part, destination, theirs) == "placed"
    assert destination.read_bytes() == b"half of theirs"


async def test_stale_part_file_is_replaced(storage: _Storage, tmp_path: Path) -> None:
    """A .part left by an interrupted run does not block the download."""
    (tmp_path / "stale.part").write_bytes(b"half")
    async with _client(storage.base) as client:
        (path,) = await client.download(_finished("stale", f"{storage.base}/files/x.mp4"), tmp_path)
    assert path.read_bytes() == VIDEO
    assert not (tmp_path / "stale.part").exists()


async def test_a_full_disk_is_a_download_error_naming_the_file(
    storage: _Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError while writing (ENOSPC) ends as a DownloadError with the task id, no .part left."""

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download_module, "write_all", disk_full)
    async with _client(storage.base) as client:
        with pytest.raises(DownloadError, match="No space left on device") as info:
            await client.download(_finished("full", f"{storage.base}/files/x.mp4"), tmp_path)
    assert info.value.task_id == "full"
    assert "full.part" in str(info.value)
    assert storage.hits["/files/x.mp4"] == 1  # a full disk is not retried
    assert _entries(tmp_path) == []


async def test_a_part_file_that_cannot_be_created_is_a_download_error(
    storage: _Storage, tmp_path: Path
) -> None:
    """A directory where the .part file goes (EISDIR/EEXIST) is a DownloadError, not an OSError."""
    (tmp_path / "blocked.part").mkdir()
    async with _client(storage.base) as client:
        with pytest.raises(DownloadError, match=r"blocked\.part") as info:
            await client.download(_finished("blocked", f"{storage.base}/files/x.mp4"), tmp_path)
    assert info.value.task_id == "blocked"
    assert (tmp_path / "blocked.part").is_dir()


async def test_a_failed_flush_to_disk_is_a_download_error(
    storage: _Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync failure (EIO) leaves no file and ends as a DownloadError."""

    def failing_finish(fd: int) -> None:
        os.close(fd)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(download_module, "finish", failing_finish)
    async with _client(storage.base) as client:
        with pytest.raises(DownloadError, match="Input/output error"):
            await client.download(_finished("eio", f"{storage.base}/files/x.mp4"), tmp_path)
    assert _entries(tmp_path) == []


# -- URL safety ----------------------------------------------------------------------------


async def test_loopback_result_url_is_refused_for_a_public_api(
    storage: _Storage, tmp_path: Path
) -> None:
    """With a public base URL a loopback result URL is refused before connecting (T22)."""
    async with VidgoClient(KEY, _clock=VirtualClock()) as client:
        with pytest.raises(UnsafeURLError) as info:
            await client.download(_finished("ssrf", f"{storage.base}/files/x.mp4"), tmp_path)
    assert info.value.task_id == "ssrf"
    assert storage.seen == []


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "https://10.0.0.5/x", "file:///etc/passwd"],
)
async def test_redirect_into_private_space_is_refused(
    storage: _Storage, tmp_path: Path, target: str
) -> None:
    """Each redirect hop is checked again; a hop into private space or file: is refused (T21/T22)."""
    storage.redirect_to = target
    async with _client(storage.base) as client:
        with pytest.raises(UnsafeURLError):
            await client.download(_finished("hop", f"{storage.base}/redirect"), tmp_path)
    assert _entries(tmp_path) == []


async def test_redirect_downgrade_to_public_http_is_refused(
    storage: _Storage, tmp_path: Path
) -> None:
    """A redirect to plain http on a public host is refused."""
    storage.redirect_to = "http://storage.vidgo.ai/x.mp4"
    async with _client(storage.base) as client:
        with pytest.raises(UnsafeURLError, match="https"):
            await client.download(_finished("down", f"{storage.base}/redirect"), tmp_path)


async def test_redirect_within_loopback_is_followed(storage: _Storage, tmp_path: Path) -> None:
    """A redirect to an allowed URL is followed, without the key."""
    storage.redirect_to = f"{storage.base}/files/y.mp4"
    async with _client(storage.base) as client:
        (path,) = await client.download(_finished("ok", f"{storage.base}/redirect"), tmp_path)
    assert path.read_bytes() == VIDEO
    assert all("Authorization" not in h for h in storage.seen)


class _FakeResolver(AbstractResolver):
    """Answers from a table; counts lookups (rebinding: first public, then private)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = host.rstrip(".")
        self.lookups.append(name)
        queue = self.answers[name]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            {
                "hostname": name,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


async def test_hostname_resolving_to_private_ip_is_refused(tmp_path: Path) -> None:
    """A public-looking hostname whose DNS answer is private is refused before connecting (T22)."""
    resolver = _FakeResolver({"cdn.example.com": ["10.0.0.5"]})
    async with VidgoClient(KEY, _clock=VirtualClock(), _resolver=resolver) as client:
        with pytest.raises(UnsafeURLError, match=r"10\.0\.0\.5"):
            await client.download(_finished("dns", "https://cdn.example.com/x.mp4"), tmp_path)
    assert resolver.lookups == ["cdn.example.com"]


async def test_rebinding_resolver_is_checked_on_every_lookup(tmp_path: Path) -> None:
    """A resolver answering public first and private later is still refused on the private answer."""
    resolver = _FakeResolver({"rebind.example.com": ["127.0.0.1", "169.254.169.254"]})
    async with VidgoClient(KEY, _clock=VirtualClock(), _resolver=resolver) as client:
        for _ in range(2):
            with pytest.raises(UnsafeURLError):
                await client.download_file("https://rebind.example.com/x.mp4", tmp_path / "x.mp4")
    assert len(resolver.lookups) == 2


async def test_download_deadline_ends_a_dripping_body(tmp_path: Path) -> None:
    """A body dripping 1 byte every 0.5 s ends with DownloadError at Timeout.download, no .part."""
    started: list[int] = []

    async def drip(request: web.Request) -> web.StreamResponse:
        started.append(1)
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        for _ in range(100000):
            await response.write(b"x")
            await anyio.sleep(0.5)
        return response

    app = web.Application()
    app.router.add_get("/drip.mp4", drip)
    async with serve(app) as server:
        base = base_of(server)
        timeout = Timeout(read=5.0, download=1.2)
        async with _client(base, timeout=timeout) as client:
            with pytest.raises(DownloadError, match=r"Timeout\.download=1\.2") as info:
                await client.download(_finished("drip", f"{base}/drip.mp4"), tmp_path)
    assert info.value.task_id == "drip"
    assert started == [1]  # one attempt: the deadline covers every attempt, not each
    assert _entries(tmp_path) == []


def test_download_deadline_defaults_to_thirty_minutes() -> None:
    """The default is sized for a large video on a slow link; None disables it."""
    assert Timeout().download == 1800.0
    assert Timeout(download=None).download is None
    with pytest.raises(ValueError, match="download"):
        Timeout(download=0)
