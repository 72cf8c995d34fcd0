"""Tests for the job state machine, its events and results."""

from __future__ import annotations

import attrs
import pytest

from vidgo_async import (
    AuthenticationError,
    JournalState,
    RerunAction,
    Task,
    TaskFailedError,
    TaskLostError,
    TaskStatus,
    _jobs,
)
from vidgo_async._jobs import (
    RERUN,
    GenerationRequest,
    InvalidTransitionError,
    Job,
    JobAbandonedError,
    JobEvent,
    JobState,
    Progress,
    request_fingerprint,
)
from vidgo_async.testing import fingerprint as emulator_fingerprint

INPUT = {"prompt": "a red fox in snow", "duration": 5, "resolution": "720p"}


def make_job(events: list[JobEvent]) -> Job:
    clock = iter(float(n) for n in range(1_000, 2_000))
    return Job(
        GenerationRequest("seedance-2", INPUT, key="fox"),
        key="fox",
        input=INPUT,
        wall_clock=lambda: next(clock),
        listeners=[events.append],
    )


def task(status: str, progress: int | None = None) -> Task:
    return Task(task_id="t-1", status=TaskStatus(status), progress=progress)


def test_fingerprint_ignores_key_order_and_matches_the_emulator() -> None:
    """The fingerprint is stable under key order and equals the emulator's job counter key."""
    reordered = {"resolution": "720p", "duration": 5, "prompt": "a red fox in snow"}
    assert request_fingerprint("seedance-2", INPUT) == request_fingerprint("seedance-2", reordered)
    assert request_fingerprint("seedance-2", INPUT) == emulator_fingerprint("seedance-2", INPUT)
    assert request_fingerprint("seedance-2", INPUT) != request_fingerprint("seedance-2-fast", INPUT)


def test_happy_path_emits_one_event_per_transition() -> None:
    """queued -> submitting -> in_flight -> finished emits exactly those events, in order."""
    events: list[JobEvent] = []
    job = make_job(events)
    job.begin_submit()
    job.submitted(task("not_started"), monotonic=5.0)
    job.observe(task("running", 40))
    job.observe(task("running", 40))  # no change: no event
    job.finish(task("finished", 100))
    assert [e.kind for e in events] == ["submitting", "submitted", "progress", "finished"]
    assert [e.state for e in events] == [
        JobState.SUBMITTING,
        JobState.IN_FLIGHT,
        JobState.IN_FLIGHT,
        JobState.FINISHED,
    ]
    assert events[1].previous is JobState.SUBMITTING
    assert events[2].progress == 40
    result = job.result()
    assert result.ok
    assert result.task_id == "t-1"
    assert result.error is None
    assert result.queued_at is not None
    assert result.submitted_at is not None
    assert result.duration is not None
    assert result.duration > 0
    assert result.unwrap().status is TaskStatus.FINISHED


def test_failed_task_keeps_task_id_and_unwrap_raises() -> None:
    """A failed task ends FAILED with its task id, and unwrap raises the job's error."""
    events: list[JobEvent] = []
    job = make_job(events)
    job.begin_submit()
    job.submitted(task("not_started"), monotonic=1.0)
    failed = Task(task_id="t-1", status=TaskStatus.FAILED, error_message="boom")
    job.fail(TaskFailedError(failed), failed)
    result = job.result()
    assert result.state is JobState.FAILED
    assert result.task_id == "t-1"
    with pytest.raises(TaskFailedError, match="boom"):
        result.unwrap()


def test_requeue_returns_to_queued_and_can_submit_again() -> None:
    """A 429 re-queues the job; it can then be submitted again."""
    events: list[JobEvent] = []
    job = make_job(events)
    job.begin_submit()
    job.requeue(RuntimeError("429"))
    assert job.state is JobState.QUEUED
    job.begin_submit()
    assert [e.kind for e in events] == ["submitting", "requeued", "submitting"]


@pytest.mark.parametrize(
    ("prepare", "action"),
    [
        (lambda job: None, lambda job: job.finish(task("finished"))),
        (lambda job: None, lambda job: job.outcome_unknown(RuntimeError())),
        (lambda job: job.begin_submit(), lambda job: job.cancel(RuntimeError())),
        (lambda job: job.cancel(RuntimeError()), lambda job: job.begin_submit()),
    ],
)
def test_illegal_transitions_are_refused(prepare: object, action: object) -> None:
    """A transition the current state does not allow raises and changes nothing."""
    job = make_job([])
    prepare(job)  # type: ignore[operator]
    before = job.state
    with pytest.raises(InvalidTransitionError):
        action(job)  # type: ignore[operator]
    assert job.state is before


