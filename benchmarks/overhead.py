"""Client overhead: N status queries through ``VidgoClient.get_task`` vs a bare aiohttp loop.

Both sides use the same pool settings (one ``aiohttp.ClientSession`` with a 100-connection
``TCPConnector`` and the client's default timeouts), the same headers, the same C workers
taking the next query from a shared counter, against the same tasks of an emulator in
another process. The bare side only reads the body and ``json.loads`` it: the physical
floor of this stack. Ours also checks the envelope, maps errors, counts retry-budget
tokens and builds a frozen ``Task``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from vidgo_async import VidgoClient
from vidgo_async._config import Timeout
from vidgo_async._http import USER_AGENT, client_timeout

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

TASKS = 32


async def _workers(count: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> None:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            await one(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def bare_session() -> aiohttp.ClientSession:
    """A session with exactly the client's pool and timeout settings."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, enable_cleanup_closed=False),
        timeout=client_timeout(Timeout()),
    )


def bare_headers(api_key: str, *, with_body: bool = False) -> dict[str, str]:
    """The headers the client sends."""
    headers = {
        "Authorization": f"Bearer {api_key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }
    if with_body:
        headers["Content-Type"] = "application/json"
    return headers


async def run(
    emu: EmulatorProcess, *, requests: int, concurrency: int, reps: int
) -> dict[str, float]:
    """Measure and return the overhead figures."""
    base = emu.base_url
    async with VidgoClient(emu.api_key, base_url=base) as client, bare_session() as session:
        ids = [
            (
                await client.submit("seedance-2", seedance_input(prompt_for(3600, tag=str(i))))
            ).task_id
            for i in range(TASKS)
        ]
        headers = bare_headers(emu.api_key)
        urls = [f"{base}/api/generate/status/{task_id}" for task_id in ids]

        async def ours_one(index: int) -> None:
            await client.get_task(ids[index % TASKS])

        async def bare_one(index: int) -> None:
            async with session.get(
                urls[index % TASKS], headers=headers, allow_redirects=False
            ) as response:
                body = json.loads(await response.read())
            if response.status != 200 or body.get("code") != 200:
                raise RuntimeError(f"unexpected answer {response.status}: {body!r}")

        async def ours() -> Measure:
            return await timed(lambda: _workers(requests, concurrency, ours_one))

        async def bare() -> Measure:
            return await timed(lambda: _workers(requests, concurrency, bare_one))

        # Warm both pools (connections, imports, caches) before measuring.
        await _workers(min(requests, 4 * concurrency), concurrency, ours_one)
        await _workers(min(requests, 4 * concurrency), concurrency, bare_one)
        pairs = await interleaved(ours, bare, reps)
    return {
        "overhead_ratio": median_ratio([(a.cpu, b.cpu) for a, b in pairs]),
        "overhead_wall_ratio": median_ratio([(a.wall, b.wall) for a, b in pairs]),
        "overhead_cpu_us_per_request": 1e6 * median([a.cpu for a, _ in pairs]) / requests,
        "overhead_bare_cpu_us_per_request": 1e6 * median([b.cpu for _, b in pairs]) / requests,
        "overhead_requests": requests,
        "overhead_concurrency": concurrency,
    }
