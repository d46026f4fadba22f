"""Fixtures of the store's contract suite (``clock``, ``backend`` and ``store``:
tests/conftest.py, where each test gets an empty, fully migrated database of its kind)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ringback.clock import FakeClock
from ringback.store import Store, open_store
from support import PgSchema

OpenStore = Callable[[], Awaitable[Store]]  #: opens another store on the same database


@pytest.fixture
async def open_shared(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[OpenStore]:
    """Opens stores on one database of its own, as separate processes would (on PostgreSQL
    with one wake-up channel); the stores still open at the end are closed."""
    opened: list[Store] = []
    schema = PgSchema() if backend == "postgresql" else None
    if schema is not None:
        await schema.create()

    async def open_one() -> Store:
        if schema is None:
            url = f"sqlite:///{tmp_path / 'shared.db'}"
            one = await open_store(url, clock, migrate=True)
        else:
            one = await open_store(
                schema.url(), clock, migrate=True, search_path=schema.name,
                notify_channel=schema.name,
            )  # fmt: skip
        opened.append(one)
        return one

    try:
        yield open_one
    finally:
        for one in opened:
            await one.close()
        if schema is not None:
            await schema.drop()
