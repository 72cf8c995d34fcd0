"""The journal's write rules, decided once for every store (``_journal_rules``).

The stores' own tests (``test_journal.py``, ``test_journal_pg.py``) check that each store
applies them; these check the rules themselves, every branch, without a database.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vidgo_async import JournalError
from vidgo_async._journal_entry import JournalEntry, JournalState
from vidgo_async._journal_rules import (
    describe_unknown,
    downloads_apply,
    failure_applies,
    outcome_applies,
    submitted_applies,
    unknown_applies,
)


def _refuse(message: str) -> JournalError:
    return JournalError(f"{message}: test.sqlite", path="test.sqlite")


def _entry(state: JournalState, task_id: str | None = None) -> JournalEntry:
    return JournalEntry(
        key="j1", fingerprint="f", model="seedance-2", input={}, state=state, task_id=task_id
    )


@pytest.mark.parametrize(
    ("check", "action"),
    [
        (lambda: submitted_applies("j1", None, "t1", _refuse), "record a task id"),
        (lambda: unknown_applies("j1", None, _refuse), "record an unknown submit"),
        (lambda: failure_applies("j1", None, _refuse), "record a failure"),
        (
            lambda: outcome_applies("j1", None, JournalState.FINISHED, "t1", _refuse),
            "record an outcome",
        ),
        (lambda: downloads_apply("j1", None, _refuse), "record downloads"),
    ],
)
def test_every_write_without_an_intent_is_refused_with_the_stores_error(
    check: Callable[[], object], action: str
) -> None:
    with pytest.raises(JournalError) as caught:
        check()
    assert str(caught.value) == (
        f"cannot {action} for job 'j1': no intent was recorded for it: test.sqlite"
    )
    assert caught.value.path == "test.sqlite"


def test_a_task_id_is_written_once_and_never_replaced() -> None:
    assert submitted_applies("j1", _entry(JournalState.SUBMITTING), "t1", _refuse) is True
    # The same id again collapses into what is recorded.
    assert submitted_applies("j1", _entry(JournalState.IN_FLIGHT, "t1"), "t1", _refuse) is False
    with pytest.raises(JournalError, match="already holds task t1; refusing to record a second"):
        submitted_applies("j1", _entry(JournalState.IN_FLIGHT, "t1"), "t2", _refuse)


def test_an_unknown_submit_is_stale_once_the_job_holds_a_task() -> None:
    assert unknown_applies("j1", _entry(JournalState.SUBMITTING), _refuse) is True
    assert unknown_applies("j1", _entry(JournalState.IN_FLIGHT, "t1"), _refuse) is False


@pytest.mark.parametrize("state", list(JournalState))
def test_only_a_finished_job_refuses_a_failure(state: JournalState) -> None:
    assert failure_applies("j1", _entry(state), _refuse) is (state is not JournalState.FINISHED)


@pytest.mark.parametrize(
    "outcome",
    [JournalState.FINISHED, JournalState.FAILED, JournalState.TIMEOUT, JournalState.LOST],
)
def test_a_finished_job_takes_only_finished_again(outcome: JournalState) -> None:
    finished = _entry(JournalState.FINISHED, "t1")
    assert outcome_applies("j1", finished, outcome, "t1", _refuse) is (
        outcome is JournalState.FINISHED
    )
    assert outcome_applies("j1", _entry(JournalState.IN_FLIGHT, "t1"), outcome, "t1", _refuse)


def test_an_outcome_of_another_task_is_refused() -> None:
    held = _entry(JournalState.IN_FLIGHT, "t1")
    with pytest.raises(JournalError, match="job 'j1' holds task t1, not t2; outcome not recorded"):
        outcome_applies("j1", held, JournalState.FINISHED, "t2", _refuse)
    # An outcome naming no task, or a job holding none yet, is not a mismatch.
    assert outcome_applies("j1", held, JournalState.LOST, None, _refuse)
    assert outcome_applies("j1", _entry(JournalState.UNKNOWN), JournalState.FINISHED, "t2", _refuse)


def test_downloads_need_only_an_intent() -> None:
    downloads_apply("j1", _entry(JournalState.FINISHED, "t1"), _refuse)  # does not raise


def test_an_unknown_submit_is_described_by_its_error_or_the_text_given() -> None:
    assert describe_unknown(TimeoutError("no answer")) == ("TimeoutError", "no answer")
    assert describe_unknown("reset by peer") == ("SubmitOutcomeUnknownError", "reset by peer")
