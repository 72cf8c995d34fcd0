"""The journal's writer thread: group commits, back to back, off the event loop.

One long-lived thread per journal runs the group commits, so a commit never waits for the
event loop to come round to start it:

- the writes queued in one event-loop turn are handed to the thread together at the end of
  that turn (one ``call_soon``), so they share one transaction;
- while the thread commits one group, the next one collects (a commit pipeline): as soon as a
  commit ends the thread takes everything queued meanwhile;
- after each commit the thread wakes that group's callers with one ``call_soon_threadsafe``
  per event loop; a caller returns only after the transaction holding its write ended.

A write is data, not a closure: its job key and its change, run by the store's ``commit``.
A caller waits on a bare future; a cancel scope's cancel (anyio) only then makes it wait
out its transaction shielded, so the usual, uncancelled wait pays for no cancel scope.

What a commit does (and so what durability means) is the store's ``commit`` function; this
module only queues, runs and wakes. :meth:`GroupWriter.aclose` commits what is still queued,
then stops the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread

from ._journal_entry import JournalEntry

__all__ = ["Change", "GroupWriter", "PendingWrite"]

# A write's change: the columns to set (``None``: nothing to change), given the current entry.
# The connection is ``None`` on the store's first, read-free attempt: a change that needs a
# read to decide skips it then, and the store guards what it skipped.
Change = Callable[[sqlite3.Connection | None, JournalEntry | None], Mapping[str, Any] | None]


class PendingWrite:
    """One queued row write (the job key and its change) and, once its transaction ended,
    its outcome."""

    __slots__ = ("change", "done", "entry", "error", "key", "loop")

    def __init__(self, key: str, change: Change, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.change = change
        self.loop = loop
        # A bare future of ``loop`` (cheaper than an event): its result is set once the
        # transaction holding the write ended.
        self.done: asyncio.Future[None] = loop.create_future()
        self.entry: JournalEntry | None = None
        self.error: BaseException | None = None


class GroupWriter:
    """Run ``commit`` on groups of pending writes in one dedicated thread.

    Args:
        commit: called in the writer thread with one group; sets every write's ``entry`` or
            ``error`` and never raises.
        closed: the error of a write queued after :meth:`aclose`.
        name: the thread's name (for debuggers and ``threading.enumerate``).
    """

    def __init__(
        self,
        commit: Callable[[list[PendingWrite]], None],
        *,
        closed: Callable[[], BaseException],
        name: str,
    ) -> None:
        self._commit = commit
        self._closed = closed
        self._name = name
        # Turns handed to the thread; ``None`` tells it to stop. ``put`` never blocks, so the
        # event loop never waits on a lock the writer thread holds.
        self._queue: queue.SimpleQueue[list[PendingWrite] | None] = queue.SimpleQueue()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Writes of the current event-loop turn, handed over together at its end.
        self._turn: list[PendingWrite] = []
        self._turn_loop: asyncio.AbstractEventLoop | None = None

    def submit(self, pending: PendingWrite) -> None:
        """Queue ``pending`` (from its event loop); it is committed with this turn's writes."""
        if self._stopping:  # closed while the caller was on its way here
            pending.error = self._closed()
            _set_done([pending])
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        if self._turn_loop is None:
            self._turn_loop = pending.loop
            pending.loop.call_soon(self._hand_over)
        elif self._turn_loop is not pending.loop:  # another loop's turn: no reason to wait
            self._enqueue([pending])
            return
        self._turn.append(pending)

    async def wait(self, pending: PendingWrite) -> None:
        """Wait until the transaction holding ``pending`` ended (not cancellable by anyio).

        The same as waiting inside a shielded cancel scope, without entering one unless a
        cancel arrives (then see :meth:`wait_out`).
        """
        try:
            await pending.done
        except asyncio.CancelledError:
            if not await self.wait_out(pending):
                raise

    async def wait_out(self, pending: PendingWrite) -> bool:
        """After a cancel cut short the wait on ``pending.done``: wait as a shield would have.

        A cancel scope's cancel (anyio) waits for the transaction, shielded, and returns
        true: the caller returns as usual, and the scope cancels it at its next checkpoint.
        Any other cancel (a bare ``Task.cancel``) is not stopped by a shield: false, at once,
        and the caller re-raises it (the write commits all the same).
        """
        if anyio.current_effective_deadline() != -math.inf:
            return False
        with anyio.CancelScope(shield=True):
            # The cancel cancelled ``done``: wait on a fresh one (``_set_done`` sets the one
            # it finds) until the writer thread has set the outcome.
            while pending.entry is None and pending.error is None:
                pending.done = pending.loop.create_future()
                await pending.done
        return True

    async def aclose(self) -> None:
        """Commit every write still queued, then stop the thread (idempotent)."""
        self._hand_over()
        if self._stopping:
            return
        self._stopping = True
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join)

    def _hand_over(self) -> None:
        turn, self._turn, self._turn_loop = self._turn, [], None
        if turn:
            self._enqueue(turn)

    def _enqueue(self, writes: list[PendingWrite]) -> None:
        if self._stopping:  # called on the writes' loop: wake them now
            for pending in writes:
                pending.error = self._closed()
            _set_done(writes)
            return
        self._queue.put(writes)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()  # waits (without the GIL) for a turn
            if first is None:
                return
            group = first
            while True:  # and takes every turn queued meanwhile into the same group
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True  # commit what came before the stop, then end
                    break
                group = group + more
            self._commit(group)
            _wake(group)


def _wake(group: list[PendingWrite]) -> None:
    """Wake the callers of ``group``: one call into each event loop they wait on."""
    by_loop: dict[asyncio.AbstractEventLoop, list[PendingWrite]] = {}
    for pending in group:
        by_loop.setdefault(pending.loop, []).append(pending)
    for loop, writes in by_loop.items():
        # A closed loop (RuntimeError) has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_set_done, writes)


def _set_done(writes: list[PendingWrite]) -> None:
    for pending in writes:
        done = pending.done
        if not done.done():  # a caller cancelled outside anyio cancelled its future
            done.set_result(None)