def test_abandon_keeps_state_and_names_the_task() -> None:
    """Abandoning an in-flight job keeps it IN_FLIGHT with an error naming the task id."""
    events: list[JobEvent] = []
    job = make_job(events)
    job.begin_submit()
    job.submitted(task("running"), monotonic=1.0)
    job.abandon()
    assert job.state is JobState.IN_FLIGHT
    assert isinstance(job.error, JobAbandonedError)
    assert "t-1" in str(job.error)
    assert events[-1].kind == "abandoned"
    with pytest.raises(JobAbandonedError):
        job.result().unwrap()


def test_abandon_of_a_queued_job_holding_a_task_keeps_its_task_and_never_cancels() -> None:
    """A queued job that holds a task (re-attached) is abandoned in flight, never cancelled."""
    events: list[JobEvent] = []
    job = make_job(events)
    job.task = task("running")  # as Orchestrator.attach queues it, waiting for a token
    job.abandon("the job was cancelled")
    assert job.state is JobState.IN_FLIGHT
    assert job.state.rerun is RerunAction.POLL
    assert (events[-1].kind, events[-1].previous) == ("abandoned", JobState.QUEUED)
    assert isinstance(job.error, JobAbandonedError)
    assert job.error.task_id == "t-1"
    assert "the job was cancelled" in str(job.error)
    assert "nothing was created" not in str(job.error)


def test_abandon_of_a_queued_job_without_a_task_is_refused() -> None:
    """A queued job that never had a task cannot be abandoned (it is cancelled instead)."""
    job = make_job([])
    with pytest.raises(InvalidTransitionError):
        job.abandon()
    assert job.state is JobState.QUEUED


def test_attach_follows_an_existing_task_from_unknown() -> None:
    """An unknown submit can be adopted once its task id is learnt."""
    job = make_job([])
    job.begin_submit()
    job.outcome_unknown(RuntimeError("timeout"))
    assert job.state.is_terminal
    job.attach(task("running"), monotonic=2.0)
    assert job.state is JobState.IN_FLIGHT
    assert job.error is None


def test_progress_totals() -> None:
    """Progress adds up pending and done jobs."""
    progress = Progress(queued=2, submitting=1, in_flight=3, finished=4, failed=1, unknown=1)
    assert progress.pending == 6
    assert progress.done == 6
    assert progress.total == 12


def test_job_fingerprint_is_the_request_fingerprint_computed_once() -> None:
    """A job's fingerprint equals request_fingerprint of its input and is computed on first use only."""
    job = make_job([])
    assert job._fingerprint is None  # not paid for at construction
    first = job.fingerprint
    assert first == request_fingerprint("seedance-2", INPUT)
    assert job.fingerprint is first


@pytest.mark.parametrize("others", [0, 1])
def test_a_listener_added_during_an_event_gets_only_later_events(others: int) -> None:
    """With one listener or several, a listener added while an event is delivered misses it."""
    late: list[JobEvent] = []
    seen: list[str] = []
    job = make_job([])
    job._listeners = ()
    if others:
        job.add_listener(lambda event: seen.append(event.kind))

    def add_late(event: JobEvent) -> None:
        if event.kind == "submitting":
            job.add_listener(late.append)

    job.add_listener(add_late)
    job.begin_submit()
    job.submitted(task("not_started"), monotonic=1.0)
    assert [e.kind for e in late] == ["submitted"]
    assert seen == (["submitting", "submitted"] if others else [])


def test_lost_keeps_the_task_id_and_is_polled_on_a_rerun() -> None:
    """IN_FLIGHT -> LOST keeps the task and its id; the rerun table polls it, never resubmits."""
    events: list[JobEvent] = []
    job = make_job(events)
    job.begin_submit()
    job.submitted(task("running"), monotonic=1.0)
    cause = TaskLostError(task("running"), AuthenticationError("no", status_code=401))
    job.lose(cause)
    assert job.state is JobState.LOST
    assert job.task_id == "t-1"
    assert events[-1].kind == "lost"
    assert job.state.is_terminal
    assert job.state.rerun is RerunAction.POLL
    with pytest.raises(TaskLostError):
        job.result().unwrap()


