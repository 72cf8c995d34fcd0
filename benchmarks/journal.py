"""The journal's cost: jobs per second through an orchestrator with the journal vs without.

Both sides run the same short jobs (``JOB_SECONDS`` emulated, first poll aimed at the end)
through one ``Orchestrator`` at ``max_in_flight`` C, against the same emulator; ours adds a
``JournalRecorder`` on a fresh SQLite journal in a temporary folder (WAL,
``synchronous=FULL``: every intent, task id and outcome on disk before it counts). The
figure is the throughput ratio journal / no journal (wall clock, higher is better),
interleaved, medians; C = 8 and C = 200.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from vidgo_async import GenerationRequest, JournalRecorder, Orchestrator, PollPolicy, VidgoClient
from vidgo_async._journal import Journal

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

# Emulated seconds per job (real: x the emulator's time scale) and the poll policy's scale.
JOB_SECONDS = 1.0


def _requests(count: int, tag: str) -> list[GenerationRequest]:
    return [
        GenerationRequest("seedance-2", seedance_input(prompt_for(JOB_SECONDS, tag=f"{tag}{i}")))
        for i in range(count)
    ]


async def _batch(
    client: VidgoClient, count: int, concurrency: int, tag: str, folder: Path | None
) -> None:
    policy = PollPolicy(expected_duration=(JOB_SECONDS, JOB_SECONDS)).scaled(0.01)
    requests = _requests(count, tag)
    if folder is None:
        async with Orchestrator(client, max_in_flight=concurrency, poll=policy) as orch:
            results = await orch.run(requests)
    else:
        async with Journal(folder / f"{tag}.sqlite") as journal:
            recorder = JournalRecorder(journal)
            async with Orchestrator(
                client, max_in_flight=concurrency, poll=policy, journal=recorder
            ) as orch:
                results = await orch.run(requests)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} journal-benchmark jobs failed: {failed[0].error!r}")


async def run(
    emu: EmulatorProcess, *, jobs: int, concurrencies: tuple[int, ...], reps: int
) -> dict[str, float]:
    """Measure the journal's throughput ratio at each concurrency (``emu`` at scale 0.01)."""
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vidgo-bench-journal-") as tmp:
        folder = Path(tmp)
        async with VidgoClient(emu.api_key, base_url=emu.base_url) as client:
            runs = itertools.count()
            for concurrency in concurrencies:
                count = max(jobs, 2 * concurrency)

                async def with_journal(c: int = concurrency, n: int = count) -> Measure:
                    await emu.acall("forget")
                    tag = f"j{c}-{next(runs)}-"
                    return await timed(lambda: _batch(client, n, c, tag, folder))

                async def without(c: int = concurrency, n: int = count) -> Measure:
                    await emu.acall("forget")
                    tag = f"n{c}-{next(runs)}-"
                    return await timed(lambda: _batch(client, n, c, tag, None))

                await without()  # warm the pool and the emulator
                pairs = await interleaved(with_journal, without, reps)
                # Throughput ratio = (n / wall ours) / (n / wall bare) = wall bare / wall ours.
                ratio = median_ratio([(b.wall, a.wall) for a, b in pairs])
                key = "journal_ratio" if concurrency == max(concurrencies) else None
                figures[f"journal_ratio_{concurrency}"] = ratio
                if key:
                    figures[key] = ratio
                figures[f"journal_jobs_per_s_{concurrency}"] = count / median(
                    [a.wall for a, _ in pairs]
                )
                figures[f"journal_bare_jobs_per_s_{concurrency}"] = count / median(
                    [b.wall for _, b in pairs]
                )
    return figures
