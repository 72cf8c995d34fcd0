"""Local files in a batch: ``"image_urls": ["./frames/a.png"]`` is uploaded before its job.

In a line's input, an entry of a ``*_urls`` list that is not a URL is a local path, read
relative to the JSONL file's folder (an absolute path is taken as is). The whole-file check
reads each such file once: a missing, unreadable, empty or non-image file is a bad line, so
the run stops (exit 2) before any request. For validation the path is replaced by a
placeholder https URL naming the file's sha256 (:func:`swap_local_files`), so the input
rules see a URL where the API will.

The journal knows such a line by that placeholder input (``fingerprint_input``), never by
an upload's URL, so a rerun that must upload a file again is still the same job: skipped
when finished, polled when in flight, submitted again (with a fresh upload) only when it
failed. Only the request sent carries the real URL (:meth:`BatchUploads.resolve`).

At run time each distinct content hash is uploaded once, however many lines use it (the
lines wait for that one upload), and the upload is journaled (sha256 → ``file_url``,
``expires_at``); a rerun reuses a journaled URL and uploads again only what has expired
(or will soon).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._errors import VidgoError
from .._image_types import sniff_image_type
from .._jobs import GenerationRequest, JobResult, JobState
from .._journal import Journal

if TYPE_CHECKING:
    from .._client import VidgoClient
    from ._batch_input import BatchLine

__all__ = [
    "PLACEHOLDER_PREFIX",
    "BatchUploads",
    "LocalFile",
    "preview_uploads",
    "swap_local_files",
]

# Where validation sees a local file: ``.invalid`` can never resolve (RFC 2606).
PLACEHOLDER_PREFIX = "https://local-file.vidgo-async.invalid/sha256/"
# Vidgo keeps an upload 72 hours ("remain available for 72 hours").
_LIFETIME = 72 * 3600.0
# A journaled upload is reused only with this much of its life left: a job may wait in the
# queue and run for a while before Vidgo reads its input. Generous, because the answer's
# ``expires_at`` names no time zone.
REUSE_MARGIN = 6 * 3600.0


@attrs.frozen
class LocalFile:
    """One local file of a batch, read and checked in the whole-file check."""

    path: Path
    sha256: str
    size: int
    mime_type: str

    @property
    def placeholder(self) -> str:
        """The URL that stands for this file until it is uploaded."""
        return PLACEHOLDER_PREFIX + self.sha256


def _is_local(entry: object) -> bool:
    return isinstance(entry, str) and bool(entry.strip()) and "://" not in entry


def _read(path: Path) -> LocalFile | str:
    """Read and check one file; return it, or why it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "is a folder, not a file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not data:
        return "is empty (Vidgo refuses empty files)"
    mime = sniff_image_type(data)
    if mime is None:
        return "is not a JPEG, PNG, GIF or WebP image (the only types Vidgo uploads accept)"
    return LocalFile(path, hashlib.sha256(data).hexdigest(), len(data), mime)


def swap_local_files(
    raw_input: Mapping[str, Any], base: Path, seen: dict[Path, LocalFile | str]
) -> tuple[dict[str, Any], list[LocalFile], list[str]]:
    """Replace local paths in ``*_urls`` lists by placeholders.

    Returns the new input, the files it uses and the problems found (``input.x[0]: ...``).
    ``seen`` caches each resolved path's result across the lines of one file.
    """
    swapped = dict(raw_input)
    files: list[LocalFile] = []
    problems: list[str] = []
    for name, value in raw_input.items():
        if not name.endswith("_urls") or not isinstance(value, list):
            continue
        if not any(_is_local(entry) for entry in value):
            continue
        entries: list[Any] = []
        for index, entry in enumerate(value):
            if not _is_local(entry):
                entries.append(entry)
                continue
            path = (base / Path(entry).expanduser()).resolve()
            found = seen.get(path)
            if found is None:
                found = seen[path] = _read(path)
            if isinstance(found, str):
                problems.append(f"input.{name}[{index}]: {entry} ({path}) {found}")
                entries.append(entry)
                continue
            files.append(found)
            entries.append(found.placeholder)
        swapped[name] = entries
    return swapped, files, problems


def _replace(request: GenerationRequest, urls: Mapping[str, str]) -> GenerationRequest:
    """Return ``request`` with every ``*_urls`` entry found in ``urls`` replaced."""
    data = request.input
    if not isinstance(data, Mapping):
        return request
    changed = False
    out = dict(data)
    for name, value in data.items():
        if name.endswith("_urls") and isinstance(value, list):
            new = [urls.get(entry, entry) if isinstance(entry, str) else entry for entry in value]
            if new != value:
                out[name] = new
                changed = True
    return attrs.evolve(request, input=out) if changed else request


def _url_entries(request: GenerationRequest) -> Iterable[str]:
    data = request.input
    if not isinstance(data, Mapping):
        return
    for name, value in data.items():
        if name.endswith("_urls") and isinstance(value, list):
            yield from (entry for entry in value if isinstance(entry, str))


def expiry_of(expires_at: datetime | None, now: float) -> float:
    """Return a Unix time no later than the upload's end: its ``expires_at`` or now + 72 h.

    The API's ``expires_at`` has no zone: read as UTC, and never trusted beyond 72 hours
    from now (a server clock ahead of UTC would otherwise stretch it).
    """
    limit = now + _LIFETIME
    if expires_at is None:
        return limit
    stamp = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=timezone.utc)
    return min(stamp.timestamp(), limit)


