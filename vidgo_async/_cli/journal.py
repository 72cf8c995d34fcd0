"""``vidgo-async journal FILE``: what a batch journal knows, for cleaning up after a crash."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

import anyio

from .._errors import JournalError
from .._journal import Journal, JournalEntry, JournalState

__all__ = ["register"]

_DESCRIPTION = """\
Summarize a vidgo-async journal (by default a batch keeps it at OUT/journal.sqlite):
jobs by state, submits whose outcome is unknown, tasks still in flight and failures, with
their ids. The journal is opened read-only and may be in use by a running batch.
"""

_UNKNOWN_HINT = """\
HINT: these submits were sent but no answer came back, so a task may exist and be billed.
Check your Vidgo dashboard (or wait for the callback) before submitting them again. Rerunning
the batch leaves them alone; `vidgo-async batch ... --retry-unknown` submits them again.
"""

_IN_FLIGHT_HINT = """\
HINT: these tasks were created and are being paid for. Rerun the same batch command to
collect them (they are polled, never submitted again), or look one up with
`vidgo-async status TASK_ID`.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``journal`` command."""
    parser = subparsers.add_parser(
        "journal",
        help="summarize a batch journal (after a crash or Ctrl-C)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="JOURNAL", help="the journal file, e.g. out/journal.sqlite")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--all", action="store_true", help="also list every finished job (default: counts only)"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        entries, counts = anyio.run(_read, args.path)
    except JournalError as exc:
        sys.stderr.write(f"vidgo-async journal: error: {exc}\n")
        return 1
    if args.json:
        document = {
            "path": args.path,
            "total": len(entries),
            "counts": counts,
            "jobs": [_job_json(entry) for entry in entries],
        }
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_report(args.path, entries, counts, show_all=args.all))
    return 0


async def _read(path: str) -> tuple[list[JournalEntry], dict[str, int]]:
    async with Journal(path, create=False, readonly=True) as journal:
        return await journal.entries(), await journal.summary()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def _job_json(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.key,
        "state": entry.state.value,
        "task_id": entry.task_id,
        "model": entry.model,
        "fingerprint": entry.fingerprint,
        "attempts": entry.attempts,
        "submit_in_doubt": entry.submit_in_doubt,
        "error": entry.error,
        "files": list(entry.files),
        "created_at": _iso(entry.created_at),
        "submitted_at": _iso(entry.submitted_at),
        "finished_at": _iso(entry.finished_at),
    }


def _report(
    path: str, entries: list[JournalEntry], counts: dict[str, int], *, show_all: bool
) -> str:
    lines = [f"Journal {path}: {len(entries)} job{'s' if len(entries) != 1 else ''}"]
    lines += [f"  {state:<11} {count:>6}" for state, count in counts.items() if count]
    width = max((len(entry.key) for entry in entries), default=2)

    def section(title: str, chosen: list[JournalEntry], hint: str | None = None) -> None:
        if not chosen:
            return
        lines.append("")
        lines.append(f"{title} ({len(chosen)}):")
        for entry in chosen:
            detail = entry.task_id or "-"
            if entry.error is not None and entry.state is not JournalState.FINISHED:
                detail += f"  {entry.error['type']}: {entry.error['message']}"
            lines.append(f"  {entry.key:<{width}}  {detail}")
        if hint:
            lines.append(hint.rstrip("\n"))

    by_state: dict[JournalState, list[JournalEntry]] = {state: [] for state in JournalState}
    for entry in entries:
        by_state[entry.state].append(entry)
    section(
        "Unknown submits (sent, no answer)",
        by_state[JournalState.UNKNOWN] + by_state[JournalState.SUBMITTING],
        _UNKNOWN_HINT,
    )
    section(
        "In flight, timed out or lost track of (task ids to collect)",
        by_state[JournalState.IN_FLIGHT]
        + by_state[JournalState.TIMEOUT]
        + by_state[JournalState.LOST],
        _IN_FLIGHT_HINT,
    )
    section("Failed", by_state[JournalState.FAILED])
    if show_all:
        section("Finished", by_state[JournalState.FINISHED])
    return "\n".join(lines) + "\n"
