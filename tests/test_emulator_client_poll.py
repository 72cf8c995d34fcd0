"""``Emulator.client()`` polls at the emulator's pace; a wildcard host yields a usable URL."""

from __future__ import annotations

from vidgo_async import PollPolicy
from vidgo_async.testing import Emulator


async def test_the_client_poll_policy_follows_the_time_scale() -> None:
    async with Emulator(time_scale=0.02) as emulator:
        async with emulator.client() as client:
            assert client.poll == PollPolicy().scaled(0.02)
        explicit = PollPolicy(initial_delay=3.0)
        async with emulator.client(poll=explicit) as client:
            assert client.poll == explicit
    async with Emulator() as emulator, emulator.client() as client:
        assert client.poll == PollPolicy()


async def test_a_wildcard_host_gives_a_loopback_url_the_client_accepts() -> None:
    async with Emulator(host="0.0.0.0") as emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
        async with emulator.client() as client:
            assert (await client.balance()).credits_amount > 0
