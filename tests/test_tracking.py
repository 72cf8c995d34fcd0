"""Tests for the poller's handler: what each answer does to its job, and what it learns."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from vidgo_async import GenerationRequest, JobEvent, JobState, PollPolicy, Task, TaskStatus
from vidgo_async._clock import VirtualClock
from vidgo_async._errors import TaskLostError
from vidgo_async._gates import RateGate
from vidgo_async._jobbook import JobBook
from vidgo_async._jobs import Job
from vidgo_async._retry import RetryBudget
from vidgo_async._scheduler import Fetch
from vidgo_async._tracking import Tracking

INPUT = {"prompt": "a heron in the reeds", "duration": 5, "resolution": "720p"}
POLICY = PollPolicy(initial_delay=1, multiplier=1.0, max_interval=1, min_interval=1, jitter=0.0)


def _book(clock: VirtualClock) -> JobBook:
    return JobBook(clock=clock, limiter=anyio.CapacityLimiter(4), journal=None)


def _tracking(book: JobBook, clock: VirtualClock, fetch: Fetch, *, max_concurrent: int) -> Tracking:
    return Tracking(
        book,
        fetch=fetch,
        gate=RateGate(None, clock=clock, name="status"),
        clock=clock,
        poll=POLICY,
        job_timeout=None,
        budget=RetryBudget(),
        max_concurrent=max_concurrent,
    )


def _in_flight(book: JobBook, key: str, task_id: str, events: list[JobEvent]) -> Job:
    job = Job(
        GenerationRequest("seedance-2", INPUT, key=key),
        key=key,
        input=INPUT,
        wall_clock=book.clock.time,
        listeners=[events.append],
    )
    book.live[key] = job
    book.done[job] = anyio.Event()
    job.begin_submit()
    job.submitted(Task(task_id=task_id, status=TaskStatus.NOT_STARTED), monotonic=0.0)
    return job


async def test_an_unchanged_answer_emits_no_event_but_is_polled_again() -> None:
    """Answers that repeat the last status and progress emit nothing; each one is polled again."""
    clock = VirtualClock()
    book = _book(clock)
    answers = [(TaskStatus.RUNNING, 10)] * 3 + [(TaskStatus.RUNNING, 40)] * 2
    answers.append((TaskStatus.FINISHED, 100))
    queries: list[float] = []

    async def fetch(task_id: str) -> tuple[Task, float | None]:
        await anyio.lowlevel.checkpoint()
        status, progress = answers[len(queries)]
        queries.append(clock.monotonic())
        return Task(task_id=task_id, status=status, progress=progress), None

    tracking = _tracking(book, clock, fetch, max_concurrent=2)
    events: list[JobEvent] = []
    job = _in_flight(book, "a", "t-1", events)
    done = book.done[job]
    tracking.arm(job, clock.monotonic())
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(tracking.scheduler.run)
        with anyio.fail_after(5):
            await done.wait()
        task_group.cancel_scope.cancel()
    assert len(queries) == len(answers)  # every answer that went on was polled again
    kinds = [(event.kind, event.task.progress if event.task else None) for event in events]
    # The submit, then one "progress" per change only, then the end.
    assert kinds == [
        ("submitting", None),
        ("submitted", None),
        ("progress", 10),
        ("progress", 40),
        ("finished", 100),
    ]
    assert job.state is JobState.FINISHED


async def test_an_unchanged_answer_still_replaces_the_jobs_task() -> None:
    """The job keeps the freshest task object even when no event was worth emitting."""
    clock = VirtualClock()
    book = _book(clock)
    events: list[JobEvent] = []
    job = _in_flight(book, "a", "t-1", events)
    first = Task(task_id="t-1", status=TaskStatus.RUNNING, progress=5)
    again = Task(task_id="t-1", status=TaskStatus.RUNNING, progress=5)
    job.observe(first)
    job.observe(again)
    assert job.task is again
    assert [event.kind for event in events] == ["submitting", "submitted", "progress"]


async def test_a_finished_job_tells_the_learn_hooks_and_a_lost_one_does_not() -> None:
    """Only an end that teaches a duration (finished or failed) re-aims the poller."""
    clock = VirtualClock()
    book = _book(clock)
    learned: list[str] = []
    book.learn_hooks.append(lambda: learned.append("learned"))
    events: list[JobEvent] = []
    finished = _in_flight(book, "a", "t-1", events)
    lost = _in_flight(book, "b", "t-2", events)
    clock.advance(30.0)
    done = Task(task_id="t-1", status=TaskStatus.FINISHED, progress=100)
    await book.end(finished, lambda: finished.finish(done))
    assert learned == ["learned"]
    error = TaskLostError(Task(task_id="t-2", status=TaskStatus.RUNNING), RuntimeError("gone"))
    await book.end(lost, lambda: lost.lose(error))
    assert learned == ["learned"]


async def test_tracking_re_aims_its_poller_when_the_book_learns() -> None:
    """The orchestrator's poller is told of every learned window (it asks again only then)."""
    clock = VirtualClock()
    book = _book(clock)

    async def fetch(task_id: str) -> tuple[Task, float | None]:
        raise AssertionError("not polled in this test")  # pragma: no cover

    tracking = _tracking(book, clock, fetch, max_concurrent=1)
    assert tracking.scheduler.relearn in book.learn_hooks


