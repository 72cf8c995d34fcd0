"""What a journal records of one job: its state (derived from the job's) and its entry.

:class:`JournalState` names the job states a journal records, with the same values; its
meaning (``is_terminal``, what a rerun does) is the job state's, defined once in ``_jobs``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from ._converter import converter, structure
from ._errors import APIResponseValidationError
from ._jobs import JobState, RerunAction, request_fingerprint
from ._models import Task, TaskFile, TaskStatus

__all__ = [
    "OUTCOMES",
    "CanonicalInput",
    "JournalEntry",
    "JournalState",
    "RecordedTask",
    "TerminalRecord",
    "canonical_json",
    "compact_json",
    "entry_from_row",
    "entry_updated",
    "fingerprint",
    "fingerprint_of_json",
    "task_id_of",
    "task_json",
    "terminal_record",
]


class JournalState(str, enum.Enum):
    """Where a journaled job stands: the job states a journal records (same names, same values).

    Its meaning is the job's: :attr:`job_state`, :attr:`is_terminal` and :attr:`rerun`
    come from :class:`~vidgo_async.JobState` and its rerun table.
    """

    SUBMITTING = "submitting"  # intent written; the submit may or may not have been sent
    IN_FLIGHT = "in_flight"  # the API gave a task_id; not yet seen terminal
    UNKNOWN = "unknown"  # sent, no answer: a task may exist (and be billed)
    FINISHED = "finished"
    FAILED = "failed"  # rejected before a task existed, or the API said the task failed
    TIMEOUT = "timeout"  # our deadline passed; the task goes on under its task_id
    LOST = "lost"  # its status could no longer be read; the task may go on under its task_id

    @property
    def job_state(self) -> JobState:
        """The job state this journal state records."""
        return JobState(self.value)

    @property
    def is_terminal(self) -> bool:
        """Whether the run that recorded it was done with the job (``JobState.is_terminal``)."""
        return self.job_state.is_terminal

    @property
    def rerun(self) -> RerunAction:
        """What a rerun does with a job recorded in this state (``JobState.rerun``)."""
        return self.job_state.rerun

    def __str__(self) -> str:
        return str(self.value)


def _encoder(*, sort_keys: bool, ensure_ascii: bool) -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), sort_keys=..., ensure_ascii=...)``.

    ``JSONEncoder.encode`` makes a C encoder on every call, which costs more than encoding
    a row or an input; this one is made once, without the cycle check: a value holding a
    cycle (a ``RecursionError``) is encoded again by ``JSONEncoder.encode``, which raises
    its usual ``ValueError``. Without the C encoder: ``JSONEncoder.encode`` as is.
    """
    plain = json.JSONEncoder(separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has the C encoder
        return plain.encode
    strings = (
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    )
    chunks = make(None, plain.default, strings, None, ":", ",", sort_keys, False, True)

    def encode(value: Any) -> str:
        try:
            return "".join(chunks(value, 0))
        except RecursionError:
            return plain.encode(value)

    return encode


_canonical_json = _encoder(sort_keys=True, ensure_ascii=False)
compact_json = _encoder(sort_keys=False, ensure_ascii=True)
_compact_json_str = json.JSONEncoder(separators=(",", ":"), default=str).encode


def canonical_json(data: Mapping[str, Any]) -> str:
    """Return ``data`` as canonical JSON: sorted keys, no spaces, UTF-8 kept as is."""
    return _canonical_json(data)


class CanonicalInput(dict[str, Any]):
    """A copy of an input mapping with its :func:`canonical_json`, encoded once.

    ``record_intent`` takes its ``json`` as is instead of encoding the input again, so a
    caller that needs the JSON too (for the fingerprint: :func:`fingerprint_of_json`)
    encodes the input only once. Do not change it after it was built.
    """

    __slots__ = ("_fingerprint", "json")

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.json = _canonical_json(self)
        self._fingerprint: tuple[str, str] | None = None

    def fingerprint(self, model: str) -> str:
        """:func:`fingerprint_of_json` of ``model`` and this input, hashed once per model.

        The recorder computes it, and ``record_intent`` checks the one it is given against
        it: the same value, so the second time costs no hash.
        """
        memo = self._fingerprint
        if memo is not None and memo[0] == model:
            return memo[1]
        value = fingerprint_of_json(model, self.json)
        self._fingerprint = (model, value)
        return value


# The one request fingerprint (shared with the orchestrator's jobs): sha256 of the model id
# followed by the canonical JSON of the input. A journal refuses to reuse a job key for a
# different fingerprint.
fingerprint = request_fingerprint


def fingerprint_of_json(model: str, input_json: str) -> str:
    """:func:`fingerprint` from the input's :func:`canonical_json` (no second encoding)."""
    return hashlib.sha256((model + input_json).encode("utf-8")).hexdigest()


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One job as the journal last recorded it.

    Attributes:
        key: the job key (a batch line's ``id``).
        fingerprint: see :func:`fingerprint`.
        model, input: the request as it was (or would be) sent.
        state: see :class:`JournalState`.
        task_id: the task id the API gave, when it gave one.
        task: the last task seen (terminal tasks are recorded), when any.
        error_type, error_message: why the job failed or is unknown.
        files: local paths of downloaded result files, in the task's file order.
        attempts: how many submits were started for this key.
        callback_token: the SHA-256 (hex, ``webhooks.token_hash``) of the capability token
            of the job's callback URL, when one was used; never the token itself.
        created_at, updated_at, submitted_at, finished_at: Unix times.
    """

    key: str
    fingerprint: str
    model: str
    input: dict[str, Any]
    state: JournalState
    task_id: str | None = None
    task: Task | None = None
    error_type: str | None = None
    error_message: str | None = None
    files: tuple[str, ...] = ()
    attempts: int = 0
    callback_token: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    submitted_at: float | None = None
    finished_at: float | None = None

    @property
    def error(self) -> dict[str, str] | None:
        """The error as ``{"type": ..., "message": ...}``, or ``None``."""
        if self.error_type is None and self.error_message is None:
            return None
        return {"type": self.error_type or "Error", "message": self.error_message or ""}

    @property
    def submit_in_doubt(self) -> bool:
        """Whether a submit may have created a task whose id was never recorded.

        True for ``unknown`` and for ``submitting`` (the process died between the intent
        and the answer), and for a state to poll that lost its task id. Such jobs must not
        be resubmitted without the user's consent.
        """
        action = self.state.rerun
        return action is RerunAction.LEAVE or (action is RerunAction.POLL and self.task_id is None)

    @property
    def needs_poll(self) -> bool:
        """Whether the job has a task id but no terminal task yet (re-attach by polling)."""
        return self.task_id is not None and self.state.rerun is RerunAction.POLL

    @property
    def rerun(self) -> RerunAction:
        """What a rerun does with this job (the state's action; ``leave`` when it cannot poll)."""
        return RerunAction.LEAVE if self.submit_in_doubt else self.state.rerun


# -- the stored form (one column order for every store) ---------------------------------


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
            files=() if files_json == "[]" else tuple(json.loads(files_json)),
            attempts=attempts,
            callback_token=token,
            created_at=created,
            updated_at=updated,
            submitted_at=submitted,
            finished_at=finished,
        )
    except (ValueError, TypeError, APIResponseValidationError) as exc:
        raise ValueError(f"the journal entry {key!r} is damaged ({exc})") from exc


# Columns stored as the entry's attribute of the same name, value for value.
_SAME_COLUMNS = frozenset(
    {
        "task_id", "error_type", "error_message", "attempts", "callback_token", "created_at",
        "updated_at", "submitted_at", "finished_at",
    }
)  # fmt: skip

# Every column an update may change.
_UPDATED_COLUMNS = _SAME_COLUMNS | {"state", "task_json", "files_json"}


# Every attribute of an entry, in its constructor's order, read in one call.
_ENTRY_FIELDS = tuple(field.name for field in attrs.fields(JournalEntry))
_entry_values = operator.attrgetter(*_ENTRY_FIELDS)
# A stored state's enum member by its value (``JournalState(value)`` without the enum call).
_STATES = {state.value: state for state in JournalState}


def entry_updated(entry: JournalEntry, changes: Mapping[str, Any]) -> JournalEntry:
    """Return ``entry`` with the stored columns ``changes`` written over its row.

    The same entry as :func:`entry_from_row` builds from the updated row, without reading
    back the columns that did not change (the input, the task when it was not rewritten).
    The identity columns (key, fingerprint, model, input) are never changed by an update.

    Raises:
        ValueError: a value cannot be read back, or a column is not one an update changes.
    """
    if not _UPDATED_COLUMNS.issuperset(changes):
        unknown = sorted(set(changes) - _UPDATED_COLUMNS)
        raise ValueError(f"an update does not change the columns {unknown}")
    # ``attrs.evolve`` without its per-call field walk: every attribute at once, then the
    # changed ones over them (no converters or validators to run: plain attributes).
    fields = dict(zip(_ENTRY_FIELDS, _entry_values(entry), strict=True))
    try:
        for column, value in changes.items():
            if column == "state":
                state = _STATES.get(value)
                fields["state"] = JournalState(value) if state is None else state
            elif column == "task_json":
                if type(value) is RecordedTask:
                    fields["task"] = value.task  # what its JSON reads back as
                else:
                    fields["task"] = None if value is None else structure(json.loads(value), Task)
            elif column == "files_json":
                fields["files"] = tuple(json.loads(value))
            else:
                fields[column] = value
    except (ValueError, TypeError, APIResponseValidationError) as exc:
        raise ValueError(f"the journal entry {entry.key!r} is damaged ({exc})") from exc
    return JournalEntry(**fields)


def task_json(task: Task | Mapping[str, Any] | None) -> str | None:
    """The JSON a task is recorded as (``None`` for no task)."""
    if task is None:
        return None
    if isinstance(task, Task):
        return compact_json(converter.unstructure(task))
    return _compact_json_str(dict(task))


class RecordedTask(str):
    """A task's recorded JSON (:func:`task_json`) with the task it reads back as.

    Stored and checksummed as the plain string it is; :func:`entry_updated` takes its
    ``task`` instead of reading the JSON back. Build one only with :meth:`of`.
    """

    task: Task

    @classmethod
    def of(cls, task: Task, text: str) -> str:
        """``text`` (``task_json(task)``), as a ``RecordedTask`` when ``task`` reads back as
        itself."""
        if not reads_back_as_itself(task):
            return text
        recorded = cls(text)
        recorded.task = task
        return recorded


def reads_back_as_itself(task: Task) -> bool:
    """Whether ``task`` equals the task its :func:`task_json` reads back as.

    True for every task the converter built (a status query's answer, a callback): each
    value is already in the form reading gives it. A task built with a value reading would
    change (a progress of 150, a list of files, an ``int`` subclass, an unknown status, ...)
    is read back from its JSON instead, as before.
    """
    if type(task) is not Task or type(task.status) is not TaskStatus or not task.status.is_known:
        return False
    if type(task.task_id) is not str or not task.task_id:
        return False
    progress, message, credits = task.progress, task.error_message, task.credits_amount
    if progress is not None and (type(progress) is not int or not 0 <= progress <= 100):
        return False
    if message is not None and type(message) is not str:
        return False
    if credits is not None and not (
        type(credits) is int or (type(credits) is float and math.isfinite(credits))
    ):
        return False
    if task.created_time is not None and type(task.created_time) is not datetime:
        return False
    if type(task.files) is not tuple:
        return False
    for file in task.files:
        if type(file) is not TaskFile or type(file.file_url) is not str or not file.file_url:
            return False
        if type(file.file_type) is not str or not file.file_type:
            return False
        for text in (file.label, file.format, file.content_type, file.file_name):
            if text is not None and type(text) is not str:
                return False
        if file.file_size is not None and type(file.file_size) is not int:
            return False
    return True


def task_id_of(task: Task | Mapping[str, Any] | None) -> str | None:
    """The task id of a task or task mapping, if it has one."""
    if isinstance(task, Task):
        return task.task_id
    if isinstance(task, Mapping):
        value = task.get("task_id")
        return value if isinstance(value, str) and value else None
    return None


# The states ``record_terminal`` records.
OUTCOMES = (JournalState.FINISHED, JournalState.FAILED, JournalState.TIMEOUT, JournalState.LOST)


@attrs.frozen(kw_only=True)
class TerminalRecord:
    """What ``record_terminal`` writes, the same for every store (see :func:`terminal_record`)."""

    state: JournalState
    task_json: str | None
    task_id: str | None
    files_json: str
    error_type: str | None
    message: str | None


def terminal_record(
    state: JournalState | str,
    task: Task | Mapping[str, Any] | None,
    files: Iterable[str | Path],
    *,
    error_type: str | None,
    message: str | None,
) -> TerminalRecord:
    """Check and prepare an outcome for ``record_terminal`` (before any store work).

    A failed task without an error type is recorded as a ``TaskFailedError`` with the
    task's own error message.

    Raises:
        ValueError: ``state`` is not an outcome (finished, failed, timeout or lost).
    """
    if type(state) is not JournalState:
        state = JournalState(state)
    if state not in OUTCOMES:
        raise ValueError(f"record_terminal takes finished, failed, timeout or lost (got {state})")
    paths = [str(path) for path in files]
    if state is JournalState.FAILED and error_type is None:
        error_type = "TaskFailedError"
        if message is None and isinstance(task, Task):
            message = task.error_message
    return TerminalRecord(
        state=state,
        task_json=task_json(task),
        task_id=task_id_of(task),
        files_json=json.dumps(paths) if paths else "[]",
        error_type=error_type,
        message=message,
    )
