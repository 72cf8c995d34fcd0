"""``vidgo-async batch FILE --journal postgresql://…``: several processes share one batch.

Every process runs the same command. Each one offers every line to the shared journal; the
claim (``record_intent``) lets exactly one process submit each line, and ``--concurrency``
is the cap of the whole fleet (slot rows in the journal). Each process:

- renews its lease, and adopts the jobs of a process whose lease expired (polls its tasks,
  downloads its finished videos; a submit in doubt becomes ``unknown``, never resent);
- downloads the videos of the jobs it completed (its own and the adopted ones);
- exits when every line of the batch is terminal in the journal, after writing
  ``OUT/results.jsonl`` for the whole batch from the journal (exit 0 when all finished).

Not supported with a PostgreSQL journal (refused, exit 2): ``--emulator`` (each process
would have its own), ``--fresh``, ``--dry-run``, callbacks and local input files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread

from .._errors import JobClaimedError, JournalError, VidgoError
from .._filenames import extension_for, file_name_for
from .._fleet_gates import FleetGates
from .._jobs import GenerationRequest, JobResult
from .._journal_entry import JournalEntry
from .._resume import JournalRecorder, plan_resume
from . import _loop
from ._batch_resume import taken_message, taken_names

if TYPE_CHECKING:
    from .._client import VidgoClient
    from .._journal_pg import PostgresJournal
    from .._orchestrator import Orchestrator
    from ._batch_input import BatchLine

__all__ = ["FLEET_LEASE", "refuse_fleet_options", "run_fleet"]

FLEET_LEASE = 10.0  # seconds a process's jobs stay its own after its last renewal
_WATCH_EVERY = 0.5  # seconds between looks at the whole batch (and for expired leases)
_LOGGER = "vidgo_async"


def refuse_fleet_options(args: argparse.Namespace, lines: Sequence[BatchLine]) -> str | None:
    """The first option a shared (PostgreSQL) journal cannot honour, as a message, or ``None``."""
    local = next((line.id for line in lines if line.local_files), None)
    if local is not None:
        return (
            f"job {local!r} names a local file: uploads are not shared by a fleet yet. HINT: "
            "upload the files first and give their URLs, or use a SQLite journal"
        )
    for flag, given in (
        ("--emulator", args.emulator),
        ("--fresh", args.fresh),
        ("--dry-run", args.dry_run),
        ("--callback-url", getattr(args, "callback_url", None)),
    ):
        if given:
            return (
                f"{flag} cannot be used with a PostgreSQL journal (a fleet run). HINT: point "
                "every process at one server with --base-url, or use a SQLite journal"
            )
    return None


def run_fleet(lines: Sequence[BatchLine], args: argparse.Namespace, url: str) -> int:
    """Run this process's share of the batch; return the exit status."""
    run = _FleetRun(lines, args, url)
    quiet = _DropClaimNotes()
    logging.getLogger(_LOGGER).addFilter(quiet)
    try:
        return _loop.run(run.main)
    except KeyboardInterrupt:
        _say("vidgo-async batch: stopped; the rest of the fleet goes on (rerun to rejoin)")
        return 130
    finally:
        logging.getLogger(_LOGGER).removeFilter(quiet)


