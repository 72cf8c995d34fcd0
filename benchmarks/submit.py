"""Submit throughput: N submits through the ``Orchestrator`` vs a bare aiohttp loop.

Ours queues N ``GenerationRequest``s in one orchestrator (``max_in_flight=N``, first poll
an hour away, so only submits are on the wire) and times until every job is in flight:
input validation, job bookkeeping, events, the submit gate, the transport and the model
included. The bare side POSTs the same JSON bodies with C workers over a session with the
client's pool settings; C is the client's pool size (100), the concurrency the
orchestrator's submits get. Both submit the same kind of job to the same emulator.

``submit_client_cpu_ratio`` (informative) splits the figure: the same N submits through
``VidgoClient.submit`` with the same C workers, against the same bare loop, interleaved on
their own. It is the client's share (validation, the envelope, the ``Task``); what
``submit_cpu_ratio`` adds on top is the orchestrator's per-job bookkeeping (the job, its
events, the ``max_in_flight`` token, the gate, arming its poll, and letting it go at exit).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from vidgo_async import GenerationRequest, JobEvent, Orchestrator, PollPolicy, VidgoClient

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

# The client's connection pool size: the concurrency an orchestrator's submits get.
CONCURRENCY = 100
# No poll is due while the submits are measured.
_NO_POLLING = PollPolicy(initial_delay=3600.0, timeout=None)


async def run(emu: EmulatorProcess, *, jobs: int, reps: int) -> dict[str, float]:
    """Measure and return the submit figures."""
    bodies: list[dict[str, Any]] = [
        {"model": "seedance-2", "input": seedance_input(prompt_for(3600, tag=f"s{i}"))}
        for i in range(jobs)
    ]
    url = emu.base_url + "/api/generate/submit"
    async with VidgoClient(emu.api_key, base_url=emu.base_url) as client, bare_session() as session:
        headers = bare_headers(emu.api_key, with_body=True)

        async def bare_one(index: int) -> None:
            data = json.dumps(bodies[index]).encode()
            async with session.post(
                url, data=data, headers=headers, allow_redirects=False
            ) as response:
                body = json.loads(await response.read())
            if response.status != 200 or not body["data"]["task_id"]:
                raise RuntimeError(f"unexpected answer {response.status}: {body!r}")

        async def ours_batch(count: int) -> None:
            done = asyncio.Event()
            seen = {"submitted": 0, "other": 0}

            def on_event(event: JobEvent) -> None:
                if event.kind == "submitted":
                    seen["submitted"] += 1
                elif event.kind in ("failed", "unknown", "timeout"):
                    seen["other"] += 1
                if seen["submitted"] + seen["other"] == count:
                    done.set()

            async with Orchestrator(
                client, max_in_flight=count, poll=_NO_POLLING, on_event=on_event
            ) as orch:
                for body in bodies[:count]:
                    orch.start(GenerationRequest(body["model"], body["input"]))
                await done.wait()
                # Leaving the block stops the orchestrator; the jobs stay "in flight".
            if seen["other"]:
                raise RuntimeError(f"{seen['other']} submits failed in the benchmark")

        async def client_one(index: int) -> None:
            body = bodies[index]
            await client.submit(body["model"], body["input"])

        async def ours() -> Measure:
            return await timed(lambda: ours_batch(jobs))

        async def client_only() -> Measure:
            return await timed(lambda: _workers(jobs, CONCURRENCY, client_one))

        async def bare() -> Measure:
            return await timed(lambda: _workers(jobs, CONCURRENCY, bare_one))

        await ours_batch(min(jobs, 200))
        await _workers(min(jobs, 200), CONCURRENCY, client_one)
        await _workers(min(jobs, 200), CONCURRENCY, bare_one)
        await emu.acall("forget")
        pairs = await interleaved(ours, bare, reps)
        await emu.acall("forget")
        client_pairs = await interleaved(client_only, bare, reps)
    return {
        "submit_ratio": median_ratio([(b.wall, a.wall) for a, b in pairs]),
        "submit_cpu_ratio": median_ratio([(a.cpu, b.cpu) for a, b in pairs]),
        "submit_client_cpu_ratio": median_ratio([(a.cpu, b.cpu) for a, b in client_pairs]),
        "submit_cpu_us_per_job": 1e6 * median([a.cpu for a, _ in pairs]) / jobs,
        "submit_bare_cpu_us_per_job": 1e6 * median([b.cpu for _, b in pairs]) / jobs,
        "submit_per_s": jobs / median([a.wall for a, _ in pairs]),
        "submit_bare_per_s": jobs / median([b.wall for _, b in pairs]),
        "submit_jobs": jobs,
        "submit_concurrency": CONCURRENCY,
    }
