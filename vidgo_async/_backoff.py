"""Pure timing functions: full-jitter backoff and ``Retry-After`` parsing.

No I/O and no event loop: the caller passes the random source and the current time, so
every function here is tested directly and deterministically.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["full_jitter", "parse_retry_after"]

# A header longer than this is not a delay anyone meant to send.
_MAX_HEADER_LENGTH = 64


def full_jitter(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Return the delay before retry number ``attempt`` (1 for the first retry).

    The delay is uniform in ``[0, min(cap, base * 2**(attempt - 1))]`` ("full jitter"), so
    clients that failed together do not retry together. Safe for any attempt number: the
    exponent is clamped before it can overflow.
    """
    if cap <= 0 or base <= 0:
        return 0.0
    exponent = min(max(attempt - 1, 0), 64)
    bound = min(cap, base * (2.0**exponent))
    draw = (rng or random).random()
    return draw * bound


def _finite_positive(value: float) -> float | None:
    if math.isfinite(value) and value > 0:
        return value
    return None


def _retry_after_headers(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Return the (``retry-after-ms``, ``Retry-After``) values (a repeated header's first)."""
    if isinstance(headers, CIMultiDictProxy | CIMultiDict):
        # aiohttp's headers already match names case-insensitively: look up, don't copy.
        return headers.get("retry-after-ms"), headers.get("retry-after")
    lowered = {key.lower(): value for key, value in headers.items()}
    return lowered.get("retry-after-ms"), lowered.get("retry-after")


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Return the server's requested wait in seconds, or ``None`` when there is no usable one.

    Understands ``retry-after-ms`` (milliseconds), and ``Retry-After`` as seconds or as an
    HTTP date (relative to ``now``, a POSIX timestamp). A negative, zero, non-finite,
    overlong or unparseable value counts as absent, so the caller falls back to its own
    backoff. Header names are matched case-insensitively.
    """
    milliseconds, raw = _retry_after_headers(headers)
    if milliseconds is not None and len(milliseconds) <= _MAX_HEADER_LENGTH:
        try:
            parsed = _finite_positive(float(milliseconds.strip()) / 1000.0)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed
    if raw is None or len(raw) > _MAX_HEADER_LENGTH:
        return None
    text = raw.strip()
    try:
        return _finite_positive(float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None  # type: ignore[unreachable]  # older Pythons return None on failure
    try:
        return _finite_positive(when.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None
