"""Verify callback claims off the request path: a bounded queue, workers, one outcome each.

A claim (token hash, task id, status) accepted by the receiver is queued here; a worker
re-fetches the task with an authenticated status request and hands the fresh ``Task`` to
the token's subscriber. A task id already bound to another job is never adopted: the
registry refuses the binding. A failed or unconfirmed confirmation (the status request
failed, or still says the task runs) is tried again, with a growing delay, while the token
lives and its job's end is not known, when nothing else would notice that end: for a job
whose task is unknown (an in-doubt submit: nothing polls a task whose id nobody knows), and
for a token someone awaits with :meth:`Verifier.wait` (a receiver used on its own polls
nothing). The receiver has already answered 2xx, which Vidgo never retries. This module
owns the per-token progress (what is queued, how many verifications, the final outcome,
who waits); nothing outside it mutates it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Literal

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._callbacks import TaskFetcher, VerifiedCallback
from ._errors import UnknownCallbackTokenError, VidgoError
from ._models import Task
from ._tokens import CallbackRegistry, CallbackToken

__all__ = ["FIRST_RETRY_DELAY", "MAX_RETRY_DELAY", "Offer", "VerificationCounts", "Verifier"]

logger = logging.getLogger("vidgo_async")

# A new task's status may answer 404 for its first seconds (eventual consistency), and an
# API hiccup passes in seconds: the first retry comes soon, later ones at most a minute apart.
FIRST_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 60.0


@attrs.define
class VerificationCounts:
    """What the verifier did (merged into ``ReceiverStats``)."""

    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    busy: int = 0
    verifications: int = 0
    verification_errors: int = 0
    unconfirmed: int = 0
    delivered: int = 0
    adopted: int = 0


# What an offered claim became: queued (or already queued / ignored: both answered 200),
# refused because the receiver is stopped or full (answered 503).
Offer = Literal["queued", "duplicate", "ignored", "stopped", "full"]


@attrs.frozen
class _Delivery:
    key: str  # the token's hash
    token: str = attrs.field(repr=False)
    task_id: str
    claim: tuple[str, str]
    retry_delay: float = 0.0  # the wait before the last retry (0: not retried yet)


@attrs.define(eq=False)
class _Progress:
    pending: set[tuple[str, str]] = attrs.Factory(set)
    verifications: int = 0
    result: VerifiedCallback | None = None
    waiters: list[anyio.Event] = attrs.Factory(list)

    def wake(self) -> None:
        for waiter in self.waiters:
            waiter.set()
        self.waiters.clear()


class Verifier:
    """Queue claims and verify them with ``workers`` tasks (see the module docstring)."""

    def __init__(
        self,
        client: TaskFetcher,
        registry: CallbackRegistry,
        *,
        workers: int,
        queue_size: int,
        max_verifications: int,
        verify_timeout: float,
        shutdown_timeout: float,
    ) -> None:
        self._client = client
        self._registry = registry
        self._workers = workers
        self.queue_size = queue_size
        self._max_verifications = max_verifications
        self._verify_timeout = verify_timeout
        self._shutdown_timeout = shutdown_timeout
        self._send: MemoryObjectSendStream[_Delivery] | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._outstanding = 0
        self._idle: anyio.Event | None = None
        self._progress: dict[str, _Progress] = {}
        self._retries: set[anyio.CancelScope] = set()
        self.counts = VerificationCounts()
        registry.add_retire_listener(self._on_retire)

    @property
    def running(self) -> bool:
        return self._send is not None

    async def start(self) -> None:
        send, receive = anyio.create_memory_object_stream[_Delivery](self.queue_size)
        async with contextlib.AsyncExitStack() as stack:
            task_group = await stack.enter_async_context(anyio.create_task_group())
            for _ in range(self._workers):
                task_group.start_soon(self._worker, receive.clone())
            receive.close()
            self._task_group = task_group
            self._exit_stack = stack.pop_all()
        self._send = send

    async def aclose(self, *, clean: bool) -> None:
        send, self._send = self._send, None
        stack, self._exit_stack = self._exit_stack, None
        if send is None or stack is None:
            return
        send.close()  # the workers finish what is queued, then end
        for retry in list(self._retries):
            retry.cancel()  # the tokens' jobs fall back to polling (or end unknown)
        if self._task_group is not None:
            if clean:
                deadline = anyio.current_time() + self._shutdown_timeout
                self._task_group.cancel_scope.deadline = deadline
            else:
                self._task_group.cancel_scope.cancel()
        try:
            await stack.aclose()
        finally:
            # Whatever was still queued is dropped: jobs fall back to polling.
            self._outstanding = 0
            if self._idle is not None:
                self._idle.set()
                self._idle = None

    def resolved(self, key: str) -> bool:
        """Whether a verified callback already ended the job of token hash ``key``."""
        progress = self._progress.get(key)
        return progress is not None and progress.result is not None

    def offer(self, found: CallbackToken, token: str, claim: Task) -> Offer:
        """Queue the verification of ``claim`` unless foreign, taken or already queued."""
        owner = self._registry.owner_of(claim.task_id)
        if (found.task_id is not None and claim.task_id != found.task_id) or (
            found.task_id is None and owner is not None and owner != found.key
        ):
            # The token belongs to another task, or the task to another job: a forgery or
            # a mix-up, never an adoption.
            self.counts.ignored += 1
            return "ignored"
        progress = self._progress.setdefault(found.key, _Progress())
        claimed = (claim.task_id, claim.status.value)
        if claimed in progress.pending:
            self.counts.duplicates += 1
            return "duplicate"
        if progress.verifications >= self._max_verifications:
            self.counts.ignored += 1
            return "ignored"
        if self._send is None:
            self.counts.busy += 1
            return "stopped"
        try:
            self._send.send_nowait(_Delivery(found.key, token, claim.task_id, claimed))
        except anyio.WouldBlock:
            self.counts.busy += 1
            return "full"
        progress.pending.add(claimed)
        progress.verifications += 1
        self._outstanding += 1
        self.counts.accepted += 1
        return "queued"

    def _on_retire(self, key: str) -> None:
        progress = self._progress.pop(key, None)
        if progress is not None:
            progress.wake()

    async def _worker(self, receive: MemoryObjectReceiveStream[_Delivery]) -> None:
        async with receive:
            async for delivery in receive:
                try:
                    await self._verify(delivery)
                finally:
                    self._outstanding -= 1
                    if self._outstanding == 0 and self._idle is not None:
                        self._idle.set()
                        self._idle = None

    async def join(self) -> None:
        """Wait until every queued claim has been verified (and delivered, if it counts)."""
        while self._outstanding > 0:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    async def _verify(self, delivery: _Delivery) -> None:
        """Re-fetch the claimed task and deliver it if it resolves (or reveals) the job."""
        self.counts.verifications += 1
        try:
            with anyio.fail_after(self._verify_timeout):
                task = await self._client.get_task(delivery.task_id)
        except (VidgoError, TimeoutError) as exc:
            self.counts.verification_errors += 1
            if self._retry_later(delivery):
                logger.warning(
                    "callback: confirming task %s failed (%s); it is tried again",
                    delivery.task_id,
                    exc,
                )
                return
            # The job's fallback poll covers it; a later delivery is verified afresh.
            logger.warning(
                "callback: verifying task %s failed (%s); polling continues", delivery.task_id, exc
            )
            return
        finally:
            progress = self._progress.get(delivery.key)
            if progress is not None:
                progress.pending.discard(delivery.claim)
        found = self._registry.find_hash(delivery.key)
        if found is None or found.ended or progress is None or progress.result is not None:
            return
        if task.task_id != delivery.task_id or found.task_id not in (None, task.task_id):
            self.counts.ignored += 1
            return
        adopted = found.task_id is None
        if not (task.is_terminal or adopted or not task.status.is_known):
            self.counts.unconfirmed += 1
            logger.info(
                "callback for task %s claimed %r, but the API says %r; nothing changed%s",
                task.task_id,
                delivery.claim[1],
                task.status.value,
                " (asked again later)" if self._retry_later(delivery) else "",
            )
            return
        if adopted:
            if not self._registry.bind(delivery.key, task.task_id):
                # Bound to another job meanwhile: two jobs never share one task.
                self.counts.ignored += 1
                logger.warning(
                    "callback: task %s belongs to another job; not adopted", task.task_id
                )
                return
            self.counts.adopted += 1
            logger.info("job %r: a callback revealed its task %s", found.job_ref, task.task_id)
        event = VerifiedCallback(
            token=delivery.token, job_ref=found.job_ref, task=task, adopted=adopted
        )
        if task.is_terminal:
            progress.result = event
            progress.wake()
        self.counts.delivered += 1
        subscriber = found.subscriber
        if subscriber is None:
            return
        try:
            outcome = subscriber(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # A subscriber's bug must not stop the receiver from serving other jobs.
            logger.exception("callback subscriber for job %r raised", event.job_ref)

    def _unnoticed(self, key: str) -> bool:
        """Whether only a confirmation can end the job of the token of hash ``key``.

        The token is live and unresolved, and its job's task is unknown (bound to no task)
        or someone awaits the token (:meth:`wait`): nothing polls either of them.
        """
        found = self._registry.find_hash(key)
        progress = self._progress.get(key)
        return (
            found is not None
            and not found.ended
            and (progress is None or progress.result is None)
            and (found.task_id is None or (progress is not None and bool(progress.waiters)))
        )

    def _retry_later(self, delivery: _Delivery) -> bool:
        """Schedule another confirmation of a claim nothing else would notice; say if it was.

        A job whose task is known and nobody awaits here is polled, which covers a lost
        confirmation. The retry runs in the workers' task group and is cancelled at close.
        """
        task_group = self._task_group
        if task_group is None or self._send is None or not self._unnoticed(delivery.key):
            return False
        delay = min(max(delivery.retry_delay * 2, FIRST_RETRY_DELAY), MAX_RETRY_DELAY)
        task_group.start_soon(self._retry, attrs.evolve(delivery, retry_delay=delay))
        return True

    async def _retry(self, delivery: _Delivery) -> None:
        """Wait ``delivery.retry_delay``, then queue the claim again while still in doubt."""
        with anyio.CancelScope() as scope:
            self._retries.add(scope)
            try:
                while True:
                    await anyio.sleep(delivery.retry_delay)
                    if self._send is None or not self._unnoticed(delivery.key):
                        return
                    try:
                        self._send.send_nowait(delivery)
                    except anyio.WouldBlock:
                        continue  # the queue is full: try again after the same delay
                    except anyio.ClosedResourceError:
                        return
                    self._outstanding += 1
                    return
            finally:
                self._retries.discard(scope)

    async def wait(self, found: CallbackToken) -> VerifiedCallback:
        """Wait until a verified callback ends the job of ``found`` and return it."""
        progress = self._progress.setdefault(found.key, _Progress())
        if progress.result is None:
            event = anyio.Event()
            progress.waiters.append(event)
            try:
                await event.wait()
            finally:
                if event in progress.waiters:
                    progress.waiters.remove(event)
        if progress.result is None:
            raise UnknownCallbackTokenError("the callback token was forgotten or expired")
        return progress.result
