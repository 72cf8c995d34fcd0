"""Lazy job building: ``run``/``as_completed`` build jobs in slices as the dispatcher needs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from vidgo_async import InputValidationError, PollPolicy, Task, VidgoClient
from vidgo_async._jobs import GenerationRequest, JobState
from vidgo_async._lazy import SLICE
from vidgo_async._orchestrator import Orchestrator
from vidgo_async.testing import Emulator

SCALE = 0.01
POLL = PollPolicy().scaled(SCALE)


def request(n: int, **extra: object) -> GenerationRequest:
    return GenerationRequest(
        "seedance-2",
        {"prompt": f"a lantern on a pier, shot {n}", "duration": 5, "resolution": "720p", **extra},
        key=f"clip-{n}",
    )


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(job_seconds=(5, 10), time_scale=SCALE, seed=3) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[VidgoClient]:
    async with emulator.client(poll=POLL) as client:
        yield client


class HeldSubmits:
    """Replaces an orchestrator's submit with one that never answers (until cancelled)."""

    def __init__(self, orch: Orchestrator) -> None:
        self.sent = 0
        orch._dispatcher.submit = self

    async def __call__(self, model: str, input: dict[str, Any], **options: Any) -> Task:
        self.sent += 1
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


async def settle() -> None:
    for _ in range(50):
        await anyio.lowlevel.checkpoint()


async def test_jobs_are_built_only_a_slice_past_the_lookahead_and_counted_queued(
    client: VidgoClient,
) -> None:
    """Unbuilt requests count as queued; a stop ends them cancelled, nothing sent for them."""
    total = 4 * SLICE
    async with Orchestrator(client, max_in_flight=2) as orch:
        orch._dispatcher.lookahead = 8
        held = HeldSubmits(orch)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(orch.run, [request(n) for n in range(total)])
                await settle()
                built = len(orch._book.live)
                progress = orch.snapshot()
                scope.cancel()
        assert 2 < built <= 8 + 2 + SLICE  # the look-ahead, the two submitting, one slice
        assert (progress.queued, progress.submitting) == (total - 2, 2)
        assert held.sent == 2
        await settle()
        after = orch.snapshot()
        assert (after.queued, after.cancelled) == (0, total - 2)
    assert orch.snapshot().pending == 0


async def test_a_long_run_keeps_input_order_and_fails_a_late_bad_input_alone(
    emulator: Emulator, client: VidgoClient
) -> None:
    total = 2 * SLICE + 10
    requests = [request(n) for n in range(total)]
    requests[SLICE + 7] = request(SLICE + 7, duration=99)
    async with Orchestrator(client, max_in_flight=64) as orch:
        orch._dispatcher.lookahead = 16
        results = await orch.run(requests)
        assert orch.snapshot().pending == 0
    assert [r.key for r in results] == [r.key for r in requests]
    bad = results[SLICE + 7]
    assert bad.state is JobState.FAILED
    assert isinstance(bad.error, InputValidationError)
    assert bad.task_id is None
    assert sum(r.state is JobState.FINISHED for r in results) == total - 1
    assert emulator.stats.submits_accepted == total - 1


async def test_as_completed_yields_every_lazily_built_job_once(client: VidgoClient) -> None:
    total = SLICE + 40
    async with Orchestrator(client, max_in_flight=64) as orch:
        orch._dispatcher.lookahead = 16
        keys = [result.key async for result in orch.as_completed(request(n) for n in range(total))]
    assert sorted(keys) == sorted(f"clip-{n}" for n in range(total))


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ([request(1), request(2), request(1)], ValueError),
        ([request(1), {"model": "seedance-2"}], TypeError),
    ],
)
async def test_a_batch_that_cannot_be_built_whole_is_refused_before_anything_is_queued(
    emulator: Emulator, client: VidgoClient, bad: list[Any], error: type[Exception]
) -> None:
    async with Orchestrator(client) as orch:
        with pytest.raises(error):
            await orch.run(bad)
        with pytest.raises(error):
            async for _ in orch.as_completed(bad):
                pass  # pragma: no cover
        assert orch.snapshot().queued == 0
        assert not orch._book.live
    assert emulator.stats.submit_attempts == 0
