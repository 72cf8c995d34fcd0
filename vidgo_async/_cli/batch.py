"""``vidgo-async batch``: run a JSONL file of jobs, download the videos, write results.jsonl."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import attrs

from .._config import API_KEY_ENV, PollPolicy
from .._errors import DownloadError, JournalLockedError, VidgoError
from .._filenames import extension_for, file_name_for
from .._jobs import JobResult, JobState
from .._journal import Journal
from .._journal_api import is_postgres_url
from .._orchestrator import JobHandle, Orchestrator
from . import _loop, _preflight, _signals
from ._batch_callbacks import (
    CallbackSetupError,
    callback_receiver,
    callbacks_asked,
    reregister_tokens,
)
from ._batch_callbacks import add_arguments as add_callback_arguments
from ._batch_callbacks import settings_from_args as callback_settings
from ._batch_fleet import refuse_fleet_options, run_fleet
from ._batch_guard import add_arguments as add_resume_arguments
from ._batch_guard import dry_run, refuse_duplicates
from ._batch_input import (
    BatchDefaults,
    BatchInputError,
    BatchLine,
    callback_problems,
    read_batch,
)
from ._batch_recorded import RecordedError
from ._batch_resume import BatchResume, journal_path, move_aside
from ._batch_uploads import BatchUploads, preview_uploads
from ._live import LiveView
from ._outage import OutageBreaker
from ._output import (
    JsonStream,
    Problem,
    add_verbosity,
    one_line,
    remove_logging,
    setup_logging,
    summary_lines,
)

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
error, a refused spend or a journal in use (nothing submitted), 130 Ctrl-C / 143 SIGTERM
(after writing what is known).
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
        "--allow-insecure",
        action="store_true",
        help="accept a plain http --base-url on another machine (the key travels in clear)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per finished job to stdout, then a summary object",
    )
    add_verbosity(parser)
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
    problem = _preflight.check_input(args.input) or _preflight.check_options(
        args.model, args.duration, args.resolution, args.aspect_ratio
    )
    if problem is not None:
        _say(f"vidgo-async batch: {problem}")
        return 2
    try:
        lines = read_batch(args.input, defaults)
    except (OSError, UnicodeDecodeError) as exc:
        _say(f"vidgo-async batch: cannot read {args.input}: {exc}")
        return 2
    except BatchInputError as exc:
        _say(f"vidgo-async batch: {args.input}: nothing was submitted:")
        for problem in exc.problems:
            _say(f"  {problem}")
        return 2
    if not callbacks_asked(args):
        needs_callbacks = callback_problems(lines)
        if needs_callbacks:
            _say(f"vidgo-async batch: {args.input}: nothing was submitted:")
            for problem in needs_callbacks:
                _say(f"  {problem}")
            _say("  HINT: receive callbacks with --callback-base-url URL --listen HOST:PORT.")
            return 2
    if is_postgres_url(args.journal or ""):  # a fleet shares the batch (_batch_fleet)
        problem = refuse_fleet_options(args, lines) or _preflight.check_key(emulator=False)
        problem = problem or _preflight.check_base_url(
            args.base_url, allow_insecure=args.allow_insecure
        )
        problem = problem or _preflight.check_out(args.out)
        if problem is not None:
            _say(f"vidgo-async batch: {problem}")
            return 2
        return run_fleet(lines, args, str(args.journal))
    if args.dry_run:  # before the key check: a dry run sends nothing
        try:
            uploads = preview_uploads(
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
    problem = _first_problem(args)
    if problem is not None:
        _say(f"vidgo-async batch: {problem}")
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
    state = runner.signals
    handler = setup_logging(args)
    if args.emulator:  # the summary says what happens to the emulator's tasks, truthfully
        handler.addFilter(_not_billed_warning)
    try:
        code = _loop.run(_signals.guard, state, lambda: runner.resume.run(runner.main))
    except CallbackSetupError as exc:  # the receiver could not listen: nothing was submitted
        for text in exc.lines:
            _say(text)
        return 2
    except KeyboardInterrupt as exc:
        state.signum = _signals.signum_of(exc)
        code = None
    finally:
        remove_logging(handler)
    if state.signum is not None:
        _signals.ignore_more()
        _say(
            f"vidgo-async batch: stopped by {_signals.describe(state.signum)}; what is known is in "
            f"{args.out / 'results.jsonl'}. HINT: rerun the same command to go on."
        )
        return _signals.exit_code(signum=state.signum)
    return 2 if code is None else code


def _not_billed_warning(record: logging.LogRecord) -> bool:
    """Drop the orchestrator's "tasks go on (and are billed)": untrue of the built-in emulator."""
    return "(and are billed)" not in record.getMessage()


