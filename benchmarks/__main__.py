"""``python -m benchmarks``: see :mod:`benchmarks.run`."""

from __future__ import annotations

from .run import main

if __name__ == "__main__":
    raise SystemExit(main())
