"""Tests for the crash-safe journal (vidgo_async._journal): durability, resume rules, damage."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from vidgo_async import (
    JobClaimedError,
    JournalConflictError,
    JournalError,
    Task,
    TaskFile,
    TaskStatus,
)
from vidgo_async._journal import (
    APPLICATION_ID,
    Journal,
    JournalEntry,
    JournalState,
    fingerprint,
)
from vidgo_async.testing._stats import fingerprint as emulator_fingerprint

MODEL = "seedance-2"


def _input(n: int) -> dict[str, object]:
    return {"prompt": f"clip number {n}", "duration": 5, "resolution": "720p"}


def _finished(task_id: str) -> Task:
    return Task(
        task_id=task_id,
        status=TaskStatus.FINISHED,
        files=(TaskFile(file_url=f"https://cdn.example/{task_id}.mp4", file_type="video"),),
    )


async def _intent(journal: Journal, key: str, n: int = 0) -> JournalEntry:
    data = _input(n)
    return await journal.record_intent(key, fingerprint(MODEL, data), MODEL, data)


async def _fill(path: Path, count: int) -> list[JournalEntry]:
    async with Journal(path) as journal:
        for n in range(count):
            key = f"job-{n}"
            await _intent(journal, key, n)
            await journal.record_submitted(key, f"task-{n}")
            await journal.record_terminal(key, "finished", _finished(f"task-{n}"))
        return await journal.entries()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter running our own snippet
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- fingerprint ------------------------------------------------------------------------------


def test_fingerprint_ignores_key_order_and_matches_the_emulator() -> None:
    """The fingerprint is canonical (key order, spacing) and the emulator counts jobs the same way."""
    a = {"prompt": "été", "duration": 5}
    b = {"duration": 5, "prompt": "été"}
    assert fingerprint(MODEL, a) == fingerprint(MODEL, b) == emulator_fingerprint(MODEL, a)
    assert fingerprint(MODEL, a) != fingerprint("seedance-1.5-pro", a)
    assert fingerprint(MODEL, a) != fingerprint(MODEL, {**a, "duration": 6})


# -- the record lifecycle -----------------------------------------------------------------------


async def test_lifecycle_records_every_step(tmp_path: Path) -> None:
    """Intent, task id, terminal task and downloads are all read back as recorded."""
    clock = iter(float(t) for t in range(100, 200))
    journal = Journal(tmp_path / "out" / "journal.sqlite", _clock=lambda: next(clock))
    async with journal:
        entry = await journal.record_intent(
            "a", fingerprint(MODEL, _input(1)), MODEL, _input(1), callback_token="tok"
        )
        assert entry.state is JournalState.SUBMITTING
        assert entry.attempts == 1
        assert entry.submit_in_doubt
        assert entry.callback_token == "tok"
        assert entry.input == _input(1)
        entry = await journal.record_submitted("a", "task-1")
        assert (entry.state, entry.task_id, entry.submitted_at) == (
            JournalState.IN_FLIGHT,
            "task-1",
            102.0,  # the clock's first tick dated the journal's creation
        )
        assert entry.needs_poll
        assert not entry.submit_in_doubt
        entry = await journal.record_terminal("a", JournalState.FINISHED, _finished("task-1"))
        assert entry.task == _finished("task-1")
        assert entry.finished_at == 103.0
        assert not entry.needs_poll
        entry = await journal.record_download("a", tmp_path / "out" / "a.mp4")
        assert entry.files == (str(tmp_path / "out" / "a.mp4"),)
        assert entry.created_at == 101.0
        assert await journal.get("a") == entry
        assert await journal.find_task("task-1") == entry
        assert await journal.get("missing") is None
        assert await journal.find_task("nope") is None
        summary = await journal.summary()
    assert summary == {
        "submitting": 0,
        "in_flight": 0,
        "unknown": 0,
        "finished": 1,
        "failed": 0,
        "timeout": 0,
        "lost": 0,
    }
    assert "closed" in repr(journal)


async def test_reopened_journal_keeps_everything_in_order(tmp_path: Path) -> None:
    """A journal reopened later lists every entry in first-recorded order."""
    written = await _fill(tmp_path / "j.sqlite", 12)
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        read = await journal.entries()
    assert read == written
    assert [e.key for e in read] == [f"job-{n}" for n in range(12)]


async def test_failed_unknown_and_timeout_states(tmp_path: Path) -> None:
    """Failures, unknown submits and timeouts are recorded with their errors."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        for key in ("rejected", "lost", "slow", "broken"):
            await _intent(journal, key)
        entry = await journal.record_failed("rejected", "BadRequestError", "duration out of range")
        assert entry.state is JournalState.FAILED
        assert entry.error == {"type": "BadRequestError", "message": "duration out of range"}
        entry = await journal.record_unknown("lost", TimeoutError("read timed out"))
        assert entry.state is JournalState.UNKNOWN
        assert entry.error == {"type": "TimeoutError", "message": "read timed out"}
        assert entry.submit_in_doubt
        await journal.record_submitted("slow", "task-slow")
        entry = await journal.record_terminal(
            "slow", "timeout", None, error_type="WaitTimeoutError", message="still running"
        )
        assert entry.state is JournalState.TIMEOUT
        assert entry.needs_poll
        await journal.record_submitted("broken", "task-broken")
        failed = Task(task_id="task-broken", status=TaskStatus.FAILED, error_message="nsfw")
        entry = await journal.record_terminal("broken", "failed", failed)
        assert entry.error == {"type": "TaskFailedError", "message": "nsfw"}
        assert (await journal.summary())["failed"] == 2


