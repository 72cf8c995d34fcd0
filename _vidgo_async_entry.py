"""The ``vidgo-async`` console script: a clean stop on Ctrl-C or SIGTERM from the first moment.

The package takes a few tenths of a second to import (aiohttp, attrs, cattrs); a signal then
would end in a Python traceback. This module is tiny and top-level, so it handles both
signals before that import, and ends a stopped run without letting a late signal turn the
exit status into "killed by SIGINT".
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

__all__ = ["main"]

_STOPPED = {130: "Ctrl-C", 143: "SIGTERM"}


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(143)


def _end(code: int) -> None:
    """Exit at once after a signal: flushed, without running interpreter shutdown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main() -> None:
    """Run the command line; exit with its status (130 on Ctrl-C, 143 on SIGTERM)."""
    try:
        signal.signal(signal.SIGTERM, _terminate)
        from vidgo_async._cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("\nvidgo-async: stopped by Ctrl-C (nothing was started)\n")
        _end(130)
    except SystemExit as exc:
        if exc.code == 143:
            sys.stderr.write("\nvidgo-async: stopped by SIGTERM (nothing was started)\n")
            _end(143)
        raise
    code = cli_main()
    if code in _STOPPED:
        _end(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
