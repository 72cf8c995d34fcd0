"""``vidgo-async worker --journal postgresql://…``: serve the jobs a web app enqueued.

Any number of workers, on any machines, share one PostgreSQL journal. Each one offers the
queued jobs (``FleetQueue.enqueue``) to its orchestrator; the journal's claim lets exactly one
process submit each job, ``--concurrency`` is the cap of the whole fleet, and a worker that
dies has its jobs adopted by another (polled, never resubmitted). Outcomes go to the
journal, where the enqueuer awaits them (``FleetQueue.wait``). A job enqueued with a
callback base URL gets a per-job token; any replica's ``FleetCallbackReceiver`` records its
outcome, and the worker polls it only as a slow fallback.

Runs until Ctrl-C / SIGTERM (jobs in flight are adopted by the rest of the fleet), or with
``--drain`` until nothing is queued or running.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .._errors import JobClaimedError, JournalError
from .._fleet_gates import FleetGates
from .._jobs import GenerationRequest, Job, JobResult
from .._journal_api import is_postgres_url
from .._models import Task
from .._resume import JournalRecorder, plan_resume
from . import _loop
from ._batch_fleet import FLEET_LEASE
from ._preflight import check_base_url, check_key

if TYPE_CHECKING:
    from .._fleet_queue import FleetQueue
    from .._journal_pg import PostgresJournal
    from .._orchestrator import JobHandle, Orchestrator

__all__ = ["register"]

_DESCRIPTION = """\
Serve the jobs a web app handed to the fleet (FleetQueue.enqueue) in a PostgreSQL journal:
each job is submitted by exactly one worker, --concurrency caps the whole fleet, and the jobs
of a worker that stops are adopted by the others. Stops on Ctrl-C or SIGTERM.
"""
_IDLE = 0.5  # seconds between looks at the queue (and for expired leases)
logger = logging.getLogger("vidgo_async")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {text})")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker`` command."""
    parser = subparsers.add_parser(
        "worker",
        help="serve jobs enqueued in a PostgreSQL journal (a worker fleet)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--journal", required=True, metavar="URL", help="postgresql://…")
    parser.add_argument(
        "--concurrency", type=_positive_int, default=4, help="jobs in flight, fleet-wide"
    )
    parser.add_argument("--base-url", default=None, help="API base URL (default VIDGO_BASE_URL)")
    parser.add_argument(
        "--allow-insecure", action="store_true", help="accept a plain http --base-url"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per job")
    parser.add_argument(
        "--drain", action="store_true", help="exit once nothing is queued or running"
    )
    parser.add_argument("--poll-scale", type=float, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_run)


def _say(text: str) -> None:
    sys.stderr.write(f"vidgo-async worker: {text}\n")
    sys.stderr.flush()


def _run(args: argparse.Namespace) -> int:
    if not is_postgres_url(args.journal):
        _say(f"--journal must be a postgresql:// URL (got {args.journal!r})")
        return 2
    problem = check_key(emulator=False) or check_base_url(
        args.base_url, allow_insecure=args.allow_insecure
    )
    if problem is not None:
        _say(problem)
        return 2
    return _loop.run(_serve, args)


class _TokenRecorder:
    """Journal a job's callback token hash (the token is the last segment of its URL)."""

    def __init__(self, inner: JournalRecorder) -> None:
        self.inner = inner

    async def before_submit(self, job: Job) -> None:
        if job.callback_url is not None and job.callback_token is None:
            job.callback_token = job.callback_url.rstrip("/").rsplit("/", 1)[-1]
        await self.inner.before_submit(job)

    async def after_submit(self, job: Job, task: Task) -> None:
        await self.inner.after_submit(job, task)

    async def after_end(self, job: Job) -> None:
        await self.inner.after_end(job)


async def _serve(args: argparse.Namespace) -> int:
    from .._client import VidgoClient
    from .._fleet_queue import FleetQueue
    from .._journal_pg import PostgresJournal
    from .._orchestrator import Orchestrator

    try:
        journal = await PostgresJournal.open(
            args.journal, max_in_flight=args.concurrency, lease=FLEET_LEASE
        )
    except JournalError as exc:
        _say(f"cannot use the journal: {exc}")
        return 2
    async with (
        journal,
        VidgoClient(base_url=args.base_url, allow_insecure=args.allow_insecure) as client,
    ):
        poll = client.poll if args.poll_scale is None else client.poll.scaled(args.poll_scale)
        orchestrator = Orchestrator(
            client,
            max_in_flight=args.concurrency,
            job_timeout=args.timeout,
            poll=poll,
            journal=_TokenRecorder(JournalRecorder(journal)),
        )
        # Adopted jobs hold their fleet slots already: their own orchestrator follows them,
        # so they never wait for local tokens held by claims waiting for those slots.
        adopter = Orchestrator(
            client,
            max_in_flight=args.concurrency,
            job_timeout=args.timeout,
            poll=poll,
            journal=_TokenRecorder(JournalRecorder(journal)),
        )
        _say(f"serving {journal.path} as {journal.owner}, at most {args.concurrency} in flight")
        worker = _Worker(journal, FleetQueue(journal), orchestrator, adopter, args)
        async with orchestrator, adopter, anyio.create_task_group() as group:
            group.start_soon(journal.keep_lease)
            gates = [orchestrator.submit_gate, orchestrator.status_gate]
            group.start_soon(FleetGates(journal, gates).run)  # a 429 holds the whole fleet
            await worker.loop(group)
            group.cancel_scope.cancel()
    _say(f"done: {worker.submitted} submitted here, {worker.adopted} adopted")
    return 0


class _Worker:
    def __init__(
        self,
        journal: PostgresJournal,
        queue: FleetQueue,
        orchestrator: Orchestrator,
        adopter: Orchestrator,
        args: argparse.Namespace,
    ) -> None:
        self.journal = journal
        self.queue = queue
        self.orchestrator = orchestrator
        self.adopter = adopter
        self.args = args
        self.offered: set[str] = set()
        self.submitted = 0
        self.adopted = 0

    async def loop(self, group: anyio.abc.TaskGroup) -> None:
        from .._fleet_callbacks import fleet_callback_url, new_callback_token

        limit = 2 * self.args.concurrency  # offered here and not ended: no hoarding
        while True:
            await self._adopt(group)
            pending = await self.queue.pending(limit)
            for queued in pending:
                if queued.key in self.offered or len(self.offered) >= limit:
                    continue
                url = None
                if queued.callback_base is not None:
                    token, _ = new_callback_token()
                    url = fleet_callback_url(queued.callback_base, token)
                request = GenerationRequest(
                    queued.model, queued.input, key=queued.key, callback_url=url
                )
                self.offered.add(queued.key)
                group.start_soon(self._follow, self.orchestrator.start(request), queued.key)
            if self.args.drain and not pending and not self.offered:
                return
            await anyio.sleep(_IDLE)

    async def _adopt(self, group: anyio.abc.TaskGroup) -> None:
        adopted = [e for e in await self.journal.adopt_expired() if e.state.value == "in_flight"]
        if not adopted:
            return
        requests = [GenerationRequest(e.model, e.input, key=e.key) for e in adopted]
        plan = await plan_resume(self.journal, requests)
        for request, task in plan.attach:
            assert request.key is not None  # noqa: S101 - built with its key above
            self.adopted += 1
            self.offered.add(request.key)
            group.start_soon(self._follow, self.adopter.attach(request, task), request.key)

    async def _follow(self, handle: JobHandle, key: str) -> None:
        try:
            result: JobResult = await handle.result()
            if not isinstance(result.error, JobClaimedError):
                self.submitted += 1
                logger.info("vidgo job %r ended %s", key, result.state.value)
        finally:
            self.offered.discard(key)
