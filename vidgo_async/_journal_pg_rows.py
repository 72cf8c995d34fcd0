"""The PostgreSQL journal's rows: the column list, the queries by key, and row <-> entry.

Also the small helpers the journal and the fleet modules share: the URL without its
password, this process's default owner name, and a database error's first line.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._converter import converter, structure
from ._errors import APIResponseValidationError
from ._journal_entry import JournalEntry, JournalState
from ._models import Task

__all__ = [
    "COLUMNS",
    "DB_NOW",
    "OUTCOMES",
    "SELECT_ALL",
    "SELECT_BY_KEY",
    "SELECT_BY_KEY_LOCKED",
    "SELECT_BY_TASK",
    "SELECT_BY_TOKEN",
    "default_owner",
    "entry_from_row",
    "first_line",
    "redact_url",
    "task_id_of",
    "task_json",
]

COLUMNS = (
    "key, fingerprint, model, input_json, state, task_id, task_json, error_type, "
    "error_message, files_json, attempts, callback_token, created_at, updated_at, "
    "submitted_at, finished_at"
)
SELECT_BY_KEY = f"SELECT {COLUMNS} FROM vidgo_jobs WHERE key = %s"  # noqa: S608
SELECT_BY_KEY_LOCKED = SELECT_BY_KEY + " FOR UPDATE"
SELECT_BY_TASK = f"SELECT {COLUMNS} FROM vidgo_jobs WHERE task_id = %s"  # noqa: S608
SELECT_BY_TOKEN = f"SELECT {COLUMNS} FROM vidgo_jobs WHERE callback_token = %s"  # noqa: S608
SELECT_ALL = f"SELECT {COLUMNS} FROM vidgo_jobs ORDER BY seq"  # noqa: S608
# The database's clock, for leases: one clock for every machine of the fleet.
DB_NOW = "extract(epoch from clock_timestamp())::double precision"
OUTCOMES = (JournalState.FINISHED, JournalState.FAILED, JournalState.TIMEOUT, JournalState.LOST)


def redact_url(url: str) -> str:
    """Return ``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(
        (parts.scheme, f"{user}:***@{netloc[2]}", parts.path, parts.query, parts.fragment)
    )


def default_owner() -> str:
    """This process's default name in a fleet: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (libpq's are long), or its type's name."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def entry_from_row(row: tuple[Any, ...]) -> JournalEntry:
    """Build the entry of a ``COLUMNS`` row.

    Raises:
        ValueError: a value cannot be read back (the message says which).
    """
    (key, fp, model, input_json, state, task_id, task_text, error_type, error_message,
     files_json, attempts, token, created, updated, submitted, finished) = row  # fmt: skip
    try:
        task = None if task_text is None else structure(json.loads(task_text), Task)
        return JournalEntry(
            key=key,
            fingerprint=fp,
            model=model,
            input=json.loads(input_json),
            state=JournalState(state),
            task_id=task_id,
            task=task,
            error_type=error_type,
            error_message=error_message,
            files=tuple(json.loads(files_json)),
            attempts=attempts,
            callback_token=token,
            created_at=created,
            updated_at=updated,
            submitted_at=submitted,
            finished_at=finished,
        )
    except (ValueError, TypeError, APIResponseValidationError) as exc:
        raise ValueError(f"the journal entry {key!r} is damaged ({exc})") from exc


def task_json(task: Task | Mapping[str, Any] | None) -> str | None:
    """The JSON a task is recorded as (``None`` for no task)."""
    if task is None:
        return None
    if isinstance(task, Task):
        return json.dumps(converter.unstructure(task), separators=(",", ":"))
    return json.dumps(dict(task), separators=(",", ":"), default=str)


def task_id_of(task: Task | Mapping[str, Any] | None) -> str | None:
    """The task id of a task or task mapping, if it has one."""
    if isinstance(task, Task):
        return task.task_id
    if isinstance(task, Mapping):
        value = task.get("task_id")
        return value if isinstance(value, str) and value else None
    return None
