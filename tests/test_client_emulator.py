"""VidgoClient against the emulator on loopback: the lifecycle, credits, errors and submit retries.

These are integration tests: a real aiohttp server (``vidgo_async.testing.Emulator``) and
a real client, with time scaled down (a "10 s" job takes 0.1 s). The fault kinds on
status queries, downloads, deadlines, cancellation and the key canary live in
``test_client_emulator_faults.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _emulator_support import (
    FAST,
    FAST_RETRY,
    POLL,
    ScaledClock,
    fast_client,
    listing,
    scaled_emulator,
    sha256_of,
)

from vidgo_async import (
    AuthenticationError,
    BadRequestError,
    InputValidationError,
    InsufficientCreditsError,
    RetryPolicy,
    Seedance2Input,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskStatus,
    Timeout,
    VidgoClient,
)
from vidgo_async.testing import Emulator, Fault, sample_sha256

TIMEOUT = Timeout(connect=2.0, read=2.0, total=3.0)


def emulator(**kwargs: Any) -> Emulator:
    """Return an emulator with fast jobs (10 emulated s = 0.1 s) and a fixed seed."""
    return scaled_emulator(seed=7, **kwargs)


def client_for(emu: Emulator, **kwargs: Any) -> VidgoClient:
    """Return a client for ``emu`` with scaled polling, short timeouts and quick retries."""
    kwargs.setdefault("timeout", TIMEOUT)
    return fast_client(emu, **kwargs)


# -- the lifecycle ------------------------------------------------------------------------


async def test_submit_get_task_wait_and_download_end_to_end(tmp_path: Path) -> None:
    """A typed submit runs to finished and downloads the emulator's exact MP4 as <task_id>.mp4."""
    async with emulator() as emu, client_for(emu) as client:
        submitted = await client.submit(
            "seedance-2", Seedance2Input(prompt="a red fox in snow", duration=5, resolution="720p")
        )
        assert submitted.status is TaskStatus.NOT_STARTED
        assert submitted.task_id.startswith("task-unified-")
        seen = await client.get_task(submitted.task_id)
        assert seen.task_id == submitted.task_id
        assert seen.status in (TaskStatus.NOT_STARTED, TaskStatus.RUNNING)
        finished = await client.wait(submitted, timeout=10)
        assert finished.status is TaskStatus.FINISHED
        assert finished.progress == 100
        assert [f.file_type for f in finished.files] == ["video"]
        paths = await client.download(finished, tmp_path / "out")
        assert emu.stats.submits_accepted == 1
        assert emu.stats.download_requests[submitted.task_id] == 1
        assert emu.stats.download_requests_with_credentials == 0
    assert [p.name for p in paths] == [f"{submitted.task_id}.mp4"]
    assert sha256_of(paths[0]) == sample_sha256()
    assert listing(tmp_path / "out") == [f"{submitted.task_id}.mp4"]


async def test_generate_with_a_mapping_returns_the_finished_task(tmp_path: Path) -> None:
    """generate submits once, polls a sane number of times and returns a downloadable task."""
    async with emulator() as emu, client_for(emu) as client:
        task = await client.generate("seedance-2-fast", FAST, timeout=10)
        paths = await client.download(task, tmp_path)
        polls = emu.stats.status_requests[task.task_id]
        assert emu.stats.submit_attempts == emu.stats.submits_accepted == 1
        assert emu.stats.jobs_for("seedance-2-fast", FAST) == 1
    assert task.is_finished
    assert 1 <= polls <= 40
    assert sha256_of(paths[0]) == sample_sha256()


async def test_wait_by_id_and_a_passthrough_model() -> None:
    """A model without a typed input is sent as given, and wait accepts a bare task id."""
    data = {"prompt": "a cat", "sound": False, "duration": 5, "aspect_ratio": "1:1"}
    async with emulator() as emu, client_for(emu) as client:
        task = await client.submit("kling-2.6", data)
        done = await client.wait(task.task_id, timeout=10)
        assert emu.stats.jobs_for("kling-2.6", data) == 1
    assert done.task_id == task.task_id
    assert done.is_finished


