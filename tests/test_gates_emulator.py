"""The orchestrator's gates against the emulator's 429 faults (issue 11.3), kept short.

The ratios to the fault-free run are asserted on a simulated clock in
``test_gates_schedule.py`` and measured in real time by ``benchmarks/throttle.py``; here
the real wiring is checked: a trickle and a refuse-everything pause never lower a rate,
every job still finishes, each prompt is accepted once.
"""

from __future__ import annotations

from vidgo_async import GenerationRequest, Orchestrator, PollPolicy
from vidgo_async.testing import Emulator

POLL = PollPolicy().scaled(0.05)


def _requests(count: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            "seedance-2",
            {"prompt": f"a kite over a beach, shot {n}", "duration": 5, "resolution": "720p"},
            key=f"kite-{n}",
        )
        for n in range(count)
    ]


async def test_a_trickle_of_status_429s_holds_but_never_lowers_the_rate() -> None:
    """1 status answer in 7 a 429 with Retry-After: 1: all jobs finish, the rate is untouched."""
    faults = "status:429,every=7,retry_after=1"
    async with Emulator(job_seconds=(0.1, 0.3), faults=faults, seed=2) as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=POLL) as client:
            async with Orchestrator(client, max_in_flight=4) as orch:
                results = await orch.run(_requests(12))
            gate = orch.status_gate
    assert all(result.ok for result in results)
    assert emu.stats.faults_injected["status:429"] >= 1
    assert gate.throttles >= 1
    assert gate.decreases == 0
    assert gate.rate is None


async def test_a_run_of_submit_429s_is_a_pause_each_prompt_accepted_once() -> None:
    """8 submit 429s in a row (Retry-After: 1): held, not slowed; every prompt accepted once."""
    faults = "submit:429,burst=1:8,retry_after=1"
    async with Emulator(job_seconds=0.1, faults=faults, seed=2) as emu:  # noqa: SIM117 - the server outlives the client
        async with emu.client(poll=POLL) as client:
            async with Orchestrator(client, max_in_flight=4) as orch:
                results = await orch.run(_requests(8))
            gate = orch.submit_gate
    assert all(result.ok for result in results)
    assert emu.stats.faults_injected["submit:429"] == 8
    assert emu.stats.submits_accepted == 8
    assert all(count == 1 for count in emu.stats.submits_by_prompt.values())
    assert gate.decreases == 0
    assert gate.rate is None
