"""Tests of the frozen configuration values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from vidgo_async import PollPolicy, RetryPolicy, Timeout


def test_timeout_coerce() -> None:
    """Seconds become the total deadline; None the defaults; a Timeout stays."""
    assert Timeout.coerce(None) == Timeout()
    assert Timeout.coerce(10).total == 10
    assert Timeout.coerce(timedelta(seconds=2)).connect == 2
    custom = Timeout(connect=1, read=2, total=3)
    assert Timeout.coerce(custom) is custom


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_timeout_rejects_bad_values(bad: float) -> None:
    """Non-positive or non-finite limits are refused."""
    with pytest.raises(ValueError, match="positive"):
        Timeout(total=bad)


def test_values_are_frozen() -> None:
    """Config objects cannot be mutated; evolve makes variants."""
    policy = RetryPolicy()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_attempts = 9  # type: ignore[misc]
    assert attrs.evolve(policy, max_attempts=9).max_attempts == 9


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_retry_policy_attempts(bad: Any) -> None:
    """max_attempts must be a positive integer."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=bad)


def test_retry_policy_defaults() -> None:
    """Defaults match RELIABILITY.md."""
    policy = RetryPolicy()
    assert policy.max_attempts == 4
    assert policy.max_retry_after == 120
    assert policy.retry_statuses == {408, 429, 500, 502, 503, 504}
    assert not policy.retry_ambiguous_submits
    assert RetryPolicy.none().max_attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"multiplier": 0.5}, {"jitter": 1.0}, {"unknown_status": "ignore"}, {"min_interval": 99}],
)
def test_poll_policy_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    """Impossible poll policies are refused with ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        PollPolicy(**kwargs)


def test_poll_policy_scaled() -> None:
    """scaled multiplies every duration."""
    policy = PollPolicy().scaled(0.01)
    assert policy.initial_delay == pytest.approx(0.02)
    assert policy.max_interval == pytest.approx(0.3)
    assert policy.timeout == pytest.approx(18)
    assert policy.not_found_grace == pytest.approx(0.6)
