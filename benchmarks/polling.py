"""Polling efficiency: our poll schedule vs the peers' fixed intervals, on 30–300 s jobs.

Everything is scaled by one ``factor``: the emulator's ``time_scale`` (so a "300 s" job
takes ``300 × factor`` real seconds), our ``PollPolicy().scaled(factor)`` and the
baselines' intervals (``interval × factor``). Job durations are stratified over 30–300
emulated seconds (evenly spread, shuffled), the same design on every side.

Ours: one ``Orchestrator`` runs the jobs; a third report a linearly rising ``progress``, a
third a back-loaded one (``progress=back``: slow first, most of it near the end), a third
none (``progress=none``: 0, then the job ends). The baselines are the fixed intervals
other clients use (0.1, 0.5, 1, 6 and 15 s): each polls every job on a fixed grid
(``t0 + k × interval``, what ``while True: get; sleep(interval)`` does when the request is
quick). They run fewer jobs (their load is one request per job per interval, and the point
is a per-job figure; the 0.1 s and 0.5 s ones fewer still); their schedule ignores
progress, so one baseline serves every case. Each repetition runs ours and every baseline
one after the other, the order alternating.

Status requests per job come from the emulator's counters; the detection lag of a job is
the time from its scheduled end in the emulator to the moment the client knew
(``time.monotonic()`` on both sides: the system-wide clock).
"""

from __future__ import annotations

import asyncio
import random
import time

from vidgo_async import GenerationRequest, JobEvent, Orchestrator, PollPolicy, VidgoClient

from ._support import EmulatorProcess, median, prompt_for, ratio, seedance_input

LOW, HIGH = 30.0, 300.0
CASES = ("linear", "back", "none")
FIXED_INTERVALS = (0.1, 0.5, 1.0, 6.0, 15.0)


def durations(count: int, seed: int) -> list[float]:
    """``count`` job durations spread evenly over [LOW, HIGH] emulated seconds, shuffled."""
    values = [LOW + (HIGH - LOW) * (i + 0.5) / count for i in range(count)]
    random.Random(seed).shuffle(values)
    return values


