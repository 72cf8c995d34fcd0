"""Tests of the compiled field checks: JSON-schema patterns and the bounds a message names."""

from __future__ import annotations

import pytest

from vidgo_async import InputValidationError, validate_input
from vidgo_async._catalog import catalog, number_text
from vidgo_async._field_checks import schema_regex

# The two patterns of the docs (gpt-image-2's size, seedream-5.0-lite's size).
GPT_SIZE = r"^\d{3,4}x\d{3,4}$"
SEEDREAM_SIZE = r"^\d+[xX]\d+$"


@pytest.mark.parametrize("pattern", [GPT_SIZE, SEEDREAM_SIZE])
@pytest.mark.parametrize("value", ["1024x1024", "2048x1536"])
def test_a_schema_pattern_accepts_what_it_documents(pattern: str, value: str) -> None:
    """A size written the documented way matches its pattern."""
    assert schema_regex(pattern).search(value) is not None


@pytest.mark.parametrize("pattern", [GPT_SIZE, SEEDREAM_SIZE])
@pytest.mark.parametrize(
    "value",
    ["1024x1024\n", "１０２４x１０２４", "١٠٢٤x١٠٢٤", "1024x1024 ", " 1024x1024"],
)
def test_a_schema_pattern_reads_dollar_and_digits_as_ecma_does(pattern: str, value: str) -> None:
    """``$`` is the very end (no final newline) and ``\\d`` is an ASCII digit, as in ECMA-262."""
    assert schema_regex(pattern).search(value) is None


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (r"^a[$]$", "a$", True),
        (r"^a\$$", "a$", True),
        (r"^a\$$", "a$\n", False),
        (r"^[^$]+$", "abc", True),
    ],
)
def test_a_dollar_in_a_class_or_escaped_stays_a_dollar(
    pattern: str, value: str, matches: bool
) -> None:
    """Only an anchor ``$`` is rewritten; a literal one in a class or escaped is kept."""
    assert (schema_regex(pattern).search(value) is not None) is matches


def test_a_size_with_a_trailing_newline_is_refused_before_sending() -> None:
    """gpt-image-2's size pattern refuses ``"1024x1024\\n"``, naming the field and the pattern."""
    with pytest.raises(InputValidationError) as info:
        validate_input("gpt-image-2", {"prompt": "a cat", "size": "1024x1024\n"})
    assert [issue.field for issue in info.value.issues] == ["$.input.size"]
    assert GPT_SIZE in str(info.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [(2147483647, "2147483647"), (2147483647.0, "2147483647"), (0.5, "0.5"), (-3, "-3")],
)
def test_a_bound_is_written_as_the_docs_give_it(value: float, text: str) -> None:
    """Bounds are written in full, never rounded to six digits (``2.14748e+09``)."""
    assert number_text(value) == text


def test_an_out_of_range_seed_names_the_documented_maximum() -> None:
    """The seed error and the ``models`` listing show the real maximum, 2147483647."""
    with pytest.raises(InputValidationError) as info:
        validate_input("qwen-image-3.0/text-to-image", {"prompt": "a cat", "seed": 2147483648})
    assert "from 0 to 2147483647 (got 2147483648)" in str(info.value)
    seed = catalog().models["happy-horse"].field("seed")
    assert seed is not None
    assert "0–2147483647" in seed.describe()
