"""No re-select: a write computes its row from the one remembered and updates it conditionally."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vidgo_async import JobClaimedError, JournalError
from vidgo_async._jobs import request_fingerprint
from vidgo_async._journal import Journal, JournalState, fingerprint
from vidgo_async._journal_entry import CanonicalInput, canonical_json, fingerprint_of_json

DATA: dict[str, object] = {"prompt": "a kite over dunes", "duration": 5}
FP = fingerprint("seedance-2", DATA)


async def test_a_job_s_writes_after_its_intent_never_read_its_row(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    statements: list[str] = []
    async with Journal(path) as journal:
        await journal.record_intent("k", FP, "seedance-2", DATA)
        conn = journal._conn
        assert conn is not None
        conn.set_trace_callback(statements.append)
        await journal.record_submitted("k", "task-1")
        entry = await journal.record_terminal("k", "finished", {"task_id": "task-1"})
        conn.set_trace_callback(None)
        assert entry.state is JournalState.FINISHED
    reads = [s for s in statements if s.startswith("SELECT") and "WHERE key = " in s]
    updates = [s for s in statements if s.startswith("UPDATE jobs")]
    assert reads == []
    assert len(updates) == 2
    async with Journal(path, readonly=True) as reopened:  # every checksum matches on disk
        stored = await reopened.get("k")
        assert stored == entry


async def test_integer_times_are_checksummed_as_the_reals_sqlite_returns(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with Journal(path, _clock=lambda: 1_700_000_000) as journal:
        await journal.record_intent("k", FP, "seedance-2", DATA)
        written = await journal.record_submitted("k", "task-1")
    async with Journal(path, readonly=True) as reopened:
        stored = await reopened.get("k")
    assert stored == written
    assert stored is not None
    assert stored.submitted_at == 1_700_000_000.0


async def test_a_row_another_process_changed_is_read_again_before_the_write(
    tmp_path: Path,
) -> None:
    """A stale remembered row never decides: the update misses and the row is read again."""
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as ours, Journal(path) as theirs:
        await ours.record_intent("k", FP, "seedance-2", DATA)
        await theirs.record_submitted("k", "task-theirs")
        with pytest.raises(JournalError, match="already holds task task-theirs"):
            await ours.record_submitted("k", "task-ours")
        stored = await ours.get("k")
        assert stored is not None
        assert stored.task_id == "task-theirs"


async def test_a_claim_refused_on_a_stale_row_is_decided_again_on_the_stored_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as ours, Journal(path) as theirs:
        await ours.record_intent("k", FP, "seedance-2", DATA)
        await theirs.record_failed("k", "APIStatusError", "refused")  # may be submitted again
        again = await ours.record_intent("k", FP, "seedance-2", DATA)
        assert (again.state, again.attempts) == (JournalState.SUBMITTING, 2)


async def test_an_intent_for_a_new_key_is_one_insert_without_a_read(tmp_path: Path) -> None:
    """A key the store does not remember is first tried as a new row: no read on the way."""
    statements: list[str] = []
    async with Journal(tmp_path / "journal.sqlite") as journal:
        await journal.record_intent("warm-up", FP, "seedance-2", DATA)
        conn = journal._conn
        assert conn is not None
        conn.set_trace_callback(statements.append)
        await journal.record_intent("k", FP, "seedance-2", DATA)
        conn.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["BEGIN", "INSERT", "COMMIT"]


async def test_an_intent_for_a_key_only_another_process_wrote_is_decided_on_its_row(
    tmp_path: Path,
) -> None:
    """The insert refused by the key's uniqueness falls back to the stored row and its rules."""
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as ours, Journal(path) as theirs:
        await theirs.record_intent("k", FP, "seedance-2", DATA)
        await theirs.record_submitted("k", "task-theirs")
        with pytest.raises(JobClaimedError, match="as task task-theirs"):
            await ours.record_intent("k", FP, "seedance-2", DATA)
        await theirs.record_failed("k", "APIStatusError", "refused")
        ours_entry = await ours.record_intent("k", FP, "seedance-2", DATA)
        assert (ours_entry.state, ours_entry.attempts) == (JournalState.SUBMITTING, 2)
        assert await theirs.get("k") == ours_entry


