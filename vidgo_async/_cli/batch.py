"""``vidgo-async batch``: run a JSONL file of jobs, download the videos, write results.jsonl."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.abc
import anyio.to_thread

from .._config import API_KEY_ENV, PollPolicy
from .._errors import DownloadError, JournalLockedError, VidgoError
from .._filenames import file_name_for
from .._jobs import JobResult, JobState, Progress
from .._journal import Journal
from .._orchestrator import JobHandle, Orchestrator
from ._batch_callbacks import CallbackSetupError, callback_receiver, reregister_tokens
from ._batch_callbacks import add_arguments as add_callback_arguments
from ._batch_callbacks import settings_from_args as callback_settings
from ._batch_guard import add_arguments as add_resume_arguments
from ._batch_guard import dry_run, refuse_duplicates
from ._batch_input import BatchDefaults, BatchInputError, BatchLine, read_batch
from ._batch_resume import BatchResume, journal_path, move_aside
from ._batch_uploads import BatchUploads, preview_uploads

__all__ = ["register"]

_DESCRIPTION = """\
Run every job of a JSONL file (one job a line) with at most --concurrency jobs in flight.
A line is {"id": ..., "model": ..., "input": {...}} or the shorthand {"id": ..., "prompt": ...},
filled from the defaults below. Every line is checked before the first submit.
Writes OUT/results.jsonl and downloads each video to OUT/<id>.mp4 (OUT/<id>~<n>.mp4 for
several files of one job).
Every submit is journaled in OUT/journal.sqlite first: rerunning the same command resumes
(finished jobs are skipped, created tasks are polled, never submitted again).
Only one batch at a time runs on a journal: a second one is refused (exit 2).
Exit status: 0 all finished, 1 some job failed/timed out/lost/unknown, 2 usage or input
error, a refused spend or a journal in use (nothing submitted), 130 interrupted (after
writing what is known).
"""

# The --emulator timing: Seedance-like 30-120 s jobs played 50x faster.
_EMULATOR_JOB_SECONDS = (30.0, 120.0)
_EMULATOR_TIME_SCALE = 0.02


def _say(text: str) -> None:
    """Write one line to stderr (stdout stays free for pipes)."""
    sys.stderr.write(text + "\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {text})")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {text!r})") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {text})")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``batch`` command."""
    parser = subparsers.add_parser(
        "batch",
        help="run a JSONL file of generation jobs",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="the JSONL file of jobs")
    parser.add_argument("--out", type=Path, required=True, help="the output directory")
    parser.add_argument(
        "--concurrency", type=_positive_int, default=8, help="jobs in flight at most (default 8)"
    )
    parser.add_argument(
        "--model", default="seedance-2", help="model of shorthand lines (default seedance-2)"
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds of video for shorthand lines (default 5)"
    )
    parser.add_argument(
        "--resolution", default="720p", help="resolution for shorthand lines (default 720p)"
    )
    parser.add_argument(
        "--aspect-ratio", default="16:9", help="aspect ratio for shorthand lines (default 16:9)"
    )
    parser.add_argument("--no-download", action="store_true", help="do not download the videos")
    parser.add_argument("--base-url", help=f"the API base URL (key from {API_KEY_ENV})")
    parser.add_argument(
        "--emulator", action="store_true", help="run against a built-in emulator (no key needed)"
    )
    parser.add_argument(
        "--timeout", type=_positive_float, help="seconds per job from submit to end (default 1800)"
    )
    parser.add_argument("--deadline", type=_positive_float, help="seconds for the whole batch")
    parser.add_argument(
        "--allow-unknown-model",
        action="store_true",
        help="send model ids that `vidgo-async models` does not list (input checked as JSON only)",
    )
    add_callback_arguments(parser)
    add_resume_arguments(parser)
    # Scales the poll schedule (tests and benchmarks against a fast local server).
    parser.add_argument("--poll-scale", type=_positive_float, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the batch command; return its exit status."""
    defaults = BatchDefaults(
        model=args.model,
        duration=args.duration,
        resolution=args.resolution,
        aspect_ratio=args.aspect_ratio,
        allow_unknown_models=args.allow_unknown_model,
    )
    try:
        lines = read_batch(args.input, defaults)
    except OSError as exc:
        _say(f"vidgo-async batch: cannot read {args.input}: {exc}")
        return 2
    except BatchInputError as exc:
        _say(f"vidgo-async batch: {args.input}: nothing was submitted:")
        for problem in exc.problems:
            _say(f"  {problem}")
        return 2
    if args.dry_run:  # before the key check: a dry run sends nothing
        try:
            lines, uploads = preview_uploads(
                lines, journal_path(args), emulator=args.emulator, now=time.time()
            )
        except VidgoError as exc:
            _say(f"vidgo-async batch: {exc}")
            return 2
        status = dry_run(lines, args, f"shorthand defaults: {defaults.describe()}")
        sys.stdout.writelines(f"  {text}\n" for text in uploads)
        return status
    refused = refuse_duplicates(lines, args)
    if refused is not None:
        return refused
    if not args.emulator and not os.environ.get(API_KEY_ENV, "").strip():
        _say(f"vidgo-async batch: no API key. HINT: set {API_KEY_ENV}, or try --emulator.")
        return 2
    try:
        args.callbacks = callback_settings(args)
    except CallbackSetupError as exc:
        for text in exc.lines:
            _say(text)
        return 2
    _print_plan(lines, defaults, args)
    if args.fresh:
        try:
            moved = move_aside(journal_path(args))
        except JournalLockedError as exc:  # never move a journal from under a running batch
            _say(f"vidgo-async batch: {exc}")
            return 2
        except OSError as exc:
            _say(f"vidgo-async batch: --fresh could not move the journal aside: {exc}")
            return 2
        if moved is not None:
            _say(f"  --fresh: the old journal was moved to {moved} (not deleted)")
    runner = _BatchRun(lines, args)
    try:
        return anyio.run(runner.resume.run, runner.main)
    except CallbackSetupError as exc:  # the receiver could not listen: nothing was submitted
        for text in exc.lines:
            _say(text)
        return 2
    except KeyboardInterrupt:
        _say(
            "\nvidgo-async batch: interrupted; results written so far are in "
            f"{args.out / 'results.jsonl'}"
        )
        return 130


def _print_plan(lines: list[BatchLine], defaults: BatchDefaults, args: argparse.Namespace) -> None:
    models = sorted({line.request.model for line in lines})
    seconds = sum(line.seconds for line in lines)
    target = "the built-in emulator" if args.emulator else (args.base_url or "the Vidgo API")
    _say(
        f"vidgo-async batch: {len(lines)} job(s), model(s) {', '.join(models)}, "
        f"{seconds} s of video, at most {args.concurrency} in flight, against {target}\n"
        f"  shorthand defaults: {defaults.describe()}"
    )


class _BatchRun:
    """One run of the command: the orchestrator, the downloads, the progress and the output."""

    def __init__(self, lines: list[BatchLine], args: argparse.Namespace) -> None:
        self.lines = lines
        self.args = args
        self.out: Path = args.out
        self.results: dict[str, JobResult] = {}
        self.files: dict[str, list[dict[str, str | None]]] = {}
        self.download_errors: dict[str, BaseException] = {}
        self.started = time.monotonic()
        self.uploads = BatchUploads.of(lines, emulator=bool(args.emulator))  # local files
        self.resume = BatchResume(  # the journal: what earlier runs did
            lines, args, before_plan=self._recorded_uploads if self.uploads.files else None
        )

    async def main(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        self.results.update(self.resume.reported)  # finished earlier, or left unknown
        self.files.update(self.resume.files)
        orchestrator: Orchestrator | None = None
        refused: int | None = None
        try:
            callbacks = getattr(self.args, "callbacks", None)
            async with (
                self._client() as client,
                callback_receiver(client, callbacks, _say) as receiver,
            ):
                refused = await self.resume.check_balance(client)
                if refused is not None:
                    return refused
                await reregister_tokens(receiver, self.resume.journal, self.resume.plan, _say)
                orchestrator = Orchestrator(
                    client,
                    max_in_flight=self.args.concurrency,
                    job_timeout=self.args.timeout,
                    poll=self._poll(client.poll),
                    journal=self.resume.recorder,
                    receiver=receiver,
                )
                async with orchestrator, anyio.create_task_group() as group:
                    progress = anyio.CancelScope()
                    group.start_soon(self._show_progress, orchestrator, progress)
                    deadline = self.args.deadline
                    for earlier in self.resume.to_download:  # finished, files missing on disk
                        group.start_soon(self._download, client, earlier)
                    # Journaled tasks queue first: polled, never submitted again.
                    attached = self.resume.attach(orchestrator, deadline)
                    for handle in attached:
                        group.start_soon(self._follow, handle, client, group)
                    requests = self.resume.to_submit
                    if self.uploads.files:  # local files: uploaded before their jobs
                        requests, failed = await self.uploads.resolve(
                            client, self.resume.journal, requests, now=time.time()
                        )
                        self.results.update((result.key, result) for result in failed)
                    async for result in orchestrator.as_completed(requests, deadline=deadline):
                        self.results[result.key] = result
                        if result.ok and not self.args.no_download:
                            group.start_soon(self._download, client, result)
                        else:
                            self.files[result.key] = _file_entries(result, None)
                    for handle in attached:
                        await handle.result()
                    progress.cancel()  # the group now waits for the downloads only
        finally:
            with anyio.CancelScope(shield=True):
                if orchestrator is not None:
                    for result in orchestrator.unfinished():
                        self.results.setdefault(result.key, result)
                if refused is None:  # a refused run sent nothing: the last results stand
                    rows = self._rows()
                    await anyio.to_thread.run_sync(_write_results, self.out / "results.jsonl", rows)
                    self._summary()
        return 0 if self._all_finished() else 1

    async def _recorded_uploads(
        self, journal: Journal, lines: Sequence[BatchLine]
    ) -> Sequence[BatchLine]:
        """Put the URLs of files uploaded by an earlier run into the lines, before planning."""
        await self.uploads.load(journal)
        return self.uploads.with_recorded(lines)

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        from .._client import VidgoClient

        if not self.args.emulator:
            async with VidgoClient(
                base_url=self.args.base_url, allow_unknown_models=self.args.allow_unknown_model
            ) as client:
                yield client
            return
        from ..testing import Emulator

        emulator = Emulator(job_seconds=_EMULATOR_JOB_SECONDS, time_scale=_EMULATOR_TIME_SCALE)
        async with emulator, emulator.client() as client:
            yield client

    def _poll(self, policy: PollPolicy) -> PollPolicy:
        scale = self.args.poll_scale
        if scale is None and self.args.emulator:
            scale = _EMULATOR_TIME_SCALE
        return policy if scale is None else policy.scaled(scale)

    async def _download(self, client: Any, result: JobResult) -> None:
        assert result.task is not None  # noqa: S101 - a finished job has its task
        paths: list[Path | None] = []
        files = result.task.files
        try:
            # --deadline bounds the downloads too; a cancelled download leaves no .part.
            with anyio.move_on_after(_remaining(self.started, self.args.deadline)) as scope:
                for index, file in enumerate(files, start=1):
                    stem = file_name_for(result.key, index if len(files) > 1 else None)
                    destination = self.out / f"{stem}.{_extension(file.file_url)}"
                    if destination.exists():
                        destination.unlink()  # a rerun replaces what an earlier run left
                    paths.append(
                        await client.download_file(
                            file.file_url, destination, task_id=result.task_id
                        )
                    )
            if scope.cancelled_caught:
                raise DownloadError(
                    f"--deadline {self.args.deadline:g} s passed during the download; rerun "
                    "the same command to download it (the task is not submitted again)",
                    task_id=result.task_id,
                )
            await self.resume.record_download(result.key, paths)
        except VidgoError as exc:
            self.download_errors[result.key] = exc
        self.files[result.key] = _file_entries(result, paths)

    async def _follow(self, handle: JobHandle, client: Any, group: anyio.abc.TaskGroup) -> None:
        """Report a re-attached job (a task from the journal) when it ends."""
        result = await handle.result()
        self.results[result.key] = result
        if result.ok and not self.args.no_download:
            group.start_soon(self._download, client, result)
        else:
            self.files[result.key] = _file_entries(result, None)

    async def _show_progress(self, orchestrator: Orchestrator, scope: anyio.CancelScope) -> None:
        """Redraw a bar on a terminal; print a line when counts change (at most every 2 s) otherwise."""
        stream: IO[str] = sys.stderr
        tty = stream.isatty()
        last_line = ""
        last_print = 0.0
        with scope:
            while True:
                snapshot = self.resume.with_reported(orchestrator.snapshot())
                line = _progress_line(snapshot, len(self.lines), time.monotonic() - self.started)
                now = time.monotonic()
                if tty:
                    stream.write("\r" + line + "\x1b[K")
                    stream.flush()
                elif line != last_line and now - last_print >= 2.0:
                    stream.write(line + "\n")
                    last_line, last_print = line, now
                await anyio.sleep(0.1 if tty else 0.5)

    def _all_finished(self) -> bool:
        return (
            len(self.results) == len(self.lines)
            and all(result.ok for result in self.results.values())
            and not self.download_errors
        )

    def _rows(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.lines:
            result = self.results.get(line.id)
            error = None if result is None else result.error
            error = self.download_errors.get(line.id, error)
            rows.append(
                {
                    "id": line.id,
                    "task_id": None if result is None else result.task_id,
                    # No result only when interrupted: the job was never submitted.
                    "status": "cancelled" if result is None else result.state.value,
                    "files": self.files.get(
                        line.id, [] if result is None else _file_entries(result, None)
                    ),
                    "error": None
                    if error is None
                    else {"type": type(error).__name__, "message": str(error)},
                    "queued_at": _iso(result, "queued_at"),
                    "submitted_at": _iso(result, "submitted_at"),
                    "finished_at": _iso(result, "finished_at"),
                }
            )
        return rows

    def _summary(self) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        counts = dict.fromkeys(JobState, 0)
        for result in self.results.values():
            counts[result.state] += 1
        finished = [r for r in self.results.values() if r.ok]
        seconds = sum(
            line.seconds for line in self.lines if self.results.get(line.id, None) in finished
        )
        videos = sum(len(self.files.get(r.key, [])) for r in finished)
        wall = time.monotonic() - self.started
        _say(
            f"vidgo-async batch: {counts[JobState.FINISHED]} finished, {counts[JobState.FAILED]} failed, "
            f"{counts[JobState.TIMEOUT]} timed out, {counts[JobState.LOST]} lost, "
            f"{counts[JobState.UNKNOWN]} unknown"
            + (
                f", {counts[JobState.IN_FLIGHT]} still in flight"
                if counts[JobState.IN_FLIGHT]
                else ""
            )
            + f" in {wall:.1f} s; {videos} video(s), {seconds} s of video generated"
            + (f"; {len(self.download_errors)} download(s) failed" if self.download_errors else "")
        )
        if counts[JobState.LOST] or counts[JobState.TIMEOUT]:
            _say(
                "  HINT: 'lost' jobs, and 'timed out' jobs with a task_id, have a task that may "
                "still run (and be billed); rerun the same command to poll them again (never "
                "submitted again)."
            )
        if counts[JobState.UNKNOWN]:
            _say(
                "  HINT: 'unknown' jobs were sent but got no answer; they may exist (and be billed). "
                "Check the dashboard, then rerun with --retry-unknown to submit them again."
            )


def _progress_line(snapshot: Progress, total: int, elapsed: float) -> str:
    width = 24
    done = snapshot.done
    filled = int(width * done / total) if total else width
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} "
        f"finished {snapshot.finished} "
        f"failed {snapshot.failed + snapshot.timeout + snapshot.unknown + snapshot.lost} "
        f"in flight {snapshot.in_flight + snapshot.submitting} queued {snapshot.queued} "
        f"({elapsed:.0f} s)"
    )


def _remaining(started: float, deadline: float | None) -> float | None:
    """Seconds left of ``--deadline`` (``None``: no deadline)."""
    return None if deadline is None else max(started + deadline - time.monotonic(), 0.0)


def _extension(url: str) -> str:
    from .._filenames import extension_for

    return extension_for(url) if "." in url.rsplit("/", 1)[-1] else "mp4"


def _file_entries(
    result: JobResult, paths: list[Path | None] | None
) -> list[dict[str, str | None]]:
    if result.task is None:
        return []
    entries: list[dict[str, str | None]] = []
    for index, file in enumerate(result.task.files):
        path = paths[index] if paths is not None and index < len(paths) else None
        entries.append({"url": file.file_url, "path": None if path is None else str(path)})
    return entries


def _iso(result: JobResult | None, name: str) -> str | None:
    value = None if result is None else getattr(result, name)
    return None if value is None else value.isoformat()


def _write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write results.jsonl atomically: a temporary file in the same directory, then a rename."""
    handle, temporary = tempfile.mkstemp(prefix=".results-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            for row in rows:
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
