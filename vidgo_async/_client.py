"""VidgoClient: submit, get_task, wait, generate, download and balance.

The client turns the transport's plain JSON into models and adds what a single task
needs: the not-found grace right after a submit, the polling loop of ``wait`` (which
rides out transient errors until its deadline) and downloads of the result files.
"""

from __future__ import annotations

import enum
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs
from aiohttp.abc import AbstractResolver

from ._answers import Response
from ._clock import Clock
from ._config import (
    API_KEY_ENV,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    PollPolicy,
    RetryPolicy,
    Timeout,
    given_base_url,
    to_seconds,
)
from ._converter import structure, structure_task
from ._download import Downloader, ExpiredURLError, file_name_for
from ._errors import (
    DownloadError,
    InputValidationError,
    NotFoundError,
    TaskNotFoundError,
    VidgoError,
)
from ._hosts import is_loopback_host
from ._http import Transport, normalise_base_url
from ._inputs import ModelInput
from ._models import Balance, Task, TaskStatus, UploadedFile
from ._polling import PollTracker, StepKind, foreign_answer
from ._retry import RetryBudget
from ._rules import check_callback_url
from ._status_reader import StatusAnswer, StatusReader, status_answer, status_path
from ._uploads import Uploader, UploadSource
from ._validation import check_submit_fields, validate_input

__all__ = ["ClientState", "VidgoClient", "validated_submit"]

logger = logging.getLogger("vidgo_async")

SUBMIT_PATH = "/api/generate/submit"
BALANCE_PATH = "/api/user/balance"

# How many recent submits are remembered for the not-found grace (a bound on memory).
_MAX_REMEMBERED_SUBMITS = 10_000
# The shortest time limit given to one status query near a wait's deadline.
_MIN_POLL_REQUEST_TIME = 1.0


class ClientState(enum.Enum):
    """Where a :class:`VidgoClient` is in its life (after httpx's ``ClientState``)."""

    UNOPENED = "unopened"  # created; its connection pool opens on first use
    OPENED = "opened"  # in use
    CLOSED = "closed"  # ``aclose`` was called: every call raises


