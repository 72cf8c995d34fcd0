"""Response models: Task, TaskStatus, TaskFile, Balance and UploadedFile.

Models are frozen attrs classes that know nothing of HTTP. They are built from the ``data``
of the API envelope by the converter in ``_converter``, which is tolerant: unknown keys are
ignored and an unknown status stays readable instead of crashing the parse.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

__all__ = ["Balance", "Task", "TaskFile", "TaskStatus", "UploadedFile"]


class TaskStatus(str, enum.Enum):
    """The status of a Vidgo task.

    A documented word in another case or with spaces around it (``"FINISHED"``) is that
    status. Any other status the API sends is kept as a pseudo-member named ``UNKNOWN``
    whose ``value`` is the string the server sent, so ``TaskStatus("paused").value ==
    "paused"`` and ``.is_known`` is ``False``.
    """

    NOT_STARTED = "not_started"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    @classmethod
    def _missing_(cls, value: object) -> TaskStatus | None:
        if not isinstance(value, str):
            return None
        # Tolerant in what is accepted: a finished task said in capitals is still finished
        # (read as unknown, it would be lost, and its video never collected, on every run).
        folded = value.strip().lower()
        for known in cls:
            if known.value == folded:
                return known
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether this is one of the four documented statuses."""
        return self._name_ != "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        """Whether the task can no longer change (``finished`` or ``failed``)."""
        return self is TaskStatus.FINISHED or self is TaskStatus.FAILED

    def __str__(self) -> str:
        return str(self.value)


@attrs.frozen(kw_only=True)
class TaskFile:
    """One generated file of a finished task.

    ``file_type`` is ``"video"`` or ``"image"`` on Vidgo (the platform also uses ``"audio"``,
    ``"3d"`` and ``"other"``); the optional fields appear on some models only.
    """

    file_url: str
    file_type: str = "other"
    label: str | None = None
    format: str | None = None
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None


@attrs.frozen(kw_only=True)
class Task:
    """A Vidgo generation task as the API last described it.

    Attributes:
        task_id: the opaque id given by the submit.
        status: see :class:`TaskStatus`.
        files: the generated files, filled when the task is finished.
        created_time: when the task was created (naive, as the API sends it), when known.
        progress: 0 to 100 when the API reports it.
        error_message: why the task failed, when it did.
        credits_amount: credits charged, when the API reports them.
    """

    task_id: str
    status: TaskStatus
    files: tuple[TaskFile, ...] = ()
    created_time: datetime | None = None
    progress: int | None = None
    error_message: str | None = None
    credits_amount: float | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the task has ended (``finished`` or ``failed``)."""
        return self.status.is_terminal

    @property
    def is_finished(self) -> bool:
        """Whether the task ended successfully."""
        return self.status is TaskStatus.FINISHED

    @property
    def is_failed(self) -> bool:
        """Whether the task ended in failure."""
        return self.status is TaskStatus.FAILED

    @property
    def file_urls(self) -> list[str]:
        """The URLs of the generated files, in order."""
        return [file.file_url for file in self.files]


@attrs.frozen(kw_only=True)
class Balance:
    """The account balance from ``GET /api/user/balance``."""

    credits_amount: float
    email: str | None = None


@attrs.frozen(kw_only=True)
class UploadedFile:
    """A file stored by one of the ``/api/common/upload/*`` endpoints.

    Pass ``file_url`` in an input's ``*_urls`` fields. Vidgo deletes uploads 72 hours after
    ``upload_time``; ``expires_at`` says when (naive, as the API sends it: the docs name no
    time zone). Only ``file_url`` is required; the other fields are ``None`` when missing.
    """

    file_url: str
    expires_at: datetime | None = None
    file_id: str | None = None
    file_name: str | None = None
    original_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    upload_path: str | None = None
    download_url: str | None = None
    upload_time: datetime | None = None
