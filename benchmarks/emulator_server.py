"""Serve the emulator in a separate process and answer control commands on stdin.

The benchmarks never share an event loop between client and server: the client process
starts ``python -m benchmarks.emulator_server OPTIONS_JSON``, reads one ``READY`` line with
the base URL, then sends one JSON command a line and reads one JSON answer a line:

- ``{"cmd": "stats"}``: request counters (status requests per task, submits, totals);
- ``{"cmd": "reset"}``: zero the counters and the status-rate samples;
- ``{"cmd": "ends", "ids": [...]}``: each task's scheduled end as ``time.monotonic()``
  (``loop.time()`` is the system-wide monotonic clock, so it compares across processes);
- ``{"cmd": "spans", "ids": [...]}``: each task's ``[scheduled end, length]`` in real seconds;
- ``{"cmd": "rate"}``: the highest number of status requests seen in any 1 s window;
- ``{"cmd": "forget"}``: drop every ended task (keeps a long run's memory flat);
- ``{"cmd": "close"}``: stop serving and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections import deque
from typing import Any

from vidgo_async.testing import Emulator

# How often the status counter is sampled for the 1 s rate windows.
_SAMPLE_EVERY = 0.05


class _RateSampler:
    """Sample the status-request counter to find the busiest 1 s window."""

    def __init__(self, emu: Emulator) -> None:
        self._emu = emu
        self._samples: deque[tuple[float, int]] = deque()
        self.peak = 0

    def reset(self) -> None:
        self._samples.clear()
        self.peak = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            count = self._emu.stats.requests["status"]
            self._samples.append((now, count))
            while self._samples and now - self._samples[0][0] > 1.0:
                self._samples.popleft()
            self.peak = max(self.peak, count - self._samples[0][1])
            await asyncio.sleep(_SAMPLE_EVERY)


def _ends(emu: Emulator, ids: list[str]) -> dict[str, float | None]:
    return {
        task_id: None if span is None else span[0] for task_id, span in _spans(emu, ids).items()
    }


def _spans(emu: Emulator, ids: list[str]) -> dict[str, list[float] | None]:
    store = emu._store  # the benchmark reads the emulator's own schedule (private, on purpose)
    tasks: dict[str, Any] = store._tasks if store is not None else {}
    out: dict[str, list[float] | None] = {}
    for task_id in ids:
        task = tasks.get(task_id)
        out[task_id] = None if task is None else [task.started_at + task.duration, task.duration]
    return out


def _forget(emu: Emulator) -> int:
    store = emu._store
    if store is None:
        return 0
    tasks = store._tasks
    ended = [task_id for task_id, task in tasks.items() if task.ended is not None]
    for task_id in ended:
        del tasks[task_id]
    return len(ended)


def _answer(emu: Emulator, sampler: _RateSampler, command: dict[str, Any]) -> Any:
    name = command.get("cmd")
    stats = emu.stats
    if name == "stats":
        return {
            "status_requests": dict(stats.status_requests),
            "status_total": stats.requests["status"],
            "submit_attempts": stats.submit_attempts,
            "submits_accepted": stats.submits_accepted,
            "peak_concurrent_requests": stats.peak_concurrent_requests,
            "peak_in_flight": stats.peak_in_flight,
            "in_flight": stats.in_flight,
        }
    if name == "reset":
        stats.reset()
        sampler.reset()
        return {"ok": True}
    if name == "ends":
        return _ends(emu, list(command.get("ids", [])))
    if name == "spans":
        return _spans(emu, list(command.get("ids", [])))
    if name == "rate":
        return {"peak_status_per_s": sampler.peak}
    if name == "forget":
        return {"forgotten": _forget(emu)}
    return {"error": f"unknown command {name!r}"}


async def _serve(options: dict[str, Any]) -> None:
    if isinstance(options.get("job_seconds"), list):
        options["job_seconds"] = tuple(options["job_seconds"])
    emu = Emulator(**options)
    async with emu:
        sampler = _RateSampler(emu)
        sampling = asyncio.create_task(sampler.run())
        try:
            sys.stdout.write(f"READY {emu.base_url} {emu.api_key}\n")
            sys.stdout.flush()
            while True:
                # Commands come rarely (between measured phases): a thread read is fine.
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    break
                command = json.loads(line)
                if command.get("cmd") == "close":
                    sys.stdout.write('{"ok": true}\n')
                    sys.stdout.flush()
                    break
                answer = _answer(emu, sampler, command)
                sys.stdout.write(json.dumps(answer) + "\n")
                sys.stdout.flush()
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling


def main(argv: list[str] | None = None) -> int:
    """Serve until ``close`` or end of input."""
    args = sys.argv[1:] if argv is None else argv
    options = json.loads(args[0]) if args else {}
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(options))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
