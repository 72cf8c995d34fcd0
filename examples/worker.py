"""An async worker: consume generation jobs from a queue with bounded concurrency.

Producers put prompts on an ``asyncio.Queue``; a fixed pool of consumers hands each to one
shared orchestrator, which bounds the jobs in flight and paces the API for all of them.

Run: ``python examples/worker.py`` (emulator) or with ``VIDGO_API_KEY`` set (real API).
"""

from __future__ import annotations

import asyncio

from _common import vidgo_client

from vidgo_async import Orchestrator, Task, VidgoError

STOP = None


async def consume(
    queue: asyncio.Queue[str | None], orchestrator: Orchestrator, done: dict[str, Task | str]
) -> None:
    """Take prompts until the STOP marker; record each task (or the error text)."""
    while (prompt := await queue.get()) is not STOP:
        try:
            done[prompt] = await orchestrator.generate(
                "seedance-2", {"prompt": prompt, "duration": 5, "resolution": "720p"}
            )
        except VidgoError as exc:  # one failed job never stops the worker
            done[prompt] = f"{type(exc).__name__}: {exc}"
        finally:
            queue.task_done()
    queue.task_done()


async def main(prompts: list[str] | None = None, consumers: int = 3) -> dict[str, Task | str]:
    """Feed ``prompts`` through ``consumers`` workers; return what happened to each."""
    prompts = prompts or [f"A lighthouse on a cliff in a storm, take {n}" for n in range(8)]
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=consumers * 2)
    done: dict[str, Task | str] = {}
    async with vidgo_client() as client, Orchestrator(client, max_in_flight=consumers) as orch:
        workers = [asyncio.create_task(consume(queue, orch, done)) for _ in range(consumers)]
        try:
            for prompt in prompts:
                await queue.put(prompt)
            for _ in workers:
                await queue.put(STOP)
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
    for prompt, outcome in done.items():
        print(f"{prompt[:40]}: {outcome.task_id if isinstance(outcome, Task) else outcome}")
    return done


if __name__ == "__main__":
    asyncio.run(main())
