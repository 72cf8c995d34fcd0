"""Emulated tasks: the store and the lifecycle driven by (scaled) time.

A task spends the first tenth of its duration ``not_started``, then ``running`` with a
progress rising linearly in time from 1 to 99, then ends ``finished`` or ``failed``.

A prompt may carry a directive, for tests only, in a syntax no ordinary prompt uses::

    [[vidgo-emulator: seconds=3 fail="boom" progress=none]]

``seconds`` sets the job's duration in emulated seconds (before ``time_scale``); ``fail``
makes it end ``failed`` with that ``error_message`` (a bare ``fail`` uses the content-policy
message); ``progress=none`` keeps ``progress`` at 0 until the job ends (an API that reports
no progress); ``progress=back`` makes it back-loaded (rising with the square of the running
time: slow first, most of it near the end); ``reject=TYPE`` refuses the submit with HTTP 400 and that error type (e.g.
``content_moderation_error``). An unreadable directive is refused with a 400 naming it.
"""

from __future__ import annotations

import asyncio
import random
import re
import shlex
import string
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["CONTENT_POLICY_MESSAGE", "Directive", "EmulatedTask", "TaskStore", "parse_directive"]

CONTENT_POLICY_MESSAGE = "The prompt violates our content policy"
QUEUED_FRACTION = 0.1
_DIRECTIVE = re.compile(r"\[\[vidgo-emulator:(?P<body>[^\]]*)\]\]")
_ID_ALPHABET = string.ascii_lowercase + string.digits


@attrs.frozen(kw_only=True)
class Directive:
    """The settings a prompt directive asks for."""

    seconds: float | None = None
    fail: str | None = None
    progress: str = "linear"
    reject: str | None = None


def parse_directive(prompt: object) -> Directive | None:
    """Return the directive inside ``prompt``, ``None`` without one; raise ``ValueError`` if unreadable."""
    if not isinstance(prompt, str):
        return None
    match = _DIRECTIVE.search(prompt)
    if match is None:
        return None
    values: dict[str, Any] = {}
    for token in shlex.split(match.group("body")):
        name, has_value, value = token.partition("=")
        if name == "seconds" and has_value:
            seconds = float(value)
            if not 0 <= seconds < 1e9:
                raise ValueError(f"seconds must be from 0 to 1e9 (got {value})")
            values["seconds"] = seconds
        elif name == "fail":
            values["fail"] = value if has_value and value else CONTENT_POLICY_MESSAGE
        elif name == "progress" and value in ("none", "linear", "back"):
            values["progress"] = value
        elif name == "reject" and value:
            values["reject"] = value
        else:
            raise ValueError(f"unknown setting {token!r} (known: seconds, fail, progress, reject)")
    return Directive(**values)


@attrs.define(kw_only=True)
class EmulatedTask:
    """One task and everything needed to answer about it."""

    task_id: str
    model: str
    input: Mapping[str, Any]
    callback_url: str | None
    created_time: str  # YYYY-MM-DDTHH:MM:SS (UTC, no zone, as the API shows it)
    started_at: float  # loop.time() at submit
    duration: float  # real seconds until the end (emulated seconds x time_scale)
    fail_message: str | None
    progress_mode: str
    price: int
    time_scale: float
    ended: str | None = None  # "finished" or "failed" once settled
    handle: asyncio.TimerHandle | None = None

    def age(self, now: float) -> float:
        """Return the emulated seconds since submit."""
        return (now - self.started_at) / self.time_scale

    def is_due(self, now: float) -> bool:
        """Whether the task's time is up."""
        return now >= self.started_at + self.duration

    def snapshot(self, now: float, file_url: Callable[[str], str]) -> dict[str, Any]:
        """Return the status-shaped ``data`` object as the API would show it now."""
        status, progress, files, error = "not_started", 0, [], None
        if self.ended == "finished":
            status, progress = "finished", 100
            files = [{"file_url": file_url(self.task_id), "file_type": "video"}]
        elif self.ended == "failed":
            status, error = "failed", self.fail_message
        elif self.duration > 0:
            fraction = (now - self.started_at) / self.duration
            if fraction >= QUEUED_FRACTION:
                status = "running"
                running = (fraction - QUEUED_FRACTION) / (1 - QUEUED_FRACTION)
                if self.progress_mode == "linear":
                    progress = min(99, max(1, 1 + int(98 * running)))
                elif self.progress_mode == "back":
                    progress = min(99, max(1, 1 + int(98 * running * running)))
        return {
            "task_id": self.task_id,
            "status": status,
            "files": files,
            "created_time": self.created_time,
            "progress": progress,
            "error_message": error,
            # Deducted at submit, refunded when the task fails (the status page's "Credits").
            "credits_amount": 0 if self.ended == "failed" else self.price,
        }


class TaskStore:
    """Create tasks, end them when due and report each ending exactly once."""

    def __init__(
        self,
        *,
        job_seconds: float | tuple[float, float],
        time_scale: float,
        failure_rate: float,
        rng: random.Random,
        on_end: Callable[[EmulatedTask], None],
    ) -> None:
        self._job_seconds = job_seconds
        self._time_scale = time_scale
        self._failure_rate = failure_rate
        self._rng = rng
        self._on_end = on_end
        self._tasks: dict[str, EmulatedTask] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def new_id(self) -> str:
        """Return a fresh id in the documented ``task-unified-<unix>-<8 chars>`` form."""
        while True:
            suffix = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(8))
            task_id = f"task-unified-{int(time.time())}-{suffix}"
            if task_id not in self._tasks:
                return task_id

    def create(
        self,
        *,
        task_id: str,
        model: str,
        input: Mapping[str, Any],
        callback_url: str | None,
        directive: Directive | None,
        price: int,
    ) -> EmulatedTask:
        """Create a task and arm the timer that ends it."""
        loop = asyncio.get_running_loop()
        seconds = directive.seconds if directive and directive.seconds is not None else None
        if seconds is None:
            if isinstance(self._job_seconds, tuple):
                seconds = self._rng.uniform(*self._job_seconds)
            else:
                seconds = self._job_seconds
        fail = directive.fail if directive else None
        if fail is None and self._failure_rate > 0 and self._rng.random() < self._failure_rate:
            fail = CONTENT_POLICY_MESSAGE
        task = EmulatedTask(
            task_id=task_id,
            model=model,
            input=input,
            callback_url=callback_url,
            created_time=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            started_at=loop.time(),
            duration=seconds * self._time_scale,
            fail_message=fail,
            progress_mode=directive.progress if directive else "linear",
            price=price,
            time_scale=self._time_scale,
        )
        self._tasks[task_id] = task
        task.handle = loop.call_at(task.started_at + task.duration, self.settle, task)
        return task

    def get(self, task_id: str) -> EmulatedTask | None:
        """Return the task, settled if its time is up (timers may lag behind a request)."""
        task = self._tasks.get(task_id)
        if (
            task is not None
            and task.ended is None
            and task.is_due(asyncio.get_running_loop().time())
        ):
            self.settle(task)
        return task

    def settle(self, task: EmulatedTask) -> None:
        """End ``task`` if it has not ended yet and report it."""
        if task.ended is not None:
            return
        if task.handle is not None:
            task.handle.cancel()
            task.handle = None
        task.ended = "failed" if task.fail_message is not None else "finished"
        self._on_end(task)

    def close(self) -> None:
        """Cancel every pending timer."""
        for task in self._tasks.values():
            if task.handle is not None:
                task.handle.cancel()
                task.handle = None
