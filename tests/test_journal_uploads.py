"""The journal's uploads table: record and find by content hash, and the schema 1 -> 2 upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vidgo_async import Journal, JournalError
from vidgo_async._journal import JOURNAL_SCHEMA_VERSION, fingerprint

SHA = "ab" * 32


def _downgrade_to_schema_1(path: Path) -> None:
    """Turn a fresh journal into what vidgo-async with schema 1 wrote (no uploads table)."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE uploads")
    conn.execute("PRAGMA user_version=1")
    conn.execute("UPDATE vidgo_journal SET value = '1' WHERE name = 'schema'")
    conn.commit()
    conn.close()


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


async def test_an_upload_is_found_by_its_content_hash(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with await Journal.open(path) as journal:
        assert await journal.find_upload(SHA) is None
        await journal.record_upload(
            SHA, "https://s/a.png", expires_at=1000.0, size=3, source="frames/a.png"
        )
        await journal.record_upload(
            SHA, "https://s/b.png", expires_at=2000.0, size=3, source="frames/a.png"
        )
    async with await Journal.open(path, readonly=True) as journal:
        assert await journal.find_upload(SHA) == ("https://s/b.png", 2000.0)
        with pytest.raises(JournalError, match="read-only"):
            await journal.record_upload(SHA, "https://s/c.png", expires_at=1, size=1, source="x")
    assert _version(path) == JOURNAL_SCHEMA_VERSION == 2


async def test_a_schema_1_journal_is_upgraded_when_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with await Journal.open(path) as journal:
        await journal.record_intent(
            "a", fingerprint("seedance-2", {"prompt": "x"}), "seedance-2", {"prompt": "x"}
        )
    _downgrade_to_schema_1(path)
    async with await Journal.open(path, readonly=True) as journal:
        assert await journal.find_upload(SHA) is None  # read-only: not upgraded, still readable
    assert _version(path) == 1
    async with await Journal.open(path) as journal:
        assert (await journal.get("a")) is not None  # the jobs are kept
        await journal.record_upload(SHA, "https://s/a.png", expires_at=5.0, size=1, source="a")
        assert await journal.find_upload(SHA) == ("https://s/a.png", 5.0)
    assert _version(path) == 2
