"""Polling efficiency: our poll schedule vs a fixed 1 s poller, on 30–300 s jobs.

Everything is scaled by one ``factor``: the emulator's ``time_scale`` (so a "300 s" job
takes ``300 × factor`` real seconds), our ``PollPolicy().scaled(factor)`` and the
baseline's interval (``1 s × factor``). Job durations are stratified over 30–300 emulated
seconds (evenly spread, shuffled), the same design on both sides.

Ours: one ``Orchestrator`` runs the jobs; half report a rising ``progress``, half use the
directive ``progress=none`` (progress stays 0, then the job ends): the useless-progress
case, reported separately. The baseline polls each job every ``factor`` seconds on a fixed
grid (``t0 + k × interval``, what ``while True: get; sleep(1)`` does when the request is
quick). It runs fewer jobs (its load is one request per job per interval, and the point
is a per-job figure); its schedule ignores progress, so one baseline serves both cases.

Status requests per job come from the emulator's counters; the detection lag of a job is
the time from its scheduled end in the emulator to the moment the client knew
(``time.monotonic()`` on both sides: the system-wide clock).
"""

from __future__ import annotations

import asyncio
import random
import time

from vidgo_async import GenerationRequest, JobEvent, Orchestrator, PollPolicy, VidgoClient

from ._support import EmulatorProcess, interleaved, median, prompt_for, ratio, seedance_input

LOW, HIGH = 30.0, 300.0


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
        for case in ("progress", "none", "all"):
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
        case = "progress" if i % 2 == 0 else "none"
        prompt = prompt_for(seconds, progress=case == "progress", tag=f"o{seed}-{i}")
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


async def _fixed(
    emu: EmulatorProcess, client: VidgoClient, count: int, factor: float, seed: int
) -> dict[str, dict[str, float]]:
    arm = _Arm()
    interval = 1.0 * factor

    async def one(i: int, seconds: float) -> None:
        case = "progress" if i % 2 == 0 else "none"
        prompt = prompt_for(seconds, progress=case == "progress", tag=f"f{seed}-{i}")
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


async def run(
    emu: EmulatorProcess, *, factor: float, ours_jobs: int, fixed_jobs: int, reps: int
) -> dict[str, float]:
    """Measure and return the polling figures (``emu`` runs with ``time_scale=factor``)."""
    async with VidgoClient(emu.api_key, base_url=emu.base_url) as client:
        seeds = iter(range(1, 10 * reps + 1))

        async def ours() -> dict[str, dict[str, float]]:
            await emu.acall("forget")
            return await _ours(emu, client, ours_jobs, factor, next(seeds))

        async def fixed() -> dict[str, dict[str, float]]:
            await emu.acall("forget")
            return await _fixed(emu, client, fixed_jobs, factor, next(seeds))

        pairs = await interleaved(ours, fixed, reps)

    def figure(case: str, name: str) -> float:
        return median([a[case][name] for a, _ in pairs])

    def versus_fixed(case: str) -> float:
        return median(
            [ratio(a[case]["requests_per_job"], b["all"]["requests_per_job"]) for a, b in pairs]
        )

    return {
        "poll_requests_ratio": versus_fixed("progress"),
        "lag_fraction": figure("progress", "lag_fraction"),
        "poll_requests_ratio_no_progress": versus_fixed("none"),
        "lag_fraction_no_progress": figure("none", "lag_fraction"),
        "poll_requests_per_job": figure("progress", "requests_per_job"),
        "poll_requests_per_job_no_progress": figure("none", "requests_per_job"),
        "poll_fixed_requests_per_job": median([b["all"]["requests_per_job"] for _, b in pairs]),
        "poll_fixed_lag_fraction": median([b["all"]["lag_fraction"] for _, b in pairs]),
        "poll_max_lag_fraction": figure("progress", "max_lag_fraction"),
        "poll_max_lag_fraction_no_progress": figure("none", "max_lag_fraction"),
        "poll_factor": factor,
        "poll_jobs": ours_jobs,
        "poll_fixed_jobs": fixed_jobs,
    }
