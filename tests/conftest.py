"""Shared pytest configuration: every test runs offline; warnings are errors (pyproject)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any
from unittest.mock import Mock

import aioresponses.core
import pytest
from _postgres import PostgresServer, running_postgres
from aiohttp import ClientResponse

# aiohttp < 3.13 (the minimum versions CI also tests) has no ``stream_writer`` argument.
_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(ClientResponse.__init__).parameters


class _CompatClientResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp>=3.13's ``stream_writer``: supply one."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER:
            kwargs.setdefault("stream_writer", Mock())
        super().__init__(method, url, **kwargs)


# Shared by every test module that uses aioresponses (client, orchestrator, ...).
aioresponses.core.ClientResponse = _CompatClientResponse  # type: ignore[misc]


# -- a real PostgreSQL for the fleet tests (started once per session, only when asked for) --


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on a unix socket; a server that cannot start fails."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return postgres_server.new_database()