async def test_record_terminal_rejects_non_terminal_states(tmp_path: Path) -> None:
    """Only finished, failed and timeout are outcomes."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        await _intent(journal, "a")
        with pytest.raises(ValueError, match="finished, failed, timeout or lost"):
            await journal.record_terminal("a", "in_flight", None)


# -- resume rules --------------------------------------------------------------------------------


async def test_intent_again_is_allowed_only_without_a_live_task(tmp_path: Path) -> None:
    """A rejected job may be claimed again, an unknown one only on request; one holding a task never."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        await _intent(journal, "unknown")
        await journal.record_unknown("unknown", "no answer")
        with pytest.raises(JobClaimedError, match="not submitted again"):
            await _intent(journal, "unknown")
        again = await journal.record_intent(
            "unknown", fingerprint(MODEL, _input(0)), MODEL, _input(0), retry_in_doubt=True
        )
        assert (again.state, again.attempts, again.error) == (JournalState.SUBMITTING, 2, None)
        with pytest.raises(JobClaimedError, match="another run may be submitting it"):
            await _intent(journal, "unknown")  # claimed: submitting, by someone

        await _intent(journal, "rejected")
        await journal.record_failed("rejected", "ServerError", "HTTP 503")
        again = await _intent(journal, "rejected")
        assert again.attempts == 2

        await _intent(journal, "live")
        await journal.record_submitted("live", "task-live")
        with pytest.raises(JobClaimedError, match="already recorded as task task-live") as held:
            await _intent(journal, "live")
        assert (held.value.key, held.value.task_id) == ("live", "task-live")
        await journal.record_terminal("live", "lost", _finished("task-live"))
        with pytest.raises(JobClaimedError, match="poll its task"):
            await _intent(journal, "live")
        await journal.record_terminal("live", "finished", _finished("task-live"))
        with pytest.raises(JobClaimedError, match="poll its task"):
            await _intent(journal, "live")
        assert (await journal.get("live")).state is JournalState.FINISHED  # type: ignore[union-attr]


