"""Many requests become jobs lazily: in input order, in slices, as the dispatcher needs them.

``Orchestrator.run`` and ``as_completed`` take any number of requests. Building a job
(validating its input, giving it a key, a callback token, its first event) costs ~15 µs, so
building 100 000 at once held the event loop for 1-2 s. A :class:`LazyBatch` builds them in
slices of :data:`SLICE`, yields to the event loop between slices and stops building while the
dispatcher already has ``lookahead`` jobs waiting in its queue.

What stays as it was: a request that is not a ``GenerationRequest`` or reuses a key raises
before anything is queued (cheap checks, made up front); an invalid input fails its own job,
nothing is sent for it (when its slice is built: the other jobs are independent of it);
results keep input order; the snapshot counts a request not yet built as ``queued``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container, Sequence

import anyio
import anyio.lowlevel

from ._errors import InputValidationError
from ._intake import JobIntake
from ._jobbook import JobBook
from ._jobs import GenerationRequest, Job, JobState

__all__ = ["SLICE", "LazyBatch", "check_requests"]

# Jobs built between two yields to the event loop (a few milliseconds of work).
SLICE = 256


def check_requests(requests: Sequence[GenerationRequest], live: Container[str]) -> None:
    """Refuse, before anything is queued, a batch that could never be built whole.

    Raises:
        TypeError: an item is not a ``GenerationRequest``.
        ValueError: two requests share a key, or a key is used by a job that has not ended.
    """
    keys: set[str] = set()
    for request in requests:
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"expected a GenerationRequest (got {type(request).__name__})")
        key = request.key
        if key is None:
            continue
        if key in keys or key in live:
            raise ValueError(
                f"job key {key!r} is used twice (or by a job that has not ended): "
                "give each request its own key"
            )
        keys.add(key)


class LazyBatch:
    """The jobs of one ``run`` or ``as_completed`` call, built as the dispatcher needs them.

    Args:
        requests: the requests, checked with :func:`check_requests`.
        intake: makes each job.
        book: the orchestrator's jobs (its counts hold the requests not yet built).
        enqueue: queues a built job (with its deadline) for the dispatcher.
        room: waits until the dispatcher's queue has room for more jobs.
        on_built: called with each job once it exists (in input order).
    """

    def __init__(
        self,
        requests: list[GenerationRequest],
        *,
        intake: JobIntake,
        book: JobBook,
        enqueue: Callable[[Job], None],
        room: Callable[[], Awaitable[None]],
        on_built: Callable[[Job], None] | None = None,
    ) -> None:
        self.requests = requests
        self.jobs: list[Job] = []
        self.built = anyio.Event()
        self._intake = intake
        self._book = book
        self._enqueue = enqueue
        self._room = room
        self._on_built = on_built
        self._scope = anyio.CancelScope()
        self._reason = "the orchestrator stopped before the job was submitted"
        book.counts[JobState.QUEUED] += len(requests)  # not built yet, but queued

    async def build(self) -> None:
        """Build every job, a slice at a time; on a stop, the rest end ``cancelled``."""
        try:
            with self._scope:
                requests = self.requests
                for start in range(0, len(requests), SLICE):
                    await self._room()
                    for request in requests[start : start + SLICE]:
                        self._build_one(request)
                    await anyio.lowlevel.checkpoint()
        finally:
            self.finish(None)

    def stop(self, reason: str) -> None:
        """Stop building: built jobs not yet submitted and the unbuilt ones end ``cancelled``."""
        self._reason = reason
        self._scope.cancel()
        for job in self.jobs:
            self._book.cancel_queued(job, reason)
        self.finish(reason)

    def finish(self, reason: str | None) -> None:
        """End the requests not built yet as ``cancelled`` (nothing sent for them); idempotent."""
        if self.built.is_set():
            return
        if reason is not None:
            self._reason = reason
        counts, intake = self._book.counts, self._intake
        for request in self.requests[len(self.jobs) :]:
            counts[JobState.QUEUED] -= 1
            self._add(intake.dropped_job(request, self._reason))
        self.built.set()

    def _build_one(self, request: GenerationRequest) -> None:
        self._book.counts[JobState.QUEUED] -= 1  # new_job counts it again
        try:
            job = self._intake.new_job(request)
        except (InputValidationError, ValueError) as exc:
            # A key taken since the up-front check fails this job alone, like a bad input.
            job = self._intake.rejected_job(request, exc)
        else:
            self._enqueue(job)
        self._add(job)

    def _add(self, job: Job) -> None:
        self.jobs.append(job)
        if self._on_built is not None:
            self._on_built(job)
