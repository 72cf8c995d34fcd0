"""What each journal write may do to a job's row as stored: one set of rules for every store.

The SQLite and the PostgreSQL journal each read (or remember) a job's row inside the
write's transaction and ask these functions whether to write: ``True`` to write,
``False`` to leave the row as it is (the write collapses into what is recorded), or the
store's own error, raised, for a write that must be refused. Each store then writes in
its own SQL. So a rule ("a finished job stays finished", "a job's task id never changes")
is decided here once, never twice.

``refuse`` is the store's error constructor (a ``JournalError`` naming its file or
database), called with the message.
"""

from __future__ import annotations

from collections.abc import Callable

from ._journal_entry import JournalEntry, JournalState

__all__ = [
    "describe_unknown",
    "downloads_apply",
    "failure_applies",
    "outcome_applies",
    "submitted_applies",
    "unknown_applies",
]

Refuse = Callable[[str], Exception]


def _intent(key: str, entry: JournalEntry | None, action: str, refuse: Refuse) -> JournalEntry:
    """``entry``, or the refusal of a write for a job whose intent was never recorded."""
    if entry is None:
        raise refuse(f"cannot {action} for job {key!r}: no intent was recorded for it")
    return entry


def submitted_applies(key: str, entry: JournalEntry | None, task_id: str, refuse: Refuse) -> bool:
    """Whether to record ``task_id`` as the job's task (``False``: it holds it already).

    A job's task id never changes: a second one is refused. Whether another job holds
    ``task_id`` is the store's own check (a read or a constraint).
    """
    entry = _intent(key, entry, "record a task id", refuse)
    if entry.task_id == task_id:
        return False
    if entry.task_id is not None:
        raise refuse(
            f"job {key!r} already holds task {entry.task_id}; refusing to record a "
            f"second task {task_id} for it"
        )
    return True


def unknown_applies(key: str, entry: JournalEntry | None, refuse: Refuse) -> bool:
    """Whether to record a submit whose outcome is unknown (a job with a task id: stale)."""
    return _intent(key, entry, "record an unknown submit", refuse).task_id is None


def failure_applies(key: str, entry: JournalEntry | None, refuse: Refuse) -> bool:
    """Whether to record a failure (a finished job is never turned into a failed one)."""
    return _intent(key, entry, "record a failure", refuse).state is not JournalState.FINISHED


def outcome_applies(
    key: str,
    entry: JournalEntry | None,
    state: JournalState,
    task_id: str | None,
    refuse: Refuse,
) -> bool:
    """Whether to record outcome ``state`` of the task ``task_id`` (``None``: not named).

    An outcome of another task than the job holds is refused; a finished job stays
    finished (recording ``finished`` again refreshes it).
    """
    entry = _intent(key, entry, "record an outcome", refuse)
    if entry.task_id is not None and task_id is not None and entry.task_id != task_id:
        raise refuse(f"job {key!r} holds task {entry.task_id}, not {task_id}; outcome not recorded")
    return entry.state is not JournalState.FINISHED or state is JournalState.FINISHED


def downloads_apply(key: str, entry: JournalEntry | None, refuse: Refuse) -> None:
    """Refuse a download list for a job whose intent was never recorded."""
    _intent(key, entry, "record downloads", refuse)


def describe_unknown(error: BaseException | str) -> tuple[str, str]:
    """The (error type, message) recorded for a submit whose outcome is unknown."""
    if isinstance(error, BaseException):
        return type(error).__name__, str(error)
    return "SubmitOutcomeUnknownError", error