async def test_fingerprint_conflict_is_refused(tmp_path: Path) -> None:
    """The same key with another request raises JournalConflictError naming the key and a fix."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        assert await journal.check_fingerprint("clip", fingerprint(MODEL, _input(1))) is None
        await _intent(journal, "clip", 1)
        same = await journal.check_fingerprint("clip", fingerprint(MODEL, _input(1)))
        assert same is not None
        assert same.key == "clip"
        with pytest.raises(JournalConflictError, match=r"'clip'.*different request") as info:
            await journal.check_fingerprint("clip", fingerprint(MODEL, _input(2)))
        assert info.value.recorded == fingerprint(MODEL, _input(1))
        assert info.value.given == fingerprint(MODEL, _input(2))
        assert "HINT" in str(info.value)
        with pytest.raises(JournalConflictError):
            await _intent(journal, "clip", 2)
        assert (await journal.get("clip")).input == _input(1)  # type: ignore[union-attr]


async def test_intent_checks_the_fingerprint_against_the_request(tmp_path: Path) -> None:
    """A fingerprint that does not belong to the model and input is a caller bug."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        with pytest.raises(ValueError, match="does not match"):
            await journal.record_intent("a", "0" * 64, MODEL, _input(1))
        entry = await journal.record_intent(
            "b",
            fingerprint(MODEL, _input(1)),
            MODEL,
            '{"resolution":"720p","duration":5,"prompt":"clip number 1"}',
        )
        assert entry.input == _input(1)


async def test_duplicate_records_collapse_and_never_regress(tmp_path: Path) -> None:
    """Repeated records are no-ops; finished is final; a second task id is refused."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        await _intent(journal, "a")
        first = await journal.record_submitted("a", "task-a")
        assert (await journal.record_submitted("a", "task-a")).submitted_at == first.submitted_at
        with pytest.raises(JournalError, match="second task"):
            await journal.record_submitted("a", "task-other")
        assert (await journal.record_unknown("a", "late")).state is JournalState.IN_FLIGHT
        await journal.record_terminal("a", "timeout", None)
        await journal.record_terminal("a", "finished", _finished("task-a"), ["a.mp4"])
        await journal.record_terminal("a", "finished", _finished("task-a"))
        await journal.record_failed("a", "TaskFailedError", "late failure")
        await journal.record_terminal("a", "timeout", None)
        entry = await journal.get("a")
        assert entry is not None
        assert (entry.state, entry.files, entry.error) == (JournalState.FINISHED, ("a.mp4",), None)
        with pytest.raises(JournalError, match="holds task task-a"):
            await journal.record_terminal("a", "finished", _finished("task-b"))
        assert len(await journal.entries()) == 1


async def test_records_for_unknown_keys_are_refused(tmp_path: Path) -> None:
    """Every record but the intent needs an intent first."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        with pytest.raises(JournalError, match="no intent"):
            await journal.record_submitted("ghost", "task-1")
        with pytest.raises(JournalError, match="no intent"):
            await journal.record_unknown("ghost", "x")
        with pytest.raises(JournalError, match="no intent"):
            await journal.record_failed("ghost", "E", "x")
        with pytest.raises(JournalError, match="no intent"):
            await journal.record_download("ghost", "a.mp4")
        assert await journal.entries() == []


