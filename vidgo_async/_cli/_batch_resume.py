"""``vidgo-async batch`` and its journal: what earlier runs did, and what this one must do.

Before the first submit the journal (``OUT/journal.sqlite`` unless ``--journal``) is opened,
or created, its writer lock is taken (a second batch on the same journal is refused with one
line, exit 2: one batch, one writer), and the input is sorted against it (:func:`~vidgo_async._resume.plan_resume`):

- finished jobs are reported from it (their missing or partial videos downloaded again);
- jobs with a ``task_id`` (in flight, timed out, lost track of) are re-attached: polled,
  never submitted again;
- unanswered submits are reported ``unknown`` and left alone unless ``--retry-unknown``;
- a job id journaled with another request stops the run (exit 2) before any request;
- so does a journal whose tasks live on another server (another ``--base-url``, or a real
  run's journal under ``--emulator`` and back): the journal records its server at first use;
- ``--max-credits`` is checked against the jobs still to submit, and the balance read just
  before the first submit (the rest of the spend guard is in ``_batch_guard``).

With ``--emulator`` the tasks of an earlier run died with the emulator in its process (and
cost nothing), so those jobs are marked failed and submitted again, and so are finished
jobs whose video is missing (their URL died with that emulator).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import attrs

from .._errors import (
    APIConnectionError,
    AuthenticationError,
    JournalError,
    JournalLockedError,
    PermissionDeniedError,
    VidgoError,
)
from .._filenames import ALLOWED_EXTENSIONS, INDEX_SEPARATOR, file_name_for
from .._hosts import is_loopback_host, url_host
from .._jobs import GenerationRequest, JobResult, JobState, Progress
from .._journal import Journal, JournalEntry
from .._journal_lock import WriterLock, describe_owner, lock_file_for
from .._resume import JournalRecorder, ResumePlan, plan_resume
from .._spend import BatchPlan, budget_problem, format_amount, plan_batch
from ._batch_recorded import finished_result, recorded_result, unknown_result
from ._preflight import server_of

if TYPE_CHECKING:
    from .._client import VidgoClient
    from .._orchestrator import JobHandle, Orchestrator
    from ._batch_input import BatchLine

__all__ = [
    "JOURNAL_FIX",
    "JOURNAL_NAME",
    "BatchResume",
    "journal_path",
    "move_aside",
    "taken_message",
    "taken_names",
]

JOURNAL_NAME = "journal.sqlite"

JOURNAL_FIX = (
    "the file was not changed. Inspect it with `vidgo-async journal PATH`, pass another "
    "--journal, or start over with --fresh (the old journal is moved aside, not deleted)"
)

_UNKNOWN_HINT = (
    "  HINT: these submits were sent in an earlier run but no answer came back, so a task may "
    "exist and be billed; they were not submitted again. Check your Vidgo dashboard, then rerun "
    "with --retry-unknown to submit them again (or give them new ids)."
)

_EMULATOR_LOST = "the built-in emulator's task ended with the process that ran it"


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


def journal_path(args: argparse.Namespace) -> Path:
    """Return the journal of this batch: ``--journal``, else ``OUT/journal.sqlite``."""
    path: Path | None = args.journal
    return path if path is not None else Path(args.out) / JOURNAL_NAME


def move_aside(path: Path, *, now: Callable[[], float] = time.time) -> Path | None:
    """Rename the journal at ``path`` (with its ``-wal``/``-shm`` files); return the new name.

    Returns ``None`` when there is no journal. The old journal is kept, never deleted: its
    task ids may be the only record of videos being paid for.

    Raises:
        JournalLockedError: a batch is running on the journal (it is not moved).
    """
    if not path.exists():
        return None
    lock = WriterLock(lock_file_for(path))
    lock.acquire(f"vidgo-async batch --fresh, {describe_owner()}")
    try:
        return _rename_journal(path, now)
    finally:
        lock.release()


def _utc_stamp(moment: float) -> str:
    """The UTC time of ``moment`` as it names what a fresh start moves aside."""
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _rename_journal(path: Path, now: Callable[[], float]) -> Path:
    stamp = _utc_stamp(now())
    target = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
    counter = 1
    while any(Path(f"{target}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        counter += 1
        target = path.with_name(f"{path.stem}-{stamp}-{counter}{path.suffix}")
    # The WAL may hold commits not yet in the main file: it moves with it, to the name
    # SQLite looks for next to the new file.
    for suffix in ("-wal", "-shm", ""):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{target}{suffix}"))
    return target


@attrs.define
class BatchResume:
    """The journal side of one ``vidgo-async batch`` run (see the module docstring).

    Attributes:
        reported: results reported from the journal without running anything (finished
            jobs, and unanswered submits left alone), by job id.
        files: the ``results.jsonl`` file entries of finished jobs whose files are on disk.
        to_download: finished jobs whose files are missing or partial on disk.
        recorder: the orchestrator's journal recorder once the journal is open.
    """

    lines: Sequence[BatchLine]
    args: argparse.Namespace
    path: Path = attrs.field(init=False)
    journal: Journal | None = None
    plan: ResumePlan | None = None
    recorder: JournalRecorder | None = None
    reported: dict[str, JobResult] = attrs.field(factory=dict)
    files: dict[str, list[dict[str, str | None]]] = attrs.field(factory=dict)
    to_download: list[JobResult] = attrs.field(factory=list)
    # Rewrites the lines once the journal is open, before planning (journaled upload URLs).
    before_plan: Callable[[Journal, Sequence[BatchLine]], Awaitable[Sequence[BatchLine]]] | None = (
        None
    )

    def __attrs_post_init__(self) -> None:
        self.path = journal_path(self.args)

    async def run(self, main: Callable[[], Awaitable[int]]) -> int:
        """Lock and open the journal, plan the run, then run ``main`` (unless refused)."""
        journal = self.journal = Journal(self.path)
        try:
            try:
                # Before the file is even opened: one batch, one writer, no race on creation.
                await journal.lock_writer(f"vidgo-async batch, {describe_owner()}")
            except JournalLockedError as exc:
                _say(f"vidgo-async batch: {exc}")
                return 2
            except (JournalError, OSError) as exc:
                _say(f"vidgo-async batch: cannot lock the journal: {exc}")
                _say(f"  nothing was submitted; {JOURNAL_FIX}")
                return 2
            try:
                await journal.__aenter__()
                # Planning reads every row: a damaged one (its checksum) is refused here too.
                if self.before_plan is not None:
                    self.lines = await self.before_plan(journal, self.lines)
                refused = await self._plan(journal)
            except JournalError as exc:
                _say(f"vidgo-async batch: cannot use the journal: {exc}")
                _say(f"  nothing was submitted; {JOURNAL_FIX}")
                return 2
            if refused is not None:
                return refused
            return await main()
        finally:
            with anyio.CancelScope(shield=True):
                await journal.aclose()

    async def _plan(self, journal: Journal) -> int | None:
        requests = [line.request for line in self.lines]
        plan = await plan_resume(journal, requests, retry_unknown=bool(self.args.retry_unknown))
        # Every row read (a damaged one refused, the file untouched), before anything is
        # written: a task id means nothing to another server, so tasks another server
        # created are never polled here (nor given up and submitted again by --emulator).
        await journal.bind_server(server_of(self.args))
        if self.args.emulator and not plan.conflicts and await self._drop_emulator_tasks(plan):
            plan = await plan_resume(journal, requests, retry_unknown=False)
        self.plan = plan
        if plan.conflicts:
            for conflict in plan.conflicts:
                _say(f"vidgo-async batch: {conflict}")
            _say(f"  nothing was submitted ({len(plan.conflicts)} conflicting job id(s))")
            return 2
        spend = plan_batch(plan.submit, dict(self.args.price or []))
        problem = budget_problem(spend, max_credits=self.args.max_credits)
        if problem is not None:
            _say(f"vidgo-async batch: {problem}")
            return 2
        download = not self.args.no_download
        out = Path(self.args.out)
        if download and not self.args.emulator and plan.submit:
            # A new video is never saved over a file already at its name: paying for it
            # and then failing its download helps nobody, so stop before anything is sent.
            taken = await anyio.to_thread.run_sync(taken_names, out, plan.submit)
            if taken and getattr(self.args, "fresh", False):
                # Starting over: the earlier run's videos are kept, like its journal.
                try:
                    folder = await anyio.to_thread.run_sync(_move_files_aside, out, taken)
                except OSError as exc:
                    _say(f"vidgo-async batch: --fresh could not move earlier videos aside: {exc}")
                    _say("  nothing was submitted")
                    return 2
                _say(f"  --fresh: {len(taken)} earlier file(s) moved to {folder} (not deleted)")
                taken = []
            if taken:
                _say(taken_message(taken))
                return 2
        self.recorder = JournalRecorder(journal, retry_unknown=bool(self.args.retry_unknown))
        ids = {line.id for line in self.lines}
        checked = await anyio.to_thread.run_sync(_check_done, plan.done, ids, out)
        for request, entry in plan.done:
            result = finished_result(request, entry)
            self.reported[entry.key] = result
            paths = checked.get(entry.key)
            if paths is None and download and result.task is not None and result.task.files:
                self.to_download.append(result)
            else:
                self.files[entry.key] = _entries(result, paths)
        for request, entry in plan.in_doubt:
            self.reported[entry.key] = unknown_result(request, entry)
        self._describe(plan, spend)
        return None

    async def _drop_emulator_tasks(self, plan: ResumePlan) -> bool:
        """Make the jobs an earlier emulator left behind submittable; return whether any were.

        The built-in emulator's tasks ended with the process that ran it, and nothing was
        billed: jobs it was running are marked failed, and a finished job whose video is
        missing on disk (its URL died with that emulator) is forgotten, so a rerun submits
        them again. Only a task whose files the emulator served (loopback URLs) is forgotten.
        """
        journal = self.journal
        assert journal is not None  # noqa: S101 - opened before planning
        changed = False
        for request, _ in [*plan.attach, *plan.in_doubt]:
            assert request.key is not None  # noqa: S101 - every batch line has an id
            await journal.record_failed(request.key, "EmulatorTaskLost", _EMULATOR_LOST)
            changed = True
        if self.args.no_download or not plan.done:
            return changed
        ids = {line.id for line in self.lines}
        present = await anyio.to_thread.run_sync(_check_done, plan.done, ids, Path(self.args.out))
        for _, entry in plan.done:
            if entry.key not in present and _served_by_emulator(entry):
                await journal.forget(entry.key)
                changed = True
        return changed

    def _describe(self, plan: ResumePlan, spend: BatchPlan) -> None:
        if plan.resuming:
            _say(
                f"vidgo-async batch: resuming from {self.path}: {len(plan.done)} finished earlier"
                + (f" ({len(self.to_download)} to download again)" if self.to_download else "")
                + f", {len(plan.attach)} to poll (not submitted again), "
                f"{len(plan.in_doubt)} unknown, {len(plan.submit)} to submit"
            )
        if plan.in_doubt:
            for _, entry in plan.in_doubt[:20]:
                _say(f"  unknown: {entry.key} (no answer to its submit in an earlier run)")
            if len(plan.in_doubt) > 20:
                _say(f"  ... and {len(plan.in_doubt) - 20} more")
            _say(_UNKNOWN_HINT)
        if plan.orphans:
            _say(
                f"  note: the journal also holds {len(plan.orphans)} job(s) this input does not "
                "name; they are left alone (see `vidgo-async journal`)"
            )
        if spend.estimated_credits is not None and spend.jobs:
            _say(
                f"  estimated cost of the {spend.jobs} job(s) to submit: "
                f"{format_amount(spend.estimated_credits)} credits"
            )

    async def check_balance(self, client: VidgoClient) -> int | None:
        """Read the balance and refuse (2) a run it cannot pay for; ``None`` lets it go on.

        The estimate covers only the jobs this run submits. A balance that cannot be read for
        another reason than a refused key is reported and the run goes on: Vidgo itself
        refuses a submit it cannot be paid for (402).
        """
        plan = self.plan
        if plan is None or not plan.submit:
            return None
        spend = plan_batch(plan.submit, dict(self.args.price or []))
        try:
            balance = await client.balance()
        except (AuthenticationError, PermissionDeniedError) as exc:
            _say(f"vidgo-async batch: the API refused the key: {exc}; nothing was submitted")
            return 2
        except APIConnectionError as exc:  # an outage: every submit would fail the same way
            _say(
                f"vidgo-async batch: cannot reach {client.base_url} ({exc}); nothing was submitted"
            )
            return 2
        except VidgoError as exc:
            _say(f"vidgo-async batch: warning: could not read the balance ({exc}); going on")
            return None
        credits = balance.credits_amount
        problem = budget_problem(spend, balance=credits)
        if problem is not None:
            _say(f"vidgo-async batch: {problem}")
            return 2
        estimate = spend.estimated_credits
        if estimate is None:
            _say(
                f"  balance: {format_amount(credits)} credits (not compared with the cost: no "
                f"--price for {', '.join(spend.unpriced_models)})"
            )
        else:
            _say(
                f"  balance: {format_amount(credits)} credits, enough for the estimate of "
                f"{format_amount(estimate)}"
            )
        return None

    def attach(self, orchestrator: Orchestrator, deadline: float | None) -> list[JobHandle]:
        """Re-attach every journaled task of the plan; return their handles (in plan order)."""
        assert self.plan is not None  # noqa: S101 - planned before the run
        return [
            orchestrator.attach(request, task, deadline=deadline)
            for request, task in self.plan.attach
        ]

    @property
    def to_submit(self) -> list[GenerationRequest]:
        """The requests this run submits."""
        assert self.plan is not None  # noqa: S101 - planned before the run
        return list(self.plan.submit)

    def with_reported(self, snapshot: Progress) -> Progress:
        """Add the jobs reported from the journal to an orchestrator's progress snapshot."""
        finished = sum(1 for r in self.reported.values() if r.state is JobState.FINISHED)
        unknown = len(self.reported) - finished
        return attrs.evolve(
            snapshot, finished=snapshot.finished + finished, unknown=snapshot.unknown + unknown
        )

    async def recorded(self, lines: Sequence[BatchLine]) -> dict[str, JobResult]:
        """Return the journal's results for ``lines``, by job id (jobs it does not hold: none).

        For the jobs a stopped run has no result for: a submit cut off by Ctrl-C ended
        ``unknown``, and a job that ended just before the stop was not taken from the
        orchestrator yet; the journal holds their ends. Only a job it does not hold was
        never submitted (``cancelled``). Shielded: it runs while the run is being stopped.
        """
        journal = self.journal
        if journal is None or not lines:
            return {}
        with anyio.CancelScope(shield=True):
            try:
                entries = {entry.key: entry for entry in await journal.entries()}
            except JournalError as exc:
                _say(f"vidgo-async batch: warning: could not read the journal's results: {exc}")
                return {}
        return {
            line.id: recorded_result(line.request, entry)
            for line in lines
            if (entry := entries.get(line.id)) is not None
        }

    async def record_download(self, key: str, paths: Sequence[Path | None]) -> None:
        """Record where a job's files were downloaded (only when every one of them was)."""
        journal = self.journal
        if journal is None or not paths or any(path is None for path in paths):
            return
        with anyio.CancelScope(shield=True):
            try:
                await journal.record_download(key, *[path for path in paths if path is not None])
            except JournalError as exc:
                _say(f"vidgo-async batch: warning: could not journal the files of {key}: {exc}")