def test_in_doubt_is_explicit_and_ends_adopted_or_unknown() -> None:
    """SUBMITTING -> IN_DOUBT (not terminal) -> IN_FLIGHT when adopted, or UNKNOWN at the end."""
    events: list[JobEvent] = []
    adopted = make_job(events)
    adopted.begin_submit()
    adopted.doubt(RuntimeError("no answer"))
    assert adopted.state is JobState.IN_DOUBT
    assert not adopted.state.is_terminal
    adopted.submitted(task("running"), monotonic=2.0)
    assert (adopted.state, adopted.error) == (JobState.IN_FLIGHT, None)
    unknown = make_job(events)
    unknown.begin_submit()
    unknown.doubt(RuntimeError("no answer"))
    unknown.outcome_unknown(RuntimeError("no callback came"))
    assert unknown.state is JobState.UNKNOWN
    assert [e.kind for e in events].count("in_doubt") == 2


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (JobState.FINISHED, RerunAction.SKIP),
        (JobState.FAILED, RerunAction.RESUBMIT),
        (JobState.CANCELLED, RerunAction.RESUBMIT),
        (JobState.QUEUED, RerunAction.RESUBMIT),
        (JobState.LOST, RerunAction.POLL),
        (JobState.TIMEOUT, RerunAction.POLL),
        (JobState.IN_FLIGHT, RerunAction.POLL),
        (JobState.UNKNOWN, RerunAction.LEAVE),
        (JobState.SUBMITTING, RerunAction.LEAVE),
        (JobState.IN_DOUBT, RerunAction.LEAVE),
    ],
)
def test_the_rerun_table(state: JobState, action: RerunAction) -> None:
    """One table says what a rerun does with each state; only nothing-billed states resubmit."""
    assert RERUN[state] is action
    assert state.rerun is action


def test_the_rerun_table_covers_every_state_and_the_journal_derives_from_it() -> None:
    """Every job state has a rerun action; every journal state is a job state with its meaning."""
    assert set(RERUN) == set(JobState)
    for recorded in JournalState:
        assert recorded.job_state is JobState(recorded.value)
        assert recorded.is_terminal is recorded.job_state.is_terminal
        assert recorded.rerun is recorded.job_state.rerun


def test_a_job_event_made_by_the_hot_path_equals_the_attrs_made_one() -> None:
    """A job fills every field of a frozen JobEvent, in order, as JobEvent(...) does."""
    assert tuple(f.name for f in attrs.fields(JobEvent)) == _jobs._EVENT_FIELDS
    events: list[JobEvent] = []
    job = make_job(events)
    job.begin_submit()
    made = task("running")
    job.submitted(made, monotonic=1.0)
    error = RuntimeError("boom")
    job.fail(error)
    fast = events[-1]
    values = ("failed", "fox", JobState.FAILED, JobState.IN_FLIGHT, "t-1", made, error)
    slow = JobEvent(
        kind="failed",
        key="fox",
        state=JobState.FAILED,
        previous=JobState.IN_FLIGHT,
        task_id="t-1",
        task=made,
        error=error,
        at=fast.at,
    )
    assert type(fast) is JobEvent
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert attrs.astuple(fast, recurse=False) == (*values, fast.at)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.kind = "finished"  # type: ignore[misc]


def test_a_job_moves_the_counts_it_is_given_and_makes_no_event_without_a_listener() -> None:
    """Counts follow every transition; a job with no listener still counts, makes no event."""
    counts = dict.fromkeys(JobState, 0)
    counts[JobState.QUEUED] = 1
    job = Job(
        GenerationRequest("seedance-2", INPUT, key="fox"),
        key="fox",
        input=INPUT,
        wall_clock=lambda: 1.0,
        counts=counts,
    )
    job.announce()
    assert counts[JobState.QUEUED] == 1
    job.begin_submit()
    assert (counts[JobState.QUEUED], counts[JobState.SUBMITTING]) == (0, 1)
    job.submitted(task("running"), monotonic=1.0)
    job.finish(task("finished"))
    assert counts[JobState.FINISHED] == 1
    assert sum(counts.values()) == 1


def test_a_listener_that_raises_is_logged_and_the_next_one_still_hears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener's error never breaks the transition nor the listeners after it."""
    heard: list[str] = []

    def broken(event: JobEvent) -> None:
        raise RuntimeError("hook bug")

    job = make_job([])
    job._listeners = (broken, lambda event: heard.append(event.kind))
    job.begin_submit()
    assert job.state is JobState.SUBMITTING
    assert heard == ["submitting"]
    assert "hook raised for job 'fox'" in caplog.text
