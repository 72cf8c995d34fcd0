"""``vidgo-async batch``'s spend guard: its options, duplicate requests and ``--dry-run``.

Each check runs before the first request of a run and stops it with exit status 2:
identical requests (unless ``--allow-duplicates``), an estimate above ``--max-credits``
(checked in :class:`~vidgo_async._cli._batch_resume.BatchResume` against the jobs a rerun
still has to submit), and a balance that cannot pay (read just before the first submit).
``--dry-run`` prints the plan and sends no request at all; the plan of 1 000 lines takes
a few milliseconds.

No default price is assumed: Vidgo publishes no Seedance prices, and a made-up one would
either hide a real shortfall or block a batch that can be paid. Without a ``--price`` for
every model the balance is still read (an empty account stops the run) but not compared.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .._errors import JournalError
from .._jobs import GenerationRequest
from .._journal import Journal
from .._journal_api import is_postgres_url
from .._resume import ResumePlan, plan_resume
from .._spend import budget_problem, find_duplicates, parse_price, plan_batch
from ._batch_resume import JOURNAL_FIX, JOURNAL_NAME, journal_path

if TYPE_CHECKING:
    from ._batch_input import BatchLine

__all__ = ["add_arguments", "dry_run", "prices", "refuse_duplicates"]


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


def _price(text: str) -> tuple[str, float]:
    try:
        return parse_price(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _credits(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of credits >= 0 (got {text!r})")
    return value


def _journal_target(text: str) -> Path | str:
    """``--journal``: a SQLite file path, or a ``postgresql://`` URL kept as text."""
    return text if is_postgres_url(text) else Path(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the journal and spend-guard options to the ``batch`` parser."""
    group = parser.add_argument_group("resuming and spend guard")
    group.add_argument(
        "--journal",
        type=_journal_target,
        metavar="PATH|URL",
        help=f"the journal that makes a rerun resume (default OUT/{JOURNAL_NAME}); a "
        "postgresql:// URL shares the batch among several processes (a fleet)",
    )
    group.add_argument(
        "--fresh",
        action="store_true",
        help="start over: move the journal aside (renamed, not deleted) and submit every job",
    )
    group.add_argument(
        "--retry-unknown",
        action="store_true",
        help="submit again the jobs whose earlier submit got no answer (may pay twice)",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="check every line and print the plan; send no request",
    )
    group.add_argument(
        "--price",
        type=_price,
        action="append",
        default=[],
        metavar="MODEL=CREDITS_PER_SECOND",
        help="a model's price, for the estimate and the balance check (repeatable)",
    )
    group.add_argument(
        "--max-credits",
        type=_credits,
        metavar="N",
        help="refuse to start when the estimate of the jobs to submit is above N credits",
    )
    group.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="submit identical requests (same model and input) under different ids",
    )


def refuse_duplicates(lines: Sequence[BatchLine], args: argparse.Namespace) -> int | None:
    """Report identical requests; return 2 when they stop the run (no ``--allow-duplicates``).

    Duplicate ids never get here: the input reader refuses them with their line numbers.
    """
    _, identical = find_duplicates([line.request for line in lines])
    if not identical:
        return None
    allowed = bool(args.allow_duplicates)
    _say(
        f"vidgo-async batch: {len(identical)} group(s) of identical requests (same model and "
        "input: each would create, and bill, the same video again):"
    )
    for names in identical[:20]:
        _say(f"  {', '.join(names)}")
    if len(identical) > 20:
        _say(f"  ... and {len(identical) - 20} more group(s)")
    if allowed:
        _say("  --allow-duplicates: submitting them all")
        return None
    _say(
        "  nothing was submitted. HINT: remove the repeated lines, make them differ (e.g. a "
        "seed), or pass --allow-duplicates to pay for each of them"
    )
    return 2


def prices(args: argparse.Namespace) -> dict[str, float]:
    return dict(args.price or [])


def dry_run(lines: Sequence[BatchLine], args: argparse.Namespace, header: str) -> int:
    """Print the plan of the batch on stdout without sending any request; return the exit status.

    The status is what a real run would return before its first submit: 2 for identical
    requests (without ``--allow-duplicates``), a journal conflict or an exceeded
    ``--max-credits``, else 0.
    """
    status = 0
    if refuse_duplicates(lines, args) is not None:
        status = 2
    requests = [line.request for line in lines]
    path = journal_path(args)
    plan: ResumePlan | None = None
    journal_note = f"Journal: {path} (new)"
    if args.fresh and path.exists():
        journal_note = f"Journal: {path} would be moved aside (--fresh); every job is submitted"
    elif path.exists():
        try:
            plan = anyio.run(_plan_read_only, path, requests, bool(args.retry_unknown))
        except JournalError as exc:
            _say(f"vidgo-async batch: {exc}")
            _say(f"  HINT: {JOURNAL_FIX}")
            return 2
        if plan.conflicts:
            for conflict in plan.conflicts:
                _say(f"vidgo-async batch: {conflict}")
            status = 2
        requests = list(plan.submit)
        journal_note = (
            f"Journal: {path}: {len(plan.done)} finished (skipped), {len(plan.attach)} to poll, "
            f"{len(plan.in_doubt)} unknown (left alone), {len(plan.conflicts)} conflicting, "
            f"{len(plan.submit)} to submit"
        )
    spend = plan_batch(requests, prices(args))
    problem = budget_problem(spend, max_credits=args.max_credits)
    if problem is not None:
        _say(f"vidgo-async batch: {problem}")
        status = 2
    out = sys.stdout
    out.write(f"vidgo-async batch --dry-run: {len(lines)} line(s) checked, no request sent\n")
    out.write(f"  {header}\n")
    out.write(f"  {journal_note}\n")
    out.write("  " + spend.describe().replace("\n", "\n  ").rstrip() + "\n")
    out.write("  Balance: not checked (--dry-run sends no request)\n")
    out.flush()
    return status


async def _plan_read_only(
    path: Path, requests: Sequence[GenerationRequest], retry_unknown: bool
) -> ResumePlan:
    async with Journal(path, readonly=True) as journal:
        return await plan_resume(journal, requests, retry_unknown=retry_unknown)
