"""Scale: N jobs in flight at once in one orchestrator, in a fresh client process.

The jobs last what video jobs last: spread evenly over the documented 90-300 s
(``DEFAULT_EXPECTED_DURATION``, from status.mdx) times the emulator's time scale, so a
batch's jobs end over minutes as a real batch's do; they are submitted longest first, so
all N are in flight together unless submitting them took longer than the longest job. One
*burst* run keeps every job the same length instead: all N end within the few seconds it
took to submit them, and no client can see N ends sooner than ``N / status rate`` seconds;
the lag that floor forces is reported beside the burst's (``scale_burst_floor_*``).

Time is compressed by the emulator's ``time_scale`` (``factor``): jobs last ``factor`` times
their emulated seconds and the poll policy is ``PollPolicy().scaled(factor)``. The status
rate cap is a rate of the real world (what a user would configure against Vidgo), so the
client is given ``status_rate / factor`` in compressed time: polls per job and per second
of the job stay what they would be, and the cap binds exactly as hard as it would for real
(a compressed run with an uncompressed cap would ask 1 / factor times more of it). The
keys give both: ``*_status_rate_cap`` (real) and ``*_status_rate_cap_compressed``.

Each run is its own process (``python -m benchmarks.scale N ...``), so its peak RSS
(``VmHWM``) is the orchestrator's and nothing else's. All N jobs are queued at once with
``max_in_flight=N`` and a status-rate cap; each job lasts long enough that every submit
lands while the first jobs still run, so all N are in flight together: the emulator's
``peak_in_flight`` shows it, and a run where it stays below N fails the benchmark. CPU
seconds per job (``time.process_time`` from the first ``start`` to the last result) is
compared with a smaller run made the same way; the emulator samples its status counter to
find the busiest 1 s window, reported beside the cap (a gate may burst 5 % over it).

Detection lag: each job's end as the emulator scheduled it vs the moment the client saw it
(``time.monotonic()`` on both sides), as a fraction of that job's own length; mean and p99.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import math
import os
import pstats
import subprocess
import sys
import time
from typing import Any

from vidgo_async._config import DEFAULT_EXPECTED_DURATION

from ._support import ROOT, EmulatorProcess, median, peak_rss_mb, prompt_for, seedance_input

# Set to a file name to profile a scale child (cProfile, top 30 by own time, to that file).
PROFILE_ENV = "VIDGO_BENCH_PROFILE"
# Emulated seconds per job: (shortest, longest); a "90 s" job lasts 90 x factor real seconds.
WINDOW = DEFAULT_EXPECTED_DURATION
# The golden ratio's fractional part: job i's place in the window is (i x this) mod 1, so
# every prefix of the jobs covers the window evenly (a small run has the big run's shape).
_SPREAD = 0.6180339887498949


def job_seconds(index: int, window: tuple[float, float]) -> float:
    """Emulated seconds of job ``index``: every prefix of the jobs spreads evenly over ``window``."""
    low, high = window
    return low + (high - low) * ((index * _SPREAD) % 1.0)


async def _child(
    base_url: str,
    api_key: str,
    jobs: int,
    factor: float,
    status_rate: float,
    window: tuple[float, float],
) -> dict[str, Any]:
    from vidgo_async import GenerationRequest, JobEvent, Orchestrator, PollPolicy, VidgoClient

    # The longest first: every job is still running when the last submit lands unless
    # submitting them took about as long as the longest job (checked by the caller).
    lengths = sorted((job_seconds(i, window) for i in range(jobs)), reverse=True)
    requests = [
        GenerationRequest("seedance-2", seedance_input(prompt_for(seconds, tag=f"x{i}")))
        for i, seconds in enumerate(lengths)
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


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def floor_lags(spans: list[list[float]], rate: float) -> list[float]:
    """The lags (sorted, fractions of each job) of a client that cannot do better.

    It knows every job's end and polls each job once, right at its end, at most ``rate``
    times a second: when more jobs end at once than the rate allows, the later ones wait
    their turn. ``spans`` holds each job's ``[end, length]``.
    """
    gap = 1.0 / rate
    free = -math.inf
    lags: list[float] = []
    for end, length in sorted(spans):
        at = end if end > free else free
        free = at + gap
        lags.append((at - end) / length)
    lags.sort()
    return lags


def run_child(
    emu: EmulatorProcess,
    jobs: int,
    factor: float,
    status_rate: float,
    window: tuple[float, float] = WINDOW,
) -> dict[str, Any]:
    """Run one scale measurement in a fresh process and return its figures.

    ``window`` is the (shortest, longest) emulated seconds of the jobs; equal bounds make
    every job that long (a burst).
    """
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
            str(status_rate / factor),
            str(window[0]),
            str(window[1]),
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
    spans = emu.call("spans", ids=list(seen))
    lags = sorted(
        max(0.0, at - spans[task_id][0]) / spans[task_id][1] for task_id, at in seen.items()
    )
    figures["lag_mean_fraction"] = sum(lags) / len(lags)
    figures["lag_p99_fraction"] = _p99(lags)
    figures["lag_max_fraction"] = lags[-1]
    floor = floor_lags(list(spans.values()), status_rate / factor)
    figures["floor_lag_mean_fraction"] = sum(floor) / len(floor)
    figures["floor_lag_p99_fraction"] = _p99(floor)
    stats = emu.call("stats")
    figures["peak_in_flight"] = stats["peak_in_flight"]
    figures["status_total"] = stats["status_total"]
    # The busiest 1 s window, in real-world requests per second (see the docstring).
    figures["peak_status_per_s"] = emu.call("rate")["peak_status_per_s"] * factor
    if figures["ok"] != jobs:
        raise RuntimeError(f"only {figures['ok']} of {jobs} jobs finished in the scale run")
    if figures["peak_in_flight"] < jobs:
        raise RuntimeError(
            f"only {figures['peak_in_flight']} of {jobs} jobs were in flight at once: make "
            "the jobs longer (seconds x factor): submitting all of them took about as long"
        )
    return figures


def run(
    emu: EmulatorProcess,
    *,
    jobs: int,
    small: int,
    factor: float,
    status_rate: float,
    window: tuple[float, float] = WINDOW,
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
            sink.append(run_child(emu, count, factor, status_rate, window))
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
        f"{p}_floor_lag_p99_fraction": median([b["floor_lag_p99_fraction"] for b in big_runs]),
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
        f"{p}_status_rate_cap_compressed": status_rate / factor,
        f"{p}_job_seconds_min": window[0] * factor,
        f"{p}_job_seconds_max": window[1] * factor,
        f"{p}_wall_s": median([b["wall"] for b in big_runs]),
        f"{p}_reps": reps,
    }


def run_once(
    emu: EmulatorProcess,
    *,
    jobs: int,
    factor: float,
    status_rate: float,
    window: tuple[float, float] = WINDOW,
    prefix: str,
) -> dict[str, float]:
    """Measure ``jobs`` once (a size too large to repeat); the keys say it was one run."""
    b = run_child(emu, jobs, factor, status_rate, window)
    return {
        f"{prefix}_jobs": jobs,
        f"{prefix}_peak_in_flight": b["peak_in_flight"],
        f"{prefix}_lag_mean_fraction": b["lag_mean_fraction"],
        f"{prefix}_lag_p99_fraction": b["lag_p99_fraction"],
        f"{prefix}_lag_max_fraction": b["lag_max_fraction"],
        f"{prefix}_floor_lag_p99_fraction": b["floor_lag_p99_fraction"],
        f"rss_mb_{prefix}": b["rss_mb"],
        f"{prefix}_cpu_ms_per_job": 1000 * b["cpu_per_job"],
        f"{prefix}_polls_per_job": b["polls"] / jobs,
        f"{prefix}_peak_status_per_s": b["peak_status_per_s"],
        f"{prefix}_status_rate_cap": status_rate,
        f"{prefix}_status_rate_cap_compressed": status_rate / factor,
        f"{prefix}_job_seconds_min": window[0] * factor,
        f"{prefix}_job_seconds_max": window[1] * factor,
        f"{prefix}_wall_s": b["wall"],
        f"{prefix}_reps": 1,
    }


def run_burst(
    emu: EmulatorProcess, *, jobs: int, factor: float, status_rate: float, seconds: float
) -> dict[str, float]:
    """Measure ``jobs`` of one length, once: they all end within the submit time.

    ``scale_burst_floor_*`` is the lag the status rate alone forces on them: that of a
    client that knew every end and polled each job once, at its end, at the cap
    (:func:`floor_lags`); no client's lag can be lower.
    """
    b = run_child(emu, jobs, factor, status_rate, (seconds, seconds))
    length = seconds * factor
    return {
        "scale_burst_jobs": jobs,
        "scale_burst_peak_in_flight": b["peak_in_flight"],
        "scale_burst_job_seconds": length,
        "scale_burst_lag_mean_fraction": b["lag_mean_fraction"],
        "scale_burst_lag_p99_fraction": b["lag_p99_fraction"],
        "scale_burst_floor_lag_mean_fraction": b["floor_lag_mean_fraction"],
        "scale_burst_floor_lag_p99_fraction": b["floor_lag_p99_fraction"],
        "scale_burst_polls_per_job": b["polls"] / jobs,
        "scale_burst_peak_status_per_s": b["peak_status_per_s"],
        "scale_burst_status_rate_cap": status_rate,
        "scale_burst_status_rate_cap_compressed": status_rate / factor,
    }


def main(argv: list[str]) -> int:
    """The child: run one measurement and print its figures as JSON."""
    base_url, api_key, jobs, factor, status_rate, low, high = argv
    logging.basicConfig(level=logging.ERROR)
    window = (float(low), float(high))
    child = _child(base_url, api_key, int(jobs), float(factor), float(status_rate), window)
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
