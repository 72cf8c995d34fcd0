"""The one private cattrs converter: JSON ``data`` in, frozen models out.

Structuring is tolerant, as the API reference asks: unknown keys are ignored, an unknown
status is kept (see ``TaskStatus``), a missing optional field becomes ``None`` and a
wrongly typed optional field is dropped rather than crashing (a numeric string
``progress`` such as ``"45"`` is read as its number). Only what a caller cannot do without
(a task's ``task_id``) is required. The hooks are written out by hand because they
run for every status query and must stay cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import cattrs

from ._errors import APIResponseValidationError
from ._models import Balance, Task, TaskFile, TaskStatus, UploadedFile

__all__ = ["converter", "parse_datetime", "structure", "structure_task"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)

# The documented statuses by value: a dict lookup is several times cheaper than the Enum
# call (unknown values still go through ``TaskStatus(...)`` and its ``_missing_``).
_KNOWN_STATUSES: dict[str, TaskStatus] = {member.value: member for member in TaskStatus}


# A task's ``created_time`` never changes, and a poller reads it again on every status
# query: parsed API-form timestamps are kept (datetimes are immutable), a bounded number.
_PARSED_TIMES: dict[str, datetime] = {}
_PARSED_TIMES_MAX = 4096


def parse_datetime(value: object) -> datetime | None:
    """Parse the API's ISO-8601 timestamps (no zone, with or without fractions); else ``None``."""
    if type(value) is str:
        parsed = _PARSED_TIMES.get(value)
        if parsed is not None:
            return parsed
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    if value[0].isdigit() and value[-1].isdigit():
        # The API's own form: nothing to strip, no "Z" to rewrite.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if len(_PARSED_TIMES) >= _PARSED_TIMES_MAX:
            _PARSED_TIMES.clear()
        _PARSED_TIMES[value] = parsed
        return parsed
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


# A progress sent as a string: plain ASCII digits, an optional fraction, nothing else (no
# sign, exponent, "nan" or other scripts' digits). Bounded in length, so never a huge int.
_PROGRESS_TEXT = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?", re.ASCII)


def _opt_progress(value: object) -> int | None:
    """A progress that is not a JSON integer: a number, or a numeric string like ``"45"``."""
    if isinstance(value, str):
        text = value.strip()
        if _PROGRESS_TEXT.fullmatch(text) is None:
            return None
        return int(float(text))
    return _opt_int(value)


def _opt_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    return None


def _structure_file(data: object) -> TaskFile | None:
    if not isinstance(data, Mapping):
        return None
    url = data.get("file_url")
    if not isinstance(url, str) or not url:
        return None
    file_type = data.get("file_type")
    return TaskFile(
        file_url=url,
        file_type=file_type if isinstance(file_type, str) and file_type else "other",
        label=_opt_str(data.get("label")),
        format=_opt_str(data.get("format")),
        content_type=_opt_str(data.get("content_type")),
        file_name=_opt_str(data.get("file_name")),
        file_size=_opt_int(data.get("file_size")),
    )


def structure_task(data: Any, _cls: type[Task] = Task) -> Task:
    """Structure API ``data`` into a ``Task`` (``structure(data, Task)`` without its look-up)."""
    # ``type(x) is dict``/``int`` first: that is what JSON gives, and it spares the slower
    # generic checks on every status query.
    if type(data) is not dict and not isinstance(data, Mapping):
        raise APIResponseValidationError("a task must be a JSON object", body=data)
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise APIResponseValidationError("the task has no task_id string", body=data)
    raw_status = data.get("status")
    if not isinstance(raw_status, str):
        raw_status = ""
    status = _KNOWN_STATUSES.get(raw_status)
    if status is None:
        status = TaskStatus(raw_status)
    raw_files = data.get("files")
    files: tuple[TaskFile, ...] = ()
    if raw_files and isinstance(raw_files, list):
        files = tuple(f for f in map(_structure_file, raw_files) if f is not None)
    progress = data.get("progress")
    if progress is not None and type(progress) is not int:  # a submit's answer has none
        progress = _opt_progress(progress)
    if progress is not None:
        progress = 0 if progress < 0 else 100 if progress > 100 else progress
    error_message = data.get("error_message")
    if error_message is not None and type(error_message) is not str:
        error_message = _opt_str(error_message)
    credits_amount = data.get("credits_amount")
    if credits_amount is not None and type(credits_amount) is not int:
        credits_amount = _opt_number(credits_amount)
    return Task(
        task_id=task_id,
        status=status,
        files=files,
        created_time=parse_datetime(data.get("created_time")),
        progress=progress,
        error_message=error_message,
        credits_amount=credits_amount,
    )


def _structure_balance(data: Any, _cls: type[Balance]) -> Balance:
    if not isinstance(data, Mapping):
        raise APIResponseValidationError("a balance must be a JSON object", body=data)
    credits = _opt_number(data.get("credits_amount"))
    if credits is None:
        raise APIResponseValidationError("the balance has no numeric credits_amount", body=data)
    return Balance(credits_amount=credits, email=_opt_str(data.get("email")))


def _structure_uploaded_file(data: Any, _cls: type[UploadedFile]) -> UploadedFile:
    if not isinstance(data, Mapping):
        raise APIResponseValidationError("an upload answer must be a JSON object", body=data)
    url = data.get("file_url")
    if not isinstance(url, str) or not url:
        raise APIResponseValidationError("the upload answer has no file_url string", body=data)
    return UploadedFile(
        file_url=url,
        expires_at=parse_datetime(data.get("expires_at")),
        file_id=_opt_str(data.get("file_id")),
        file_name=_opt_str(data.get("file_name")),
        original_name=_opt_str(data.get("original_name")),
        file_size=_opt_int(data.get("file_size")),
        mime_type=_opt_str(data.get("mime_type")),
        upload_path=_opt_str(data.get("upload_path")),
        download_url=_opt_str(data.get("download_url")),
        upload_time=parse_datetime(data.get("upload_time")),
    )


def _unstructure_task(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": task.task_id,
        "status": task.status.value,
        "files": [
            {
                key: value
                for key, value in (
                    ("file_url", f.file_url),
                    ("file_type", f.file_type),
                    ("label", f.label),
                    ("format", f.format),
                    ("content_type", f.content_type),
                    ("file_name", f.file_name),
                    ("file_size", f.file_size),
                )
                if value is not None
            }
            for f in task.files
        ],
        "created_time": task.created_time.isoformat() if task.created_time else None,
        "progress": task.progress,
        "error_message": task.error_message,
    }
    if task.credits_amount is not None:
        out["credits_amount"] = task.credits_amount
    return out


converter.register_structure_hook(Task, structure_task)
converter.register_structure_hook(Balance, _structure_balance)
converter.register_structure_hook(UploadedFile, _structure_uploaded_file)
converter.register_unstructure_hook(Task, _unstructure_task)

# The hooks above, called directly by ``structure``: cattrs' dispatch would find the same
# function, only slower, on every status query.
_DIRECT_HOOKS: dict[type[Any], Any] = {Task: structure_task, Balance: _structure_balance}


def structure(data: object, cls: type[T]) -> T:
    """Structure API ``data`` into ``cls`` with the package's converter."""
    hook = _DIRECT_HOOKS.get(cls)
    if hook is not None:
        return hook(data, cls)  # type: ignore[no-any-return]
    return converter.structure(data, cls)
