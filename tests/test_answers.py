"""Tests of what one API answer says: JSON decoding (the scanner fast path) and its limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async._answers import decode

# JSON nested deeper than Python's parser goes, far under the 1 MiB cap.
DEEPLY_NESTED = b'{"code":200,"data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"


def test_decode_reads_too_deeply_nested_json_as_not_json() -> None:
    """JSON nested past Python's recursion limit decodes as "not JSON", not a RecursionError."""
    value, text = decode(DEEPLY_NESTED)
    assert value is None
    assert text == DEEPLY_NESTED.decode()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b'{"a": 1}',
        b' {"a": 1}\n',
        b'{"a": 1} trailing',
        b'{"a": 1}{"b": 2}',
        b"\xef\xbb\xbf{}",
        b"NaN",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe{}",
        b'{"a": "\xe2\x82\xac"}',
    ],
)
def test_decode_matches_json_loads(body: bytes) -> None:
    """The scanner fast path gives exactly what json.loads of the text gives."""
    text = body.decode("utf-8", errors="replace")
    try:
        expected: object = json.loads(text)
    except ValueError:
        expected = None
    value, decoded_text = decode(body)
    assert decoded_text == text
    assert value == expected or (value != value and expected != expected)


JSONISH = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60
) | st.from_regex(
    r"\s*(\{\}|\[\]|-?[0-9]{1,5}(\.[0-9]+)?|\"[a-z]*\"|true|null|NaN)\s*.{0,3}", fullmatch=True
)


@given(JSONISH)
def test_decode_matches_json_loads_on_any_text(text: str) -> None:
    """For any text the parsed value equals json.loads' (None when it raises) (Hypothesis)."""
    try:
        expected: object = json.loads(text)
    except ValueError:
        expected = None
    value, _ = decode(text.encode("utf-8"))
    assert value == expected or (value != value and expected != expected)
