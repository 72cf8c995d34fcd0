"""Ctrl-C and SIGTERM for the command line: a clean stop with exit 130 / 143, never a traceback.

Outside the event loop (start-up, shutdown) SIGTERM raises :class:`Stopped`, a
``KeyboardInterrupt``, so both signals unwind the same way to :func:`exit_code`. Inside
the loop, :func:`guard` turns either signal into a cancellation of the run's scope: the
``finally`` blocks of the run (journal close, ``results.jsonl``) then run as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import TypeVar

import anyio

__all__ = [
    "SignalState",
    "Stopped",
    "describe",
    "exit_code",
    "guard",
    "ignore_more",
    "signum_of",
    "terminate_raises",
]

T = TypeVar("T")

_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class Stopped(KeyboardInterrupt):
    """SIGTERM arrived outside the event loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def exit_code(exc: KeyboardInterrupt | None = None, signum: int | None = None) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (128 + the signal number)."""
    if signum is None:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
    return _CODES.get(signal.Signals(signum), 128 + signum)


def describe(signum: int) -> str:
    """The signal as a user knows it."""
    return _NAMES.get(signal.Signals(signum), signal.Signals(signum).name)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Stopped` (from the main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class SignalState:
    """Which signal stopped the run, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None


async def guard(state: SignalState, body: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``body``; the first SIGINT/SIGTERM cancels it (``None`` is returned then)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    with anyio.CancelScope() as scope:

        def on_signal(signum: signal.Signals) -> None:
            if state.signum is None:
                state.signum = int(signum)
            scope.cancel()

        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(signum, on_signal, signum)
                except (ValueError, RuntimeError, NotImplementedError):
                    continue  # not the main thread, or no signal support: default handling
                installed.append(signum)
            return await body()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            if signal.SIGTERM in installed:
                signal.signal(signal.SIGTERM, _raise_stopped)
    return None


def ignore_more() -> None:
    """Ignore further SIGINT/SIGTERM: the command is already ending because of one.

    A signal caught late (its handler runs at the next bytecode) would otherwise raise a
    second ``KeyboardInterrupt`` during exit, and the process would die of SIGINT.
    """
    with contextlib.suppress(ValueError):  # not the main thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def signum_of(exc: KeyboardInterrupt) -> int:
    """The signal behind a ``KeyboardInterrupt``: SIGTERM for :class:`Stopped`, else SIGINT."""
    return exc.signum if isinstance(exc, Stopped) else int(signal.SIGINT)
