"""Frozen configuration values: timeouts, retry rules and the polling policy.

Every default lives here as a named constant. Durations accept seconds or a
``datetime.timedelta`` and are stored as float seconds. Per-call variants come from
``attrs.evolve(policy, ...)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import attrs

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_JSON_BYTES",
    "PollPolicy",
    "RetryPolicy",
    "Timeout",
]

DEFAULT_BASE_URL = "https://api.vidgo.ai"
API_KEY_ENV = "VIDGO_API_KEY"
BASE_URL_ENV = "VIDGO_BASE_URL"


def given_base_url(base_url: str | None) -> str:
    """The base URL a client uses: the one given, else ``VIDGO_BASE_URL``, else Vidgo's."""
    return base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 60.0
# One result file, every attempt and the whole body: a 2 GiB file (the default
# max_download_bytes) needs ~28 min at 10 Mbit/s, and a 15 s 1080p video (~50 MB) needs
# under 7 min even at 1 Mbit/s; 30 min lets slow links finish and still ends a stalled or
# dripping download.
DEFAULT_DOWNLOAD_TIMEOUT = 1800.0

DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_RETRY_INITIAL_DELAY = 0.5
DEFAULT_RETRY_MAX_DELAY = 20.0
DEFAULT_MAX_RETRY_AFTER = 120.0

DEFAULT_POLL_INITIAL_DELAY = 2.0
DEFAULT_POLL_MULTIPLIER = 1.5
DEFAULT_POLL_MAX_INTERVAL = 30.0
DEFAULT_POLL_MIN_INTERVAL = 1.0
DEFAULT_POLL_JITTER = 0.2
# The documented generation time of a video (status.mdx, "Polling Best Practices").
DEFAULT_EXPECTED_DURATION = (90.0, 300.0)
DEFAULT_WAIT_TIMEOUT = 1800.0
DEFAULT_NOT_FOUND_GRACE = 60.0

DEFAULT_MAX_JSON_BYTES = 1024 * 1024
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3

Seconds = float | timedelta


