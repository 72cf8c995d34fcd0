"""``python -m vidgo_async``: a Ctrl-C while the package is still importing ends cleanly.

The console script (``_vidgo_async_entry``) catches a Ctrl-C around its import of the
package. ``python -m vidgo_async`` imports the package before ``__main__`` runs, so nothing
can wrap that import: the package imports this module first, and while the interpreter is
locating ``-m vidgo_async`` (``sys.argv[0] == "-m"``) it installs an excepthook that ends
an unhandled ``KeyboardInterrupt`` like the console script does: one line, exit 130, no
traceback. ``__main__`` calls :func:`release` once the package is imported (the command
line handles its own signals from then on). Standard library only, to be in place early.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from types import TracebackType

__all__ = ["guard_main_import", "release"]

_MODULE = "vidgo_async"


def _running_as_main(argv: list[str], orig_argv: list[str]) -> bool:
    """Whether the interpreter is locating ``-m vidgo_async`` right now."""
    if argv[:1] != ["-m"]:
        return False
    pairs = itertools.pairwise(orig_argv)
    return f"-m{_MODULE}" in orig_argv or any(
        flag == "-m" and name == _MODULE for flag, name in pairs
    )


def _on_uncaught(
    kind: type[BaseException], value: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.stderr.write("\nvidgo-async: stopped by Ctrl-C (nothing was started)\n")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        # As the console script: no interpreter shutdown a second Ctrl-C could interrupt.
        os._exit(130)
    sys.__excepthook__(kind, value, trace)


def guard_main_import() -> None:
    """Install the Ctrl-C excepthook when this import is ``python -m vidgo_async``'s."""
    if _running_as_main(sys.argv, list(getattr(sys, "orig_argv", []))):
        sys.excepthook = _on_uncaught


def release() -> None:
    """Put the default excepthook back (if the guard's is still the one installed)."""
    if sys.excepthook is _on_uncaught:
        sys.excepthook = sys.__excepthook__


guard_main_import()