async def test_progress_none_jobs_still_finish() -> None:
    """A job that never reports progress (progress=none) is still waited out to finished."""
    prompt = "a quiet lake [[vidgo-emulator: seconds=8 progress=none]]"
    async with emulator() as emu, client_for(emu) as client:
        task = await client.generate("seedance-2-fast", {**FAST, "prompt": prompt}, timeout=10)
        assert 1 <= emu.stats.status_requests[task.task_id] <= 40
    assert task.is_finished


async def test_a_failed_task_raises_task_failed_with_the_server_message() -> None:
    """A job that fails (fail="boom") raises TaskFailedError whose task carries "boom"."""
    prompt = 'a storm [[vidgo-emulator: seconds=5 fail="boom"]]'
    async with emulator() as emu, client_for(emu) as client:
        with pytest.raises(TaskFailedError) as caught:
            await client.generate("seedance-2-fast", {**FAST, "prompt": prompt}, timeout=10)
        assert emu.stats.tasks_failed == 1
        assert emu.stats.submits_accepted == 1
    assert caught.value.task.status is TaskStatus.FAILED
    assert caught.value.task.error_message == "boom"
    assert "boom" in str(caught.value)


# -- balance and credits ------------------------------------------------------------------


async def test_credits_are_reserved_on_submit_charged_on_finish_and_free_on_failure() -> None:
    """balance() shows a submit's price reserved, kept on success and released on failure."""
    failing = {**FAST, "prompt": 'doomed [[vidgo-emulator: seconds=20 fail="nope"]]'}
    async with emulator(credits=1000) as emu, client_for(emu) as client:
        start = await client.balance()
        assert start.credits_amount == 1000
        assert start.email == "emulator@example.com"
        ok = await client.submit("seedance-2-fast", FAST)  # 6 credits/s x 5 s
        assert (await client.balance()).credits_amount == 970
        bad = await client.submit("seedance-2-fast", failing)
        assert (await client.balance()).credits_amount == 940
        await client.wait(ok, timeout=10)
        assert (await client.balance()).credits_amount == 940  # charged, not refunded
        with pytest.raises(TaskFailedError):
            await client.wait(bad, timeout=10)
        assert (await client.balance()).credits_amount == 970  # the failed job is free
        assert emu.stats.balance_requests == 5


async def test_402_when_credits_cannot_pay_is_insufficient_credits() -> None:
    """A submit the balance cannot pay raises InsufficientCreditsError and creates nothing."""
    async with emulator(credits=40) as emu, client_for(emu) as client:
        with pytest.raises(InsufficientCreditsError) as caught:
            await client.submit("seedance-2", {**FAST, "resolution": "720p"})  # 10/s x 5 s
        assert emu.stats.submit_attempts == 1
        assert emu.stats.submits_accepted == 0
        assert (await client.balance()).credits_amount == 40
    assert caught.value.status_code == 402
    assert caught.value.error_type == "insufficient_credits_error"
    assert "40" in caught.value.message


# -- refusals: nothing sent, or nothing created -------------------------------------------

BAD_INPUTS = [
    ("seedance-2", {**FAST, "duration": 3}),
    ("seedance-2-fast", {**FAST, "resolution": "1080p"}),
    ("seedance-2", {**FAST, "prompt": " "}),
    ("seedance-2", {**FAST, "aspect_ratio": "2:1"}),
    ("seedance-2", {**FAST, "image_urls": ["ftp://x.example/a.png"]}),
    (
        "seedance-2",
        {
            **FAST,
            "image_urls": ["https://x.example/a.png"],
            "reference_image_urls": ["https://x.example/b.png"],
        },
    ),
    ("seedance-2", {"prompt": "no duration or resolution"}),
    ("seedance-2-fast", {**FAST, "unknown_field": 1}),
]


@pytest.mark.parametrize(("model", "data"), BAD_INPUTS)
async def test_bad_input_raises_before_any_request_reaches_the_emulator(
    model: str, data: dict[str, Any]
) -> None:
    """A rule-breaking input raises InputValidationError and the emulator sees zero requests."""
    async with emulator() as emu, client_for(emu) as client:
        with pytest.raises(InputValidationError) as caught:
            await client.submit(model, data)
        assert sum(emu.stats.requests.values()) == 0
        assert emu.stats.submit_attempts == 0
    assert caught.value.issues
    assert caught.value.field


