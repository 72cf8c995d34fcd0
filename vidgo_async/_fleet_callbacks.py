"""Callback fan-in for a fleet: any replica's receiver takes any job's callback.

A job submitted by one process (say web replica A) carries a callback URL whose token only
the journal knows, as its SHA-256. Vidgo may deliver the callback to any replica behind the
load balancer (say B). B's :class:`FleetCallbackReceiver`:

1. looks the token's hash up in the shared journal (unknown: 404). A job whose task's end
   is known already (the rerun table says skip or resubmit: ``finished``, ``failed``) is
   answered 200 with no work. Any other may still learn from the callback: a job in flight,
   one whose submit had no answer (``unknown``, ``submitting``: no task id recorded, the
   callback is the only thing that can name its billed task) and one we lost track of
   (``lost``, ``timeout``);
2. verifies by re-fetching the task (one authenticated status request; the body is only a
   claim, and its task id must be the job's when the job already holds one);
3. records the task id when the job has none (the task is adopted, RELIABILITY T19), then
   what the fresh task means, read by the one decision (``_polling.settle``): an end is
   recorded once (``finished`` is never undone), which sends ``NOTIFY`` and wakes whoever
   waits on the job in any process (``PostgresJournal.wait_ended``); an owner that missed
   it re-reads on its fallback poll.

A task that goes on is answered 200 with nothing recorded but its adopted task id: the
owner's polling (or a rerun, which polls a recorded task id) goes on. A journal that
cannot be written is answered 503, so Vidgo delivers the callback again. The token is
never logged or stored in clear.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from ._callback_http import CallbackServer, ListenerLimits, ListenerStats, listen
from ._callbacks import (
    DEFAULT_MAX_CALLBACK_BYTES,
    NOT_FOUND_RESPONSE,
    OK_RESPONSE,
    CallbackResponse,
    ReceiverStats,
    RefusalLog,
    TaskFetcher,
    json_response,
    parse_callback,
)
from ._config import PollPolicy
from ._errors import JournalError, VidgoError, WebhookError
from ._job_states import RerunAction
from ._journal_entry import JournalEntry, JournalState
from ._models import Task
from ._polling import StepKind, settle
from ._tokens import TOKEN_BYTES, token_hash

if TYPE_CHECKING:
    from ._journal_pg import PostgresJournal

__all__ = ["FleetCallbackReceiver", "fleet_callback_url", "new_callback_token"]

logger = logging.getLogger("vidgo_async")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_ROUTE = "/vidgo/fleet-callback/{token}"
# The end a step of the one decision (``settle``) records.
_RECORDED = {
    StepKind.DONE: JournalState.FINISHED,
    StepKind.FAILED: JournalState.FAILED,
    StepKind.LOST: JournalState.LOST,
}
# Jobs a callback can teach nothing (the rerun table): their task's end is known.
_SETTLED = frozenset({RerunAction.SKIP, RerunAction.RESUBMIT})
_RETRY_RESPONSE = json_response(503, {"error": {"type": "unverified", "message": "retry"}})


def new_callback_token() -> tuple[str, str]:
    """Return a new callback token and its hash: put the hash in the journal, the token in the URL."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def fleet_callback_url(base_url: str, token: str) -> str:
    """The callback URL of ``token`` at the receivers reached through ``base_url``."""
    return base_url.rstrip("/") + _ROUTE.replace("{token}", token)


