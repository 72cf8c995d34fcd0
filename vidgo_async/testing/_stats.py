"""Counters the emulator keeps for tests and benchmarks."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping

import attrs

__all__ = ["CallbackAttempt", "EmulatorStats", "fingerprint"]


def fingerprint(model: str, input: object) -> str:
    """Return the job fingerprint: sha256 of the model id followed by the canonical input JSON.

    The canonical JSON has sorted keys, no spaces and unescaped non-ASCII text, so two
    requests that differ only in key order or spacing share one fingerprint.
    """
    canonical = json.dumps(input, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((model + canonical).encode("utf-8")).hexdigest()


@attrs.frozen(kw_only=True)
class CallbackAttempt:
    """One HTTP attempt to deliver a callback."""

    task_id: str
    url: str
    attempt: int  # 1 for the first try, 2..6 for the retries
    at: float  # loop.time() when the attempt started
    status_code: int | None  # None when no answer arrived (error or timeout)
    error: str | None
    duplicate: bool = False  # an extra delivery injected by a "duplicate" fault

    @property
    def delivered(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


@attrs.define(kw_only=True)
class EmulatorStats:
    """What the emulator has seen and done; every counter starts at zero.

    Counters are plain attributes: read them from tests, or call :meth:`reset` between phases.
    """

    requests: Counter[str] = attrs.field(factory=Counter)  # by endpoint name
    submit_attempts: int = 0  # every POST to the submit endpoint, accepted or not
    submits_accepted: int = 0  # submits that created a job (idempotent replays excluded)
    submits_by_prompt: Counter[str] = attrs.field(factory=Counter)  # accepted, by input.prompt
    jobs_by_fingerprint: Counter[str] = attrs.field(factory=Counter)  # jobs created per fingerprint
    idempotency_keys: Counter[str] = attrs.field(factory=Counter)  # submit attempts per key
    status_requests: Counter[str] = attrs.field(factory=Counter)  # by task_id
    balance_requests: int = 0
    download_requests: Counter[str] = attrs.field(factory=Counter)  # by task_id
    download_requests_with_credentials: int = 0  # downloads that carried Authorization/X-API-Key
    concurrent_requests: int = 0
    peak_concurrent_requests: int = 0
    in_flight: int = 0  # tasks created and not yet terminal
    peak_in_flight: int = 0
    tasks_finished: int = 0
    tasks_failed: int = 0
    callbacks_sent: int = 0  # terminal notifications started (duplicates included)
    callback_attempts: int = 0  # HTTP attempts, retries included
    callbacks_delivered: int = 0  # notifications that got a 2xx
    callbacks_given_up: int = 0  # notifications abandoned after the last retry
    callbacks_refused: int = 0  # notifications answered 4xx (or 3xx): final, never retried
    callbacks_lost: int = 0  # notifications dropped by a "lose" fault
    callback_log: list[CallbackAttempt] = attrs.field(factory=list)
    faults_injected: Counter[str] = attrs.field(factory=Counter)  # by "endpoint:kind"

    def request_started(self) -> None:
        """Count one request being handled and track the peak."""
        self.concurrent_requests += 1
        self.peak_concurrent_requests = max(self.peak_concurrent_requests, self.concurrent_requests)

    def request_ended(self) -> None:
        """Count one request as answered (or abandoned)."""
        self.concurrent_requests -= 1

    def task_started(self) -> None:
        """Count one task entering flight and track the peak."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def task_ended(self, *, failed: bool) -> None:
        """Count one task reaching a terminal state."""
        self.in_flight -= 1
        if failed:
            self.tasks_failed += 1
        else:
            self.tasks_finished += 1

    def jobs_for(self, model: str, input: Mapping[str, object]) -> int:
        """Return how many jobs were created for this exact model and input."""
        return self.jobs_by_fingerprint[fingerprint(model, input)]

    def reset(self) -> None:
        """Zero every counter, keeping the live gauges (concurrent requests, tasks in flight)."""
        concurrent, in_flight = self.concurrent_requests, self.in_flight
        fresh = EmulatorStats()
        for field in attrs.fields(EmulatorStats):
            setattr(self, field.name, getattr(fresh, field.name))
        self.concurrent_requests = self.peak_concurrent_requests = concurrent
        self.in_flight = self.peak_in_flight = in_flight
