"""Tests of full-jitter backoff (T06) and Retry-After parsing (T05)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from vidgo_async._backoff import full_jitter, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 8])
def test_full_jitter_bounds_and_mean(attempt: int) -> None:
    """10,000 draws lie in [0, b] with mean within ±5 % of b/2 (T06)."""
    rng = random.Random(attempt)
    base, cap = 0.5, 20.0
    bound = min(cap, base * 2 ** (attempt - 1))
    draws = [full_jitter(attempt, base=base, cap=cap, rng=rng) for _ in range(10_000)]
    assert all(0 <= d <= bound for d in draws)
    mean = sum(draws) / len(draws)
    assert abs(mean - bound / 2) <= 0.05 * bound / 2


def test_full_jitter_spreads_simultaneous_failures() -> None:
    """100 clients failing together do not retry in lockstep: < 10 % in any 100 ms bucket (T06)."""
    rng = random.Random(7)
    delays = [full_jitter(4, base=0.5, cap=20.0, rng=rng) for _ in range(100)]
    buckets: dict[int, int] = {}
    for delay in delays:
        buckets[int(delay * 10)] = buckets.get(int(delay * 10), 0) + 1
    assert max(buckets.values()) < 10


@pytest.mark.parametrize("attempt", [0, -3, 10_000, 2**40])
def test_full_jitter_is_overflow_safe(attempt: int) -> None:
    """Huge or silly attempt numbers stay within the cap."""
    assert 0 <= full_jitter(attempt, base=0.5, cap=20.0, rng=random.Random(1)) <= 20.0


def test_full_jitter_zero_base_or_cap_is_zero() -> None:
    """A zero base or cap means no wait."""
    assert full_jitter(3, base=0, cap=10) == 0
    assert full_jitter(3, base=1, cap=0) == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after-ms": "3000"}, 3.0),
        ({"Retry-After-Ms": "1500", "Retry-After": "9"}, 1.5),
        (
            {
                "Retry-After": format_datetime(
                    datetime.fromtimestamp(NOW + 3, timezone.utc), usegmt=True
                )
            },
            3.0,
        ),
        ({}, None),
    ],
)
def test_parse_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    """Seconds, milliseconds and HTTP dates are understood (T04)."""
    value = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "0",
        "inf",
        "nan",
        "99999999999999999999x",
        "Mon, 29 Sep 100000 10:00:00 GMT",
        "x" * 10_000,
        "",
        format_datetime(datetime.fromtimestamp(NOW, timezone.utc) - timedelta(days=1), usegmt=True),
    ],
)
def test_malformed_retry_after_is_absent(value: str) -> None:
    """A malformed, negative, past or overlong value counts as absent (T05)."""
    assert parse_retry_after({"Retry-After": value}, now=NOW) is None


def test_misspelt_weekday_still_parses_as_a_date() -> None:
    """A bad weekday name is tolerated; the date decides (a far one is raised by the transport)."""
    value = parse_retry_after({"Retry-After": "Zun, 29 Sep 2024 10:00:00 GMT"}, now=NOW)
    assert value is not None
    assert value > 120


@given(st.text(max_size=300), st.text(max_size=80))
def test_parse_retry_after_never_crashes(value: str, millis: str) -> None:
    """Any header text gives None or a finite positive delay (T05, Hypothesis)."""
    result = parse_retry_after({"Retry-After": value, "retry-after-ms": millis}, now=NOW)
    assert result is None or (0 < result < float("inf"))


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("Retry-After", "3")], 3.0),
        ([("RETRY-AFTER-MS", "1500"), ("retry-after", "9")], 1.5),
        ([("Retry-After", "2"), ("retry-after", "5")], 2.0),
        ([("Content-Type", "application/json")], None),
        ([], None),
    ],
)
def test_parse_retry_after_reads_aiohttp_headers_in_place(
    pairs: list[tuple[str, str]], expected: float | None
) -> None:
    """aiohttp's case-insensitive headers give the same answer as a plain dict of them."""
    proxy = CIMultiDictProxy(CIMultiDict(pairs))
    value = parse_retry_after(proxy, now=NOW)
    assert value == parse_retry_after(dict(proxy), now=NOW)
    assert value == (None if expected is None else pytest.approx(expected))
