"""Deliver task callbacks the way Vidgo documents it.

One POST of the status-shaped body with ``Content-Type: application/json`` and no
signature; a non-2xx answer, or none within the timeout (10 s), is retried 1, 2 and 4 s
after the failure, then given up. All delays are multiplied by the emulator's time scale.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from ._faults import FaultPlan
from ._stats import CallbackAttempt, EmulatorStats

__all__ = ["RETRY_DELAYS", "CallbackSender"]

logger = logging.getLogger("vidgo_async")

RETRY_DELAYS = (1.0, 2.0, 4.0)  # emulated seconds after each failed attempt
RECEIVER_TIMEOUT = 10.0  # emulated seconds a receiver has to answer


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
    ) -> None:
        self._stats = stats
        self._faults = faults
        self._time_scale = time_scale
        self._timeout = timeout
        self._now = now
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
            for attempt in range(1, len(RETRY_DELAYS) + 2):
                if await self._attempt(url, task_id, payload, attempt, duplicate=copy > 0):
                    self._stats.callbacks_delivered += 1
                    break
                if attempt > len(RETRY_DELAYS):
                    self._stats.callbacks_given_up += 1
                    logger.info(
                        "emulator: callback for %s given up after %d attempts", task_id, attempt
                    )
                    break
                await asyncio.sleep(RETRY_DELAYS[attempt - 1] * self._time_scale)

    async def _attempt(
        self, url: str, task_id: str, payload: bytes, attempt: int, *, duplicate: bool
    ) -> bool:
        assert self._session is not None  # noqa: S101 - start() runs before any task exists
        self._stats.callback_attempts += 1
        started = self._now()
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(
                url, data=payload, headers={"Content-Type": "application/json"}
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
        return record.delivered
