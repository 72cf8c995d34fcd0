"""The ``vidgo-async`` command line: one sub-command per module in this package.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` (a function taking the parsed namespace and returning the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from .._version import __version__

__all__ = ["main"]

# The command modules, in the order ``--help`` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "batch",
    "balance",
    "emulator",
    "status",
    "journal",
    "models",
    "worker",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="vidgo-async",
        description="Generate videos with the Vidgo API: batches, an offline emulator, task tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (130 on Ctrl-C, 143 on SIGTERM)."""
    from ._signals import describe, exit_code, ignore_more, signum_of, terminate_raises

    try:
        with terminate_raises():
            parser = build_parser()
            args = parser.parse_args(argv)
            handler: Handler | None = getattr(args, "handler", None)
            if handler is None:
                parser.print_help(sys.stderr)
                return 2
            return handler(args)
    except KeyboardInterrupt as exc:
        ignore_more()
        sys.stderr.write(f"\nvidgo-async: stopped by {describe(signum_of(exc))}\n")
        return exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