async def test_forget_removes_an_entry(tmp_path: Path) -> None:
    """forget() deletes one entry and says whether it existed."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        await _intent(journal, "a")
        assert await journal.forget("a")
        assert not await journal.forget("a")
        assert await journal.get("a") is None


# -- opening ---------------------------------------------------------------------------------


async def test_open_options_missing_readonly_directory_closed(tmp_path: Path) -> None:
    """create=False, readonly, a directory and a closed journal give clear JournalErrors."""
    with pytest.raises(JournalError, match="no journal found"):
        await Journal.open(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(JournalError, match="directory"):
        await Journal.open(tmp_path)
    await _fill(tmp_path / "j.sqlite", 2)
    async with Journal(tmp_path / "j.sqlite", readonly=True) as journal:
        assert len(await journal.entries()) == 2
        with pytest.raises(JournalError, match="read-only"):
            await _intent(journal, "new")
        with pytest.raises(JournalError, match="read-only"):
            await journal.forget("job-0")
    journal = await Journal.open(tmp_path / "j.sqlite")
    await journal.aclose()
    await journal.aclose()
    with pytest.raises(JournalError, match="closed"):
        await journal.entries()


async def test_an_empty_file_becomes_a_journal(tmp_path: Path) -> None:
    """A zero-byte file (a crash before the first commit) is initialized, not refused."""
    path = tmp_path / "j.sqlite"
    path.touch()
    async with Journal(path) as journal:
        await _intent(journal, "a")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def _foreign_sqlite(path: Path, *, application_id: int = 0, table: bool = True) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id={application_id}")
    if table:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO photos (name) VALUES ('holiday.jpg')")
    else:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "not an SQLite database"),
        ("random", "not an SQLite database"),
        ("foreign-sqlite", "without the journal tables"),
        ("foreign-app", "another application"),
        ("empty-sqlite", "without the journal tables"),
        ("newer", "newer than this vidgo-async"),
        ("wrong-magic", "wrong magic"),
    ],
)
async def test_foreign_or_newer_files_are_refused_untouched(
    tmp_path: Path, kind: str, message: str
) -> None:
    """A file that is not our journal raises JournalError and is left byte-for-byte as it was."""
    path = tmp_path / "journal.sqlite"
    if kind == "text":
        path.write_text('{"id": "a", "prompt": "not a journal"}\n' * 20)
    elif kind == "random":
        path.write_bytes(random.Random(7).randbytes(8192))
    elif kind == "foreign-sqlite":
        _foreign_sqlite(path)
    elif kind == "foreign-app":
        _foreign_sqlite(path, application_id=0x12345678)
    elif kind == "empty-sqlite":
        _foreign_sqlite(path, table=False)
    else:
        await _fill(path, 3)
        conn = sqlite3.connect(path)
        if kind == "newer":
            conn.execute("PRAGMA user_version=99")
        else:
            conn.execute("UPDATE vidgo_journal SET value = 'other' WHERE name = 'magic'")
        conn.commit()
        conn.close()
    before = _sha(path)
    with pytest.raises(JournalError, match=message) as info:
        await Journal.open(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert _sha(path) == before


# -- durability and processes ---------------------------------------------------------------------

_KILL_AFTER_WRITES = """
import os, signal, sys
import anyio
from vidgo_async._journal import Journal, fingerprint

async def main():
    journal = await Journal.open(sys.argv[1])
    data = {"prompt": "kill me", "duration": 5}
    await journal.record_intent("a", fingerprint("seedance-2", data), "seedance-2", data)
    await journal.record_submitted("a", "task-a")
    await journal.record_intent("b", fingerprint("seedance-2", data), "seedance-2", data)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint

anyio.run(main)
"""


async def test_records_survive_sigkill_right_after_they_return(tmp_path: Path) -> None:
    """A process killed right after its writes leaves every returned record on disk."""
    path = tmp_path / "journal.sqlite"
    result = await anyio.to_thread.run_sync(lambda: _run_python(_KILL_AFTER_WRITES, str(path)))
    assert result.returncode == -9, result.stderr
    async with Journal(path) as journal:
        a = await journal.get("a")
        b = await journal.get("b")
    assert a is not None
    assert (a.state, a.task_id) == (JournalState.IN_FLIGHT, "task-a")
    assert b is not None
    assert b.state is JournalState.SUBMITTING
    assert b.submit_in_doubt


_WRITER = """
import sys
import anyio
from vidgo_async._journal import Journal, fingerprint

async def main():
    path, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    async with Journal(path) as journal:
        for n in range(count):
            key = f"{prefix}-{n}"
            data = {"prompt": key, "duration": 5}
            await journal.record_intent(key, fingerprint("seedance-2", data), "seedance-2", data)
            await journal.record_submitted(key, f"task-{key}")
            await journal.record_terminal(key, "finished", {"task_id": f"task-{key}", "status": "finished"})

