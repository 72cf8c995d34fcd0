"""The PostgreSQL journal's rows: the column list, the queries by key, and row <-> entry.

Also the small helpers the journal and the fleet modules share: the URL without its
password, this process's default owner name, and a database error's first line.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "COLUMNS",
    "DB_NOW",
    "SELECT_ALL",
    "SELECT_BY_KEY",
    "SELECT_BY_KEY_LOCKED",
    "SELECT_BY_TASK",
    "SELECT_BY_TOKEN",
    "default_owner",
    "first_line",
    "redact_url",
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