@attrs.define
class BatchUploads:
    """The local files of one batch run: what is journaled, what to upload, the uploads."""

    files: dict[str, LocalFile]
    emulator: bool = False
    recorded: dict[str, tuple[str, float]] = attrs.field(factory=dict)
    uploaded: dict[str, str] = attrs.field(factory=dict)
    _pending: dict[str, anyio.Event] = attrs.field(factory=dict)
    _failed: dict[str, BaseException] = attrs.field(factory=dict)

    @classmethod
    def of(cls, lines: Sequence[BatchLine], *, emulator: bool = False) -> BatchUploads:
        """Collect the distinct files (by content hash) of ``lines``."""
        files: dict[str, LocalFile] = {}
        for line in lines:
            for local in line.local_files:
                files.setdefault(local.sha256, local)  # the first path that names it
        return cls(files, emulator=emulator)

    def reusable(self, sha256: str, now: float) -> bool:
        """Whether the journaled upload of ``sha256`` may be sent in a submit now."""
        found = self.recorded.get(sha256)
        # The built-in emulator's files died with the process that served them.
        return found is not None and not self.emulator and found[1] - now >= REUSE_MARGIN

    async def load(self, journal: Journal) -> None:
        """Read the journaled upload of every file."""
        for sha in self.files:
            found = await journal.find_upload(sha)
            if found is not None:
                self.recorded[sha] = found

    def to_upload(self, now: float) -> list[LocalFile]:
        """The files a run would upload now (in first-use order)."""
        return [f for sha, f in self.files.items() if not self.reusable(sha, now)]

    def describe(self, now: float) -> list[str]:
        """Lines for ``--dry-run``: each upload the run would make, and the reused ones."""
        todo = self.to_upload(now)
        reused = len(self.files) - len(todo)
        out = [f"Uploads: {len(todo)} local file(s) to upload, {reused} already uploaded (reused)"]
        out += [
            f"  upload {f.path} ({f.mime_type}, {f.size} bytes, sha256 {f.sha256[:12]})"
            for f in todo
        ]
        return out

    async def resolve(
        self,
        client: VidgoClient,
        journal: Journal | None,
        requests: Sequence[GenerationRequest],
        *,
        now: float,
    ) -> tuple[list[GenerationRequest], list[JobResult]]:
        """Upload what ``requests`` need and return them with URLs, plus the failed ones.

        Each placeholder becomes the file's journaled URL while it has life left, else the
        URL of a fresh upload; the request keeps its ``fingerprint_input`` (placeholders).
        Each distinct file is uploaded once; the lines sharing it wait for that upload. A
        job whose file could not be uploaded is returned as a failed result (not submitted).
        """
        by_placeholder = {PLACEHOLDER_PREFIX + sha: sha for sha in self.files}
        ready: list[tuple[int, GenerationRequest]] = []
        failed: list[JobResult] = []

        async def one(index: int, request: GenerationRequest) -> None:
            needed = {by_placeholder[e] for e in _url_entries(request) if e in by_placeholder}
            urls: dict[str, str] = {}
            for sha in sorted(needed):
                if self.reusable(sha, now):
                    urls[PLACEHOLDER_PREFIX + sha] = self.recorded[sha][0]
                    continue
                error = await self._upload_once(client, journal, sha, now)
                if error is not None:
                    failed.append(_failed_result(request, error))
                    return
                urls[PLACEHOLDER_PREFIX + sha] = self.uploaded[sha]
            ready.append((index, _replace(request, urls)))

        async with anyio.create_task_group() as group:
            for index, request in enumerate(requests):
                group.start_soon(one, index, request)
        ready.sort(key=lambda pair: pair[0])
        return [request for _, request in ready], failed

    async def _upload_once(
        self, client: VidgoClient, journal: Journal | None, sha: str, now: float
    ) -> BaseException | None:
        """Upload ``sha`` unless done or under way (then wait for it); return its error."""
        if sha in self.uploaded:
            return None
        pending = self._pending.get(sha)
        if pending is not None:
            await pending.wait()
            return self._failed.get(sha)
        pending = self._pending[sha] = anyio.Event()
        local = self.files[sha]
        try:
            stored = await client.upload(local.path)
            self.uploaded[sha] = stored.file_url
            sys.stderr.write(f"  uploaded {local.path} -> {stored.file_url}\n")
            if journal is not None:
                with anyio.CancelScope(shield=True):
                    await journal.record_upload(
                        sha,
                        stored.file_url,
                        expires_at=expiry_of(stored.expires_at, now),
                        size=local.size,
                        source=str(local.path),
                    )
        except VidgoError as exc:
            self._failed[sha] = exc
            sys.stderr.write(f"  upload of {local.path} failed: {exc}\n")
        finally:
            pending.set()
        return self._failed.get(sha)


def preview_uploads(
    lines: Sequence[BatchLine], journal: Path, *, emulator: bool, now: float
) -> list[str]:
    """For ``--dry-run``: the uploads a run would make, and the journaled ones it reuses.

    Reads the journal read-only (when there is one); sends nothing.
    """
    uploads = BatchUploads.of(lines, emulator=emulator)
    if not uploads.files:
        return []

    async def read() -> None:
        async with await Journal.open(journal, readonly=True) as opened:
            await uploads.load(opened)

    if journal.exists():
        anyio.run(read)
    return uploads.describe(now)


def _failed_result(request: GenerationRequest, error: BaseException) -> JobResult:
    return JobResult(
        request=request,
        key=request.key or "?",
        state=JobState.FAILED,
        task=None,
        error=error,
        queued_at=None,
        submitted_at=None,
        finished_at=None,
    )
