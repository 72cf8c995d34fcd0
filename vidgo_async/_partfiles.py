"""The file-system half of a download: the exclusive ``.part`` file and its placement.

Blocking calls, run in a worker thread by ``_download``. A ``.part`` file is opened with
``O_EXCL | O_NOFOLLOW`` (a stale one or a planted link is removed first, never followed);
a complete one is hard-linked into place, so an existing file is never replaced: the same
content is accepted, a different file or a symlink is reported. A download knows its
``.part`` file by its identity (device and inode): one that another download (another
process) replaced meanwhile is never placed, nor removed, as its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

__all__ = [
    "WRITE_BUFFER",
    "FileId",
    "finish",
    "open_part",
    "place",
    "remove_quietly",
    "write_all",
]

logger = logging.getLogger("vidgo_async")

WRITE_BUFFER = 1024 * 1024

# A file's identity: (device, inode).
FileId = tuple[int, int]


def open_part(path: Path) -> tuple[int, FileId]:
    """Create ``path`` exclusively for writing, replacing a stale entry (never following it).

    Returns the open descriptor and the new file's identity.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        # A stale partial file from an interrupted run (or a planted link): remove the
        # entry itself (unlink never follows a symlink) and create ours exclusively.
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise
        os.unlink(path)
        fd = os.open(path, flags, 0o644)
    info = os.fstat(fd)
    return fd, (info.st_dev, info.st_ino)


def _is(path: Path, identity: FileId) -> bool:
    """Whether ``path`` (not followed) is still the file ``identity`` names."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return (info.st_dev, info.st_ino) == identity


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def finish(fd: int) -> None:
    """Flush ``fd`` to disk and close it."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(WRITE_BUFFER), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_quietly(path: Path, identity: FileId | None = None) -> None:
    """Remove ``path`` if it exists (and is the file ``identity`` names, when given).

    Logs, never raises, any other failure.
    """
    if identity is not None and not _is(path, identity):
        return  # gone, or another download's now: not ours to remove
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # pragma: no cover - best effort cleanup
        logger.warning("vidgo could not remove partial file %s: %s", path, exc)


def place(part: Path, destination: Path, identity: FileId) -> str:
    """Move ``part`` to ``destination`` without replacing anything; say what happened.

    ``"replaced"``: ``part`` is no longer the file written (``identity``): another download
    of the same name removed it and may be writing its own there; nothing is moved.
    """
    if not _is(part, identity):
        return "replaced"
    try:
        os.link(part, destination)
    except FileExistsError:
        info = os.lstat(destination)
        if stat.S_ISLNK(info.st_mode):
            return "symlink"
        if not stat.S_ISREG(info.st_mode) or sha256_of(part) != sha256_of(destination):
            return "different"
        os.unlink(part)
        return "same"
    except (NotImplementedError, PermissionError, OSError):
        # File systems without hard links: check, then rename (a tiny race remains).
        if os.path.lexists(destination):
            raise
        os.rename(part, destination)
        return "placed"
    os.unlink(part)
    return "placed"