async def test_a_bad_callback_url_raises_before_any_request() -> None:
    """An unusable callback_url is refused client-side; nothing reaches the emulator."""
    async with emulator() as emu, client_for(emu) as client:
        with pytest.raises(InputValidationError):
            await client.submit("seedance-2-fast", FAST, callback_url="ftp://hooks.example/x")
        assert sum(emu.stats.requests.values()) == 0


async def test_a_wrong_key_raises_authentication_error_without_retrying() -> None:
    """Submit, get_task and balance with a wrong key raise AuthenticationError, one attempt each."""
    async with emulator() as emu:
        async with client_for(emu) as good:
            task = await good.submit("seedance-2-fast", FAST)
        emu.stats.reset()
        async with VidgoClient(
            "not-the-key", base_url=emu.base_url, poll=POLL, timeout=TIMEOUT, retry=FAST_RETRY
        ) as client:
            for call in (
                client.submit("seedance-2-fast", FAST),
                client.get_task(task.task_id),
                client.balance(),
            ):
                with pytest.raises(AuthenticationError) as caught:
                    await call
                assert caught.value.status_code == 401
                assert caught.value.error_type == "authentication_error"
        assert emu.stats.submit_attempts == 1
        assert emu.stats.submits_accepted == 0
        assert emu.stats.status_requests[task.task_id] == 1
        assert emu.stats.balance_requests == 1


@pytest.mark.parametrize("error_type", ["validation_error", "content_moderation_error"])
async def test_an_emulator_side_400_is_bad_request_with_its_type(error_type: str) -> None:
    """A submit the server refuses with 400 raises BadRequestError carrying the error type."""
    data = {"prompt": f"a scene [[vidgo-emulator: reject={error_type}]]"}
    async with emulator() as emu, client_for(emu) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.submit("seedream-5.0-lite", data)
        assert emu.stats.submit_attempts == 1  # a refusal is never retried
        assert emu.stats.submits_accepted == 0
    assert caught.value.status_code == 400
    assert caught.value.error_type == error_type
    assert caught.value.message


# -- submit retries: 429 is safe, anything ambiguous is not --------------------------------


@pytest.mark.parametrize(
    ("fault", "low", "high"),
    [
        (Fault(endpoint="submit", kind=429, times=1, retry_after="1"), 1.0, 1.2),
        (Fault(endpoint="submit", kind=429, times=1, retry_after_ms="1000"), 1.0, 1.2),
        (Fault(endpoint="submit", kind=429, times=1, retry_after_date=3), 1.0, 3.4),
    ],
    ids=["retry-after-seconds", "retry-after-ms", "retry-after-http-date"],
)
async def test_429_with_retry_after_on_the_first_submit_ends_in_one_accepted_submit(
    fault: Fault, low: float, high: float
) -> None:
    """A 429 with Retry-After is slept through (as asked) and retried: two attempts, one job."""
    clock = ScaledClock()
    async with emulator(faults=[fault]) as emu, client_for(emu, _clock=clock) as client:
        task = await client.submit("seedance-2-fast", FAST)
        assert emu.stats.submit_attempts == 2
        assert emu.stats.submits_accepted == 1
        assert emu.stats.jobs_for("seedance-2-fast", FAST) == 1
        assert emu.stats.faults_injected["submit:429"] == 1
    assert task.status is TaskStatus.NOT_STARTED
    assert len(clock.sleeps) == 1
    assert low <= clock.sleeps[0] <= high


async def test_429_without_retry_after_is_retried_with_backoff() -> None:
    """A bare 429 on submit is retried after the computed backoff: one job."""
    clock = ScaledClock()
    faults = [Fault(endpoint="submit", kind=429, times=2)]
    async with emulator(faults=faults) as emu, client_for(emu, _clock=clock) as client:
        await client.submit("seedance-2-fast", FAST)
        assert emu.stats.submit_attempts == 3
        assert emu.stats.submits_accepted == 1
    assert len(clock.sleeps) == 2
    assert all(0 <= s <= FAST_RETRY.max_delay for s in clock.sleeps)


