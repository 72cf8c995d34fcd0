"""Deliver task callbacks the way Vidgo documents it (``api-manual/task-management/webhooks``).

One POST of the task with ``Content-Type: application/json`` (the flat task object by
default; the emulator can wrap it in ``{code, data}``). The receiver has 30 s to answer;
a timeout, a network error or a 5xx is retried up to 5 times with exponential backoff and
jitter, capped at 10 minutes between attempts; any other answer (2xx, and a 4xx, which is
recorded and never retried) ends the delivery. With a signing key the request carries
``X-Webhook-Timestamp`` and ``X-Webhook-Signature`` ([P], PoYo's scheme). All delays and
the timeout are multiplied by the emulator's time scale.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .._callback_signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_callback
from ._faults import FaultPlan
from ._stats import CallbackAttempt, EmulatorStats

__all__ = [
    "MAX_RETRIES",
    "RECEIVER_TIMEOUT",
    "RETRY_BASE",
    "RETRY_CAP",
    "CallbackSender",
    "retry_delay",
]

logger = logging.getLogger("vidgo_async")

MAX_RETRIES = 5  # documented: up to 5 automatic retries
RETRY_BASE = 60.0  # emulated seconds before the first retry ([P]: "starting at about 60 s")
RETRY_CAP = 600.0  # documented: capped at 10 minutes between attempts
RECEIVER_TIMEOUT = 30.0  # documented: respond within 30 seconds


def retry_delay(retry: int, rng: random.Random) -> float:
    """Emulated seconds before retry number ``retry`` (1-based): exponential, jittered, capped.

    The un-jittered delay doubles from :data:`RETRY_BASE` up to :data:`RETRY_CAP`; the
    jitter draws uniformly from its upper half, so a delay is never above the cap and
    never below half the exponential step.
    """
    step = min(RETRY_CAP, RETRY_BASE * 2.0 ** (retry - 1))
    return step / 2 + rng.uniform(0.0, step / 2)


def _retried(status: int | None) -> bool:
    """Whether an attempt's outcome is retried: no answer (timeout, network) or a 5xx."""
    return status is None or status >= 500


class CallbackSender:
    """Own the HTTP session and the delivery tasks of callbacks."""

    def __init__(
        self,
        *,
        stats: EmulatorStats,
        faults: FaultPlan,
        time_scale: float,
        timeout: float,
        now: Callable[[], float],
        rng: random.Random | None = None,
        signing_key: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._stats = stats
        self._faults = faults
        self._time_scale = time_scale
        self._timeout = timeout
        self._now = now
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter only
        self._signing_key = signing_key
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """How many notifications are still being delivered or retried."""
        return len(self._tasks)

    async def start(self) -> None:
        """Open the HTTP session used for every delivery."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout), trust_env=False
        )

    def send(self, url: str, task_id: str, body: dict[str, Any]) -> None:
        """Start delivering ``body`` to ``url`` in a task this sender owns."""
        fault = self._faults.pick("callback", now=self._now() / self._time_scale)
        if fault is not None:
            self._stats.faults_injected[f"callback:{fault.kind_name}"] += 1
        if fault is not None and fault.kind == "lose":
            self._stats.callbacks_lost += 1
            logger.debug("emulator: callback for %s lost by a fault", task_id)
            return
        copies = 2 if fault is not None and fault.kind == "duplicate" else 1
        task = asyncio.get_running_loop().create_task(self._deliver(url, task_id, body, copies))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every delivery has ended (delivered or given up)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the deliveries in progress and close the session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, url: str, task_id: str, body: dict[str, Any], copies: int) -> None:
        payload = json.dumps(body).encode("utf-8")
        for copy in range(copies):
            self._stats.callbacks_sent += 1
            for attempt in range(1, MAX_RETRIES + 2):
                status = await self._attempt(url, task_id, payload, attempt, duplicate=copy > 0)
                if status is not None and 200 <= status < 300:
                    self._stats.callbacks_delivered += 1
                    break
                if not _retried(status):
                    self._stats.callbacks_refused += 1
                    logger.info(
                        "emulator: callback for %s answered %d; not retried", task_id, status
                    )
                    break
                if attempt > MAX_RETRIES:
                    self._stats.callbacks_given_up += 1
                    logger.info(
                        "emulator: callback for %s given up after %d attempts", task_id, attempt
                    )
                    break
                await self._sleep(retry_delay(attempt, self._rng) * self._time_scale)

    def _headers(self, task_id: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._signing_key is not None:
            timestamp = str(int(self._wall_clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign_callback(task_id, timestamp, self._signing_key)
        return headers

    async def _attempt(
        self, url: str, task_id: str, payload: bytes, attempt: int, *, duplicate: bool
    ) -> int | None:
        assert self._session is not None  # noqa: S101 - start() runs before any task exists
        self._stats.callback_attempts += 1
        started = self._now()
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(
                url, data=payload, headers=self._headers(task_id)
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = CallbackAttempt(
            task_id=task_id,
            url=url,
            attempt=attempt,
            at=started,
            status_code=status,
            error=error,
            duplicate=duplicate,
        )
        self._stats.callback_log.append(record)
        logger.debug("emulator: callback %s attempt %d -> %s", task_id, attempt, status or error)
        return status
