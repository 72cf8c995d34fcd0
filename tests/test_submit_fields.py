"""A submit whose schema requires ``callback_url`` is refused without one, before any request."""

from __future__ import annotations

import pytest
from _client_support import SUBMIT_URL, call_count, envelope, make_client, task_data
from aioresponses import aioresponses

from vidgo_async import GenerationRequest, InputValidationError, Orchestrator, validate_input
from vidgo_async._validation import check_submit_fields

MODEL = "generate-lyrics"  # its submit schema lists callback_url as required
LYRICS = {"prompt": "a song about the sea"}
CALLBACK = "https://example.com/hooks/vidgo"


def test_only_a_model_that_requires_it_needs_a_callback_url() -> None:
    """The issue names the field and the docs; other models and unknown ids need none."""
    (issue,) = check_submit_fields(MODEL, None)
    assert issue.field == "$.callback_url"
    assert "is required for generate-lyrics" in issue.rule
    assert "music-series/generate-lyrics.json" in issue.rule
    assert check_submit_fields(MODEL, CALLBACK) == []
    assert check_submit_fields("seedance-2", None) == []
    assert check_submit_fields("not-a-model", None) == []
    assert validate_input(MODEL, LYRICS) == LYRICS  # the input itself is fine


async def test_client_submit_without_a_required_callback_url_sends_nothing() -> None:
    """Refused before the request; with the URL the same submit is sent with it."""
    async with make_client() as client:
        with aioresponses() as mocked:
            with pytest.raises(InputValidationError, match=r"\$\.callback_url is required"):
                await client.submit(MODEL, LYRICS)
            assert call_count(mocked) == 0
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "not_started")))
            task = await client.submit(MODEL, LYRICS, callback_url=CALLBACK)
            ((request,),) = mocked.requests.values()
    assert task.task_id == "t1"
    assert b'"callback_url": "https://example.com/hooks/vidgo"' in request.kwargs["data"]


async def test_an_orchestrator_without_a_receiver_refuses_the_job_at_start() -> None:
    """orch.start raises at once; a job with its own callback URL is queued."""
    async with make_client() as client:
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t1", "finished")))
            async with Orchestrator(client) as orch:
                with pytest.raises(InputValidationError, match=r"\$\.callback_url"):
                    orch.start(GenerationRequest(MODEL, LYRICS, key="no-url"))
                handle = orch.start(GenerationRequest(MODEL, LYRICS, callback_url=CALLBACK))
                result = await handle.result()
    assert result.task_id == "t1"