SUBMIT_AMBIGUOUS = [
    # (spec, jobs the emulator created)
    ("submit:stall,seconds=5", 1),
    ("submit:slow,seconds=2", 1),
    ("submit:drip,interval=0.1", 1),
    ("submit:reset", 1),
    ("submit:reset,bytes=20", 1),
    ("submit:drop", 1),
    ("submit:500,after", 1),
    ("submit:502,after", 1),
    ("submit:503,after,html", 1),
    ("submit:code_in_body,after", 1),
    ("submit:500", 0),  # "before": created nothing, but the client cannot know that
    ("submit:502", 0),
    ("submit:503", 0),
    ("submit:503,before,html", 0),
]


@pytest.mark.parametrize(("spec", "jobs"), SUBMIT_AMBIGUOUS)
async def test_an_ambiguous_submit_raises_outcome_unknown_after_exactly_one_attempt(
    spec: str, jobs: int
) -> None:
    """Timeouts, resets, drops and 5xx after the request left raise SubmitOutcomeUnknownError, unretried."""
    timeout = Timeout(connect=1.0, read=0.5, total=0.6)
    async with emulator(faults=spec) as emu, client_for(emu, timeout=timeout) as client:
        with pytest.raises(SubmitOutcomeUnknownError) as caught:
            await client.submit("seedance-2-fast", FAST)
        assert emu.stats.submit_attempts == 1
        assert emu.stats.submits_accepted == jobs
        assert emu.stats.jobs_for("seedance-2-fast", FAST) == jobs
    error = caught.value
    assert error.model == "seedance-2-fast"
    assert error.payload == {"model": "seedance-2-fast", "input": FAST}
    assert "unknown" in str(error)


@pytest.mark.parametrize(("spec", "jobs"), [("submit:malformed", 1), ("submit:oversized", 1)])
async def test_an_unreadable_answer_to_a_submit_is_an_unknown_outcome(spec: str, jobs: int) -> None:
    """A 200 whose body cannot be read (the job exists) raises SubmitOutcomeUnknownError, unretried."""
    async with emulator(faults=spec) as emu, client_for(emu) as client:
        with pytest.raises(SubmitOutcomeUnknownError):
            await client.submit("seedance-2-fast", FAST)
        assert emu.stats.submit_attempts == 1
        assert emu.stats.jobs_for("seedance-2-fast", FAST) == jobs


@pytest.mark.parametrize(
    ("spec", "jobs"),
    [
        ("submit:500,times=1", 1),  # nothing created by the failed attempt
        ("submit:503,after,times=1", 2),  # at-least-once: the user pays for two jobs
        ("submit:stall,seconds=5,times=1", 2),
        ("submit:reset,times=1", 2),
    ],
)
async def test_retry_ambiguous_submits_opts_into_at_least_once(spec: str, jobs: int) -> None:
    """With retry_ambiguous_submits=True an ambiguous submit is retried; jobs may double."""
    retry = RetryPolicy(initial_delay=0.01, max_delay=0.05, retry_ambiguous_submits=True)
    timeout = Timeout(connect=1.0, read=0.5, total=0.6)
    async with (
        emulator(faults=spec) as emu,
        client_for(emu, retry=retry, timeout=timeout) as client,
    ):
        task = await client.submit("seedance-2-fast", FAST)
        assert emu.stats.submit_attempts == 2
        assert emu.stats.jobs_for("seedance-2-fast", FAST) == jobs
        assert (await client.wait(task, timeout=10)).is_finished


async def test_t01_key_mode_emulator_still_gets_at_most_once() -> None:
    """With an idempotency-honouring emulator the client (no key: the API has none) still submits once."""
    timeout = Timeout(connect=1.0, read=0.5, total=0.6)
    async with (
        emulator(idempotency=True, faults="submit:stall,seconds=5") as emu,
        client_for(emu, timeout=timeout) as client,
    ):
        with pytest.raises(SubmitOutcomeUnknownError):
            await client.submit("seedance-2-fast", FAST)
        assert emu.stats.submit_attempts == 1
        assert emu.stats.jobs_for("seedance-2-fast", FAST) == 1
        assert not emu.stats.idempotency_keys  # no Idempotency-Key header was sent
