"""Shared helpers: the emulator process, interleaved repetitions, medians, memory readings."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import attrs

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"
# Enough credits for every benchmark job (10 credits/s x 5 s = 50 per job).
CREDITS = 10**12

T = TypeVar("T")


class EmulatorProcess:
    """The emulator served by a child process (see ``benchmarks.emulator_server``).

    Commands are synchronous; from async code call them through :meth:`acall`, and only
    between measured phases.
    """

    def __init__(self, **options: Any) -> None:
        options.setdefault("api_key", API_KEY)
        options.setdefault("credits", CREDITS)
        self.options = options
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.api_key = str(options["api_key"])

    def __enter__(self) -> EmulatorProcess:
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "benchmarks.emulator_server", json.dumps(self.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if not line or line[0] != "READY":
            self.__exit__(None, None, None)
            raise RuntimeError(f"the emulator process did not start (got {line!r})")
        self.base_url = line[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write('{"cmd": "close"}\n')
                proc.stdin.flush()
                proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()

    def call(self, cmd: str, **kwargs: Any) -> Any:
        """Send one command and return its decoded answer."""
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process exited")
        return json.loads(line)

    async def acall(self, cmd: str, **kwargs: Any) -> Any:
        """:meth:`call` from async code, off the event loop."""
        return await asyncio.to_thread(self.call, cmd, **kwargs)


@attrs.frozen
class Measure:
    """One timed run: CPU seconds of this process, wall seconds, and any extra figures."""

    cpu: float
    wall: float
    extra: dict[str, float] = attrs.field(factory=dict)


async def timed(body: Callable[[], Awaitable[dict[str, float] | None]]) -> Measure:
    """Run ``body`` once and return its CPU time (this process) and wall time."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    extra = await body()
    return Measure(time.process_time() - cpu0, time.perf_counter() - wall0, extra or {})


async def interleaved(
    ours: Callable[[], Awaitable[T]], base: Callable[[], Awaitable[T]], reps: int
) -> list[tuple[T, T]]:
    """Run ours and the baseline alternately ``reps`` times each; return the pairs.

    The order inside a pair alternates (A B, B A, A B...) so that neither side always
    runs first in a warmer (or more tired) machine.
    """
    pairs: list[tuple[T, T]] = []
    for rep in range(reps):
        if rep % 2 == 0:
            a = await ours()
            b = await base()
        else:
            b = await base()
            a = await ours()
        pairs.append((a, b))
    return pairs


def median(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is zero."""
    return numerator / denominator if denominator else float("nan")


def median_ratio(pairs: list[tuple[float, float]]) -> float:
    """The median of the per-pair ratios ours / baseline."""
    return median([ratio(a, b) for a, b in pairs])


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (``VmHWM``; ``ru_maxrss`` as a fallback)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return usage / (1024 * 1024) if sys.platform == "darwin" else usage / 1024


def prompt_for(seconds: float, *, progress: bool = True, tag: str = "") -> str:
    """A prompt whose emulated job takes ``seconds`` (and reports progress or not)."""
    mode = "" if progress else " progress=none"
    return f"benchmark clip {tag} [[vidgo-emulator: seconds={seconds:.4f}{mode}]]"


def seedance_input(prompt: str) -> dict[str, Any]:
    """A valid ``seedance-2`` input around ``prompt``."""
    return {"prompt": prompt, "resolution": "720p", "duration": 5}