anyio.run(main)
"""


def _run_writers(path: Path, count: int) -> list[str]:
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter running our own snippet
            [sys.executable, "-c", textwrap.dedent(_WRITER), str(path), prefix, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("p1", "p2")
    ]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    return [error if proc.returncode else "" for proc, error in zip(procs, errors, strict=True)]


async def test_two_processes_share_one_journal(tmp_path: Path) -> None:
    """Two processes writing one journal at once lose nothing and corrupt nothing."""
    path = tmp_path / "shared.sqlite"
    count = 40
    errors = await anyio.to_thread.run_sync(_run_writers, path, count)
    assert errors == ["", ""]
    async with Journal(path) as journal:
        entries = await journal.entries()
    assert sorted(e.key for e in entries) == sorted(
        f"{p}-{n}" for p in ("p1", "p2") for n in range(count)
    )
    assert all(e.state is JournalState.FINISHED and e.task_id == f"task-{e.key}" for e in entries)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


async def test_concurrent_tasks_and_cancellation_keep_writes_whole(tmp_path: Path) -> None:
    """Many tasks write at once; a cancelled caller's write still completes."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        async with anyio.create_task_group() as tg:
            for n in range(30):
                tg.start_soon(_intent, journal, f"k{n}", n)
        # Hold the connection lock so the write is in its worker thread when cancelled.
        journal._lock.acquire()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_intent, journal, "cancelled", 99)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
            journal._lock.release()
        assert len(await journal.entries()) == 31
        assert await journal.get("cancelled") is not None


# -- damage (T16) ------------------------------------------------------------------------------------


def _crash_copy(src: Path, dest: Path) -> None:
    """Copy a journal and its WAL as a crash would leave them (no checkpoint on close)."""
    shutil.copyfile(src, dest)
    wal = src.with_name(src.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, dest.with_name(dest.name + "-wal"))


async def _snapshot_with_wal(tmp_path: Path, count: int) -> tuple[Path, list[JournalEntry]]:
    live = tmp_path / "live.sqlite"
    journal = await Journal.open(live)
    try:
        for n in range(count):
            key = f"job-{n}"
            await _intent(journal, key, n)
            await journal.record_submitted(key, f"task-{n}")
        expected = await journal.entries()
        crashed = tmp_path / "crashed.sqlite"
        _crash_copy(live, crashed)
    finally:
        await journal.aclose()
    return crashed, expected


@pytest.mark.parametrize("seed", range(6))
async def test_torn_wal_tail_is_dropped_and_earlier_commits_survive(
    tmp_path: Path, seed: int
) -> None:
    """A WAL cut at a random byte loses at most the torn tail: the rest is an intact prefix."""
    crashed, expected = await _snapshot_with_wal(tmp_path, 15)
    wal = crashed.with_name(crashed.name + "-wal")
    size = wal.stat().st_size
    cut = random.Random(seed).randrange(32, size)
    with wal.open("r+b") as handle:
        handle.truncate(cut)
    async with Journal(crashed) as journal:
        recovered = await journal.entries()
    # Each key's recorded intent and task id are earlier commits than any later key's.
    keys = [e.key for e in recovered]
    assert keys == [e.key for e in expected[: len(keys)]]
    for entry in recovered[:-1]:
        assert entry == expected[keys.index(entry.key)]
    if recovered:
        assert recovered[-1].state in (JournalState.SUBMITTING, JournalState.IN_FLIGHT)


async def test_garbage_appended_to_the_wal_is_ignored(tmp_path: Path) -> None:
    """Garbage after the last commit in the WAL (a torn append) does not hide any commit."""
    crashed, expected = await _snapshot_with_wal(tmp_path, 10)
    with crashed.with_name(crashed.name + "-wal").open("ab") as handle:
        handle.write(random.Random(3).randbytes(5000))
    async with Journal(crashed) as journal:
        assert await journal.entries() == expected


@pytest.mark.parametrize("seed", range(6))
async def test_damaged_database_is_refused_or_read_whole(tmp_path: Path, seed: int) -> None:
    """A truncated, overwritten or extended database file never silently loses a row."""
    path = tmp_path / "j.sqlite"
    expected = await _fill(path, 25)
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    damage = ("truncate", "overwrite", "append")[seed % 3]
    if damage == "truncate":
        del data[rng.randrange(100, len(data)) :]
    elif damage == "overwrite":
        start = rng.randrange(100, len(data) - 64)
        data[start : start + 64] = rng.randbytes(64)
    else:
        data += rng.randbytes(3000)
    path.write_bytes(bytes(data))
    before = _sha(path)
    read: list[JournalEntry] | None = None
    error = ""
    try:
        async with Journal(path) as journal:
            read = await journal.entries()
    except JournalError as exc:
        error = str(exc)
    if read is None:
        assert "damaged" in error
        assert _sha(path) == before
    else:
        assert read == expected


