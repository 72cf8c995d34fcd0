"""Resuming from a journal: the orchestrator's recorder and the plan for a rerun.

:class:`JournalRecorder` is the orchestrator's ``JobRecorder`` backed by a :class:`Journal`:
the intent is durable before a submit is sent, the ``task_id`` before the job counts as in
flight, the outcome once it ends.

:func:`plan_resume` sorts the requests of a rerun against what the journal already knows,
by the one rerun table (``JobState.rerun``, see :class:`~vidgo_async.RerunAction`):

- ``skip``: ``finished`` jobs (reported from the journal; missing files are downloaded by
  the caller);
- ``poll``: jobs holding a ``task_id`` whose end was not seen (``in_flight``, ``timeout``,
  ``lost``) are re-attached: polled, never submitted again;
- ``leave``: jobs whose submit outcome is unknown (``unknown``, or ``submitting`` when the
  process died mid-submit) are *not* submitted again unless ``retry_unknown`` is set;
- ``resubmit``: ``failed`` jobs (the API said the task failed, or refused the submit before
  anything was created; neither is billed) are submitted again;
- a key recorded with a different request fingerprint is a conflict: nothing should be sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

import anyio
import attrs

from ._errors import JournalConflictError
from ._jobs import (
    GenerationRequest,
    Job,
    JobResult,
    JobState,
    RerunAction,
    identity_of,
    request_fingerprint,
)
from ._journal import Journal, JournalEntry, JournalState
from ._journal_api import JournalLike
from ._journal_entry import CanonicalInput
from ._models import Task, TaskStatus
from ._tokens import token_hash
from ._validation import validate_input

__all__ = ["JournalRecorder", "ResumePlan", "plan_resume"]


class JournalRecorder:
    """Make an orchestrator's job transitions durable in a journal (SQLite or PostgreSQL).

    Pass it as ``Orchestrator(client, journal=JournalRecorder(journal))``.

    Its ``cancel_safe`` attribute is true over the SQLite :class:`Journal`: every call then
    completes its write even when the caller's cancel scope is cancelled mid-call (the
    store's write waits out its commit, and the cancel lands at the caller's next
    checkpoint), so the orchestrator enters no shielded cancel scope around it. A recorder
    without the attribute (or with a false one) is called inside a shielded scope.

    Args:
        journal: the journal.
        retry_unknown: claim jobs whose earlier submit had no answer (may pay twice).
    """

    def __init__(self, journal: JournalLike, *, retry_unknown: bool = False) -> None:
        self.journal = journal
        self.retry_unknown = retry_unknown
        # Over the SQLite store, every write waits out its commit under a cancel scope's
        # cancel (``GroupWriter.wait_out``): the orchestrator then needs no shield.
        self.cancel_safe = isinstance(journal, Journal)
        # Keys this recorder claimed. The orchestrator asks again for one of them only
        # after a 429 re-queued it (nothing was created), so its own claim is renewed.
        self._claimed: set[str] = set()

    async def before_submit(self, job: Job) -> None:
        """Claim the job and record the intent (key, fingerprint, request) before the submit.

        Raises:
            JobClaimedError: the journal holds the job for another submit or a task.
        """
        # Only the token's hash is stored: enough for a rerun to recognise it.
        token = None if job.callback_token is None else token_hash(job.callback_token)
        # What the fingerprint is over (the job as a rerun names it), encoded once for both
        # the fingerprint (``job.fingerprint``'s value) and the journal's row.
        identity = CanonicalInput(job.identity)
        model = job.model
        await self.journal.record_intent(
            job.key,
            identity.fingerprint(model),
            model,
            identity,
            callback_token=token,
            retry_in_doubt=self.retry_unknown or job.key in self._claimed,
        )
        self._claimed.add(job.key)

    async def after_submit(self, job: Job, task: Task) -> None:
        """Record the task id before the job counts as in flight."""
        self._claimed.discard(job.key)
        await self.journal.record_submitted(job.key, task.task_id)

    async def after_end(self, job: Job) -> None:
        """Record how the job ended (withdrawing an intent only if this recorder wrote it)."""
        claimed = job.key in self._claimed
        self._claimed.discard(job.key)
        write = self._end_write(job.key, job.state, job.task, job.error, withdraw=claimed)
        if write is not None:
            await write

    async def record_result(self, result: JobResult) -> None:
        """Record how a job ended from its result (for jobs run outside an orchestrator).

        The orchestrator calls ``after_end`` itself for every job it submitted or
        re-attached with ``Orchestrator.attach``; recording the same outcome again is harmless.
        """
        write = self._end_write(result.key, result.state, result.task, result.error)
        if write is not None:
            await write

    def _end_write(
        self,
        key: str,
        state: JobState,
        task: Task | None,
        error: BaseException | None,
        *,
        withdraw: bool = True,
    ) -> Awaitable[object] | None:
        """The journal call recording how a job ended, for the caller to await (or none).

        Returned rather than awaited here: one coroutine layer less on every job's end.
        ``withdraw``: whether an intent may be withdrawn (not one another submit wrote, e.g.
        when a stop cut this recorder's own intent write short before it was made).
        """
        journal = self.journal
        if state is JobState.FINISHED:
            return journal.record_terminal(key, JournalState.FINISHED, task)
        if state is JobState.UNKNOWN:
            return journal.record_unknown(key, error if error is not None else "no answer")
        error_type = None if error is None else type(error).__name__
        message = None if error is None else str(error)
        if task is not None and state in (JobState.FAILED, JobState.TIMEOUT, JobState.LOST):
            ended = JournalState(state.value)
            return journal.record_terminal(key, ended, task, error_type=error_type, message=message)
        if state is JobState.FAILED:
            return journal.record_failed(key, error_type or "Error", message or "")
        if state is not JobState.IN_FLIGHT and withdraw:
            return self._withdraw(key)
        return None

    async def _withdraw(self, key: str) -> None:
        # Cancelled or timed out before its submit was sent: nothing was created or paid
        # for, so the intent is withdrawn and a rerun submits the job afresh. A read, then
        # a delete: shielded here, so ``cancel_safe`` holds for it too.
        journal = self.journal
        with anyio.CancelScope(shield=True):
            entry = await journal.get(key)
            if entry is not None and entry.state is JournalState.SUBMITTING:
                await journal.forget(key)


@attrs.frozen(kw_only=True)
class ResumePlan:
    """What a rerun does with each request (see :func:`plan_resume`).

    Attributes:
        submit: requests to submit (new, failed before, or unknown with ``retry_unknown``).
        attach: requests whose task exists, with that task, to poll without submitting.
        done: finished requests with their journal entries (report; download missing files).
        in_doubt: requests whose submit outcome is unknown, left alone.
        conflicts: requests whose key is journaled with another request (refuse the run).
        orphans: journal entries no request of this run names.
    """

    submit: list[GenerationRequest] = attrs.field(factory=list)
    attach: list[tuple[GenerationRequest, Task]] = attrs.field(factory=list)
    done: list[tuple[GenerationRequest, JournalEntry]] = attrs.field(factory=list)
    in_doubt: list[tuple[GenerationRequest, JournalEntry]] = attrs.field(factory=list)
    conflicts: list[JournalConflictError] = attrs.field(factory=list)
    orphans: list[JournalEntry] = attrs.field(factory=list)

    @property
    def resuming(self) -> bool:
        """Whether the journal knew any of the requests."""
        return bool(self.attach or self.done or self.in_doubt or self.conflicts)


async def plan_resume(
    journal: JournalLike, requests: Sequence[GenerationRequest], *, retry_unknown: bool = False
) -> ResumePlan:
    """Sort ``requests`` (each with a ``key``) by what ``journal`` knows of them.

    Raises:
        ValueError: a request has no key.
        InputValidationError: a request's input breaks a rule.
    """
    entries = {entry.key: entry for entry in await journal.entries()}
    plan = ResumePlan()
    named: set[str] = set()
    for request in requests:
        if request.key is None:
            raise ValueError("resuming needs a key on every request")
        named.add(request.key)
        entry = entries.get(request.key)
        if entry is None:
            plan.submit.append(request)
            continue
        # Only a fingerprint: the submit path refuses unknown ids (unless the client allows them).
        prepared = validate_input(request.model, request.input, allow_unknown_models=True)
        given = request_fingerprint(request.model, identity_of(request, prepared))
        if entry.fingerprint != given:
            try:
                journal.check_same(entry, given)
            except JournalConflictError as exc:
                plan.conflicts.append(exc)
            continue
        action = entry.rerun
        if action is RerunAction.SKIP:
            plan.done.append((request, entry))
        elif action is RerunAction.POLL and entry.task_id is not None:
            seen = entry.task
            known = seen is not None and seen.task_id == entry.task_id and seen.status.is_known
            task = seen if known and seen is not None else _placeholder(entry.task_id)
            plan.attach.append((request, task))
        elif action is RerunAction.LEAVE and not retry_unknown:
            plan.in_doubt.append((request, entry))
        else:
            plan.submit.append(request)
    plan.orphans.extend(entry for key, entry in entries.items() if key not in named)
    return plan


def _placeholder(task_id: str) -> Task:
    """The task to re-attach when no readable status was recorded: polled from the start."""
    return Task(task_id=task_id, status=TaskStatus.NOT_STARTED)
