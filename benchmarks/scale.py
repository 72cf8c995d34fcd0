"""Scale: N jobs in flight at once in one orchestrator, in a fresh client process.

Each run is its own process (``python -m benchmarks.scale N ...``), so its peak RSS
(``VmHWM``) is the orchestrator's and nothing else's. All N jobs are queued at once with
``max_in_flight=N`` and a status-rate cap; each job lasts long enough that every submit
lands while the first jobs still run, so all N are in flight together: the emulator's
``peak_in_flight`` shows it, and a run where it stays below N fails the benchmark. CPU
seconds per job (``time.process_time`` from the first ``start`` to the last result) is
compared with a smaller run made the same way; the emulator samples its status counter to
find the busiest 1 s window, which must stay under the cap.

Detection lag: each job's end as the emulator scheduled it vs the moment the client saw it
(``time.monotonic()`` on both sides), as a fraction of the job's length; mean and p99.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import os
import pstats
import subprocess
import sys
import time
from typing import Any

from ._support import ROOT, EmulatorProcess, median, peak_rss_mb, prompt_for, seedance_input

# Set to a file name to profile a scale child (cProfile, top 30 by own time, to that file).
PROFILE_ENV = "VIDGO_BENCH_PROFILE"
# Emulated seconds per job: a "60 s" job lasts 60 x factor real seconds.
JOB_SECONDS = 60.0


async def _child(
    base_url: str, api_key: str, jobs: int, factor: float, status_rate: float, seconds: float
) -> dict[str, Any]:
    from vidgo_async import GenerationRequest, JobEvent, Orchestrator, PollPolicy, VidgoClient

    requests = [
        GenerationRequest("seedance-2", seedance_input(prompt_for(seconds, tag=f"x{i}")))
        for i in range(jobs)
    ]
    policy = PollPolicy().scaled(factor)
    seen: dict[str, float] = {}

    def on_event(event: JobEvent) -> None:
        if event.kind in ("finished", "failed") and event.task_id is not None:
            seen[event.task_id] = time.monotonic()

    rss_before = peak_rss_mb()
    async with VidgoClient(api_key, base_url=base_url) as client:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        async with Orchestrator(
            client, max_in_flight=jobs, status_rate=status_rate, poll=policy, on_event=on_event
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
        "seen": seen,
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
    seen: dict[str, float] = figures.pop("seen")
    ends = emu.call("ends", ids=list(seen))
    length = seconds * factor
    lags = sorted(max(0.0, at - ends[task_id]) / length for task_id, at in seen.items())
    figures["lag_mean_fraction"] = sum(lags) / len(lags)
    figures["lag_p99_fraction"] = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
    figures["lag_max_fraction"] = lags[-1]
    stats = emu.call("stats")
    figures["peak_in_flight"] = stats["peak_in_flight"]
    figures["status_total"] = stats["status_total"]
    figures["peak_status_per_s"] = emu.call("rate")["peak_status_per_s"]
    if figures["ok"] != jobs:
        raise RuntimeError(f"only {figures['ok']} of {jobs} jobs finished in the scale run")
    if figures["peak_in_flight"] < jobs:
        raise RuntimeError(
            f"only {figures['peak_in_flight']} of {jobs} jobs were in flight at once: make "
            "the jobs longer (seconds x factor) than submitting all of them takes"
        )
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
    prefix: str = "scale",
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
    p = prefix
    rss_key = "rss_mb_scale" if prefix == "scale" else f"rss_mb_{prefix}"
    return {
        f"{p}_jobs": jobs,
        f"{p}_peak_in_flight": min(b["peak_in_flight"] for b in big_runs),
        f"{p}_lag_mean_fraction": median([b["lag_mean_fraction"] for b in big_runs]),
        f"{p}_lag_p99_fraction": median([b["lag_p99_fraction"] for b in big_runs]),
        f"{p}_lag_max_fraction": max(b["lag_max_fraction"] for b in big_runs),
        rss_key: median([b["rss_mb"] for b in big_runs]),
        f"{p}_cpu_per_job_ratio": median(ratios),
        f"{p}_small_jobs": small,
        f"{p}_cpu_ms_per_job": 1000 * median([b["cpu_per_job"] for b in big_runs]),
        f"{p}_small_cpu_ms_per_job": 1000 * median([s["cpu_per_job"] for s in small_runs]),
        f"{p}_small_lag_mean_fraction": median([s["lag_mean_fraction"] for s in small_runs]),
        f"{p}_rss_mb_small": median([s["rss_mb"] for s in small_runs]),
        f"{p}_polls_per_job": median([b["polls"] / jobs for b in big_runs]),
        f"{p}_peak_status_per_s": max(b["peak_status_per_s"] for b in big_runs),
        f"{p}_status_rate_cap": status_rate,
        f"{p}_job_seconds": seconds * factor,
        f"{p}_wall_s": median([b["wall"] for b in big_runs]),
        f"{p}_reps": reps,
    }


def run_once(
    emu: EmulatorProcess,
    *,
    jobs: int,
    factor: float,
    status_rate: float,
    seconds: float,
    prefix: str,
) -> dict[str, float]:
    """Measure ``jobs`` once (a size too large to repeat); the keys say it was one run."""
    b = run_child(emu, jobs, factor, status_rate, seconds)
    return {
        f"{prefix}_jobs": jobs,
        f"{prefix}_peak_in_flight": b["peak_in_flight"],
        f"{prefix}_lag_mean_fraction": b["lag_mean_fraction"],
        f"{prefix}_lag_p99_fraction": b["lag_p99_fraction"],
        f"{prefix}_lag_max_fraction": b["lag_max_fraction"],
        f"rss_mb_{prefix}": b["rss_mb"],
        f"{prefix}_cpu_ms_per_job": 1000 * b["cpu_per_job"],
        f"{prefix}_polls_per_job": b["polls"] / jobs,
        f"{prefix}_peak_status_per_s": b["peak_status_per_s"],
        f"{prefix}_status_rate_cap": status_rate,
        f"{prefix}_job_seconds": seconds * factor,
        f"{prefix}_wall_s": b["wall"],
        f"{prefix}_reps": 1,
    }


def main(argv: list[str]) -> int:
    """The child: run one measurement and print its figures as JSON."""
    base_url, api_key, jobs, factor, status_rate, seconds = argv
    logging.basicConfig(level=logging.ERROR)
    child = _child(base_url, api_key, int(jobs), float(factor), float(status_rate), float(seconds))
    profile_to = os.environ.get(PROFILE_ENV)
    if profile_to:
        profiler = cProfile.Profile()
        figures = profiler.runcall(asyncio.run, child)
        with open(profile_to, "w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    else:
        figures = asyncio.run(child)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
