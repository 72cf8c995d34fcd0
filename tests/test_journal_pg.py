"""The PostgreSQL journal against a real server: schema, claims, the fleet cap, adoption, wake-ups.

Every test gets a fresh database on one server the session starts (``conftest.pg_url``).
"Another process" is a real child process where the guarantee is about processes (racing
claims, a SIGKILLed owner, a wake-up across processes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import anyio.lowlevel
import psycopg
import pytest

from vidgo_async import JobClaimedError, Journal, JournalConflictError, JournalError
from vidgo_async._jobs import request_fingerprint
from vidgo_async._journal_api import JournalLike, is_postgres_url, open_journal
from vidgo_async._journal_pg import PG_SCHEMA_VERSION, PostgresJournal, redact_url

MODEL = "veo-3.1-fast"
ROOT = Path(__file__).resolve().parent.parent


def _intent(key: str, prompt: str = "a cat") -> tuple[str, str, str, dict[str, str]]:
    data = {"prompt": prompt}
    return key, request_fingerprint(MODEL, data), MODEL, data


def _child(code: str) -> subprocess.Popen[str]:
    """Start a Python child that runs ``code`` (with ``URL`` and helpers defined)."""
    prelude = textwrap.dedent(
        """
        import sys, anyio
        from vidgo_async._journal_pg import PostgresJournal
        from vidgo_async._jobs import request_fingerprint
        URL = sys.argv[1]
        def intent(key, prompt="a cat"):
            data = {"prompt": prompt}
            return key, request_fingerprint("veo-3.1-fast", data), "veo-3.1-fast", data
        """
    )
    return subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", prelude + textwrap.dedent(code), *_argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


_argv: list[str] = []


@pytest.fixture
def child_url(pg_url: str) -> str:
    _argv[:] = [pg_url]
    return pg_url


# -- choosing the store and importing ------------------------------------------------------------


def test_importing_the_library_does_not_import_psycopg() -> None:
    code = "import sys, vidgo_async, vidgo_async._cli; print('psycopg' in sys.modules)"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_a_url_names_postgres_and_a_path_names_sqlite() -> None:
    assert is_postgres_url("postgresql://u@h/db")
    assert is_postgres_url("postgres://u@h/db")
    assert not is_postgres_url("out/journal.sqlite")
    assert not is_postgres_url(Path("postgresql:"))


async def test_open_journal_picks_the_store_by_target(tmp_path: Path, pg_url: str) -> None:
    sqlite = await open_journal(tmp_path / "j.sqlite")
    pg = await open_journal(pg_url, owner="w1", max_in_flight=3)
    try:
        assert isinstance(sqlite, Journal)
        assert isinstance(pg, PostgresJournal)
        assert isinstance(pg, JournalLike)
        assert isinstance(sqlite, JournalLike)
    finally:
        await sqlite.aclose()
        await pg.aclose()
    with pytest.raises(ValueError, match="need a postgresql:// journal"):
        await open_journal(tmp_path / "k.sqlite", max_in_flight=3)


async def test_journal_open_returns_postgres_for_a_url_and_sqlite_for_a_path(
    tmp_path: Path, pg_url: str
) -> None:
    pg = await Journal.open(pg_url, owner="w1", max_in_flight=3)
    as_text = await Journal.open(str(tmp_path / "t.sqlite"))
    try:
        assert isinstance(pg, PostgresJournal)
        assert isinstance(as_text, Journal)
    finally:
        await pg.aclose()
        await as_text.aclose()
    with pytest.raises(ValueError, match="busy_timeout is a SQLite option"):
        await Journal.open(pg_url, busy_timeout=1.0)
    with pytest.raises(ValueError, match="need a postgresql:// journal"):
        await Journal.open(tmp_path / "k.sqlite", owner="w1")


def test_the_password_never_shows() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact_url("postgresql://app@db/x") == "postgresql://app@db/x"


async def test_a_failed_connection_names_the_url_without_its_password(
    postgres_server: object,
) -> None:
    url = "postgresql://app:s3cret@/nope?host=/nonexistent-dir"
    with pytest.raises(JournalError, match="cannot connect") as caught:
        await PostgresJournal.open(url)
    assert "s3cret" not in str(caught.value)
    assert "app:***@" in str(caught.value)


# -- schema ---------------------------------------------------------------------------------------


async def test_the_schema_is_created_once_and_a_newer_one_is_refused(pg_url: str) -> None:
    async with PostgresJournal(pg_url) as journal:
        await journal.record_intent(*_intent("a"))
    async with PostgresJournal(pg_url) as journal:  # reopened: kept, not recreated
        assert [entry.key for entry in await journal.entries()] == ["a"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE vidgo_schema SET version = %s", (PG_SCHEMA_VERSION + 1,))
    with pytest.raises(JournalError, match="newer than this vidgo-async"):
        await PostgresJournal.open(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SELECT version FROM vidgo_schema").fetchone()
    assert row == (PG_SCHEMA_VERSION + 1,)  # refused without changing anything


async def test_create_false_refuses_an_empty_database(pg_url: str) -> None:
    with pytest.raises(JournalError, match="holds no vidgo-async journal"):
        await PostgresJournal.open(pg_url, create=False)


# -- the records, as the SQLite journal keeps them --------------------------------------------------


async def test_a_job_goes_from_intent_to_finished(pg_url: str) -> None:
    async with PostgresJournal(pg_url) as journal:
        entry = await journal.record_intent(*_intent("a"), callback_token="hash-a")
        assert entry.state.value == "submitting"
        assert entry.attempts == 1
        entry = await journal.record_submitted("a", "task-1")
        assert entry.state.value == "in_flight"
        assert entry.task_id == "task-1"
        entry = await journal.record_terminal("a", "finished", {"task_id": "task-1"}, ["a.mp4"])
        assert entry.state.value == "finished"
        assert entry.files == ("a.mp4",)
        again = await journal.record_failed("a", "TaskFailedError", "late")
        assert again.state.value == "finished"  # finished stays finished
        assert (await journal.find_task("task-1")) == again
        assert (await journal.find_token("hash-a")) == again
        assert (await journal.summary())["finished"] == 1


async def test_a_changed_request_under_the_same_key_is_a_conflict(pg_url: str) -> None:
    async with PostgresJournal(pg_url) as journal:
        await journal.record_intent(*_intent("a", "a cat"))
        with pytest.raises(JournalConflictError):
            await journal.record_intent(*_intent("a", "a dog"))


async def test_one_task_belongs_to_one_job(pg_url: str) -> None:
    async with PostgresJournal(pg_url) as journal:
        await journal.record_intent(*_intent("a"))
        await journal.record_intent(*_intent("b", "a dog"))
        await journal.record_submitted("a", "task-1")
        with pytest.raises(JournalError, match="one job only"):
            await journal.record_submitted("b", "task-1")
        assert (await journal.get("b")) is not None
        assert (await journal.get("b")).state.value == "submitting"  # type: ignore[union-attr]


async def test_a_failed_job_is_claimed_again_and_an_unknown_one_only_on_request(
    pg_url: str,
) -> None:
    async with PostgresJournal(pg_url) as journal:
        await journal.record_intent(*_intent("a"))
        await journal.record_failed("a", "InvalidRequestError", "bad")
        assert (await journal.record_intent(*_intent("a"))).attempts == 2
        await journal.record_unknown("a", "no answer")
        with pytest.raises(JobClaimedError):
            await journal.record_intent(*_intent("a"))
        entry = await journal.record_intent(*_intent("a"), retry_in_doubt=True)
        assert entry.attempts == 3


# -- claims: exactly one process wins ----------------------------------------------------------------


async def test_many_connections_racing_for_one_claim_one_wins(pg_url: str) -> None:
    journals = [PostgresJournal(pg_url, owner=f"w{n}") for n in range(12)]
    outcomes: list[str] = []
    try:
        async with anyio.create_task_group() as tg:
            for journal in journals:
                await journal.__aenter__()

                async def claim(journal: PostgresJournal = journal) -> None:
                    try:
                        await journal.record_intent(*_intent("contested"))
                        outcomes.append("won")
                    except JobClaimedError:
                        outcomes.append("lost")

                tg.start_soon(claim)
    finally:
        for journal in journals:
            await journal.aclose()
    assert sorted(outcomes) == ["lost"] * 11 + ["won"]


def test_processes_racing_for_one_claim_exactly_one_wins(child_url: str) -> None:
    code = """
        from vidgo_async import JobClaimedError
        async def main():
            async with PostgresJournal(URL) as journal:
                for n in range(20):  # twenty keys, each contested by every process
                    try:
                        await journal.record_intent(*intent(f"k{n}"))
                        print("won", n, flush=True)
                    except JobClaimedError:
                        pass
        anyio.run(main)
    """
    children = [_child(code) for _ in range(4)]
    wins: list[str] = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        wins += out.split("\n")
    won = sorted(line for line in wins if line)
    assert won == sorted(f"won {n}" for n in range(20))  # each key won exactly once


# -- the fleet-wide cap ------------------------------------------------------------------------------


async def test_the_fleet_cap_holds_a_third_claim_until_a_job_ends(pg_url: str) -> None:
    a = await PostgresJournal.open(pg_url, owner="a", max_in_flight=2)
    b = await PostgresJournal.open(pg_url, owner="b", max_in_flight=2)
    try:
        await a.record_intent(*_intent("1", "one"))
        await b.record_intent(*_intent("2", "two"))
        with anyio.move_on_after(0.5) as waited:  # every slot held: the claim waits
            await b.record_intent(*_intent("3", "three"))
        assert waited.cancelled_caught
        assert await b.get("3") is None  # a cancelled wait claims nothing
        await a.record_submitted("1", "task-1")
        await a.record_terminal("1", "finished", {"task_id": "task-1"})
        entry = await b.record_intent(*_intent("3", "three"))  # its slot was freed
        assert entry.state.value == "submitting"
        assert await a.slots_held() == 2
    finally:
        await a.aclose()
        await b.aclose()


async def test_the_fleet_cap_holds_under_concurrent_claims(pg_url: str) -> None:
    cap = 3
    journals = [
        await PostgresJournal.open(pg_url, owner=f"w{n}", max_in_flight=cap) for n in range(3)
    ]
    holding = 0
    peak = 0

    async def run(journal: PostgresJournal, n: int) -> None:
        nonlocal holding, peak
        key = f"job{n}"
        await journal.record_intent(*_intent(key, f"prompt {n}"))
        holding += 1
        peak = max(peak, holding)
        await anyio.lowlevel.checkpoint()
        await journal.record_submitted(key, f"task-{n}")
        holding -= 1
        await journal.record_terminal(key, "finished", {"task_id": f"task-{n}"})

    try:
        async with anyio.create_task_group() as tg:
            for n in range(24):
                tg.start_soon(run, journals[n % 3], n)
    finally:
        for journal in journals:
            await journal.aclose()
    assert 1 <= peak <= cap
    async with PostgresJournal(pg_url) as journal:
        assert (await journal.summary())["finished"] == 24
        assert await journal.slots_held() == 0


# -- leases and adoption -------------------------------------------------------------------------------


def test_a_sigkilled_owners_jobs_are_adopted_never_resubmitted(child_url: str) -> None:
    code = """
        import time
        async def main():
            journal = await PostgresJournal.open(URL, owner="doomed", max_in_flight=4, lease=1.0)
            await journal.record_intent(*intent("polled"), callback_token="hash-p")
            await journal.record_submitted("polled", "task-p")
            await journal.record_intent(*intent("doubt", "a dog"))
            print("ready", flush=True)
            time.sleep(600)  # killed here, with one job in flight and one submit in doubt
        anyio.run(main)
    """
    child = _child(code)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.communicate()

    async def adopt() -> None:
        async with PostgresJournal(child_url, owner="heir", max_in_flight=4) as heir:
            assert await heir.slots_held() == 2  # the dead owner's jobs still count
            adopted: list[str] = []
            with anyio.fail_after(30):
                while not adopted:  # its lease lasts one second after its last renewal
                    adopted = [entry.key for entry in await heir.adopt_expired()]
                    await anyio.sleep(0.2)
            assert adopted == ["polled"]
            polled = await heir.get("polled")
            assert polled is not None
            assert polled.task_id == "task-p"
            assert polled.callback_token == "hash-p"
            assert polled.state.value == "in_flight"
            doubt = await heir.get("doubt")
            assert doubt is not None
            assert doubt.state.value == "unknown"
            assert doubt.submit_in_doubt  # never resubmitted silently
            assert await heir.slots_held() == 1  # the polled job keeps its slot
            assert await heir.adopt_expired() == []  # adopted once
            await heir.record_terminal("polled", "finished", {"task_id": "task-p"})
            assert await heir.slots_held() == 0

    anyio.run(adopt)


async def test_a_live_owner_keeps_its_jobs(pg_url: str) -> None:
    async with PostgresJournal(pg_url, owner="alive", lease=60) as owner:
        await owner.record_intent(*_intent("a"))
        await owner.record_submitted("a", "task-a")
        await owner.renew_lease()
        async with PostgresJournal(pg_url, owner="other") as other:
            assert await other.adopt_expired() == []
    async with PostgresJournal(pg_url, owner="later") as later:  # a closed owner: adoptable
        assert [entry.key for entry in await later.adopt_expired()] == ["a"]


# -- waking a waiter in another process ---------------------------------------------------------------


async def test_an_outcome_recorded_in_another_process_wakes_the_waiter(child_url: str) -> None:
    async with PostgresJournal(child_url, owner="web-a") as web:
        await web.record_intent(*_intent("a"), callback_token="hash-a")
        await web.record_submitted("a", "task-a")
        code = """
            async def main():
                async with PostgresJournal(URL, owner="web-b") as other:
                    entry = await other.find_token("hash-a")  # the callback reached replica B
                    await other.record_terminal(entry.key, "finished", {"task_id": entry.task_id})
            anyio.run(main)
        """
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:

                async def record_elsewhere() -> None:
                    child = _child(code)
                    _, err = await anyio.to_thread.run_sync(child.communicate)
                    assert child.returncode == 0, err

                tg.start_soon(record_elsewhere)
                # fallback far beyond the test's limit: only the NOTIFY can wake it in time
                entry = await web.wait_ended("a", fallback=300)
        assert entry.state.value == "finished"


async def test_waiting_for_an_unknown_key_is_an_error(pg_url: str) -> None:
    async with PostgresJournal(pg_url) as journal:
        with pytest.raises(JournalError, match="neither in the journal nor queued"):
            await journal.wait_ended("nope")


# -- callback fan-in: a callback to one replica resolves a job awaited in another -----------------


async def test_a_callback_to_another_replica_wakes_the_waiter_with_one_verification(
    pg_url: str,
) -> None:
    from vidgo_async.fleet import new_callback_token
    from vidgo_async.testing import Emulator

    replica_b = textwrap.dedent(
        """
        import sys, anyio
        from vidgo_async import VidgoClient
        from vidgo_async.fleet import FleetCallbackReceiver, PostgresJournal
        async def main():
            async with (
                PostgresJournal(sys.argv[1], owner="replica-b") as journal,
                VidgoClient(sys.argv[3], base_url=sys.argv[2]) as client,
            ):
                receiver = FleetCallbackReceiver(journal, client)
                async with receiver.serve("127.0.0.1", 0):
                    print(receiver.url_for("TOKEN"), flush=True)
                    await anyio.to_thread.run_sync(sys.stdin.read)  # until the test closes it
                print(receiver.stats.verifications, receiver.stats.delivered, flush=True)
        anyio.run(main)
        """
    )
    async with Emulator(job_seconds=1, time_scale=0.05) as emu, emu.client() as client:
        other = subprocess.Popen(  # noqa: S603, ASYNC220 - our own code; started once
            [sys.executable, "-c", replica_b, pg_url, emu.base_url, emu.api_key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert other.stdout is not None
            assert other.stdin is not None
            template = await anyio.to_thread.run_sync(other.stdout.readline)
            assert template.startswith("http://127.0.0.1:"), other.stderr
            async with PostgresJournal(pg_url, owner="replica-a") as journal:
                token, hashed = new_callback_token()
                data = {"prompt": "a red fox in the snow", "duration": 5, "resolution": "720p"}
                await journal.record_intent(
                    "fox", request_fingerprint("seedance-2", data), "seedance-2", data,
                    callback_token=hashed,
                )  # fmt: skip
                url = template.strip().replace("TOKEN", token)
                task = await client.submit("seedance-2", data, callback_url=url)
                await journal.record_submitted("fox", task.task_id)
                with anyio.fail_after(30):  # replica A never polls: only B's NOTIFY wakes it
                    entry = await journal.wait_ended("fox", fallback=300)
            assert entry.state.value == "finished"
            assert entry.task is not None
            assert entry.task.task_id == task.task_id
            assert emu.stats.status_requests[task.task_id] == 1  # B's one verification
            out, err = await anyio.to_thread.run_sync(lambda: other.communicate(""))
            assert other.returncode == 0, err
            assert out.split() == ["1", "1"]
        finally:
            if other.poll() is None:
                other.kill()
                other.wait()
            for stream in (other.stdout, other.stderr, other.stdin):
                if stream is not None and not stream.closed:
                    stream.close()


# -- the queue a worker fleet serves ------------------------------------------------------------------


async def test_a_version_1_journal_is_migrated_to_the_queue_schema(pg_url: str) -> None:
    async with PostgresJournal(pg_url) as journal:
        await journal.record_intent(*_intent("a"))
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as version 1 left it
        conn.execute("DROP TABLE vidgo_queue, vidgo_gates, vidgo_rates")
        conn.execute("UPDATE vidgo_schema SET version = 1")
    async with PostgresJournal(pg_url) as journal:
        assert [entry.key for entry in await journal.entries()] == ["a"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM vidgo_schema").fetchone() == (PG_SCHEMA_VERSION,)
        assert conn.execute("SELECT to_regclass('vidgo_queue') IS NOT NULL").fetchone() == (True,)
        assert conn.execute("SELECT to_regclass('vidgo_rates') IS NOT NULL").fetchone() == (True,)


async def test_enqueue_is_idempotent_and_refuses_a_changed_request(pg_url: str) -> None:
    from vidgo_async.fleet import FleetQueue

    data = {"prompt": "a cat", "duration": 5, "resolution": "720p"}
    async with PostgresJournal(pg_url) as journal:
        queue = FleetQueue(journal)
        assert await queue.enqueue("a", "seedance-2", data)
        assert not await queue.enqueue("a", "seedance-2", data)  # the same job again
        with pytest.raises(JournalConflictError):
            await queue.enqueue("a", "seedance-2", {**data, "prompt": "a dog"})
        assert [job.key for job in await queue.pending()] == ["a"]


async def test_two_workers_serve_the_queue_each_job_submitted_once(pg_url: str) -> None:
    from vidgo_async.fleet import FleetQueue
    from vidgo_async.testing import Emulator

    jobs = 10
    async with Emulator(job_seconds=2, time_scale=0.05) as emu:
        async with PostgresJournal(pg_url, owner="web-app") as journal:
            queue = FleetQueue(journal)
            for n in range(jobs):
                data = {"prompt": f"clip {n}", "duration": 5, "resolution": "720p"}
                await queue.enqueue(f"clip-{n}", "seedance-2", data)
            env = dict(os.environ, VIDGO_API_KEY=emu.api_key)
            command = [sys.executable, "-m", "vidgo_async", "worker", "--journal", pg_url,
                       "--concurrency", "3", "--base-url", emu.base_url, "--allow-insecure",
                       "--poll-scale", "0.05", "--drain"]  # fmt: skip

            def serve() -> tuple[int, str]:
                worker = subprocess.run(  # noqa: S603 - our own CLI
                    command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
                )
                return worker.returncode, worker.stderr

            outcomes: list[tuple[int, str]] = []

            async def run_worker() -> None:
                outcomes.append(await anyio.to_thread.run_sync(serve))

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(run_worker)
                    tg.start_soon(run_worker)
                    ended = [await queue.wait(f"clip-{n}", fallback=1) for n in range(jobs)]
        assert [code for code, _ in outcomes] == [0, 0], outcomes
        assert [entry.state.value for entry in ended] == ["finished"] * jobs
        assert all(entry.task is not None and entry.task.file_urls for entry in ended)
        assert set(emu.stats.jobs_by_fingerprint.values()) == {1}
        assert emu.stats.submits_accepted == jobs
        assert 1 <= emu.stats.peak_in_flight <= 3


# -- a 429's hold, shared by the fleet --------------------------------------------------------------


class _StillClock:
    """A gate clock that stands still (the test moves nothing; it only reads holds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_one_process_429_hold_reaches_the_other_processes_gates(pg_url: str) -> None:
    from vidgo_async._gates import RateGate
    from vidgo_async.fleet import FleetGates

    clock_a, clock_b = _StillClock(100.0), _StillClock(5000.0)  # unrelated monotonic clocks
    gate_a = RateGate(None, clock=clock_a, name="submit")
    gate_b = RateGate(None, clock=clock_b, name="submit")
    other_b = RateGate(None, clock=clock_b, name="status")
    wall = 1_000_000.0
    async with PostgresJournal(pg_url, owner="a") as a, PostgresJournal(pg_url, owner="b") as b:
        sync_a = FleetGates(a, [gate_a], wall=lambda: wall, monotonic=clock_a.monotonic)
        sync_b = FleetGates(b, [gate_b, other_b], wall=lambda: wall, monotonic=clock_b.monotonic)
        await sync_b.sync()
        assert gate_b.not_before < clock_b.now  # nothing held yet
        gate_a.hold_until(clock_a.now + 30)  # A got a 429 with Retry-After: 30
        await sync_a.sync()
        await sync_b.sync()
        assert gate_b.not_before == pytest.approx(clock_b.now + 30)
        assert other_b.not_before < clock_b.now  # the status gate is not held


async def test_three_processes_sharing_a_rate_take_at_most_the_rate_together(
    pg_url: str,
) -> None:
    """Each gate alone would pace 40/s; three sharing 40/s take 40/s together (+ batches)."""
    import time

    from vidgo_async._clock import Clock
    from vidgo_async._gates import RateGate
    from vidgo_async.fleet import FleetGates

    rate, seconds = 40.0, 1.5
    journals = [PostgresJournal(pg_url, owner=f"p{n}") for n in range(3)]
    gates = [RateGate(rate, clock=Clock(), name="submit") for _ in journals]
    fleets = [FleetGates(j, [g]) for j, g in zip(journals, gates, strict=True)]
    shared = [fleet.rates["submit"] for fleet in fleets]

    async def use(gate: RateGate, until: float) -> None:
        while time.monotonic() < until:
            await gate.acquire()

    for journal in journals:
        await journal.__aenter__()
    try:
        start = time.monotonic()
        async with anyio.create_task_group() as group:
            for gate in gates:
                group.start_soon(use, gate, start + seconds)
        elapsed = time.monotonic() - start
    finally:
        for journal in journals:
            await journal.aclose()
    total = sum(gate.grants for gate in gates)
    max_batch = shared[0].max_batch
    # the rate, the bucket's depth, one batch held by each process, and the last grants
    # each one took while its deadline passed
    assert total <= rate * elapsed + max_batch + 3 * max_batch + 3
    assert total < 2 * rate * seconds  # paced alone, three gates would take 3 * rate * seconds
    assert all(gate.grants > 0 for gate in gates)
    # no polling per token: a process waiting on the empty bucket comes back for a batch
    assert sum(r.takes for r in shared) <= 2 * total


async def test_a_worker_job_with_a_callback_base_is_resolved_by_a_fleet_receiver(
    pg_url: str,
) -> None:
    from vidgo_async.fleet import FleetCallbackReceiver, FleetQueue
    from vidgo_async.testing import Emulator

    async with (
        Emulator(job_seconds=2, time_scale=0.05) as emu,
        emu.client() as client,
        PostgresJournal(pg_url, owner="web-app") as journal,
    ):
        receiver = FleetCallbackReceiver(journal, client)
        async with receiver.serve("127.0.0.1", 0) as server:
            queue = FleetQueue(journal)
            for n in range(2):
                data = {"prompt": f"called back {n}", "duration": 5, "resolution": "720p"}
                await queue.enqueue(f"cb-{n}", "seedance-2", data, callback_base=server.base_url)
            env = dict(os.environ, VIDGO_API_KEY=emu.api_key)
            command = [sys.executable, "-m", "vidgo_async", "worker", "--journal", pg_url,
                       "--concurrency", "2", "--base-url", emu.base_url, "--allow-insecure",
                       "--poll-scale", "0.05", "--drain"]  # fmt: skip

            def serve() -> subprocess.CompletedProcess[str]:
                return subprocess.run(  # noqa: S603 - our own CLI
                    command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
                )

            with anyio.fail_after(120):
                worker = await anyio.to_thread.run_sync(serve)
                ended = [await queue.wait(f"cb-{n}", fallback=1) for n in range(2)]
    assert worker.returncode == 0, worker.stderr
    assert [entry.state.value for entry in ended] == ["finished", "finished"]
    assert all(entry.callback_token is not None for entry in ended)  # the hash, journaled
    assert receiver.stats.delivered + receiver.stats.late == 2  # each callback taken here
    assert receiver.stats.delivered >= 1


async def test_a_waiter_whose_listening_connection_drops_reconnects_and_rereads(
    pg_url: str,
) -> None:
    async with PostgresJournal(pg_url, owner="a") as journal:
        await journal.record_intent(*_intent("a"))
        await journal.record_submitted("a", "task-a")
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                ended: list[str] = []

                async def wait() -> None:
                    entry = await journal.wait_ended("a", fallback=300)
                    ended.append(entry.state.value)

                tg.start_soon(wait)
                with psycopg.connect(pg_url, autocommit=True) as admin:
                    query = (
                        "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN vidgo_jobs' "
                        "AND datname = current_database()"
                    )
                    while not (pids := admin.execute(query).fetchall()):  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                    admin.execute("SELECT pg_terminate_backend(%s)", pids[0])  # the drop
                    while admin.execute(query).fetchall() == pids:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                async with PostgresJournal(pg_url, owner="b") as other:
                    await other.record_terminal("a", "finished", {"task_id": "task-a"})
        assert ended == ["finished"]