class FleetCallbackReceiver:
    """Take the callbacks of any job in a shared journal, verify them, record them once.

    Args:
        journal: the fleet's journal.
        client: re-fetches the task named by a callback (a ``VidgoClient``).
        max_body_bytes: larger bodies are refused (413).
        poll: the policy whose ``unknown_status`` reads a status this client does not know;
            defaults to the client's (``client.poll``), else ``PollPolicy()``.
    """

    def __init__(
        self,
        journal: PostgresJournal,
        client: TaskFetcher,
        *,
        max_body_bytes: int = DEFAULT_MAX_CALLBACK_BYTES,
        poll: PollPolicy | None = None,
    ) -> None:
        self._journal = journal
        self._client = client
        self._max_body_bytes = max_body_bytes
        policy = poll if poll is not None else getattr(client, "poll", None)
        self._poll = policy if isinstance(policy, PollPolicy) else PollPolicy()
        self.stats = ReceiverStats()
        self.base_url: str | None = None

    @property
    def max_body_bytes(self) -> int:
        """The largest callback body accepted."""
        return self._max_body_bytes

    def url_for(self, token: str) -> str:
        """The callback URL of ``token`` on this receiver (once it serves)."""
        if self.base_url is None:
            raise RuntimeError("the receiver is not serving yet: use `async with serve()`")
        return fleet_callback_url(self.base_url, token)

    def is_known(self, token: str) -> bool:
        """Whether ``token`` could be a token (the journal is asked in :meth:`handle`)."""
        return _TOKEN_RE.fullmatch(token) is not None

    def refuse(self, error: WebhookError) -> CallbackResponse:
        """The answer to a callback refused with ``error``."""
        self.stats.invalid += 1
        return json_response(
            error.status_code, {"error": {"type": type(error).__name__, "message": str(error)}}
        )

    def refuse_oversized(self, size: int) -> CallbackResponse:
        """The answer to a body of ``size`` bytes, too large."""
        self.stats.too_large += 1
        return json_response(413, {"error": {"type": "too_large", "message": f"{size} bytes"}})

    async def handle(
        self, path_or_token: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> CallbackResponse:
        """Answer one callback: look the token up, verify by re-fetch, record what it means."""
        self.stats.received += 1
        token = path_or_token.rsplit("/", 1)[-1]
        if not self.is_known(token):
            self.stats.not_found += 1
            return NOT_FOUND_RESPONSE
        entry = await self._journal.find_token(token_hash(token))
        if entry is None:
            self.stats.not_found += 1
            return NOT_FOUND_RESPONSE
        if entry.rerun in _SETTLED:
            self.stats.late += 1
            return OK_RESPONSE  # Vidgo does not retry a 2xx: a late duplicate costs nothing
        try:
            claim = parse_callback(body, max_bytes=self._max_body_bytes)
        except WebhookError as exc:
            return self.refuse(exc)
        if entry.task_id is not None and claim.task_id != entry.task_id:
            self.stats.invalid += 1
            return json_response(409, {"error": {"type": "conflict", "message": "wrong task"}})
        self.stats.verifications += 1
        try:
            task = await self._client.get_task(claim.task_id)
        except VidgoError as exc:
            self.stats.verification_errors += 1
            logger.warning("vidgo could not verify a callback for job %r: %s", entry.key, exc)
            return _RETRY_RESPONSE
        try:
            return await self._record(entry, task)
        except JournalError as exc:  # e.g. the database is down: Vidgo retries a 5xx
            logger.warning("vidgo could not record a callback for job %r: %s", entry.key, exc)
            return _RETRY_RESPONSE

    async def _record(self, entry: JournalEntry, task: Task) -> CallbackResponse:
        """Record what the verified ``task`` tells of the job ``entry``."""
        if entry.task_id is None:
            # The callback outran the owner's record of the task id, or the submit had no
            # answer (``unknown``): the callback names the billed task. Adopt it.
            await self._journal.record_submitted(entry.key, task.task_id)
            self.stats.adopted += 1
            logger.info(
                "vidgo job %r: its callback revealed task %s (recorded)", entry.key, task.task_id
            )
        step = settle(task, self._poll)
        if step is None:  # it goes on: the owner's polling (or a rerun's) follows it
            self.stats.unconfirmed += 1
            return OK_RESPONSE
        error, state = step.error, _RECORDED[step.kind]
        if error is None:  # finished
            await self._journal.record_terminal(entry.key, state, task)
        else:  # as the orchestrator's recorder records a failed or lost task
            await self._journal.record_terminal(
                entry.key, state, task, error_type=type(error).__name__, message=str(error)
            )
        self.stats.delivered += 1
        return OK_RESPONSE

    @contextlib.asynccontextmanager
    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        base_url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        limits: ListenerLimits | None = None,
    ) -> AsyncIterator[CallbackServer]:
        """Serve ``POST /vidgo/fleet-callback/{token}`` on ``host:port`` until the block exits.

        ``base_url`` is the public URL that reaches this listener (behind a proxy or load
        balancer every replica shares it); without it, ``http(s)://host:port``.
        """
        limits = limits if limits is not None else ListenerLimits()
        log = RefusalLog(logger, interval=limits.log_interval)
        stats = ListenerStats()
        async with listen(
            self, _ROUTE, host, port, ssl_context=ssl_context, limits=limits, log=log,
            stats=stats,
        ) as bound:  # fmt: skip
            scheme = "https" if ssl_context is not None else "http"
            url_host = f"[{host}]" if ":" in host else host
            self.base_url = (base_url or f"{scheme}://{url_host}:{bound}").rstrip("/")
            try:
                yield CallbackServer(host, bound, self.base_url, stats)
            finally:
                self.base_url = None
