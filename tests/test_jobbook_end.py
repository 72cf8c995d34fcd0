"""JobBook.end with a cancel-safe recorder: the caller goes on, the job is released once durable."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from vidgo_async import GenerationRequest, Task, TaskStatus
from vidgo_async._clock import VirtualClock
from vidgo_async._jobbook import JobBook
from vidgo_async._jobs import Job

INPUT = {"prompt": "a heron in the reeds", "duration": 5, "resolution": "720p"}


class _SlowRecorder:
    """Records each end only once ``commit`` is set (a write waiting for its commit)."""

    def __init__(self, *, cancel_safe: bool) -> None:
        self.cancel_safe = cancel_safe
        self.commit = anyio.Event()
        self.log: list[str] = []

    async def before_submit(self, job: Job) -> None:  # pragma: no cover - not called here
        pass

    async def after_submit(self, job: Job, task: Task) -> None:  # pragma: no cover
        pass

    async def after_end(self, job: Job) -> None:
        self.log.append(f"write {job.key}")
        # Like the SQLite journal's write: waits out its commit even when cancelled.
        with anyio.CancelScope(shield=True):
            await self.commit.wait()
        self.log.append(f"durable {job.key}")


def _book(recorder: _SlowRecorder, limiter: anyio.CapacityLimiter) -> JobBook:
    book = JobBook(clock=VirtualClock(), limiter=limiter, journal=recorder)
    book.release_hooks.append(lambda job: recorder.log.append(f"released {job.key}"))
    return book


async def _in_flight(book: JobBook, key: str) -> Job:
    job = Job(
        GenerationRequest("seedance-2", INPUT, key=key),
        key=key,
        input=INPUT,
        wall_clock=book.clock.time,
    )
    book.live[key] = job
    book.done[job] = None
    book.recorded.add(job)
    await book.limiter.acquire_on_behalf_of(job)
    book.hold(job)
    job.begin_submit()
    job.submitted(Task(task_id=f"t-{key}", status=TaskStatus.NOT_STARTED), monotonic=0.0)
    return job


def _finished(job: Job) -> Task:
    return Task(task_id=f"t-{job.key}", status=TaskStatus.FINISHED, progress=100)


async def test_a_recorded_end_returns_at_once_and_releases_the_job_once_durable() -> None:
    """The caller (a poll worker) is not held by the commit; the job's waiters and token are."""
    recorder = _SlowRecorder(cancel_safe=True)
    limiter = anyio.CapacityLimiter(4)
    book = _book(recorder, limiter)
    async with anyio.create_task_group() as task_group:
        book.task_group = task_group
        first, second = await _in_flight(book, "a"), await _in_flight(book, "b")
        with anyio.fail_after(5):  # the ends do not wait for the commit
            await book.end(first, lambda: first.finish(_finished(first)))
            await book.end(second, lambda: second.finish(_finished(second)))
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        # Both writes are on their way together; neither job is released before its commit.
        assert recorder.log == ["write a", "write b"]
        assert first in book.done
        assert second in book.done
        assert limiter.borrowed_tokens == 2
        recorder.commit.set()
        with anyio.fail_after(5):
            await book.wait_done(first)
            await book.wait_done(second)
        log = recorder.log
        ends = ["durable a", "durable b", "released a", "released b"]
        assert sorted(log) == [*ends, "write a", "write b"]
        assert log.index("durable a") < log.index("released a")
        assert log.index("durable b") < log.index("released b")
        assert limiter.borrowed_tokens == 0
        task_group.cancel_scope.cancel()


async def test_ends_waiting_for_their_commit_when_the_run_is_cancelled_are_still_released() -> None:
    """Cancelling the orchestrator's task group mid-commit: the write completes, then the release."""
    recorder = _SlowRecorder(cancel_safe=True)
    limiter = anyio.CapacityLimiter(4)
    book = _book(recorder, limiter)
    job = await _in_flight(book, "a")
    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            book.task_group = task_group
            await book.end(job, lambda: job.finish(_finished(job)))
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            assert recorder.log == ["write a"]
            task_group.cancel_scope.cancel()
            task_group.start_soon(_set_later, recorder.commit)
    assert recorder.log == ["write a", "durable a", "released a"]
    assert job not in book.done
    assert limiter.borrowed_tokens == 0


async def _set_later(event: anyio.Event) -> None:
    with anyio.CancelScope(shield=True):
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
    event.set()


async def test_a_recorder_that_is_not_cancel_safe_holds_the_caller_until_durable() -> None:
    """Any other recorder is awaited in the caller's turn, shielded, as before."""
    recorder = _SlowRecorder(cancel_safe=False)
    limiter = anyio.CapacityLimiter(4)
    book = _book(recorder, limiter)
    async with anyio.create_task_group() as task_group:
        book.task_group = task_group
        job = await _in_flight(book, "a")
        ended = anyio.Event()

        async def end() -> None:
            await book.end(job, lambda: job.finish(_finished(job)))
            ended.set()

        task_group.start_soon(end)
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert not ended.is_set()
        assert recorder.log == ["write a"]
        recorder.commit.set()
        with anyio.fail_after(5):
            await ended.wait()
        assert recorder.log == ["write a", "durable a", "released a"]