async def test_a_tampered_row_is_reported_not_returned(tmp_path: Path) -> None:
    """A row changed behind the journal's back fails its checksum with a clear error."""
    path = tmp_path / "j.sqlite"
    await _fill(path, 3)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE jobs SET task_id = 'task-evil' WHERE key = 'job-1'")
    conn.commit()
    conn.close()
    async with Journal(path) as journal:
        assert (await journal.get("job-0")) is not None
        with pytest.raises(JournalError, match="'job-1' is damaged"):
            await journal.entries()


async def test_a_damaged_byte_inside_a_row_is_detected(tmp_path: Path) -> None:
    """A flipped byte in a stored prompt (invisible to SQLite) fails the row checksum."""
    path = tmp_path / "j.sqlite"
    await _fill(path, 5)
    data = path.read_bytes()
    assert data.count(b"clip number 3") == 1
    path.write_bytes(data.replace(b"clip number 3", b"clip number 8"))
    async with Journal(path) as journal:
        with pytest.raises(JournalError, match="'job-3' is damaged"):
            await journal.entries()


def test_the_journal_never_stores_the_api_key(tmp_path: Path) -> None:
    """No journal file contains the API key from the environment (T20)."""
    canary = "sk-canary-1f2e3d4c"
    env = {**os.environ, "VIDGO_API_KEY": canary}
    path = tmp_path / "journal.sqlite"
    result = subprocess.run(  # noqa: S603 - our own interpreter running our own snippet
        [sys.executable, "-c", textwrap.dedent(_WRITER), str(path), "k", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for file in tmp_path.iterdir():
        assert canary.encode() not in file.read_bytes()


async def test_one_task_belongs_to_one_job(tmp_path: Path) -> None:
    """A task id another job holds is refused, so two rows never share one task and video."""
    async with Journal(tmp_path / "j.sqlite") as journal:
        await _intent(journal, "first", 1)
        await _intent(journal, "second", 2)
        await journal.record_submitted("first", "task-shared")
        with pytest.raises(JournalError, match="already belongs to job 'first'"):
            await journal.record_submitted("second", "task-shared")
        second = await journal.get("second")
        assert second is not None
        assert (second.state, second.task_id) == (JournalState.SUBMITTING, None)


async def test_a_journal_keeps_the_server_of_its_tasks(tmp_path: Path) -> None:
    """The first bind records the server; another one is refused, the record unchanged."""
    path = tmp_path / "j.sqlite"
    async with Journal(path) as journal:
        await journal.bind_server("https://api.vidgo.ai")
        await journal.bind_server("https://api.vidgo.ai")  # the same server: fine
        await _intent(journal, "job-0")
    async with Journal(path, readonly=True) as journal:
        await journal.bind_server("https://api.vidgo.ai")  # checked, not written
        with pytest.raises(JournalError, match=r"created on https://api\.vidgo\.ai") as caught:
            await journal.bind_server("http://127.0.0.1:8089")
    assert "http://127.0.0.1:8089" in str(caught.value)
    assert caught.value.path == str(path)
    async with Journal(path) as journal:
        with pytest.raises(JournalError, match="means nothing to another server"):
            await journal.bind_server("http://127.0.0.1:8089")
    rows = (
        sqlite3.connect(path)
        .execute("SELECT value FROM vidgo_journal WHERE name = 'server'")
        .fetchall()
    )
    assert rows == [("https://api.vidgo.ai",)]
    async with Journal(tmp_path / "fresh.sqlite") as journal:
        await journal.bind_server("https://other.example")
        # No job yet: nothing of the other server's to lose, the record follows the run.
        await journal.bind_server("https://api.vidgo.ai")
        await _intent(journal, "job-0")
        with pytest.raises(JournalError, match=r"created on https://api\.vidgo\.ai"):
            await journal.bind_server("https://other.example")
