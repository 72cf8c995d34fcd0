"""What ``vidgo-async batch`` tells people and scripts: log level, summary, ``--json`` rows.

stderr carries the human side (log lines, the live view, the summary); stdout carries only
``--json`` output, one object per line: a ``results.jsonl`` row per finished job, then
``{"summary": {...}}``. Counts come as a mapping of job state → count, so a new end state
shows up here without code changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

import attrs

__all__ = [
    "EMULATOR_NOTE",
    "JsonStream",
    "Problem",
    "add_verbosity",
    "remove_logging",
    "setup_logging",
    "summary_lines",
]

LOGGER = "vidgo_async"

EMULATOR_NOTE = (
    "  note: this ran against the built-in emulator; its tasks died with this process, so a "
    "rerun submits the unfinished jobs again (to the emulator, for free)."
)

_SHOWN_PROBLEMS = 5
_LABELS = {"timeout": "timed out", "in_flight": "still in flight", "submitting": "submitting"}
_FIRST = ("finished", "failed")


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """Add ``-v``/``-q``: the level of the ``vidgo_async`` logger on stderr."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v shows info (retries, rate limits), -vv debug (every request)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="log errors only; no progress line"
    )


class _StderrHandler(logging.Handler):
    """Write records to whatever ``sys.stderr`` is at the time (the live view redirects it)."""

    previous_level = logging.NOTSET  # the logger's level before setup_logging

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never break the run
            self.handleError(record)


def setup_logging(args: argparse.Namespace) -> _StderrHandler:
    """Send the ``vidgo_async`` logger to stderr at the level ``-v``/``-q`` ask for."""
    verbose = getattr(args, "verbose", 0) or 0
    quiet = bool(getattr(args, "quiet", False))
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbose, 1)]
    if verbose >= 2:
        level = logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(LOGGER)
    handler.previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def remove_logging(handler: _StderrHandler) -> None:
    """Undo :func:`setup_logging`: the handler goes, the logger's level is restored."""
    logger = logging.getLogger(LOGGER)
    logger.removeHandler(handler)
    logger.setLevel(handler.previous_level)


@attrs.frozen(kw_only=True)
class Problem:
    """A job that did not finish, as the summary names it."""

    id: str
    task_id: str | None
    state: str
    reason: str


def one_line(text: str, limit: int = 160) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _label(state: str) -> str:
    return _LABELS.get(state, state.replace("_", " "))


def counts_text(counts: Mapping[str, int]) -> str:
    """``3 finished, 1 failed, 2 unknown``: finished and failed always, others when not 0."""
    parts = [f"{counts.get(state, 0)} {_label(state)}" for state in _FIRST]
    parts += [f"{n} {_label(state)}" for state, n in counts.items() if state not in _FIRST and n]
    return ", ".join(parts)


def summary_lines(
    counts: Mapping[str, int],
    problems: Sequence[Problem],
    *,
    results: str,
    wall: float,
    videos: int,
    seconds: int,
    download_failures: int,
    emulator: bool,
) -> list[str]:
    """The summary: counts per end state, the first few problems, where the rows are."""
    lines = [
        f"vidgo-async batch: {counts_text(counts)} in {wall:.1f} s; {videos} video(s), "
        f"{seconds} s of video generated"
        + (f"; {download_failures} download(s) failed" if download_failures else "")
    ]
    for problem in problems[:_SHOWN_PROBLEMS]:
        task = problem.task_id or "no task"
        lines.append(f"  {problem.state}: {problem.id} ({task}): {problem.reason}")
    if len(problems) > _SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - _SHOWN_PROBLEMS} more in {results}")
    lines.append(f"  results: {results}")
    if emulator and any(n for state, n in counts.items() if state != "finished"):
        lines.append(EMULATOR_NOTE)
    return lines


class JsonStream:
    """``--json``: one object per line on stdout, flushed at once (for ``jq`` and pipes)."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._stream = stream
        self._sent: set[str] = set()

    def row(self, row: Mapping[str, Any]) -> None:
        """Print one ``results.jsonl`` row (each job once)."""
        key = str(row.get("id"))
        if not self.enabled or key in self._sent:
            return
        self._sent.add(key)
        self._write(row)

    def rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Print the rows not printed yet."""
        for row in rows:
            self.row(row)

    def summary(self, summary: Mapping[str, Any]) -> None:
        """Print the final summary object."""
        if self.enabled:
            self._write({"summary": dict(summary)})

    def _write(self, data: Mapping[str, Any]) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(json.dumps(data, ensure_ascii=False) + "\n")
        stream.flush()
