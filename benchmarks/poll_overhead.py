"""The orchestrator's poll path vs bare aiohttp: CPU per status request.

Ours: one ``Orchestrator`` follows ``TASKS`` long tasks (``attach``) with a policy that asks
again at once (no waiting between polls), through its scheduler's worker pool of
``concurrency`` workers: the scheduler, the one decision table (``PollTracker``), the job
bookkeeping and the client's status query, per request. The CPU of this process is read
between the ``warm``-th and the ``warm + requests``-th poll. The bare side issues the same
number of status GETs with the same number of workers over a session with the client's pool
settings, reading and ``json.loads``-ing each body. Interleaved, medians of the ratios.

The tasks are hour-long, so nearly every answer is the same as the task's previous one,
and the poller's status reader hands those back without decoding them again (what a poll
of a queued task, or of a running one between progress steps, costs). The
``poll_overhead_changed_*`` keys measure the same loop with every answer decoded, read and
structured anew (the reader bypassed: ``query_status`` per poll), the cost of an answer
that changed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from functools import partial

from vidgo_async import GenerationRequest, Orchestrator, PollPolicy, StatusAnswer, VidgoClient

from ._support import (
    EmulatorProcess,
    Measure,
    interleaved,
    median,
    median_ratio,
    prompt_for,
    seedance_input,
    timed,
)
from .overhead import _workers, bare_headers, bare_session

TASKS = 64
# Ask again at once, forever: only the poll path's own cost spaces the requests.
_AT_ONCE = PollPolicy(
    initial_delay=0.0,
    min_interval=0.0,
    max_interval=1e-6,
    multiplier=1.0,
    jitter=0.0,
    timeout=None,
    use_progress=False,
    expected_duration=(1e-6, 1e-6),
)


async def _until(reached: Callable[[], bool]) -> None:
    # The poll counter has no event to wait on: sample it (200 Hz, a negligible cost).
    while not reached():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def _ours(
    client: VidgoClient,
    tasks: list[str],
    *,
    requests: int,
    warm: int,
    concurrency: int,
    reuse: bool = True,
) -> Measure:
    if not reuse:

        def plain(task_id: str) -> Callable[[], Awaitable[StatusAnswer]]:
            # Every poll a plain query: its answer decoded and structured as if it had changed.
            return partial(client.query_status, task_id)

        client.status_reader = plain  # type: ignore[assignment,method-assign]
    try:
        return await _follow(client, tasks, requests=requests, warm=warm, concurrency=concurrency)
    finally:
        if not reuse:
            del client.status_reader


async def _follow(
    client: VidgoClient, tasks: list[str], *, requests: int, warm: int, concurrency: int
) -> Measure:
    inputs = [seedance_input(prompt_for(3600, tag=f"p{i}")) for i in range(len(tasks))]
    async with Orchestrator(
        client, max_in_flight=len(tasks), poll=_AT_ONCE, max_concurrent_polls=concurrency
    ) as orch:
        for task_id, data in zip(tasks, inputs, strict=True):
            task = await client.get_task(task_id)
            orch.attach(GenerationRequest("seedance-2", data), task)
        await _until(lambda: orch.polls >= warm)
        start_polls = orch.polls
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await _until(lambda: orch.polls >= start_polls + requests)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        done = orch.polls - start_polls
    # Per request: a few more polls than asked may land before the last check.
    return Measure(cpu * requests / done, wall * requests / done)


async def run(
    emu: EmulatorProcess, *, requests: int, concurrency: int, reps: int
) -> dict[str, float]:
    """Measure and return the poll-path overhead figures."""
    base = emu.base_url
    async with VidgoClient(emu.api_key, base_url=base) as client, bare_session() as session:
        tasks = [
            (
                await client.submit("seedance-2", seedance_input(prompt_for(3600, tag=f"q{i}")))
            ).task_id
            for i in range(TASKS)
        ]
        headers = bare_headers(emu.api_key)
        urls = [f"{base}/api/generate/status/{task_id}" for task_id in tasks]

        async def bare_one(index: int) -> None:
            async with session.get(
                urls[index % TASKS], headers=headers, allow_redirects=False
            ) as response:
                body = json.loads(await response.read())
            if response.status != 200 or body.get("code") != 200:
                raise RuntimeError(f"unexpected answer {response.status}: {body!r}")

        async def ours() -> Measure:
            return await _ours(
                client, tasks, requests=requests, warm=2 * TASKS, concurrency=concurrency
            )

        async def ours_changed() -> Measure:
            return await _ours(
                client,
                tasks,
                requests=requests,
                warm=2 * TASKS,
                concurrency=concurrency,
                reuse=False,
            )

        async def bare() -> Measure:
            return await timed(lambda: _workers(requests, concurrency, bare_one))

        await _workers(min(requests, 4 * concurrency), concurrency, bare_one)
        pairs = await interleaved(ours, bare, reps)
        changed = await interleaved(ours_changed, bare, reps)
    return {
        "poll_overhead_ratio": median_ratio([(a.cpu, b.cpu) for a, b in pairs]),
        "poll_overhead_ratio_min": min(a.cpu / b.cpu for a, b in pairs),
        "poll_overhead_ratio_max": max(a.cpu / b.cpu for a, b in pairs),
        "poll_overhead_cpu_us_per_request": 1e6 * median([a.cpu for a, _ in pairs]) / requests,
        "poll_overhead_bare_cpu_us_per_request": 1e6 * median([b.cpu for _, b in pairs]) / requests,
        "poll_overhead_changed_ratio": median_ratio([(a.cpu, b.cpu) for a, b in changed]),
        "poll_overhead_changed_cpu_us_per_request": (
            1e6 * median([a.cpu for a, _ in changed]) / requests
        ),
    }
