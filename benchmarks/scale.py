"""Scale: N jobs in flight at once in one orchestrator, in a fresh client process.

Each run is its own process (``python -m benchmarks.scale N ...``), so its peak RSS
(``VmHWM``) is the orchestrator's and nothing else's. All N jobs are queued at once with
``max_in_flight=N`` and a status-rate cap; each job lasts long enough that every submit
lands while the first jobs still run, so all N are in flight together (the emulator's
``peak_in_flight`` shows it). CPU seconds per job (``time.process_time`` from the first
``start`` to the last result) is compared with a 100-job run made the same way; the
emulator samples its status counter to find the busiest 1 s window, which must stay under
the cap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

from ._support import ROOT, EmulatorProcess, median, peak_rss_mb, prompt_for, seedance_input

# Emulated seconds per job: a "60 s" job lasts 60 x factor real seconds.
JOB_SECONDS = 60.0


async def _child(
    base_url: str, api_key: str, jobs: int, factor: float, status_rate: float, seconds: float
) -> dict[str, Any]:
    from vidgo_async import GenerationRequest, Orchestrator, PollPolicy, VidgoClient

    requests = [
        GenerationRequest("seedance-2", seedance_input(prompt_for(seconds, tag=f"x{i}")))
        for i in range(jobs)
    ]
    policy = PollPolicy().scaled(factor)
    rss_before = peak_rss_mb()
    async with VidgoClient(api_key, base_url=base_url) as client:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        async with Orchestrator(
            client, max_in_flight=jobs, status_rate=status_rate, poll=policy
        ) as orch:
            results = await orch.run(requests)
            polls = orch.polls
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ok = sum(1 for r in results if r.ok)
    return {
        "jobs": jobs,
        "ok": ok,
        "cpu": cpu,
        "wall": wall,
        "cpu_per_job": cpu / jobs,
        "polls": polls,
        "rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
    }


def run_child(
    emu: EmulatorProcess, jobs: int, factor: float, status_rate: float, seconds: float = JOB_SECONDS
) -> dict[str, Any]:
    """Run one scale measurement in a fresh process and return its figures."""
    emu.call("forget")
    emu.call("reset")
    out = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
            emu.base_url,
            emu.api_key,
            str(jobs),
            str(factor),
            str(status_rate),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the scale run of {jobs} jobs failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    stats = emu.call("stats")
    figures["peak_in_flight"] = stats["peak_in_flight"]
    figures["status_total"] = stats["status_total"]
    figures["peak_status_per_s"] = emu.call("rate")["peak_status_per_s"]
    if figures["ok"] != jobs:
        raise RuntimeError(f"only {figures['ok']} of {jobs} jobs finished in the scale run")
    return figures


def run(
    emu: EmulatorProcess,
    *,
    jobs: int,
    small: int,
    factor: float,
    status_rate: float,
    seconds: float,
    reps: int,
) -> dict[str, float]:
    """Measure ``jobs`` vs ``small`` jobs, interleaved ``reps`` times (``emu`` at ``factor``)."""
    big_runs: list[dict[str, Any]] = []
    small_runs: list[dict[str, Any]] = []
    for rep in range(reps):
        order = [(jobs, big_runs), (small, small_runs)]
        if rep % 2:
            order.reverse()
        for count, sink in order:
            sink.append(run_child(emu, count, factor, status_rate, seconds))
    ratios = [
        b["cpu_per_job"] / s["cpu_per_job"] for b, s in zip(big_runs, small_runs, strict=True)
    ]
    return {
        "rss_mb_10k": median([b["rss_mb"] for b in big_runs]),
        "cpu_per_job_ratio_10k": median(ratios),
        "scale_jobs": jobs,
        "scale_small_jobs": small,
        "scale_cpu_ms_per_job": 1000 * median([b["cpu_per_job"] for b in big_runs]),
        "scale_small_cpu_ms_per_job": 1000 * median([s["cpu_per_job"] for s in small_runs]),
        "scale_rss_mb_small": median([s["rss_mb"] for s in small_runs]),
        "scale_peak_in_flight": min(b["peak_in_flight"] for b in big_runs),
        "scale_polls_per_job": median([b["polls"] / jobs for b in big_runs]),
        "scale_small_polls_per_job": median([s["polls"] / small for s in small_runs]),
        "scale_cpu_per_poll_ratio": median(
            [
                (b["cpu"] / b["polls"]) / (s["cpu"] / s["polls"])
                for b, s in zip(big_runs, small_runs, strict=True)
            ]
        ),
        "scale_peak_status_per_s": max(b["peak_status_per_s"] for b in big_runs),
        "scale_status_rate_cap": status_rate,
        "scale_wall_s": median([b["wall"] for b in big_runs]),
    }


def main(argv: list[str]) -> int:
    """The child: run one measurement and print its figures as JSON."""
    base_url, api_key, jobs, factor, status_rate, seconds = argv
    logging.basicConfig(level=logging.ERROR)
    figures = asyncio.run(
        _child(base_url, api_key, int(jobs), float(factor), float(status_rate), float(seconds))
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
