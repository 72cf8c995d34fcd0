"""The journal's writer lock: one process at a time may run a batch on a journal.

An advisory lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on a file next to the
journal (``<journal>.lock``). The operating system releases it when the process exits, a
``kill -9`` included, so a crashed run never blocks the next one; the owner's description is
written into the file only to name it in the refusal of another process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import IO

from ._errors import JournalLockedError

__all__ = ["WriterLock", "describe_owner", "lock_file_for"]


def lock_file_for(journal: Path) -> Path:
    """Return the lock file of the journal at ``journal`` (``<journal>.lock``)."""
    return Path(f"{journal}.lock")


def _try_lock(stream: IO[str]) -> bool:
    """Take the lock on ``stream`` without waiting; return whether it was taken."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(stream.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class WriterLock:
    """A process-wide exclusive lock on ``path``; :meth:`acquire` and :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: IO[str] | None = None
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._stream is not None

    def acquire(self, owner: str) -> None:
        """Take the lock for ``owner`` or raise :class:`JournalLockedError` at once."""
        with self._guard:
            if self._stream is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Opened for appending so that a refused opener never truncates the owner's line.
            stream = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
            if not _try_lock(stream):
                stream.seek(0)
                holder = stream.read().strip() or None
                stream.close()
                raise JournalLockedError(
                    f"another process is running a batch on the journal {self.path.with_suffix('')}"
                    + (f" ({holder})" if holder else "")
                    + "; nothing was submitted. HINT: wait for it to end, or give this run "
                    "another --out/--journal",
                    owner=holder,
                    path=str(self.path),
                )
            stream.seek(0)
            stream.truncate()
            stream.write(f"{owner}\n")
            stream.flush()
            self._stream = stream

    def release(self) -> None:
        """Release the lock (idempotent). The lock file stays: removing it would race."""
        with self._guard:
            stream, self._stream = self._stream, None
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.truncate(0)
                stream.close()


def describe_owner() -> str:
    """Return a description of this process for the lock file (pid, host)."""
    return f"pid {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else 'this host'}"
