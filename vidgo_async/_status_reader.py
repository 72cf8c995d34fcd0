"""Status queries: the path of a task's status, its answer, and a reusable query for polls.

``VidgoClient.query_status`` sends one query; a :class:`StatusReader` is one task's query
made once and asked again and again (the orchestrator's poller holds one per job): its path
is checked once, and an answer byte-identical to the previous one is not decoded again.
"""

from __future__ import annotations

import re
from collections.abc import Coroutine
from typing import Any, NamedTuple
from urllib.parse import quote

from ._answers import AnswerMemo, Response
from ._converter import structure
from ._errors import InputValidationError, ValidationIssue
from ._http import Transport
from ._models import Task

__all__ = ["STATUS_PATH", "StatusAnswer", "StatusReader", "status_answer", "status_path"]

STATUS_PATH = "/api/generate/status/"
# Task ids made only of these characters go into the status path as they are.
_PLAIN_TASK_ID = re.compile(r"[A-Za-z0-9_-]+")


class StatusAnswer(NamedTuple):
    """One status answer: the task, and the server's poll hint (``Retry-After``) in seconds."""

    task: Task
    poll_hint: float | None


def status_path(task_id: str) -> str:
    """The status endpoint's path for ``task_id``, or an ``InputValidationError`` naming it."""
    if type(task_id) is str and _PLAIN_TASK_ID.fullmatch(task_id):
        # The documented id forms: non-blank, never only dots, nothing to quote.
        return STATUS_PATH + task_id
    if not isinstance(task_id, str) or not task_id.strip():
        raise InputValidationError(
            [ValidationIssue("task_id", "must be a non-empty string", task_id)]
        )
    if task_id.strip(".") == "":
        # "." and ".." would be resolved as path segments and query another endpoint.
        raise InputValidationError([ValidationIssue("task_id", "must not be only dots", task_id)])
    if _PLAIN_TASK_ID.fullmatch(task_id):
        return STATUS_PATH + task_id  # the documented id forms need no quoting
    return STATUS_PATH + quote(task_id, safe="")


def status_answer(response: Response) -> StatusAnswer:
    """Read a decoded status answer: the task it describes and the server's poll hint."""
    return StatusAnswer(structure(response.data, Task), response.retry_after)


class StatusReader(AnswerMemo[StatusAnswer]):
    """One task's status query, for a poll loop: ``await reader()`` sends it once.

    Like :meth:`VidgoClient.query_status` (one request, no retries, no not-found grace, no
    interpretation: feed the answer or the error to a ``PollTracker``), but made once per
    task: the path is checked at the first call, and an answer byte-identical to the
    previous one (same HTTP status, body and ``Retry-After``) comes back as the same
    :class:`StatusAnswer`, and so the same ``Task``, without being decoded again (the
    reader is its own memo of that answer). Get one from :meth:`VidgoClient.status_reader`.
    """

    __slots__ = ("_path", "_transport", "task_id")

    def __init__(self, transport: Transport, task_id: str) -> None:
        super().__init__()
        self._transport = transport
        self.task_id = task_id
        self._path: str | None = None

    def __repr__(self) -> str:
        return f"StatusReader(task_id={self.task_id!r})"

    def __call__(self) -> Coroutine[Any, Any, StatusAnswer]:
        # Not a coroutine itself: it hands back the transport's, one frame less per poll.
        # A bad id raises here, at the call; a closed client when the query is awaited (the
        # transport checks before it sends anything).
        path = self._path
        if path is None:
            path = self._path = status_path(self.task_id)
        return self._transport.send_once_memo(path, self, status_answer)