async def test_recording_a_task_id_is_one_guarded_update_without_a_read(tmp_path: Path) -> None:
    """The task-id uniqueness check rides in the update itself; no SELECT on the way."""
    statements: list[str] = []
    async with Journal(tmp_path / "journal.sqlite") as journal:
        await journal.record_intent("k", FP, "seedance-2", DATA)
        conn = journal._conn
        assert conn is not None
        conn.set_trace_callback(statements.append)
        entry = await journal.record_submitted("k", "task-1")
        conn.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["BEGIN", "UPDATE", "COMMIT"]
    assert "NOT EXISTS" in statements[1]
    assert (entry.state, entry.task_id) == (JournalState.IN_FLIGHT, "task-1")


async def test_a_task_id_another_process_recorded_is_refused_on_the_stored_rows(
    tmp_path: Path,
) -> None:
    """The guarded update misses; the write reads, finds the holder and refuses, unchanged."""
    path = tmp_path / "journal.sqlite"
    other = {"prompt": "another clip", "duration": 5}
    async with Journal(path) as ours, Journal(path) as theirs:
        await ours.record_intent("k", FP, "seedance-2", DATA)
        await theirs.record_intent("j", fingerprint("seedance-2", other), "seedance-2", other)
        await theirs.record_submitted("j", "task-1")
        with pytest.raises(JournalError, match="already belongs to job 'j'"):
            await ours.record_submitted("k", "task-1")
        stored = await ours.get("k")
        assert stored is not None
        assert (stored.state, stored.task_id) == (JournalState.SUBMITTING, None)


async def _rows_after_a_job(path: Path, given: object) -> list[tuple[object, ...]]:
    """Every stored column (checksums included) after one job's three writes."""
    assert isinstance(given, dict)
    async with Journal(path, _clock=lambda: 1_700_000_000.5) as journal:
        await journal.record_intent("k", FP, "seedance-2", given)
        await journal.record_submitted("k", "task-1")
        await journal.record_terminal("k", "finished", {"task_id": "task-1", "status": "finished"})
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM jobs ORDER BY seq").fetchall()
    finally:
        conn.close()


async def test_an_intent_given_its_canonical_json_stores_the_same_row(tmp_path: Path) -> None:
    """The recorder's pre-encoded input (``CanonicalInput``) is stored byte for byte as a
    plain mapping is, checksum included, and its fingerprint is ``request_fingerprint``'s."""
    given = CanonicalInput({"prompt": "a kite over dunes", "duration": 5, "notes": "ünïcode"})
    assert given.json == canonical_json(dict(given))
    assert fingerprint_of_json("seedance-2", given.json) == request_fingerprint("seedance-2", given)
    plain = dict(given)
    same_data = CanonicalInput(DATA)
    assert await _rows_after_a_job(tmp_path / "a.sqlite", same_data) == await _rows_after_a_job(
        tmp_path / "b.sqlite", dict(DATA)
    )
    async with Journal(tmp_path / "c.sqlite") as journal:
        fp = fingerprint("seedance-2", plain)
        entry = await journal.record_intent("u", fp, "seedance-2", given)
        assert entry.input == plain
        assert type(entry.input) is dict  # read back from its JSON, not the caller's object
        with pytest.raises(ValueError, match="does not match"):
            await journal.record_intent("v", FP, "seedance-2", given)


async def test_a_canonical_inputs_fingerprint_is_hashed_once_per_model(tmp_path: Path) -> None:
    """``CanonicalInput.fingerprint`` is ``fingerprint_of_json``'s, remembered per model, and
    ``record_intent`` still refuses a fingerprint of another model or input."""
    given = CanonicalInput({"prompt": "a kite over dunes", "duration": 5})
    first = given.fingerprint("seedance-2")
    assert first == fingerprint_of_json("seedance-2", given.json)
    assert given.fingerprint("seedance-2") is first  # remembered, not hashed again
    other = given.fingerprint("kling-3")
    assert other == fingerprint_of_json("kling-3", given.json) != first
    async with Journal(tmp_path / "journal.sqlite") as journal:
        with pytest.raises(ValueError, match="does not match"):
            await journal.record_intent("u", other, "seedance-2", given)
        entry = await journal.record_intent("u", first, "seedance-2", given)
    assert entry.fingerprint == first