def _first_problem(args: argparse.Namespace) -> str | None:
    """The first pre-flight check that fails (key, base URL, --out, --journal), or ``None``."""
    problems = (
        _preflight.check_key(emulator=args.emulator),
        None
        if args.emulator
        else _preflight.check_base_url(args.base_url, allow_insecure=args.allow_insecure),
    )
    for problem in problems:
        if problem is not None:
            return problem
    # The file system checks last: they create (and remove) directories.
    return _preflight.check_out(args.out) or _preflight.check_journal(args.journal)


def _print_plan(lines: list[BatchLine], defaults: BatchDefaults, args: argparse.Namespace) -> None:
    models = sorted({line.request.model for line in lines})
    seconds = sum(line.seconds for line in lines)
    shown = _preflight.display_base_url(args.base_url)
    target = (
        "the built-in emulator"
        if args.emulator
        else "the Vidgo API"
        if shown is None
        else f"the server at {shown} (not the production Vidgo API)"
    )
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
        self.json = JsonStream(bool(getattr(args, "json", False)))
        self.outage: str | None = None  # why the run stopped early, if it did
        self.signals = _signals.SignalState()  # the Ctrl-C or SIGTERM that stopped it, if any

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
                view = self._live_view(orchestrator)
                async with orchestrator, anyio.create_task_group() as group:
                    progress = anyio.CancelScope()
                    group.start_soon(self._show_progress, view, progress)
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
                    breaker = OutageBreaker()
                    completed = orchestrator.as_completed(requests, deadline=deadline)
                    async with _closing(completed):
                        async for result in completed:
                            self._ended(result, client, group)
                            if breaker.observe(result):
                                self.outage = f"{client.base_url} cannot be reached"
                                break
                    if self.outage is None:
                        for handle in attached:
                            await handle.result()
                    progress.cancel()  # the group now waits for the downloads only
                    view.close()  # the final state, drawn before the summary
        finally:
            with anyio.CancelScope(shield=True):
                if orchestrator is not None:
                    for result in orchestrator.unfinished():
                        self.results.setdefault(result.key, result)
                if refused is None:  # a refused run sent nothing: the last results stand
                    # Stopped: jobs that ended as it stopped (a submit cut off, a result not
                    # taken yet) are no longer live; the journal holds how they ended.
                    missing = [line for line in self.lines if line.id not in self.results]
                    self.results.update(await self.resume.recorded(missing))
                    rows = self._rows()
                    await anyio.to_thread.run_sync(_write_results, self.out / "results.jsonl", rows)
                    self.json.rows(rows)
                    self._summary(self._exit_status())
        return 0 if self._all_finished() else 1

    async def _recorded_uploads(
        self, journal: Journal, lines: Sequence[BatchLine]
    ) -> Sequence[BatchLine]:
        """Read the uploads an earlier run journaled (reused while they have life left)."""
        await self.uploads.load(journal)
        return lines  # the journal knows the lines by their placeholders (fingerprint_input)

    def _live_view(self, orchestrator: Orchestrator) -> LiveView:
        def counts() -> dict[str, int]:
            snapshot = self.resume.with_reported(orchestrator.snapshot())
            return {str(name): int(value) for name, value in attrs.asdict(snapshot).items()}

        quiet = bool(getattr(self.args, "quiet", False))
        return LiveView(len(self.lines), counts, base=len(self.resume.reported), quiet=quiet)

    def _emit(self, key: str) -> None:
        """``--json``: print the row of a job that just ended (after its download)."""
        if self.json.enabled:
            for line in self.lines:
                if line.id == key:
                    self.json.row(self._row(line))
                    return

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        from .._client import VidgoClient

        if not self.args.emulator:
            async with VidgoClient(
                base_url=self.args.base_url,
                allow_insecure=self.args.allow_insecure,
                allow_unknown_models=self.args.allow_unknown_model,
            ) as client:
                yield client
            return
        from ..testing import Emulator

        emulator = Emulator(
            job_seconds=_EMULATOR_JOB_SECONDS,
            time_scale=_EMULATOR_TIME_SCALE,
            allow_unknown_models=self.args.allow_unknown_model,  # the same choice at both ends
        )
        async with emulator, emulator.client() as client:
            yield client

    def _poll(self, policy: PollPolicy) -> PollPolicy:
        # With --emulator the client's policy is already scaled (Emulator.client()).
        scale = self.args.poll_scale
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
                    # Never removed first: the download keeps an existing file of the same
                    # content (an earlier run's video) and refuses to replace a different one.
                    destination = self.out / f"{stem}.{_extension(file.file_url)}"
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
        self._emit(result.key)

    async def _follow(self, handle: JobHandle, client: Any, group: anyio.abc.TaskGroup) -> None:
        """Report a re-attached job (a task from the journal) when it ends."""
        self._ended(await handle.result(), client, group)

    def _ended(self, result: JobResult, client: Any, group: anyio.abc.TaskGroup) -> None:
        """Record a job's end: download its files (then report it), or report it now."""
        self.results[result.key] = result
        if result.ok and not self.args.no_download:
            group.start_soon(self._download, client, result)
        else:
            self.files[result.key] = _file_entries(result, None)
            self._emit(result.key)

    async def _show_progress(self, view: LiveView, scope: anyio.CancelScope) -> None:
        """Show the live view until ``scope`` is cancelled (the view is closed by the caller)."""
        with scope, view:
            await view.run()

    def _all_finished(self) -> bool:
        return (
            len(self.results) == len(self.lines)
            and all(result.ok for result in self.results.values())
            and not self.download_errors
        )

    def _rows(self) -> list[dict[str, Any]]:
        return [self._row(line) for line in self.lines]

    def _row(self, line: BatchLine) -> dict[str, Any]:
        result = self.results.get(line.id)
        error = None if result is None else result.error
        error = self.download_errors.get(line.id, error)
        return {
            "id": line.id,
            "task_id": None if result is None else result.task_id,
            # No result (not even in the journal) only when interrupted: never submitted.
            "status": "cancelled" if result is None else result.state.value,
            "files": self.files.get(line.id, [] if result is None else _file_entries(result, None)),
            "error": None if error is None else _error_fields(error),
            "queued_at": _iso(result, "queued_at"),
            "submitted_at": _iso(result, "submitted_at"),
            "finished_at": _iso(result, "finished_at"),
        }

    def _exit_status(self) -> int:
        """The status the command exits with: 130 / 143 when a signal stopped it, else 0 or 1."""
        if self.signals.signum is not None:
            return _signals.exit_code(signum=self.signals.signum)
        return 0 if self._all_finished() else 1

    def _summary(self, code: int) -> None:
        counts: dict[str, int] = {}
        for line in self.lines:
            result = self.results.get(line.id)
            state = "cancelled" if result is None else result.state.value
            counts[state] = counts.get(state, 0) + 1
        problems = [self._problem(line) for line in self.lines]
        # Jobs never submitted are counted, not listed: they have no task and no reason.
        shown = [p for p in problems if p is not None and p.state != "cancelled"]
        finished = [r for r in self.results.values() if r.ok]
        seconds = sum(
            line.seconds
            for line in self.lines
            if (result := self.results.get(line.id)) is not None and result.ok
        )
        videos = sum(len(self.files.get(r.key, [])) for r in finished)
        wall = time.monotonic() - self.started
        results = str(self.out / "results.jsonl")
        for text in summary_lines(
            counts,
            shown,
            results=results,
            wall=wall,
            videos=videos,
            seconds=seconds,
            download_failures=len(self.download_errors),
            emulator=bool(self.args.emulator),
        ):
            _say(text)
        if self.outage is not None:
            _say(
                f"vidgo-async batch: stopped early: {self.outage} (the last jobs could not "
                "connect). HINT: rerun the same command when it can be reached; jobs already "
                "submitted are not submitted again."
            )
        if (counts.get(JobState.LOST.value) or counts.get(JobState.TIMEOUT.value)) and not (
            self.args.emulator
        ):
            _say(
                "  HINT: 'lost' jobs, and 'timed out' jobs with a task_id, have a task that may "
                "still run (and be billed); rerun the same command to poll them again (never "
                "submitted again)."
            )
        if counts.get(JobState.UNKNOWN.value) and not self.args.emulator:
            _say(
                "  HINT: 'unknown' jobs were sent but got no answer; they may exist (and be billed). "
                "Check the dashboard, then rerun with --retry-unknown to submit them again."
            )
        self.json.summary(
            {
                "counts": counts,
                "results": results,
                "seconds": round(wall, 3),
                "exit_status": code,
            }
        )

    def _problem(self, line: BatchLine) -> Problem | None:
        """Why a job did not finish, in one line with a command-line hint (not a Python one)."""
        result = self.results.get(line.id)
        download = self.download_errors.get(line.id)
        if result is not None and result.ok and download is None:
            return None
        if result is None:
            return Problem(id=line.id, task_id=None, state="cancelled", reason="never submitted")
        if download is not None:
            reason = f"download failed: {one_line(str(download))}"
        elif not result.state.is_terminal:
            reason = (
                "stopped while in flight; the emulator's task died with this run"
                if self.args.emulator
                else "stopped while in flight; the task goes on at Vidgo: rerun the same "
                "command to collect it (it is not submitted again)"
            )
        elif result.state is JobState.TIMEOUT:
            reason = "no result within the job timeout (--timeout); " + (
                "the emulator's task died with this run"
                if self.args.emulator
                else "the task goes on at Vidgo: look it up with `vidgo-async status TASK_ID`"
            )
        elif result.state is JobState.LOST:
            cause = one_line(str(result.error)) if result.error is not None else "unreadable"
            reason = f"status no longer readable ({cause}); " + (
                "the emulator's task died with this run"
                if self.args.emulator
                else "rerun the same command to poll it again (it is not submitted again)"
            )
        elif result.task is not None and result.task.error_message:
            reason = one_line(result.task.error_message)  # the API's own words
        elif result.error is not None:
            reason = one_line(str(result.error))
        else:
            reason = result.state.value
        return Problem(id=line.id, task_id=result.task_id, state=result.state.value, reason=reason)


@contextlib.asynccontextmanager
async def _closing(iterator: AsyncIterator[JobResult]) -> AsyncIterator[AsyncIterator[JobResult]]:
    """Close an async generator left early (a ``break``) at once, not when it is collected."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _remaining(started: float, deadline: float | None) -> float | None:
    """Seconds left of ``--deadline`` (``None``: no deadline)."""
    return None if deadline is None else max(started + deadline - time.monotonic(), 0.0)


def _extension(url: str) -> str:
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


def _error_fields(error: BaseException) -> dict[str, str]:
    """The ``error`` of a results.jsonl row (a journaled error keeps its recorded type)."""
    name = error.error_type if isinstance(error, RecordedError) else type(error).__name__
    return {"type": name, "message": str(error)}


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