class _Default:
    """The "use the policy's default" sentinel, distinct from ``None`` (= no limit)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


class VidgoClient:
    """An asyncio client for the Vidgo API.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with VidgoClient() as client:
            task = await client.generate("seedance-2", Seedance2Input(...))

    Args:
        api_key: the API key; defaults to the ``VIDGO_API_KEY`` environment variable.
        base_url: defaults to ``VIDGO_BASE_URL`` or ``https://api.vidgo.ai``. Plain
            ``http`` is refused unless the host is loopback or ``allow_insecure`` is set.
        timeout: seconds (the total deadline of one request) or a ``Timeout``.
        retry: when to repeat failed requests (see ``RetryPolicy``).
        poll: how ``wait`` spaces status queries (see ``PollPolicy``).
        session: an aiohttp session to use for API calls; it is left open on close.
        allow_insecure: accept an ``http`` base URL on a non-loopback host.
        allow_insecure_callbacks: accept a plain ``http`` ``callback_url`` on a public host.
            Off by default: the callback token travels in the URL, so anyone who can read
            the traffic can read it.
        max_download_bytes: the largest result file ``download`` accepts.
        allow_unknown_models: send a model id that the catalog does not know (after
            checking only that the input is JSON) instead of raising ``UnknownModelError``.

    Raises:
        VidgoError: no API key was given or found in ``VIDGO_API_KEY``.
        ValueError: an unusable ``base_url`` or limit.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: Timeout | float | timedelta | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        allow_insecure: bool = False,
        allow_insecure_callbacks: bool = False,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        allow_unknown_models: bool = False,
        _clock: Clock | None = None,
        _resolver: AbstractResolver | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        if not isinstance(key, str) or not key.strip():
            raise VidgoError(
                f"No Vidgo API key. HINT: pass VidgoClient(api_key=...) or set the "
                f"{API_KEY_ENV} environment variable."
            )
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key.strip()):
            raise VidgoError("The API key contains whitespace or control characters.")
        if (
            isinstance(max_download_bytes, bool)
            or not isinstance(max_download_bytes, int)
            or max_download_bytes < 1
        ):
            raise ValueError(
                f"max_download_bytes must be a positive integer (got {max_download_bytes!r})"
            )
        self._base_url = normalise_base_url(given_base_url(base_url), allow_insecure=allow_insecure)
        self._allow_insecure_callbacks = allow_insecure_callbacks
        self._timeout = Timeout.coerce(timeout)
        self._retry = retry if retry is not None else RetryPolicy()
        self._poll = poll if poll is not None else PollPolicy()
        self._clock = _clock if _clock is not None else Clock()
        self._transport = Transport(
            api_key=key.strip(),
            base_url=self._base_url,
            timeout=self._timeout,
            retry=self._retry,
            clock=self._clock,
            session=session,
        )
        base_host = urlsplit(self._base_url).hostname
        self._downloader = Downloader(
            clock=self._clock,
            timeout=self._timeout,
            max_bytes=max_download_bytes,
            allow_loopback=is_loopback_host(base_host),
            resolver=_resolver,
        )
        self._submitted: OrderedDict[str, float] = OrderedDict()
        self._allow_unknown_models = bool(allow_unknown_models)
        self._uploader = Uploader(self._transport, clock=self._clock)
        self._opened = False

    # -- lifecycle -----------------------------------------------------------------

    def __repr__(self) -> str:
        state = "closed" if self._transport.closed else "open"
        return f"<VidgoClient base_url={self._base_url!r} {state}>"

    @property
    def state(self) -> ClientState:
        """Whether the client is unopened, opened or closed."""
        if self._transport.closed:
            return ClientState.CLOSED
        return ClientState.OPENED if self._opened else ClientState.UNOPENED

    @property
    def clock(self) -> Clock:
        """The clock the client reads and sleeps on (a ``VirtualClock`` in tests)."""
        return self._clock

    @property
    def retry_budget(self) -> RetryBudget:
        """The retry budget shared by every request of this client (read-only use)."""
        return self._transport.retry_budget

    @property
    def base_url(self) -> str:
        """The API base URL, without a trailing slash."""
        return self._base_url

    @property
    def timeout(self) -> Timeout:
        """The per-request time limits."""
        return self._timeout

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._retry

    @property
    def poll(self) -> PollPolicy:
        """The default polling policy of ``wait``."""
        return self._poll

    @property
    def allow_insecure_callbacks(self) -> bool:
        """Whether a plain ``http`` ``callback_url`` on a public host is accepted."""
        return self._allow_insecure_callbacks

    @property
    def max_download_bytes(self) -> int:
        """The largest result file ``download`` accepts."""
        return self._downloader.max_bytes

    @property
    def allow_unknown_models(self) -> bool:
        """Whether model ids unknown to the catalog are sent (input checked as JSON only)."""
        return self._allow_unknown_models

    @property
    def closed(self) -> bool:
        """Whether the client was closed."""
        return self._transport.closed

    async def __aenter__(self) -> VidgoClient:
        await self._transport.open()
        self._opened = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened (idempotent; a user's session stays open)."""
        try:
            await self._transport.aclose()
        finally:
            await self._downloader.aclose()

    # -- API calls -----------------------------------------------------------------

    async def submit(
        self,
        model: str,
        input: ModelInput | Mapping[str, Any],
        *,
        callback_url: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Task:
        """Create a generation task and return it (usually ``not_started``).

        Args:
            model: the model id.
            input: a typed input or a mapping of fields (checked before anything is sent).
            callback_url: where Vidgo should POST the result.
            retry: this call's retry policy instead of the client's (e.g. without 429 in
                ``retry_statuses``, to reschedule rate-limited submits yourself).

        Raises:
            UnknownModelError: ``model`` is not a documented id (nothing was sent).
            InputValidationError: the input breaks a documented rule (nothing was sent).
            SubmitOutcomeUnknownError: the request was sent but its outcome is unknown
                (timeout, reset or 5xx); it was not retried, to avoid paying twice.
            RateLimitError: rate limited longer than ``RetryPolicy.max_retry_after``, or
                retries ran out (``retry_after`` holds the server's wait when known).
            APIStatusError: the API refused the request (400, 401, 402, 403, ...).
        """
        self._transport.check_open()
        prepared = validate_input(model, input, allow_unknown_models=self._allow_unknown_models)
        return await self._send_submit(model, prepared, callback_url=callback_url, retry=retry)

    def _send_submit(
        self,
        model: str,
        prepared_input: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        retry: RetryPolicy | None = None,
        give_up_at: float | None = None,
    ) -> Awaitable[Task]:
        """Check the callback URL, then return the submit (to await) of a checked input.

        :meth:`submit` after its validation, and the orchestrator (see ``validated_submit``).
        Not a coroutine of its own: the transport's request reads the answer with
        :meth:`_submit_answer`, so a submit on the wire has one frame less.
        ``give_up_at``: the job's deadline (monotonic); no retry starts at or after it.
        """
        self._transport.check_open()
        if callback_url is not None:
            issues = check_callback_url(callback_url, allow_insecure=self._allow_insecure_callbacks)
            if issues:
                raise InputValidationError(issues)
        else:
            issues = check_submit_fields(model, callback_url)
            if issues:
                raise InputValidationError(issues)
        body: dict[str, Any] = {"model": model, "input": prepared_input}
        if callback_url is not None:
            body["callback_url"] = callback_url
        # An answer without a readable task_id (APIResponseValidationError from the read)
        # is a success whose task was most likely created: the transport raises it as
        # SubmitOutcomeUnknownError with this body.
        return self._transport.request(
            "POST",
            SUBMIT_PATH,
            json_body=body,
            idempotent=False,
            retry=retry,
            read=self._submit_answer,
            give_up_at=give_up_at,
        )

    def _submit_answer(self, response: Response) -> Task:
        """Read a submit's answer: the new task, its submit time remembered."""
        data = response.data
        is_object = type(data) is dict or isinstance(data, Mapping)
        if is_object and not isinstance(data.get("status"), str):
            # Some models' submit answers omit the status: a new task has not started.
            data = {**data, "status": TaskStatus.NOT_STARTED.value}
        task = structure_task(data)
        # Remember when this task was submitted (its not-found grace), the oldest dropped.
        task_id = task.task_id
        submitted = self._submitted
        if task_id in submitted:  # a new id (the usual) is inserted last already
            submitted.move_to_end(task_id)
        submitted[task_id] = self._clock.monotonic()
        if len(submitted) > _MAX_REMEMBERED_SUBMITS:  # one insert passes the cap by one
            submitted.popitem(last=False)
        if logger.isEnabledFor(logging.DEBUG):  # one call where logger.debug makes two
            logger.debug("vidgo submitted task %s", task_id)
        return task

    async def query_status(self, task_id: str, *, timeout: Timeout | None = None) -> StatusAnswer:
        """Send one status query: no retries, no not-found grace, no interpretation.

        For callers that run their own poll loop (the orchestrator's scheduler): feed the
        answer, or the error raised, to a ``PollTracker``.

        Args:
            task_id: the task.
            timeout: this query's time limits instead of the client's.

        Returns:
            the task and the server's poll hint (its ``Retry-After``, in seconds, if any).

        Raises:
            APIError: the query failed (the mapped error of its single attempt).
        """
        self._transport.check_open()
        response = await self._transport.send_once("GET", status_path(task_id), timeout=timeout)
        return status_answer(response)

    def status_reader(self, task_id: str) -> StatusReader:
        """Return a reusable status query of one task, for a poll loop of your own.

        ``await reader()`` sends one query, as :meth:`query_status` does; the reader checks
        the path once and hands back the previous answer, unread, when the server's answer
        is byte-identical to it (the orchestrator's poller keeps one per job).
        """
        return StatusReader(self._transport, task_id)

    async def get_task(self, task_id: str) -> Task:
        """Return the task's current state, retrying transient errors per ``RetryPolicy``.

        Raises:
            TaskNotFoundError: the API does not know the task (after the grace period
                when this client submitted it moments ago).
            APIResponseValidationError: the answer is unreadable, or describes another task.
        """
        self._transport.check_open()
        path = status_path(task_id)
        # The same reading of a 404 as ``wait``: within the grace of this client's own
        # submit it means "not visible yet"; past it (or for a foreign id) the task is unknown.
        tracker: PollTracker | None = None
        while True:
            try:
                response = await self._transport.request("GET", path)
            except TaskNotFoundError:
                raise
            except NotFoundError as exc:
                if tracker is None:
                    submitted_at = self._submitted.get(task_id)
                    now = self._clock.monotonic()
                    tracker = PollTracker(
                        task_id,
                        self._poll,
                        started_at=now if submitted_at is None else submitted_at,
                        submitted_at=submitted_at,
                        rng=self._clock.rng,
                    )
                step = tracker.on_error(exc, self._clock.monotonic())
                if step.kind is not StepKind.AGAIN:
                    raise TaskNotFoundError.from_not_found(task_id, exc) from exc
                logger.info(
                    "vidgo task %s not visible yet; asking again in %.2f s", task_id, step.delay
                )
                await self._clock.sleep(step.delay)
                continue
            task = structure_task(response.data)
            if task.task_id != task_id:
                raise foreign_answer(task_id, task)
            return task

    async def wait(
        self,
        task_or_id: Task | str,
        *,
        timeout: float | timedelta | None = DEFAULT,
        poll: PollPolicy | None = None,
    ) -> Task:
        """Poll until the task ends; return it when ``finished``.

        What each answer means is decided by :class:`~vidgo_async._polling.PollTracker`
        (the same table the orchestrator uses). Transient errors (5xx, 429, dropped
        connections, timeouts) never end a wait: it keeps polling, backing off, until its
        deadline. An answer that says nothing about the task any more (401, 403, another
        4xx, a redirect, a 404 past the not-found grace, three unreadable answers in a
        row) raises ``TaskLostError``: the task may still run, and be billed. A status this
        client does not know raises ``UnknownStatusError`` (a ``TaskLostError``) at once, or
        is polled through until the deadline with ``PollPolicy(unknown_status="poll")``.
        Cancelling the wait leaves nothing running.

        Args:
            task_or_id: a Task (e.g. from ``submit``) or a task id.
            timeout: the deadline in seconds; by default ``poll.timeout``; ``None`` waits forever.
            poll: the polling policy for this wait.

        Raises:
            TaskFailedError: the API reported the task ``failed`` (``.task.error_message``).
            TaskLostError: the task's status can no longer be read (``.cause`` says why,
                ``.task_id`` names it); never resubmit it blindly.
            UnknownStatusError: the task reported an unknown status (a ``TaskLostError``).
            WaitTimeoutError: the deadline passed (a ``TaskLostError``; ``.task`` is the
                last seen Task).
        """
        self._transport.check_open()
        policy = poll if poll is not None else self._poll
        limit = policy.timeout if isinstance(timeout, _Default) else timeout
        limit_seconds = None if limit is None else to_seconds(limit)
        if limit_seconds is not None and limit_seconds < 0:
            raise ValueError(f"timeout must be zero or more seconds (got {limit_seconds!r})")
        if isinstance(task_or_id, Task):
            task_id, last = task_or_id.task_id, task_or_id
        else:
            status_path(task_or_id)
            task_id, last = task_or_id, None
        clock = self._clock
        started = clock.monotonic()
        submitted_at = self._submitted.get(task_id)
        tracker = PollTracker(
            task_id,
            policy,
            started_at=started if submitted_at is None else submitted_at,
            submitted_at=submitted_at,
            deadline=None if limit_seconds is None else started + limit_seconds,
            timeout=limit_seconds,
            budget=self._transport.retry_budget,
            rng=clock.rng,
        )
        step = tracker.start(started, last)
        while step.kind is StepKind.AGAIN:
            if step.delay > 0:
                await clock.sleep(step.delay)
            try:
                task, hint = await self.query_status(
                    task_id, timeout=self._poll_timeout(tracker.deadline)
                )
            except VidgoError as exc:
                step = tracker.on_error(exc, clock.monotonic())
                if step.kind is StepKind.AGAIN:
                    logger.info(
                        "vidgo status query for %s failed (%s); polling again in %.2f s",
                        task_id,
                        exc,
                        step.delay,
                    )
                continue
            if tracker.errors == 0:
                self._transport.retry_budget.record_success()
            step = tracker.on_task(task, clock.monotonic(), hint)
            logger.debug(
                "vidgo task %s is %s (progress %s); next step %s in %.2f s",
                task_id,
                task.status.value,
                task.progress,
                step.kind.value,
                step.delay,
            )
        if step.kind is StepKind.DONE:
            assert step.task is not None  # noqa: S101 - done carries the finished task
            return step.task
        assert step.error is not None  # noqa: S101 - failed and lost carry their error
        raise step.error

    def _poll_timeout(self, deadline: float | None) -> Timeout | None:
        """Bound one status query by what is left of the wait (at least a second)."""
        if deadline is None:
            return None
        left = max(deadline - self._clock.monotonic(), _MIN_POLL_REQUEST_TIME)
        total = self._timeout.total
        if total is not None and total <= left:
            return None
        return attrs.evolve(
            self._timeout,
            total=left,
            connect=None if self._timeout.connect is None else min(self._timeout.connect, left),
            read=None if self._timeout.read is None else min(self._timeout.read, left),
        )

    async def generate(
        self,
        model: str,
        input: ModelInput | Mapping[str, Any],
        *,
        callback_url: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> Task:
        """Submit, then wait for the finished task (``timeout=None``: the poll policy's default)."""
        task = await self.submit(model, input, callback_url=callback_url)
        if timeout is None:
            return await self.wait(task)
        return await self.wait(task, timeout=timeout)

    async def balance(self) -> Balance:
        """Return the account's credit balance."""
        self._transport.check_open()
        response = await self._transport.request("GET", BALANCE_PATH)
        return structure(response.data, Balance)

    async def upload(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        upload_path: str | None = None,
    ) -> UploadedFile:
        """Upload an image and return where Vidgo stores it (for 72 hours).

        ``source`` is a local path (sent as multipart through ``/api/common/upload/stream``),
        ``bytes`` (base64 through ``/api/common/upload/base64``; ``filename`` is then
        required) or an ``http(s)`` URL string (fetched by Vidgo through
        ``/api/common/upload/url``). Every upload of this client shares one gate: at most
        5 per minute (the documented limit per key), and a 429 holds them all.

        Raises:
            InputValidationError: not a JPEG/PNG/GIF/WebP image, an empty or unreadable
                file, or a bad name or URL (nothing was sent).
            RateLimitError: still rate limited after the retries.
            APIStatusError: the API refused the upload (``message`` is its ``detail``).
        """
        self._transport.check_open()
        return await self._uploader.upload(source, filename=filename, upload_path=upload_path)

    # -- downloads -----------------------------------------------------------------

    async def download(self, task: Task, directory: str | os.PathLike[str]) -> list[Path]:
        """Download every file of a finished task into ``directory``.

        Files are named ``<task_id>.<ext>`` (``<task_id>~<n>.<ext>`` when there are
        several), from a sanitised task id, never from the URL. Each file is streamed to
        a temporary ``.part`` file and renamed when complete. Downloads never carry the
        API key. An expired URL (403/404) triggers one fresh ``get_task``.

        Raises:
            DownloadError: a file could not be fetched (``UnsafeURLError`` when its URL
                failed the safety checks).
        """
        self._transport.check_open()
        if not task.is_finished:
            raise DownloadError(
                f"Task {task.task_id} is {task.status.value!r}, not finished: nothing to download.",
                task_id=task.task_id,
            )
        if not task.files:
            raise DownloadError(f"Task {task.task_id} has no files.", task_id=task.task_id)
        target = Path(directory)
        await self._downloader.ensure_directory(target)
        files = list(task.files)
        refreshed = False
        paths: list[Path] = []
        for index in range(len(files)):
            several = len(files) > 1
            while True:
                item = files[index]
                stem = file_name_for(task.task_id, index + 1 if several else None)
                try:
                    path = await self._downloader.fetch(
                        item.file_url,
                        directory=target,
                        stem=stem,
                        task_id=task.task_id,
                        hint_type=item.content_type,
                    )
                except ExpiredURLError:
                    if refreshed:
                        raise
                    refreshed = True
                    logger.info("vidgo result URL of %s expired; fetching fresh URLs", task.task_id)
                    fresh = await self.get_task(task.task_id)
                    if len(fresh.files) != len(files):
                        raise
                    files = list(fresh.files)
                    continue
                paths.append(path)
                break
        return paths

    async def download_file(
        self, url: str, destination: str | os.PathLike[str], *, task_id: str | None = None
    ) -> Path:
        """Download one URL to ``destination`` (never overwriting a different file).

        Raises:
            UnsafeURLError: the URL is not https on a public address.
            DownloadError: the file could not be fetched, is too large or already exists
                with other content.
        """
        self._transport.check_open()
        return await self._downloader.fetch_to(url, Path(destination), task_id=task_id)


def validated_submit(client: VidgoClient) -> Callable[..., Awaitable[Task]]:
    """Return ``client``'s submit for an input that ``validate_input`` already returned.

    The orchestrator validates each request once, when its job is made (with the client's
    ``allow_unknown_models``), and keeps the input exactly as it is sent: its submits skip
    a second, identical validation. The callback URL is still checked when it is sent (a
    receiver's URL is only given to the job then). Arguments as :meth:`VidgoClient.submit`.
    """
    return client._send_submit
