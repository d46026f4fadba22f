"""Shared fixtures: one test suite, run against every store (SQLite and PostgreSQL).

PostgreSQL tests use a real server (``RINGBACK_TEST_PG_URL``, default the local ``test``
database) and a fresh schema per test. Without a server they are skipped, unless
``RINGBACK_REQUIRE_PG=1`` (as in CI), where they fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ringback.clock import FakeClock
from ringback.store.db import Store, open_store
from support import PgSchema, WatchedClock, require_pg
from support_webhooks import Receiver

#: fixtures that start a ``ringback serve`` process (tests/api/conftest.py): a test that talks
#: HTTP to one is ``slow`` (see the markers in pyproject.toml)
SERVER_FIXTURES = frozenset({"live", "own_live"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def clock() -> WatchedClock:
    return WatchedClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_pg()
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    if backend == "sqlite":
        opened = await open_store(f"sqlite:///{tmp_path / 'ringback.db'}", clock, migrate=True)
        try:
            yield opened
        finally:
            await opened.close()
        return
    schema = PgSchema()
    await schema.create()
    opened = await open_store(
        schema.url(), clock, migrate=True, search_path=schema.name, notify_channel=schema.name
    )
    try:
        yield opened
    finally:
        await opened.close()
        await schema.drop()


@pytest.fixture
def pg_schema() -> PgSchema:
    require_pg()
    return PgSchema()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1 for webhook deliveries, stopped after the test."""
    running = Receiver().start()
    try:
        yield running
    finally:
        running.stop()
