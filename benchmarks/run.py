"""Run the benchmarks, print a table, end with one line of JSON.

    python -m benchmarks            # full run (about 20 minutes on 2 cores)
    python -m benchmarks --quick    # the same figures at smaller sizes (a few minutes)
    python -m benchmarks --smoke    # seconds; checks the plumbing, measures nothing

Every figure is a ratio against a baseline measured in the same run, the two interleaved
(A B, B A, ...) and repeated at least five times (``--smoke`` excepted; the CPU and
throughput ratios nine times, seven with ``--quick``, as one hiccup of a shared machine
moves a pair by up to 2x; the scale runs ``scale_reps`` times and the large scale run once,
said in their keys); the median is
reported, with the spread where it matters (``*_min``/``*_max``). The emulator always runs
in its own process; the scale runs each get a fresh client process too. Keys never name a
size they were not measured at: ``scale_jobs`` says how many jobs the ``scale_*`` keys mean.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import math
import pstats
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import attrs

from . import journal, overhead, poll_overhead, polling, scale, submit
from ._support import EmulatorProcess

BENCHMARKS = ("overhead", "poll_overhead", "submit", "journal", "polling", "scale")
MIN_REPS = 5
REQUIRED_KEYS = (
    "overhead_ratio",
    "poll_overhead_ratio",
    "submit_cpu_ratio",
    "journal_ratio",
    "poll_requests_ratio",
    "lag_fraction",
    "lag_fraction_no_progress",
    "no_progress_vs_fixed6_requests",
    "no_progress_vs_fixed6_lag",
    "scale_jobs",
    "scale_peak_in_flight",
    "scale_lag_p99_fraction",
    "rss_mb_scale",
)


@attrs.frozen(kw_only=True)
class Settings:
    """The sizes of one mode."""

    reps: int
    # Pairs of the CPU and throughput ratios (overhead, poll path, submit, journal): a
    # shared machine's hiccups move single pairs by up to 2x, so their medians take more.
    ratio_reps: int
    overhead_requests: int
    overhead_concurrency: int = 16
    submit_jobs: int
    journal_jobs: int
    journal_concurrencies: tuple[int, ...] = (8, 200)
    poll_factor: float
    poll_jobs: int
    poll_fixed_jobs: int
    scale_jobs: int
    scale_small_jobs: int
    scale_factor: float
    scale_status_rate: float
    scale_reps: int
    # The burst run (once): scale_jobs of one length (emulated seconds x burst_factor).
    burst_seconds: float = 60.0
    burst_factor: float
    # The large run (once; 0 jobs: none), compared with the scale run's small runs.
    large_jobs: int = 0
    large_factor: float = 1.0
    large_status_rate: float = 2000.0


MODES = {
    "full": Settings(
        reps=5,
        ratio_reps=9,
        overhead_requests=5000,
        submit_jobs=3000,
        journal_jobs=1000,
        poll_factor=0.02,
        poll_jobs=300,
        poll_fixed_jobs=24,
        scale_jobs=10_000,
        scale_small_jobs=1000,
        scale_factor=0.2,
        scale_status_rate=1000,
        scale_reps=3,
        burst_factor=0.5,
        large_jobs=100_000,
    ),
    "quick": Settings(
        reps=5,
        ratio_reps=7,
        overhead_requests=1500,
        submit_jobs=800,
        journal_jobs=300,
        poll_factor=0.01,
        poll_jobs=60,
        poll_fixed_jobs=6,
        scale_jobs=1000,
        scale_small_jobs=100,
        scale_factor=0.05,
        scale_status_rate=1000,
        scale_reps=3,
        burst_factor=0.05,
    ),
    "smoke": Settings(
        reps=2,
        ratio_reps=2,
        overhead_requests=100,
        submit_jobs=50,
        journal_jobs=30,
        journal_concurrencies=(4, 16),
        poll_factor=0.002,
        poll_jobs=12,
        poll_fixed_jobs=2,
        scale_jobs=100,
        scale_small_jobs=20,
        scale_factor=0.02,
        scale_status_rate=500,
        scale_reps=1,
        burst_factor=0.02,
    ),
}

# name -> (target text, check); a figure without a target is informative only.
TARGETS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "overhead_ratio": ("<= 1.10", lambda v: v <= 1.10),
    "poll_overhead_ratio": ("<= 1.10", lambda v: v <= 1.10),
    "submit_cpu_ratio": ("<= 1.15", lambda v: v <= 1.15),
    "journal_ratio": (">= 0.6", lambda v: v >= 0.6),
    "poll_requests_ratio": ("<= 0.06", lambda v: v <= 0.06),
    "lag_fraction": ("<= 0.03", lambda v: v <= 0.03),
    "no_progress_vs_fixed6_requests": ("<= 1.0", lambda v: v <= 1.0),
    "no_progress_vs_fixed6_lag": ("<= 1.0", lambda v: v <= 1.0),
    "scale_lag_p99_fraction": ("<= 0.05", lambda v: v <= 0.05),
    "rss_mb_scale": ("< 100", lambda v: v < 100),
    "scale_large_lag_mean_fraction": ("<= 0.05", lambda v: v <= 0.05),
    "rss_mb_scale_large": ("< 600", lambda v: v < 600),
    "scale_large_cpu_per_job_ratio": ("<= 1.5", lambda v: v <= 1.5),
}


def _async(
    make: Callable[[EmulatorProcess], Coroutine[Any, Any, dict[str, float]]], **emulator: Any
) -> dict[str, float]:
    with EmulatorProcess(**emulator) as emu:
        return asyncio.run(make(emu))


def run_benchmark(
    name: str, s: Settings, reps: int, ratio_reps: int | None = None
) -> dict[str, float]:
    """Run one benchmark with its own emulator process; return its figures.

    ``ratio_reps``: the pairs of the CPU and throughput ratios (default ``reps``).
    """
    pairs = reps if ratio_reps is None else ratio_reps
    if name == "overhead":
        return _async(
            lambda emu: overhead.run(
                emu, requests=s.overhead_requests, concurrency=s.overhead_concurrency, reps=pairs
            )
        )
    if name == "poll_overhead":
        return _async(
            lambda emu: poll_overhead.run(
                emu, requests=s.overhead_requests, concurrency=s.overhead_concurrency, reps=pairs
            )
        )
    if name == "submit":
        return _async(lambda emu: submit.run(emu, jobs=s.submit_jobs, reps=pairs))
    if name == "journal":
        return _async(
            lambda emu: journal.run(
                emu, jobs=s.journal_jobs, concurrencies=s.journal_concurrencies, reps=pairs
            ),
            time_scale=0.01,
        )
    if name == "polling":
        return _async(
            lambda emu: polling.run(
                emu,
                factor=s.poll_factor,
                ours_jobs=s.poll_jobs,
                fixed_jobs=s.poll_fixed_jobs,
                reps=reps,
            ),
            time_scale=s.poll_factor,
        )
    if name == "scale":
        with EmulatorProcess(time_scale=s.scale_factor) as emu:
            figures = scale.run(
                emu,
                jobs=s.scale_jobs,
                small=s.scale_small_jobs,
                factor=s.scale_factor,
                status_rate=s.scale_status_rate,
                reps=min(reps, s.scale_reps),
            )
        with EmulatorProcess(time_scale=s.burst_factor) as emu:
            figures.update(
                scale.run_burst(
                    emu,
                    jobs=s.scale_jobs,
                    factor=s.burst_factor,
                    status_rate=s.scale_status_rate,
                    seconds=s.burst_seconds,
                )
            )
        if s.large_jobs:
            with EmulatorProcess(time_scale=s.large_factor) as emu:
                large = scale.run_once(
                    emu,
                    jobs=s.large_jobs,
                    factor=s.large_factor,
                    status_rate=s.large_status_rate,
                    prefix="scale_large",
                )
            large["scale_large_cpu_per_job_ratio"] = (
                large["scale_large_cpu_ms_per_job"] / figures["scale_small_cpu_ms_per_job"]
            )
            figures.update(large)
        return figures
    raise ValueError(f"unknown benchmark {name!r}")


def _format(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and value > 100):
        return f"{int(value)}"
    return f"{value:.4g}"


def print_table(figures: dict[str, float], mode: str, seconds: float, out: Any) -> None:
    """Print every figure with its target and whether it holds."""
    rows = [("figure", "value", "target", "")]
    for key, value in figures.items():
        target, check = TARGETS.get(key, ("", lambda _v: True))
        verdict = ("ok" if check(value) else "MISSED") if target else ""
        rows.append((key, _format(value), target, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out.write(f"vidgo-async benchmarks ({mode} mode, {seconds:.0f} s)\n")
    for i, row in enumerate(rows):
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )
        if i == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")
    out.write(
        "ratios: ours / baseline, median of interleaved pairs; targets in parentheses are "
        "for the no-progress case, reported honestly.\n"
    )
    if "scale_jobs" in figures:
        out.write(
            f"scale: N = {int(figures['scale_jobs'])} jobs in flight at once (every scale_* "
            f"key is measured at this N) vs {int(figures['scale_small_jobs'])} jobs, each job "
            f"{figures['scale_job_seconds_min']:g}-{figures['scale_job_seconds_max']:g} s "
            "(the documented 90-300 s, scaled).\n"
        )
    if "scale_burst_jobs" in figures:
        out.write(
            f"scale_burst: {int(figures['scale_burst_jobs'])} jobs of one length, ending within "
            "the seconds it took to submit them, one run; scale_burst_floor_* is the lag of a "
            "client that knew every end and polled each job once, at its end, at the cap.\n"
        )
    if "scale_large_jobs" in figures:
        out.write(
            f"scale_large: {int(figures['scale_large_jobs'])} jobs in flight at once, one run; "
            "its CPU per job is compared with the scale run's small runs.\n"
        )


def _profile(s: Settings) -> None:
    """Profile our side of the overhead, poll path and submit benchmarks; print the top."""

    async def body(emu: EmulatorProcess) -> dict[str, float]:
        profiler = cProfile.Profile()
        profiler.enable()
        await overhead.run(emu, requests=s.overhead_requests, concurrency=16, reps=1)
        await poll_overhead.run(emu, requests=s.overhead_requests, concurrency=16, reps=1)
        await submit.run(emu, jobs=s.submit_jobs, reps=1)
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(25)
        sys.stderr.write(text.getvalue())
        return {}

    _async(body)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmarks, print the table and the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    size.add_argument("--smoke", action="store_true", help="seconds: checks the plumbing (for CI)")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=None,
        help="pairs per figure (at least 5; by default 5, and 9 for the CPU and throughput "
        "ratios, 7 with --quick)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of the client side"
    )
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = MODES[mode]
    reps = args.reps if args.reps is not None else settings.reps
    ratio_reps = args.reps if args.reps is not None else settings.ratio_reps
    if reps < MIN_REPS and mode != "smoke":
        parser.error(f"--reps must be at least {MIN_REPS}")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("vidgo_async").setLevel(logging.ERROR)

    started = time.perf_counter()
    figures: dict[str, float] = {}
    for name in args.only or BENCHMARKS:
        sys.stderr.write(f"running {name}...\n")
        sys.stderr.flush()
        figures.update(run_benchmark(name, settings, reps, ratio_reps))
    if args.profile:
        _profile(settings)
    elapsed = time.perf_counter() - started
    figures["reps"] = reps
    figures["ratio_reps"] = ratio_reps
    print_table(figures, mode, elapsed, sys.stdout)
    figures["mode"] = mode  # type: ignore[assignment]
    figures["seconds"] = round(elapsed, 1)
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