class _Arm:
    """The figures of one run: per case, (requests, lag seconds, duration seconds) per job."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, float]] = {}  # task_id -> (case, real duration)
        self.seen: dict[str, float] = {}  # task_id -> monotonic time the client knew

    async def collect(self, emu: EmulatorProcess) -> dict[str, dict[str, float]]:
        stats = await emu.acall("stats")
        ends = await emu.acall("ends", ids=list(self.jobs))
        out: dict[str, dict[str, float]] = {}
        for case in (*CASES, "all"):
            ids = [t for t, (c, _) in self.jobs.items() if case in ("all", c)]
            if not ids:
                continue
            missing = [t for t in ids if t not in self.seen or ends.get(t) is None]
            if missing:
                raise RuntimeError(f"{len(missing)} jobs were never seen ending")
            requests = sum(stats["status_requests"].get(t, 0) for t in ids)
            lags = [self.seen[t] - ends[t] for t in ids]
            total = sum(self.jobs[t][1] for t in ids)
            out[case] = {
                "requests_per_job": requests / len(ids),
                "lag_fraction": sum(lags) / total,
                "mean_lag": sum(lags) / len(ids),
                "max_lag_fraction": max(
                    lag / self.jobs[t][1] for t, lag in zip(ids, lags, strict=True)
                ),
            }
        return out


async def _ours(
    emu: EmulatorProcess, client: VidgoClient, count: int, factor: float, seed: int
) -> dict[str, dict[str, float]]:
    arm = _Arm()
    keys: dict[str, tuple[str, float]] = {}
    requests = []
    for i, seconds in enumerate(durations(count, seed)):
        case = CASES[i % len(CASES)]
        prompt = _prompt(seconds, case, f"o{seed}-{i}")
        key = f"job-{i}"
        keys[key] = (case, seconds * factor)
        requests.append(GenerationRequest("seedance-2", seedance_input(prompt), key=key))

    def on_event(event: JobEvent) -> None:
        if event.kind in ("finished", "failed") and event.task_id is not None:
            arm.seen[event.task_id] = time.monotonic()
            arm.jobs[event.task_id] = keys[event.key]

    policy = PollPolicy().scaled(factor)
    async with Orchestrator(client, max_in_flight=count, poll=policy, on_event=on_event) as orch:
        results = await orch.run(requests)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not finish: {failed[0].error!r}")
    return await arm.collect(emu)


def _prompt(seconds: float, case: str, tag: str) -> str:
    base = prompt_for(seconds, progress=case != "none", tag=tag)
    return base.replace("]]", " progress=back]]") if case == "back" else base


async def _fixed(
    emu: EmulatorProcess,
    client: VidgoClient,
    count: int,
    factor: float,
    seed: int,
    every: float,
) -> dict[str, dict[str, float]]:
    arm = _Arm()
    interval = every * factor

    async def one(i: int, seconds: float) -> None:
        case = CASES[i % len(CASES)]
        prompt = _prompt(seconds, case, f"f{seed}-{i}")
        task = await client.submit("seedance-2", seedance_input(prompt))
        arm.jobs[task.task_id] = (case, seconds * factor)
        start = time.monotonic()
        tick = 0
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * interval - time.monotonic()))
            task = await client.get_task(task.task_id)
            if task.is_terminal:
                arm.seen[task.task_id] = time.monotonic()
                return

    await asyncio.gather(*(one(i, s) for i, s in enumerate(durations(count, seed))))
    return await arm.collect(emu)


def fixed_jobs_for(every: float, jobs: int) -> int:
    """Jobs a fixed poller of ``every`` seconds runs: fewer for the fastest (their load)."""
    return max(2, min(jobs, round(jobs * every)))


async def run(
    emu: EmulatorProcess, *, factor: float, ours_jobs: int, fixed_jobs: int, reps: int
) -> dict[str, float]:
    """Measure and return the polling figures (``emu`` runs with ``time_scale=factor``)."""
    ours_runs: list[dict[str, dict[str, float]]] = []
    fixed_runs: dict[float, list[dict[str, dict[str, float]]]] = {e: [] for e in FIXED_INTERVALS}
    async with VidgoClient(emu.api_key, base_url=emu.base_url) as client:
        seeds = iter(range(1, 100 * reps + 1))
        for rep in range(reps):
            arms: list[float | None] = [None, *FIXED_INTERVALS]
            if rep % 2:
                arms.reverse()
            for every in arms:
                await emu.acall("forget")
                if every is None:
                    ours_runs.append(await _ours(emu, client, ours_jobs, factor, next(seeds)))
                else:
                    count = fixed_jobs_for(every, fixed_jobs)
                    fixed_runs[every].append(
                        await _fixed(emu, client, count, factor, next(seeds), every)
                    )

    def ours(case: str, name: str) -> float:
        return median([run[case][name] for run in ours_runs])

    def versus(case: str, every: float, name: str) -> float:
        return median(
            [
                ratio(a[case][name], b["all"][name])
                for a, b in zip(ours_runs, fixed_runs[every], strict=True)
            ]
        )

    figures: dict[str, float] = {
        "poll_requests_ratio": versus("linear", 1.0, "requests_per_job"),
        "lag_fraction": ours("linear", "lag_fraction"),
        "poll_requests_ratio_back": versus("back", 1.0, "requests_per_job"),
        "lag_fraction_back": ours("back", "lag_fraction"),
        "poll_requests_ratio_no_progress": versus("none", 1.0, "requests_per_job"),
        "lag_fraction_no_progress": ours("none", "lag_fraction"),
        "no_progress_vs_fixed6_requests": versus("none", 6.0, "requests_per_job"),
        "no_progress_vs_fixed6_lag": versus("none", 6.0, "lag_fraction"),
        "poll_requests_per_job": ours("linear", "requests_per_job"),
        "poll_requests_per_job_back": ours("back", "requests_per_job"),
        "poll_requests_per_job_no_progress": ours("none", "requests_per_job"),
        "poll_max_lag_fraction": ours("linear", "max_lag_fraction"),
        "poll_max_lag_fraction_no_progress": ours("none", "max_lag_fraction"),
    }
    for every in FIXED_INTERVALS:
        name = f"{every:g}".replace(".", "_")
        runs = fixed_runs[every]
        figures[f"fixed_{name}s_requests_per_job"] = median(
            [b["all"]["requests_per_job"] for b in runs]
        )
        figures[f"fixed_{name}s_lag_fraction"] = median([b["all"]["lag_fraction"] for b in runs])
    figures.update({"poll_factor": factor, "poll_jobs": ours_jobs, "poll_fixed_jobs": fixed_jobs})
    return figures
