"""Adoption: a submit with no answer stays ``in_doubt`` until its callback reveals the task.

Vidgo has no idempotency key, so a submit whose answer was lost must never be sent again
silently (RELIABILITY T19). When the job has its own callback URL, the receiver verifies a
callback with an authenticated status request and names the job by its token; the job is
then tracked with the task the callback revealed (adopted), without a second submit. The
job waits in the explicit state ``JobState.IN_DOUBT`` until then, and ends ``unknown`` at
its deadline. A verified callback that overtakes the submit's own answer is kept on the job
(``Job.revealed``) until the answer comes. A job that ended ``unknown`` keeps its token
live: a callback that comes later is still the only news of a billed task, so its task is
confirmed, logged and journaled (a rerun then polls it) rather than acknowledged and dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from ._errors import JournalError, SubmitOutcomeUnknownError, UnknownCallbackTokenError
from ._jobbook import JobBook
from ._jobs import Job, JobState
from ._models import Task
from ._tokens import token_hash
from ._tracking import Tracking

if TYPE_CHECKING:
    from .webhooks import CallbackReceiver, VerifiedCallback

__all__ = ["Adoption"]

logger = logging.getLogger("vidgo_async")


class Adoption:
    """Turn verified callbacks into job progress, and unknown submits into adopted tasks.

    Args:
        book: the orchestrator's jobs.
        tracking: where adopted and called-back jobs are tracked.
        receiver: the callback receiver, if any (without one nothing is adopted).
    """

    def __init__(
        self, book: JobBook, tracking: Tracking, receiver: CallbackReceiver | None
    ) -> None:
        self._book = book
        self._tracking = tracking
        self.receiver = receiver
        # Attached jobs -> the hash of the token bound to their task (see ``attached``).
        self._attached: dict[Job, str] = {}
        if receiver is not None:
            book.release_hooks.append(self._forget_token)

    def _forget_token(self, job: Job) -> None:
        """Drop a released job's callback token: a late callback then changes nothing.

        Except for a job that ended ``unknown`` with no task: its token stays live (until
        its time to live) for a callback to name the task (see :meth:`_late_callback`).
        """
        if self.receiver is None:
            return
        token = job.callback_token
        registry = self.receiver.registry
        if (
            token is not None
            and job.state is JobState.UNKNOWN
            and job.task_id is None
            and token in registry
            and registry.task_id(token) is None
        ):
            registry.subscribe(token, self._late_callback)
        elif token is not None:
            registry.forget(token)
        key = self._attached.pop(job, None)
        if key is not None:
            self.receiver.registry.retire(key)

    def attached(self, job: Job, task: Task) -> None:
        """Bind an attached job in the registry, as a submit's answer binds a submitted one.

        Its task was created earlier, with an earlier token's URL (or none). A token the
        registry already holds for that task (a rerun re-registers its journal's hashes) is
        bound to this job, so a callback to it reaches the job; else the job's own token is
        bound to the task, so no other job's callback can adopt it. Either way the job is
        polled normally (``callback_token`` cleared): no callback may ever come.
        """
        if self.receiver is None:
            return
        registry = self.receiver.registry
        own = job.callback_token
        job.callback_token = job.callback_url = None
        earlier = registry.owner_of(task.task_id)
        if earlier is None and own is not None:
            registry.set_task_id(own, task.task_id)
            self._attached[job] = token_hash(own)
            return
        if own is not None:
            registry.forget(own)  # its URL was never sent for this task
        found = None if earlier is None else registry.find_hash(earlier)
        # A live token of another job of this run keeps its binding; a retired one stays so.
        if earlier is None or found is None or found.ended or isinstance(found.job_ref, Job):
            return
        registry.register_hash(earlier, job, task_id=task.task_id, subscriber=self.on_callback)
        self._attached[job] = earlier

    async def on_callback(self, event: VerifiedCallback) -> None:
        """A verified callback: the fresh task resolves the job at once (or reveals its task)."""
        job = event.job_ref
        if not isinstance(job, Job):
            return
        if event.adopted and job.state is JobState.IN_DOUBT:
            await self.adopt(job, event.task)
        elif event.adopted and job.state is JobState.SUBMITTING:
            job.revealed = event.task  # the submit is still on the wire; it may end in doubt
        elif job.state is JobState.IN_FLIGHT and not await self._tracking.task_seen(
            job, event.task
        ):
            self._tracking.scheduler.forget(job)

    async def _late_callback(self, event: VerifiedCallback) -> None:
        """A verified callback names the task of a job that ended ``unknown``: keep its id.

        The job's result is out already; the task id is logged and journaled (the journal
        entry goes from ``unknown`` to ``in_flight``, so a rerun polls the task), and the
        token is retired, its news taken.
        """
        job = event.job_ref
        if not isinstance(job, Job) or not event.adopted or self.receiver is None:
            return
        task = event.task
        logger.warning(
            "vidgo job %r ended unknown, but a verified callback names its task %s (%s); "
            "the task exists and is billed",
            job.key,
            task.task_id,
            task.status.value,
        )
        journal = self._book.journal
        try:
            if journal is not None:
                with anyio.CancelScope(shield=True):
                    await journal.after_submit(job, task)
                logger.info(
                    "vidgo job %r: task %s journaled; a rerun polls it", job.key, task.task_id
                )
        except JournalError as exc:
            logger.error(
                "vidgo job %r: could not journal its task %s: %s", job.key, task.task_id, exc
            )
        finally:
            if job.callback_token is not None:
                self.receiver.registry.forget(job.callback_token)

    def renew_token(self, job: Job) -> None:
        """Give the job's callback token a full time to live as its submit goes out.

        Tokens are issued when jobs are built; a job that waited in the queue past the
        registry's ttl gets a fresh token and URL instead of sending a dead one.
        """
        token = job.callback_token
        if token is None or self.receiver is None:
            return
        registry = self.receiver.registry
        if not registry.renew(token):
            token = job.callback_token = registry.new_token(job, subscriber=self.on_callback)
            job.callback_url = registry.url_for(token)

    def submitted(self, job: Job, task: Task) -> Task:
        """Bind the job's callback token to its task; return the task to act on.

        A verified callback that overtook the submit's answer and ended the task is the
        fresher news: it is returned instead. A token that cannot be bound (expired, or
        the task bound to another token) never costs the task: the job is polled.
        """
        token = job.callback_token
        if token is not None and self.receiver is not None:
            registry = self.receiver.registry
            try:
                registry.set_task_id(token, task.task_id)
            except (UnknownCallbackTokenError, ValueError) as exc:
                logger.warning(
                    "vidgo job %r: its callback token cannot be bound to task %s (%s); "
                    "the task is polled instead",
                    job.key,
                    task.task_id,
                    exc,
                )
                registry.forget(token)
                job.callback_token = job.callback_url = None
        early = job.revealed
        job.revealed = None
        if early is not None and early.task_id == task.task_id and early.is_terminal:
            return early
        return task

    def _holder_of(self, task_id: str, job: Job) -> str | None:
        """Return the key of another live job that holds ``task_id``, if any."""
        for other in self._book.live.values():
            if other is not job and other.task_id == task_id:
                return other.key
        return None

    async def await_callback(self, job: Job, error: SubmitOutcomeUnknownError) -> bool:
        """Keep an unknown submit in doubt until its callback reveals the task.

        Returns whether the job waits (``in_doubt``); without a callback URL or receiver,
        or past its deadline, it does not and the caller ends it ``unknown``.
        """
        if job.callback_token is None or self.receiver is None or job.expired:
            return False
        early = job.revealed
        job.doubt(error)
        if early is not None:
            await self.adopt(job, early)
            if job.state is not JobState.IN_DOUBT:
                return True
        now = self._book.clock.monotonic()
        deadline = job.deadline
        timeout = self._tracking.job_timeout
        if timeout is not None:
            own = now + timeout
            deadline = own if deadline is None else min(deadline, own)
        if deadline is not None:
            self._tracking.scheduler.set_deadline(job, deadline)
        logger.warning(
            "vidgo submit of job %r has an unknown outcome; waiting for its callback to reveal "
            "the task instead of resubmitting",
            job.key,
        )
        return True

    async def adopt(self, job: Job, task: Task) -> None:
        """Turn an in-doubt submit into a tracked job with the task its callback revealed.

        A task that already belongs to another job (a leaked or replayed token) is never
        adopted: the job stays in doubt and ends ``unknown`` at its deadline.
        """
        holder = self._holder_of(task.task_id, job)
        if holder is not None:
            logger.warning(
                "vidgo job %r: not adopting task %s, which already belongs to job %r",
                job.key,
                task.task_id,
                holder,
            )
            return
        journal = self._book.journal
        if journal is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await journal.after_submit(job, task)
                except JournalError as exc:  # e.g. the task is another journaled job's
                    logger.warning(
                        "vidgo job %r: not adopting task %s: %s", job.key, task.task_id, exc
                    )
                    return
        now = self._book.clock.monotonic()
        job.submitted(task, monotonic=now)
        logger.info("vidgo job %r: its callback revealed task %s (adopted)", job.key, task.task_id)
        await self._tracking.went_in_flight(job, task, now)
