"""The batch's live view on stderr: one line redrawn in place on a terminal, plain lines otherwise.

The counts come from a mapping of job state → count, folded by the job states' own
definitions, so a new state needs no change here: a state that is not terminal
(``JobState.is_terminal``) is queued or in flight (``submitting``, ``in_doubt``,
``in_flight``); of the ends, ``finished`` is finished, one a rerun submits again (the
``RERUN`` table: nothing billed goes on) is failed, and any other is *lost track*: a task
may exist and run (timed out, lost, unknown), which is never shown as failed.

On a terminal the line is drawn with rich (imported here, on use, so that library users
never import it); while it is shown, everything written to ``sys.stderr`` (log lines,
warnings, the command's own messages) is printed above it, never onto it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import IO, Any

import anyio

from .._job_states import JobState, RerunAction

__all__ = ["LiveView", "group_counts", "render_line"]

Counts = Callable[[], Mapping[str, int]]


def _group_of(state: JobState) -> str:
    """The live view's group of a job state (see the module's docstring)."""
    if not state.is_terminal:
        return "queued" if state is JobState.QUEUED else "in flight"
    if state is JobState.FINISHED:
        return "finished"
    if state.rerun is RerunAction.RESUBMIT:
        return "failed"
    return "lost track"


def group_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Fold per-state counts (keyed by ``JobState`` value) into the live view's groups.

    The groups: finished, failed, lost track (ended, but a task may still run), in flight
    and queued.
    """
    grouped = dict.fromkeys(("finished", "failed", "lost track", "in flight", "queued"), 0)
    for state, count in counts.items():
        grouped[_group_of(JobState(state))] += count
    return grouped


def _clock_text(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _rate_text(rate: float) -> str:
    if rate >= 1 or rate == 0:
        return f"{rate:.1f}/s"
    return f"{rate * 60:.1f}/min"


def render_line(
    counts: Mapping[str, int],
    total: int,
    elapsed: float,
    width: int,
    *,
    base: int = 0,
    bar: bool = True,
) -> str:
    """Return the progress line, at most ``width`` characters.

    ``base`` jobs were already done when the clock started (reported from a journal): they
    count towards done but not towards the rate.
    """
    grouped = group_counts(counts)
    done = grouped["finished"] + grouped["failed"] + grouped["lost track"]
    fresh = max(0, done - base)
    rate = fresh / elapsed if elapsed > 0 else 0.0
    remaining = max(0, total - done)
    if remaining == 0:
        eta = f"done in {_clock_text(elapsed)}"
    elif rate > 0:
        eta = f"ETA {_clock_text(remaining / rate)}"
    else:
        eta = "ETA --"
    long = (
        f"finished {grouped['finished']} · failed {grouped['failed']} · "
        f"lost track {grouped['lost track']} · "
        f"in flight {grouped['in flight']} · queued {grouped['queued']}"
    )
    short = (
        f"✓{grouped['finished']} ✗{grouped['failed']} ?{grouped['lost track']} "
        f"▶{grouped['in flight']} …{grouped['queued']}"
    )
    head = f"{done}/{total}"
    tail = f"{_rate_text(rate)} {eta}"
    for middle in (long, short):
        plain = f"{head} {middle} {tail}"
        room = width - len(plain) - 1
        if bar and room >= 10:  # room for a bar worth looking at
            size = min(room, 30)
            filled = size * done // total if total else size
            return f"{head} {'█' * filled}{'░' * (size - filled)} {middle} {tail}"
        if len(plain) <= width:
            return plain
    return f"{head} ✗{grouped['failed']} ?{grouped['lost track']} {eta}"[: max(1, width)]


class LiveView:
    """Show a batch's progress until closed; the last state is drawn before it returns.

    Args:
        total: the number of jobs of the batch.
        counts: returns the current per-state counts (called on the event loop).
        stream: where to draw (default ``sys.stderr``).
        tty: draw in place (default: whether ``stream`` is a terminal).
        interval: seconds between plain lines when not on a terminal.
        quiet: show nothing at all (``-q``).
        clock: a monotonic clock (tests inject one).
    """

    def __init__(
        self,
        total: int,
        counts: Counts,
        *,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        interval: float = 5.0,
        base: int = 0,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._quiet = quiet
        self._total = total
        self._counts = counts
        self._stream = stream
        self._tty = tty
        self._interval = interval
        self._base = base
        self._clock = clock
        self._started = clock()
        self._live: Any = None
        self._last_plain = ""
        self._last_time = -1e9
        self._closed = False

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    def line(self, width: int, *, bar: bool = True) -> str:
        """The progress line now, fitted to ``width``."""
        elapsed = self._clock() - self._started
        return render_line(self._counts(), self._total, elapsed, width, base=self._base, bar=bar)

    def __enter__(self) -> LiveView:
        tty = self._tty if self._tty is not None else self.stream.isatty()
        if tty and not self._quiet:
            from rich.console import Console
            from rich.live import Live

            console = (
                Console(stderr=True)
                if self._stream is None
                else Console(file=self._stream, force_terminal=True)
            )
            self._live = Live(
                console=console,
                auto_refresh=False,  # redrawn from the event loop: counts are read there only
                redirect_stdout=False,
                redirect_stderr=True,
                transient=False,
            )
            self._live.start()
            self.refresh()
        return self

    def refresh(self) -> None:
        """Redraw now (on a terminal) or print a line if due (otherwise)."""
        if self._quiet:
            return
        if self._live is not None:
            from rich.text import Text

            width = max(1, self._live.console.width - 1)
            self._live.update(Text(self.line(width), no_wrap=True, overflow="crop"), refresh=True)
            return
        now = self._clock()
        line = self.line(200, bar=False)
        if now - self._last_time >= self._interval and line != self._last_plain:
            self._write_plain(line, now)

    def _write_plain(self, line: str, now: float) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self._last_plain, self._last_time = line, now

    async def run(self) -> None:
        """Redraw until cancelled."""
        while True:
            self.refresh()
            await anyio.sleep(0.25 if self._live is not None else 0.5)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Draw the final state and stop redrawing (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._live is not None:
            self.refresh()
            self._live.stop()
            self._live = None
            return
        if self._quiet:
            return
        line = self.line(200, bar=False)
        if line != self._last_plain:
            self._write_plain(line, self._clock())
