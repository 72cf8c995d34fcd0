"""Callback bodies and the small values the receiver trades in.

Vidgo documents the callback body as a flat task object (the status endpoint's ``data``
without the ``{code, data}`` envelope); the wrapped form is still accepted. The body carries
no event id and at most a signature over the task id and the time, so a parsed body is only
a *claim*: it says which task to re-fetch, never what happened. This module holds the pure
parts: the parser, the verified event handed to subscribers, the receiver's answers and
counters, and the rate-limited log of refusals.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import attrs

from ._converter import structure
from ._errors import (
    APIResponseValidationError,
    CallbackTooLargeError,
    InvalidCallbackError,
    WebhookError,
)
from ._models import Task

__all__ = [
    "DEFAULT_MAX_CALLBACK_BYTES",
    "NOT_FOUND_RESPONSE",
    "OK_RESPONSE",
    "CallbackEndpoint",
    "CallbackResponse",
    "ReceiverStats",
    "RefusalLog",
    "Subscriber",
    "TaskFetcher",
    "VerifiedCallback",
    "json_response",
    "parse_callback",
]

# A task callback is a few hundred bytes to a few kilobytes; 64 KiB leaves room for tasks
# with many files while keeping a flood of junk cheap to refuse.
DEFAULT_MAX_CALLBACK_BYTES = 64 * 1024
# The task_id goes into a status URL path: accept the documented id shapes and their
# plausible relatives, never separators, dots-only names, escapes or whitespace.
_TASK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


def parse_callback(body: bytes, *, max_bytes: int = DEFAULT_MAX_CALLBACK_BYTES) -> Task:
    """Parse a Vidgo callback body (a flat task object, or a ``{code, data}`` envelope).

    The result is a *claim* made by whoever sent the request: use it to decide which task
    to re-fetch, never as the outcome itself.

    Raises:
        CallbackTooLargeError: the body has more than ``max_bytes`` bytes.
        InvalidCallbackError: the body is not UTF-8 JSON describing a task.
    """
    size = len(body)
    if size > max_bytes:
        raise CallbackTooLargeError(size, max_bytes)
    if not body.strip():
        raise InvalidCallbackError("the callback body is empty (expected a JSON task object)")
    try:
        document = json.loads(bytes(body).decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InvalidCallbackError("the callback body is not UTF-8 text") from exc
    except ValueError as exc:
        raise InvalidCallbackError(f"the callback body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise InvalidCallbackError("the callback body nests JSON too deeply") from exc
    data = _unwrap(document)
    try:
        task = structure(data, Task)
    except APIResponseValidationError as exc:
        raise InvalidCallbackError(f"the callback body is not a task: {exc}") from exc
    if not _TASK_ID_RE.fullmatch(task.task_id) or set(task.task_id) == {"."}:
        raise InvalidCallbackError(
            f"the callback's task_id {task.task_id[:80]!r} is not a plausible Vidgo task id "
            "(letters, digits, '.', '_', ':', '-'; at most 200 characters)"
        )
    return task


def _unwrap(document: object) -> Mapping[str, Any]:
    """Return the task object of a flat (documented) or wrapped callback body."""
    if not isinstance(document, Mapping):
        raise InvalidCallbackError(
            f"the callback body is a JSON {type(document).__name__}, expected an object"
        )
    if "task_id" in document:
        return document
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise InvalidCallbackError(
            "the callback body is neither a task object (no task_id) nor a {code, data} envelope"
        )
    code = document.get("code", 200)
    if isinstance(code, bool) or not isinstance(code, int) or not 200 <= code <= 299:
        raise InvalidCallbackError(f"the callback envelope's code is {code!r}, expected 200")
    return data


@attrs.frozen(kw_only=True)
class VerifiedCallback:
    """A callback confirmed by an authenticated status request.

    Attributes:
        token: the callback token the delivery came to.
        job_ref: what the token was issued for (``CallbackRegistry.new_token(job_ref)``).
        task: the task as ``GET /api/generate/status/{task_id}`` returned it (never the body).
        adopted: the token's task_id was unknown (the submit's outcome was unknown) and this
            callback revealed it; ``task.task_id`` is the job's task from now on.
    """

    token: str = attrs.field(repr=False)
    job_ref: object
    task: Task
    adopted: bool = False


Subscriber = Callable[[VerifiedCallback], "Awaitable[None] | None"]


_JSON = "application/json"


class TaskFetcher(Protocol):
    """What the receiver verifies with: anything with ``VidgoClient.get_task``'s shape."""

    async def get_task(self, task_id: str) -> Task: ...


@attrs.frozen
class CallbackResponse:
    """The HTTP answer to one callback request: status, JSON body and headers."""

    status: int
    body: bytes
    headers: Mapping[str, str] = attrs.field(factory=lambda: {"Content-Type": _JSON})


@attrs.define
class ReceiverStats:
    """Counters of what the receiver saw (for tests, metrics and debugging)."""

    received: int = 0
    not_found: int = 0
    too_large: int = 0
    invalid: int = 0
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    busy: int = 0
    late: int = 0  # deliveries for jobs that had already ended (answered 2xx, not verified)
    unsigned: int = 0  # refused by the signature check (a receiver with a signing key)
    verifications: int = 0
    verification_errors: int = 0
    unconfirmed: int = 0
    delivered: int = 0
    adopted: int = 0


def json_response(status: int, payload: object, **headers: str) -> CallbackResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return CallbackResponse(status, body, {"Content-Type": _JSON, **headers})


OK_RESPONSE = json_response(200, {"received": True})
NOT_FOUND_RESPONSE = json_response(404, {"error": {"type": "not_found", "message": "not found"}})


class CallbackEndpoint(Protocol):
    """What the aiohttp listener serves: the receiver's framework-neutral side."""

    @property
    def max_body_bytes(self) -> int: ...

    def is_known(self, token: str) -> bool: ...

    async def handle(
        self, path_or_token: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> CallbackResponse: ...

    def refuse(self, error: WebhookError) -> CallbackResponse: ...

    def refuse_oversized(self, size: int) -> CallbackResponse: ...


class RefusalLog:
    """Log refused callbacks without flooding: one line per kind of refusal per interval.

    The first refusal of a kind is logged at once; later ones within ``interval`` seconds
    are counted and summed up in the next line of that kind. No traceback is ever logged:
    refusals are what strangers on the internet cause, not bugs.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, kind: str, detail: str, *, level: int = logging.WARNING) -> None:
        """Count one refusal of ``kind``; log it unless one was logged within the interval."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        more = self._suppressed.pop(kind, 0)
        suffix = f" (and {more} more since the last report)" if more else ""
        self._logger.log(level, "callback refused (%s): %s%s", kind, detail, suffix)
