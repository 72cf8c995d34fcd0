"""Tests for the reusable status query: one path check, unchanged answers not read again."""

from __future__ import annotations

from typing import Any

import pytest
from _client_support import call_count, envelope, error_body, make_client, status_url, task_data
from aioresponses import aioresponses

from vidgo_async import InputValidationError, ServerError, StatusAnswer, TaskStatus, _converter


async def test_an_unchanged_answer_comes_back_unread() -> None:
    """A byte-identical answer hands back the same StatusAnswer without structuring it again."""
    structured: list[Any] = []
    original = _converter.structure

    def counting(data: Any, cls: Any) -> Any:
        structured.append(data)
        return original(data, cls)

    async with make_client() as client:
        reader = client.status_reader("t1")
        with aioresponses() as mocked, pytest.MonkeyPatch.context() as patch:
            patch.setattr("vidgo_async._status_reader.structure", counting)
            mocked.get(status_url("t1"), payload=envelope(task_data("t1")), repeat=True)
            first = await reader()
            second = await reader()
            assert call_count(mocked) == 2  # every call is one request
    assert second is first
    assert len(structured) == 1
    assert first.task.status is TaskStatus.RUNNING


@pytest.mark.parametrize(
    ("later", "headers"),
    [
        (task_data("t1", progress=41), {}),  # the body changed
        (task_data("t1"), {"Retry-After": "3"}),  # the same body with a poll hint
    ],
)
async def test_a_changed_answer_is_read_anew(
    later: dict[str, Any], headers: dict[str, str]
) -> None:
    """A different body or Retry-After is decoded and structured again."""
    async with make_client() as client:
        reader = client.status_reader("t1")
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), payload=envelope(task_data("t1", progress=40)))
            mocked.get(status_url("t1"), payload=envelope(later), headers=headers)
            first = await reader()
            second = await reader()
    assert second is not first
    assert second == StatusAnswer(second.task, 3.0 if headers else None)
    assert second.task.progress == later.get("progress")


async def test_an_error_answer_raises_and_is_not_remembered() -> None:
    """A failed query raises its error; the next identical good answer is still the old one."""
    async with make_client() as client:
        reader = client.status_reader("t1")
        with aioresponses() as mocked:
            mocked.get(status_url("t1"), payload=envelope(task_data("t1")))
            mocked.get(status_url("t1"), status=503, payload=error_body(503))
            mocked.get(status_url("t1"), payload=envelope(task_data("t1")))
            first = await reader()
            with pytest.raises(ServerError):
                await reader()
            third = await reader()
            assert call_count(mocked) == 3  # no retries
    assert third is first


async def test_an_unusable_task_id_is_refused_at_the_first_call() -> None:
    """The path is checked when the reader is first called, before anything is sent."""
    async with make_client() as client:
        reader = client.status_reader("..")
        with aioresponses() as mocked:
            with pytest.raises(InputValidationError, match="only dots"):
                await reader()
            assert call_count(mocked) == 0
    assert repr(reader) == "StatusReader(task_id='..')"


async def test_a_reader_of_a_closed_client_raises_before_sending() -> None:
    """After the client closed, awaiting its reader raises; nothing goes on the wire."""
    async with make_client() as client:
        reader = client.status_reader("t1")
    with aioresponses() as mocked:
        mocked.get(status_url("t1"), payload=envelope(task_data("t1")), repeat=True)
        with pytest.raises(RuntimeError, match="closed"):
            await reader()
        assert call_count(mocked) == 0
