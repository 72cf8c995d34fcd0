"""Issue 11's 429 targets in real time: a faulty run against the fault-free run of the same jobs.

    python -m benchmarks.throttle            # both cases, one JSON line at the end
    python -m benchmarks.throttle --reps 3   # the median of three pairs

- ``status_trickle``: 33 jobs of 0.5-1.5 s at concurrency 4; 1 status answer in 7 is a 429
  with ``Retry-After: 1``. Target: at most 1.5x the fault-free time.
- ``submit_pause``: 40 short jobs at concurrency 4; the first 25 submits get a 429 with
  ``Retry-After: 1``. Target: at most 3x the fault-free time.

Both runs of a pair use the emulator in this process with the client's default poll
policy (the first poll 2 s after submit), so the figures are wall-clock seconds of what a
user would see. The unit tests (``tests/test_gates_schedule.py``) check the same targets on
a simulated clock; this script is the real-time figure for the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from vidgo_async import GenerationRequest, Orchestrator
from vidgo_async.testing import Emulator

CASES = {
    # name: (jobs, job seconds, faults)
    "status_trickle": (33, (0.5, 1.5), "status:429,every=7,retry_after=1"),
    "submit_pause": (40, (0.5, 1.0), "submit:429,burst=1:25,retry_after=1"),
}
TARGETS = {"status_trickle": 1.5, "submit_pause": 3.0}
CONCURRENCY = 4


def _requests(count: int, tag: str) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            "seedance-2",
            {"prompt": f"{tag} shot {n}: a kite over a beach", "duration": 5, "resolution": "720p"},
            key=f"{tag}-{n}",
        )
        for n in range(count)
    ]


async def _one(case: str, *, faulty: bool, tag: str) -> float:
    jobs, seconds, faults = CASES[case]
    async with Emulator(job_seconds=seconds, faults=faults if faulty else None, seed=1) as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client() as client:
            started = time.monotonic()
            async with Orchestrator(client, max_in_flight=CONCURRENCY) as orch:
                results = await orch.run(_requests(jobs, tag))
            elapsed = time.monotonic() - started
    if not all(result.ok for result in results):
        raise RuntimeError(f"{case}: not every job finished: {[r.state for r in results]}")
    return elapsed


async def measure(reps: int) -> dict[str, float]:
    """Return, per case, the median faulty and clean seconds and their ratio."""
    figures: dict[str, float] = {}
    for case in CASES:
        clean: list[float] = []
        faulty: list[float] = []
        for rep in range(reps):
            order = (False, True) if rep % 2 == 0 else (True, False)
            for with_faults in order:
                seconds = await _one(case, faulty=with_faults, tag=f"{case}{rep}{with_faults}")
                (faulty if with_faults else clean).append(seconds)
        figures[f"{case}_clean_s"] = statistics.median(clean)
        figures[f"{case}_faulty_s"] = statistics.median(faulty)
        figures[f"{case}_ratio"] = statistics.median(
            f / c for f, c in zip(faulty, clean, strict=True)
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=1, help="pairs per case (median)")
    args = parser.parse_args()
    figures = asyncio.run(measure(max(args.reps, 1)))
    for case, target in TARGETS.items():
        ratio = figures[f"{case}_ratio"]
        print(
            f"{case:15} clean {figures[f'{case}_clean_s']:6.1f} s  faulty "
            f"{figures[f'{case}_faulty_s']:6.1f} s  ratio {ratio:4.2f} (target <= {target})"
        )
    print(json.dumps({key: round(value, 3) for key, value in figures.items()}))


if __name__ == "__main__":
    main()
