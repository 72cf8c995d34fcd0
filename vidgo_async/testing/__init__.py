"""Test your Vidgo code offline: a local emulator of the Vidgo API.

``Emulator`` serves the documented submit, status, balance, upload and file endpoints on
loopback, runs jobs on a (scaled) clock, sends callbacks with the documented retries,
charges credits, injects faults from a :class:`FaultPlan` and counts everything in
:class:`EmulatorStats`::

    from vidgo_async.testing import Emulator

    async with Emulator(job_seconds=90, time_scale=0.01) as emu:
        async with emu.client() as client:
            task = await client.generate("seedance-2", {...})

For pytest, opt into the fixtures with ``pytest_plugins = ["vidgo_async.testing.pytest_plugin"]``.
The emulator shares only the input rules with the client, never its HTTP code.
"""

from __future__ import annotations

from ._credits import DEFAULT_PRICES, CreditLedger
from ._emulator import Emulator
from ._faults import Fault, FaultPlan
from ._media import sample_sha256, sample_video
from ._stats import CallbackAttempt, EmulatorStats, fingerprint
from ._tasks import CONTENT_POLICY_MESSAGE

__all__ = [
    "CONTENT_POLICY_MESSAGE",
    "DEFAULT_PRICES",
    "CallbackAttempt",
    "CreditLedger",
    "Emulator",
    "EmulatorStats",
    "Fault",
    "FaultPlan",
    "fingerprint",
    "sample_sha256",
    "sample_video",
]
