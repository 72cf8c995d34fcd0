"""Generate a list of clips with a live progress line, then print where each video is.

Run: ``python examples/batch_script.py [--out DIR]`` (emulator) or with ``VIDGO_API_KEY`` set
(real API). The videos go to ``out/batch_script/`` (``out/`` is git-ignored) unless ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from _common import vidgo_client

from vidgo_async import GenerationRequest, JobEvent, JobResult, Orchestrator, Seedance2Input

PROMPTS = {
    "harbor": "A slow aerial shot over a fishing harbor at dawn, mist on the water",
    "alley": "A rain-soaked neon alley at night, a cyclist passes through puddles",
    "fox": "A red fox trotting through a snowy birch forest, soft morning light",
    "espresso": "Macro shot of espresso pouring into a glass cup, crema swirling",
    "lake": "Drone shot gliding over an alpine lake with still turquoise water",
}


DEFAULT_OUT = Path("out") / "batch_script"


async def main(out_dir: Path = DEFAULT_OUT) -> list[JobResult]:
    """Run every prompt, four at a time, and download the finished videos to ``out_dir``."""
    requests = [
        GenerationRequest(
            "seedance-2",
            Seedance2Input(prompt=prompt, duration=5, resolution="720p", aspect_ratio="16:9"),
            key=key,
        )
        for key, prompt in PROMPTS.items()
    ]
    async with vidgo_client() as client:
        orchestrator: Orchestrator

        def show(event: JobEvent) -> None:
            p = orchestrator.snapshot()
            sys.stderr.write(
                f"\r{p.done}/{len(requests)} done · {p.in_flight} in flight · {p.queued} queued "
                f"· last: {event.key} {event.kind}   "
            )

        async with Orchestrator(client, max_in_flight=4, on_event=show) as orchestrator:
            results = await orchestrator.run(requests)
        sys.stderr.write("\n")
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
        for result in results:
            if result.ok and result.task is not None:
                for file in result.task.files:
                    path = await client.download_file(file.file_url, out_dir / f"{result.key}.mp4")
                    print(f"{result.key}: {path}")
            else:
                print(f"{result.key}: {result.state.value} ({result.error})")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Generate five clips and download them.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    asyncio.run(main(parser.parse_args().out))
