"""The journal's cheaper checksum and fingerprint paths give exactly the full computations."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async._jobs import request_fingerprint
from vidgo_async._journal_entry import (
    RecordedTask,
    canonical_json,
    compact_json,
    fingerprint_of_json,
)
from vidgo_async._journal_store import _checksum_from, _checksum_head, row_checksum

ROWS: list[tuple[Any, ...]] = [
    ("k", "f" * 64, "seedance-2", '{"prompt":"kite"}', "submitting", None, None, None, None,
     "[]", 1, None, 1.5, 1.5, None, None),
    ("ключ \u2603", "fp", "m", '{"prompt":"caf\u00e9 \\"q\\" \\n"}', "finished", "t-1",
     '{"task_id":"t-1","files":[]}', "E", "msg \u00e9\n\t\"", '["a.mp4"]', 3, "tok",
     1_700_000_000.0, 1e-7, float("inf"), 2.0),
    ("", "", "", "", "", "", "", "", "", "", 0, "", 0.0, -0.0, 0.1, 1e300),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS)
def test_the_checksum_from_a_remembered_head_is_row_checksum(row: tuple[Any, ...]) -> None:
    head = _checksum_head(row)
    assert _checksum_from(head, row) == row_checksum(row)
    changed = (*row[:4], "in_flight", "t-9", *row[6:])
    assert _checksum_from(head, changed) == row_checksum(changed)  # the head is reusable
    assert _checksum_from(head, changed) != _checksum_from(head, row)


@pytest.mark.parametrize(
    "data", [{"prompt": "kite", "duration": 5}, {"z": [1, 2.5, None], "a": "caf\u00e9 \u2603"}, {}]
)
def test_the_fingerprint_of_the_canonical_json_is_request_fingerprint(
    data: dict[str, Any],
) -> None:
    assert fingerprint_of_json("seedance-2", canonical_json(data)) == request_fingerprint(
        "seedance-2", data
    )


@pytest.mark.parametrize("row", ROWS)
def test_the_row_checksum_is_the_format_old_journals_hold(row: tuple[Any, ...]) -> None:
    """sha256 of ``json.dumps(row, separators=(",", ":"))``, as every journal was written."""
    text = json.dumps(list(row), separators=(",", ":"))
    assert row_checksum(row) == hashlib.sha256(text.encode()).hexdigest()


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_values)
def test_compact_json_is_json_dumps_compact(value: Any) -> None:
    assert compact_json(value) == json.dumps(value, separators=(",", ":"))
    assert compact_json([value]) == json.dumps([value], separators=(",", ":"))


def test_compact_json_writes_a_recorded_task_as_its_text_and_refuses_what_json_does() -> None:
    text = '{"task_id":"t","status":"finished"}'
    recorded = RecordedTask(text)
    assert compact_json(["k", recorded, 1.5]) == json.dumps(["k", text, 1.5], separators=(",", ":"))
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact_json([object()])


@given(st.dictionaries(st.text(max_size=6), _values, max_size=5))
def test_canonical_json_is_json_dumps_canonical(value: dict[str, Any]) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected


def test_a_value_holding_a_cycle_is_refused_as_json_dumps_refuses_it() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(ValueError, match="Circular reference"):
        canonical_json(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        compact_json([looped])