class _DropClaimNotes(logging.Filter):
    """A line another process of the fleet claimed is not news: drop that warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not isinstance(record.args, tuple) or not any(
            isinstance(arg, JobClaimedError) for arg in record.args
        )


class _FleetRun:
    def __init__(self, lines: Sequence[BatchLine], args: argparse.Namespace, url: str) -> None:
        self.lines = list(lines)
        self.args = args
        self.url = url
        self.out = Path(args.out)
        self.by_key = {line.id: line for line in self.lines}
        self.submitted_here = 0
        self.downloaded_here = 0
        self.download_errors: dict[str, str] = {}
        self.submitting = True
        self.following = 0
        self.journal: PostgresJournal | None = None

    def _journal(self) -> PostgresJournal:
        assert self.journal is not None  # noqa: S101 - open while jobs run
        return self.journal

    async def main(self) -> int:
        from .._journal_pg import PostgresJournal

        self.out.mkdir(parents=True, exist_ok=True)
        try:
            journal = await PostgresJournal.open(
                self.url, max_in_flight=self.args.concurrency, lease=FLEET_LEASE
            )
        except JournalError as exc:
            _say(f"vidgo-async batch: cannot use the journal: {exc}; nothing was submitted")
            return 2
        self.journal = journal
        try:
            return await self._run(journal)
        finally:
            with anyio.CancelScope(shield=True):
                await journal.aclose()

    async def _run(self, journal: PostgresJournal) -> int:
        from .._client import VidgoClient
        from .._orchestrator import Orchestrator

        requests = [line.request for line in self.lines]
        plan = await plan_resume(journal, requests)
        if plan.conflicts:
            for conflict in plan.conflicts:
                _say(f"vidgo-async batch: {conflict}")
            _say(f"  nothing was submitted ({len(plan.conflicts)} conflicting job id(s))")
            return 2
        if not self.args.no_download and plan.submit:
            taken = await self._taken(journal, requests, plan.submit)
            if taken:
                _say(taken_message(taken))
                return 2
        _say(
            f"vidgo-async batch: joining the fleet on {journal.path} as {journal.owner}: "
            f"{len(self.lines)} job(s), at most {self.args.concurrency} in flight fleet-wide"
        )
        async with VidgoClient(
            base_url=self.args.base_url,
            allow_insecure=self.args.allow_insecure,
            allow_unknown_models=self.args.allow_unknown_model,
        ) as client:
            poll = client.poll
            if self.args.poll_scale is not None:
                poll = poll.scaled(self.args.poll_scale)
            orchestrator = Orchestrator(
                client,
                max_in_flight=self.args.concurrency,
                job_timeout=self.args.timeout,
                poll=poll,
                journal=JournalRecorder(journal),
            )
            # Adopted jobs already hold their fleet slots: they are followed by an orchestrator
            # of their own, so they never wait for local tokens held by claims that wait
            # for those very slots (a deadlock when a dead process held every slot).
            adopter = Orchestrator(
                client,
                max_in_flight=self.args.concurrency,
                job_timeout=self.args.timeout,
                poll=poll,
                journal=JournalRecorder(journal),
            )
            async with orchestrator, adopter, anyio.create_task_group() as background:
                background.start_soon(journal.keep_lease)
                gates = [orchestrator.submit_gate, orchestrator.status_gate]
                background.start_soon(FleetGates(journal, gates).run)  # a 429 holds the fleet
                async with anyio.create_task_group() as work:
                    work.start_soon(self._watch, journal, adopter, client, work)
                    completed = orchestrator.as_completed(plan.submit, deadline=self.args.deadline)
                    async for result in completed:
                        if isinstance(result.error, JobClaimedError):
                            continue  # another process of the fleet submits it
                        self.submitted_here += 1
                        self._done(result, client, work)
                    self.submitting = False
                background.cancel_scope.cancel()
        entries = {entry.key: entry for entry in await journal.entries()}
        rows = [self._row(line, entries.get(line.id)) for line in self.lines]
        await anyio.to_thread.run_sync(_write_results, self.out / "results.jsonl", rows)
        return self._summary(rows)

    async def _taken(
        self,
        journal: PostgresJournal,
        requests: Sequence[GenerationRequest],
        submit: Sequence[GenerationRequest],
    ) -> list[Path]:
        """Files at the video names of ``submit``, the jobs no process had claimed.

        A name taken meanwhile by another process of the fleet (it claimed the job and saved
        its video since the journal was read) is that job's own video: not counted.
        """
        taken = await anyio.to_thread.run_sync(taken_names, self.out, submit)
        if taken:
            plan = await plan_resume(journal, requests)
            taken = await anyio.to_thread.run_sync(taken_names, self.out, plan.submit)
        return taken

    def _done(self, result: JobResult, client: VidgoClient, work: anyio.abc.TaskGroup) -> None:
        if result.ok and not self.args.no_download and result.task is not None:
            work.start_soon(self._download, client, result)

    async def _watch(
        self,
        journal: PostgresJournal,
        orchestrator: Orchestrator,
        client: VidgoClient,
        work: anyio.abc.TaskGroup,
    ) -> None:
        """Adopt what dead processes left; return once every line is terminal in the journal."""
        while True:
            adopted = await journal.adopt_expired()
            keys = [entry.key for entry in adopted if entry.key in self.by_key]
            if keys:
                _say(f"  adopted {len(keys)} job(s) of a stopped process: {', '.join(keys[:5])}")
                plan = await plan_resume(journal, [self.by_key[key].request for key in keys])
                for request, task in plan.attach:
                    handle = orchestrator.attach(request, task, deadline=self.args.deadline)
                    self.following += 1
                    work.start_soon(self._follow, handle, client, work)
                for request, entry in plan.done:
                    if not self.args.no_download and entry.task is not None:
                        result = JobResult(
                            request=request,
                            key=entry.key,
                            state=entry.state.job_state,
                            task=entry.task,
                            error=None,
                            queued_at=_utc(entry.created_at) or datetime.now(timezone.utc),
                            submitted_at=_utc(entry.submitted_at),
                            finished_at=_utc(entry.finished_at),
                        )
                        work.start_soon(self._download, client, result)
            if not self.submitting and not self.following:
                entries = {entry.key: entry for entry in await journal.entries()}
                if all(
                    entry is None or entry.state.is_terminal
                    for entry in (entries.get(key) for key in self.by_key)
                ):
                    return
            await anyio.sleep(_WATCH_EVERY)

    async def _follow(self, handle: Any, client: VidgoClient, work: anyio.abc.TaskGroup) -> None:
        try:
            result: JobResult = await handle.result()
            self._done(result, client, work)
        finally:
            self.following -= 1

    async def _download(self, client: VidgoClient, result: JobResult) -> None:
        assert result.task is not None  # noqa: S101 - a finished job has its task
        files = result.task.files
        paths: list[Path] = []
        try:
            for index, file in enumerate(files, start=1):
                stem = file_name_for(result.key, index if len(files) > 1 else None)
                name = file.file_url.rsplit("/", 1)[-1]
                extension = extension_for(file.file_url) if "." in name else "mp4"
                # Never removed first: an existing different file is refused, never replaced.
                destination = self.out / f"{stem}.{extension}"
                paths.append(
                    await client.download_file(file.file_url, destination, task_id=result.task_id)
                )
            with anyio.CancelScope(shield=True):
                await self._journal().record_download(result.key, *paths)
            self.downloaded_here += 1
        except (VidgoError, OSError) as exc:
            self.download_errors[result.key] = str(exc)
            _say(f"vidgo-async batch: download of {result.key} failed: {exc}")

    def _row(self, line: BatchLine, entry: JournalEntry | None) -> dict[str, Any]:
        if entry is None:
            return {
                "id": line.id, "task_id": None, "status": "cancelled", "files": [],
                "error": None, "queued_at": None, "submitted_at": None, "finished_at": None,
            }  # fmt: skip
        task_files = entry.task.files if entry.task is not None else ()
        files = [
            {"url": file.file_url, "path": entry.files[i] if i < len(entry.files) else None}
            for i, file in enumerate(task_files)
        ]
        error = entry.error
        if line.id in self.download_errors:
            error = {"type": "DownloadError", "message": self.download_errors[line.id]}
        return {
            "id": line.id,
            "task_id": entry.task_id,
            "status": entry.state.value,
            "files": files,
            "error": error,
            "queued_at": _iso(entry.created_at),
            "submitted_at": _iso(entry.submitted_at),
            "finished_at": _iso(entry.finished_at),
        }

    def _summary(self, rows: list[dict[str, Any]]) -> int:
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        shown = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
        _say(
            f"vidgo-async batch: the whole batch: {shown}; this process submitted "
            f"{self.submitted_here} and downloaded {self.downloaded_here}; results in "
            f"{self.out / 'results.jsonl'}"
        )
        everything = all(row["status"] == "finished" for row in rows)
        return 0 if everything and not self.download_errors else 1


def _utc(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


def _iso(value: float | None) -> str | None:
    moment = _utc(value)
    return None if moment is None else moment.isoformat()


def _write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write results.jsonl atomically (a temporary file in the same directory, then a rename)."""
    handle, temporary = tempfile.mkstemp(prefix=".results-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
