"""The journal's cheaper checksum and fingerprint paths give exactly the full computations."""

from __future__ import annotations

from typing import Any

import pytest

from vidgo_async._jobs import request_fingerprint
from vidgo_async._journal_entry import canonical_json, fingerprint_of_json
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