async def test_armed_arms_only_a_job_whose_first_task_goes_on() -> None:
    """The synchronous first step arms a going-on task; an end, an unknown status or a past
    deadline is left to ``went_in_flight`` (nothing armed, the job untouched)."""
    clock = VirtualClock()
    book = _book(clock)

    async def fetch(task_id: str) -> tuple[Task, float | None]:  # pragma: no cover - unused
        raise AssertionError("no poll is due")

    tracking = _tracking(book, clock, fetch, max_concurrent=1)
    events: list[JobEvent] = []
    for status in (TaskStatus.RUNNING, TaskStatus.NOT_STARTED):
        job = _in_flight(book, f"on-{status.value}", "t-on", events)
        assert tracking.armed(job, Task(task_id="t-on", status=status), clock.monotonic())
        assert tracking.scheduler.is_watching(job)
    for status in (TaskStatus.FINISHED, TaskStatus.FAILED, TaskStatus("paused")):
        job = _in_flight(book, f"end-{status.value}", "t-end", events)
        assert not tracking.armed(job, Task(task_id="t-end", status=status), clock.monotonic())
        assert not tracking.scheduler.is_watching(job)
        assert job.state is JobState.IN_FLIGHT
    late = _in_flight(book, "late", "t-late", events)
    late.deadline = clock.monotonic()
    assert not tracking.armed(
        late, Task(task_id="t-late", status=TaskStatus.RUNNING), late.deadline
    )
    assert not tracking.scheduler.is_watching(late)


async def test_a_first_answer_of_an_unknown_status_polled_through_is_armed() -> None:
    """With ``unknown_status="poll"`` a submit answering an unknown status is still polled."""
    clock = VirtualClock()
    book = _book(clock)

    async def fetch(task_id: str) -> tuple[Task, float | None]:
        raise AssertionError("not polled in this test")  # pragma: no cover

    tracking = Tracking(
        book,
        fetch=fetch,
        gate=RateGate(None, clock=clock, name="status"),
        clock=clock,
        poll=PollPolicy(unknown_status="poll"),
        job_timeout=None,
        budget=RetryBudget(),
        max_concurrent=1,
    )
    job = _in_flight(book, "a", "t-1", [])
    paused = Task(task_id="t-1", status=TaskStatus("paused"))
    await tracking.went_in_flight(job, paused, clock.monotonic())
    assert job.state is JobState.IN_FLIGHT
    assert job.task is paused
    assert tracking.scheduler.is_watching(job)