def _entries(result: JobResult, paths: Sequence[Path] | None) -> list[dict[str, str | None]]:
    if result.task is None:
        return []
    return [
        {
            "url": file.file_url,
            "path": str(paths[index]) if paths is not None and index < len(paths) else None,
        }
        for index, file in enumerate(result.task.files)
    ]


def _check_done(
    done: Sequence[tuple[GenerationRequest, JournalEntry]], ids: set[str], out: Path
) -> dict[str, list[Path]]:
    """Return the recorded files of finished jobs that are all on disk; drop stale ``.part`` files.

    Runs in a worker thread (file system calls). A download is placed under its final name
    only once complete, so a recorded, non-empty file is whole; one that is missing, empty,
    or not recorded at all is downloaded again.
    """
    present: dict[str, list[Path]] = {}
    directories: set[Path] = {out}
    for _, entry in done:
        paths = [Path(name) for name in entry.files]
        directories.update(path.parent for path in paths)
        expected = len(entry.task.files) if entry.task is not None else 0
        if paths and len(paths) == expected and all(_whole(path) for path in paths):
            present[entry.key] = paths
    for directory in directories:
        _remove_stale_parts(directory, ids)
    return present


def taken_names(out: Path, requests: Sequence[GenerationRequest]) -> list[Path]:
    """Return the files in ``out`` named like a video of one of ``requests`` (``<id>.<ext>``,
    ``<id>~<n>.<ext>``), sorted. Runs in a worker thread (file system calls)."""
    stems = {file_name_for(request.key) for request in requests if request.key is not None}
    taken: list[Path] = []
    with contextlib.suppress(OSError):
        for path in out.iterdir():
            stem, dot, extension = path.name.rpartition(".")
            if not dot or extension.lower() not in ALLOWED_EXTENSIONS:
                continue
            base, _, number = stem.rpartition(INDEX_SEPARATOR)
            if stem in stems or (base in stems and number.isdigit()):
                taken.append(path)
    return sorted(taken)


