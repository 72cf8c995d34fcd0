"""``vidgo-async emulator``: serve the Vidgo API emulator from the shell until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..testing import Emulator

__all__ = ["register"]

_DESCRIPTION = """\
Serve an emulator of the Vidgo API on this machine: submit, status, balance, the
generated files and callbacks, with the documented shapes and error codes. Point a
client at the printed base URL with the printed key. Stops cleanly on Ctrl-C or SIGTERM.
"""

_FAULTS_HELP = """\
fault plan, e.g. 'submit:429,every=3,retry_after=2;status:503,p=0.2,html'.
Rules are ENDPOINT:KIND[,OPTION...] joined by ';'. Endpoints: submit, status, balance,
download, callback, api. Kinds: an HTTP status (429, 500, 502, 503, 404...), drop, stall,
slow, drip, reset, malformed, oversized, code_in_body; for callbacks lose, duplicate.
Options: every=N, burst=[START:]COUNT, p=P, within=S, rate=R, times=N, before, after,
retry_after=V, retry_after_ms=V, retry_after_date=S, html, seconds=S, chunk=N,
interval=S, bytes=N, endless, code=N, message=TEXT.
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0 (got {text})")
    return value


def _job_seconds(text: str) -> float | tuple[float, float]:
    low, sep, high = text.partition("-")
    try:
        if sep:
            return (float(low), float(high))
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be seconds like 30 or a range like 20-40 (got {text!r})"
        ) from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``emulator`` command."""
    parser = subparsers.add_parser(
        "emulator",
        help="serve a local emulator of the Vidgo API",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8089, help="port (default 8089; 0 picks a free one)"
    )
    parser.add_argument(
        "--api-key", default="emulator-key", help="the key clients must send (default emulator-key)"
    )
    parser.add_argument(
        "--job-seconds",
        type=_job_seconds,
        default=10.0,
        help="emulated seconds per job, or a range LOW-HIGH (default 10)",
    )
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, help="share of jobs that fail (0-1, default 0)"
    )
    parser.add_argument("--faults", default=None, metavar="SPEC", help=_FAULTS_HELP)
    parser.add_argument(
        "--credits", type=int, default=1_000_000, help="starting balance (default 1000000)"
    )
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        default=1.0,
        help="real seconds per emulated second (default 1; 0.1 runs ten times faster)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for ids, durations, failures and faults"
    )
    parser.add_argument(
        "--idempotency",
        action="store_true",
        help="honour an Idempotency-Key header (the real API has none)",
    )
    parser.add_argument(
        "--allow-unknown-models",
        action="store_true",
        help="accept model ids the catalog does not know (Vidgo refuses them; default: refuse)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ..testing import Emulator  # imported on use: other commands need no web server

    try:
        emulator = Emulator(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            job_seconds=args.job_seconds,
            time_scale=args.time_scale,
            failure_rate=args.failure_rate,
            credits=args.credits,
            faults=args.faults,
            seed=args.seed,
            idempotency=args.idempotency,
            allow_unknown_models=args.allow_unknown_models,
        )
    except ValueError as exc:
        sys.stderr.write(f"vidgo-async emulator: error: {exc}\n")
        return 2
    try:
        asyncio.run(_serve(emulator))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    except OSError as exc:
        sys.stderr.write(f"vidgo-async emulator: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    return 0


async def _serve(emulator: Emulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(
            NotImplementedError, RuntimeError
        ):  # Windows has no signal handlers
            loop.add_signal_handler(signum, stop.set)
    async with emulator:
        sys.stdout.write(
            f"Vidgo emulator serving at {emulator.base_url}\n"
            f"  export VIDGO_BASE_URL={emulator.base_url}\n"
            f"  export VIDGO_API_KEY={emulator.api_key}\n"
            "Press Ctrl-C to stop.\n"
        )
        sys.stdout.flush()
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
    sys.stdout.write("Vidgo emulator stopped.\n")
    sys.stdout.flush()
