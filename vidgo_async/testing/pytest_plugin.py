"""Pytest fixtures for the Vidgo emulator; opt in from your ``conftest.py``::

    pytest_plugins = ["vidgo_async.testing.pytest_plugin"]

Fixtures:

- ``vidgo_emulator`` (async, needs pytest-asyncio): a running :class:`Emulator`.
- ``vidgo_emulator_thread`` (sync): the same, served from a background thread, for
  synchronous tests or code under test that runs its own event loop.

Configure either with a marker, whose keyword arguments go to :class:`Emulator`::

    @pytest.mark.vidgo_emulator(job_seconds=30, time_scale=0.001, faults="status:503,every=4")
    async def test_my_app(vidgo_emulator): ...

or override the ``vidgo_emulator_options`` fixture (a dict of the same keyword arguments)
for a whole module or directory. The marker wins over the fixture. Without either, the
emulator runs jobs of 1 emulated second at ``time_scale=0.01``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from ._emulator import Emulator

__all__ = ["vidgo_emulator", "vidgo_emulator_options", "vidgo_emulator_thread"]

_DEFAULTS: dict[str, Any] = {"job_seconds": 1.0, "time_scale": 0.01}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``vidgo_emulator`` marker."""
    config.addinivalue_line(
        "markers", "vidgo_emulator(**kwargs): keyword arguments for the vidgo_emulator fixtures"
    )


@pytest.fixture
def vidgo_emulator_options() -> dict[str, Any]:
    """Return the keyword arguments for the emulator fixtures; override it to change them."""
    return dict(_DEFAULTS)


def _options(request: pytest.FixtureRequest, base: dict[str, Any]) -> dict[str, Any]:
    options = dict(base)
    marker = request.node.get_closest_marker("vidgo_emulator")
    if marker is not None:
        options.update(marker.kwargs)
    return options


@pytest_asyncio.fixture
async def vidgo_emulator(
    request: pytest.FixtureRequest, vidgo_emulator_options: dict[str, Any]
) -> AsyncIterator[Emulator]:
    """Yield a running emulator, closed after the test."""
    async with Emulator(**_options(request, vidgo_emulator_options)) as emulator:
        yield emulator


@pytest.fixture
def vidgo_emulator_thread(
    request: pytest.FixtureRequest, vidgo_emulator_options: dict[str, Any]
) -> Iterator[Emulator]:
    """Yield an emulator served from a background thread, closed after the test."""
    with Emulator(**_options(request, vidgo_emulator_options)).run_in_thread() as emulator:
        yield emulator