def taken_message(taken: Sequence[Path]) -> str:
    """Why a run with files at its new videos' names stops before submitting anything."""
    shown = ", ".join(str(path) for path in taken[:3])
    more = f" and {len(taken) - 3} more" if len(taken) > 3 else ""
    return (
        f"vidgo-async batch: {len(taken)} file(s) already sit where the videos of jobs to "
        f"submit would go ({shown}{more}), and a video is never saved over another file\n"
        "  nothing was submitted; move those files away or choose another --out"
    )


def _move_files_aside(out: Path, paths: Sequence[Path], *, now: float | None = None) -> Path:
    """Move ``paths`` into a new ``out/earlier-<UTC time>/`` folder; return the folder."""
    stamp = _utc_stamp(time.time() if now is None else now)
    folder = out / f"earlier-{stamp}"
    counter = 1
    while folder.exists():
        counter += 1
        folder = out / f"earlier-{stamp}-{counter}"
    folder.mkdir()
    for path in paths:
        path.rename(folder / path.name)
    return folder


def _served_by_emulator(entry: JournalEntry) -> bool:
    """Whether every file of the entry's task was served on loopback (by the emulator)."""
    files = entry.task.files if entry.task is not None else ()
    return bool(files) and all(is_loopback_host(url_host(file.file_url)) for file in files)


def _whole(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _remove_stale_parts(directory: Path, ids: set[str]) -> None:
    """Remove ``<id>.<ext>.part`` / ``<id>~<n>.<ext>.part`` files a killed run left behind.

    Names from before the ``~<n>`` scheme (``<id>-<n>``) are recognised too.
    """
    stems = {file_name_for(job_id) for job_id in ids} | ids
    with contextlib.suppress(OSError):
        for path in directory.iterdir():
            name = path.name
            if not name.endswith(".part"):
                continue
            stem = name[: -len(".part")].rsplit(".", 1)[0]
            numbered = [stem.rpartition(INDEX_SEPARATOR), stem.rpartition("-")]
            if (
                stem in stems
                or any(base in stems and number.isdigit() for base, _, number in numbered)
                or name.startswith(".results-")
            ):
                with contextlib.suppress(OSError):
                    path.unlink()