def to_seconds(value: float | timedelta) -> float:
    """Return a duration in float seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a duration must be seconds or a timedelta (got {value!r})")
    return float(value)


def _optional_seconds(value: float | timedelta | None) -> float | None:
    return None if value is None else to_seconds(value)


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive number of seconds (got {value!r})")


def _positive_or_none(
    _instance: object, attribute: attrs.Attribute[Any], value: float | None
) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{attribute.name} must be a positive number of seconds or None (got {value!r})"
        )


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be zero or more (got {value!r})")


@attrs.frozen(kw_only=True)
class Timeout:
    """Time limits of one HTTP request.

    Args:
        connect: to open a connection (including waiting for a free pooled one).
        read: the longest gap between two chunks of the answer.
        total: the whole request, start to last byte; a server that trickles bytes
            cannot hold a call longer than this.
        download: the whole download of one result file (every attempt, redirect and
            byte); ``total`` does not apply to downloads, which are large. Default 30 min.
    """

    connect: float | None = attrs.field(
        default=DEFAULT_CONNECT_TIMEOUT, converter=_optional_seconds, validator=_positive_or_none
    )
    read: float | None = attrs.field(
        default=DEFAULT_READ_TIMEOUT, converter=_optional_seconds, validator=_positive_or_none
    )
    total: float | None = attrs.field(
        default=DEFAULT_TOTAL_TIMEOUT, converter=_optional_seconds, validator=_positive_or_none
    )
    download: float | None = attrs.field(
        default=DEFAULT_DOWNLOAD_TIMEOUT, converter=_optional_seconds, validator=_positive_or_none
    )

    @classmethod
    def coerce(cls, value: Timeout | float | timedelta | None) -> Timeout:
        """Turn ``timeout=`` arguments (seconds = the total deadline) into a Timeout."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        total = to_seconds(value)
        return cls(
            connect=min(DEFAULT_CONNECT_TIMEOUT, total),
            read=min(DEFAULT_READ_TIMEOUT, total),
            total=total,
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how the client repeats a failed request.

    Status queries (GET) are retried on connection errors, timeouts, 408, 429 and 5xx.
    A submit costs money and Vidgo has no idempotency key, so it is retried only when it
    provably created nothing (the connection could not be opened, or a 429) unless
    ``retry_ambiguous_submits`` accepts at-least-once submits.

    Args:
        max_attempts: attempts per request, the first included (1 disables retries).
        initial_delay: the backoff base; attempt *n* waits ``U(0, min(max_delay, initial_delay * 2**(n-1)))``.
        max_delay: the cap of one computed backoff delay.
        max_retry_after: the longest ``Retry-After`` slept through inside one call; a longer
            one is raised as ``RateLimitError(retry_after=...)``.
        retry_ambiguous_submits: retry a submit whose outcome is unknown (may pay twice).
        retry_statuses: the HTTP statuses a GET is retried on.
    """

    max_attempts: int = attrs.field(default=DEFAULT_MAX_ATTEMPTS)
    initial_delay: float = attrs.field(
        default=DEFAULT_RETRY_INITIAL_DELAY, converter=to_seconds, validator=_non_negative
    )
    max_delay: float = attrs.field(
        default=DEFAULT_RETRY_MAX_DELAY, converter=to_seconds, validator=_non_negative
    )
    max_retry_after: float = attrs.field(
        default=DEFAULT_MAX_RETRY_AFTER, converter=to_seconds, validator=_non_negative
    )
    retry_ambiguous_submits: bool = False
    retry_statuses: frozenset[int] = attrs.field(
        default=frozenset({408, 429, 500, 502, 503, 504}), converter=frozenset
    )

    @max_attempts.validator
    def _check_attempts(self, _attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max_attempts must be an integer of at least 1 (got {value!r})")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)


UnknownStatusAction = Literal["raise", "poll"]


def _to_pair(value: Sequence[float]) -> tuple[float, float]:
    """A (soonest, latest) pair from any two-item sequence (its values checked later)."""
    items = tuple(value)
    if len(items) != 2:
        raise ValueError(f"expected_duration must be two seconds (soonest, latest) (got {value!r})")
    return items[0], items[1]


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How ``wait`` (and the orchestrator's poller) spaces status queries.

    Without usable progress, intervals grow from ``initial_delay`` by ``multiplier`` up to
    ``max_interval``, each with ``±jitter`` (a fraction). When the API reports a rising
    ``progress``, the next poll aims at the estimated finish instead (never sooner than
    ``min_interval`` nor later than ``max_interval``).

    Args:
        initial_delay: the wait before the first status query after a submit.
        multiplier: growth of the interval between queries.
        max_interval: the longest interval between two queries.
        min_interval: the shortest interval between two queries.
        jitter: relative random spread of every interval (0.2 = ±20 %).
        timeout: the default wait deadline per task; ``None`` waits forever.
        not_found_grace: for how long after a submit a 404 means "not visible yet".
        use_progress: aim polls at the finish time estimated from ``progress``.
        unknown_status: what ``wait`` does on a status it does not know: ``"raise"``
            ``UnknownStatusError`` at once, or ``"poll"`` on until the deadline.
        expected_duration: (soonest, latest) seconds a job is expected to take before the
            orchestrator has learned better: its polls aim at this window when progress
            says nothing (default: the documented 90–300 s of a video).
    """

    initial_delay: float = attrs.field(
        default=DEFAULT_POLL_INITIAL_DELAY, converter=to_seconds, validator=_non_negative
    )
    multiplier: float = attrs.field(default=DEFAULT_POLL_MULTIPLIER)
    max_interval: float = attrs.field(
        default=DEFAULT_POLL_MAX_INTERVAL, converter=to_seconds, validator=_positive
    )
    min_interval: float = attrs.field(
        default=DEFAULT_POLL_MIN_INTERVAL, converter=to_seconds, validator=_non_negative
    )
    jitter: float = attrs.field(default=DEFAULT_POLL_JITTER)
    timeout: float | None = attrs.field(
        default=DEFAULT_WAIT_TIMEOUT, converter=_optional_seconds, validator=_positive_or_none
    )
    not_found_grace: float = attrs.field(
        default=DEFAULT_NOT_FOUND_GRACE, converter=to_seconds, validator=_non_negative
    )
    use_progress: bool = True
    unknown_status: UnknownStatusAction = attrs.field(default="raise")
    expected_duration: tuple[float, float] = attrs.field(
        default=DEFAULT_EXPECTED_DURATION, converter=_to_pair
    )

    @multiplier.validator
    def _check_multiplier(self, _attribute: attrs.Attribute[float], value: float) -> None:
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 1):
            raise ValueError(f"multiplier must be a number of at least 1 (got {value!r})")

    @jitter.validator
    def _check_jitter(self, _attribute: attrs.Attribute[float], value: float) -> None:
        if not (isinstance(value, int | float) and 0 <= value < 1):
            raise ValueError(
                f"jitter must be a fraction from 0 up to (not including) 1 (got {value!r})"
            )

    @unknown_status.validator
    def _check_unknown(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ("raise", "poll"):
            raise ValueError(f"unknown_status must be 'raise' or 'poll' (got {value!r})")

    @expected_duration.validator
    def _check_expected(
        self, _attribute: attrs.Attribute[tuple[float, float]], value: tuple[float, float]
    ) -> None:
        numbers = all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in value)
        if not numbers or value[0] > value[1]:
            raise ValueError(
                "expected_duration must be two positive seconds (soonest, latest) with "
                f"soonest <= latest (got {value!r})"
            )

    def __attrs_post_init__(self) -> None:
        if self.min_interval > self.max_interval:
            raise ValueError(
                f"min_interval ({self.min_interval:g} s) must not exceed "
                f"max_interval ({self.max_interval:g} s)"
            )

    def scaled(self, factor: float) -> PollPolicy:
        """Return this policy with every duration multiplied by ``factor`` (for tests and benchmarks)."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be a positive number (got {factor!r})")
        return attrs.evolve(
            self,
            initial_delay=self.initial_delay * factor,
            max_interval=self.max_interval * factor,
            min_interval=self.min_interval * factor,
            timeout=None if self.timeout is None else self.timeout * factor,
            not_found_grace=self.not_found_grace * factor,
            expected_duration=(
                self.expected_duration[0] * factor,
                self.expected_duration[1] * factor,
            ),
        )
