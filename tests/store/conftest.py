"""Fixtures of the store's contract suite (``clock`` and ``backend``: tests/conftest.py).

``store`` is overridden here to be quick: the suite runs two hundred tests on each database,
and migrating a fresh database for each one cost most of its time. Each test still starts on
an empty, fully migrated database of its own kind: on SQLite a copy of a database migrated once
per session; on PostgreSQL one schema migrated once per session, emptied (every table but the
migrations') before each test. Ids keep rising from test to test (no test may assume them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import graphlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from ringback.clock import FakeClock
from ringback.store import Store, open_store
from support import PG_URL, PgSchema

OpenStore = Callable[[], Awaitable[Store]]  #: opens another store on the same database


class _Migrated:
    """The databases migrated once for the session (made by the first test that needs one)."""

    def __init__(self, directory: Path) -> None:
        self.sqlite = directory / "template.db"
        self.pg: PgSchema | None = None
        self.pg_tables: list[str] = []


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Migrated]:
    made = _Migrated(tmp_path_factory.mktemp("migrated"))
    yield made
    if made.pg is not None:
        _run(made.pg.drop())


async def _emptied_pg(made: _Migrated) -> str:
    """The session's migrated schema, every table but the migrations' emptied; its name."""
    import asyncpg

    if made.pg is None:
        schema = PgSchema()
        await schema.create()
        made.pg = schema
        first = await open_store(schema.url(), FakeClock(), migrate=True, search_path=schema.name)
        await first.close()
    name = made.pg.name
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": name})
    try:
        if not made.pg_tables:
            made.pg_tables = await _tables_children_first(conn, name)
        # DELETE, not TRUNCATE: on tables this small it is several times quicker
        await conn.execute("; ".join(f'DELETE FROM "{table}"' for table in made.pg_tables))
    finally:
        await conn.close()
    return name


async def _tables_children_first(conn: Any, schema: str) -> list[str]:
    """The schema's tables but the migrations', each after every table referencing it."""
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 "
        "AND tablename <> 'schema_migrations'",
        schema,
    )
    references = await conn.fetch(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = $1",
        schema,
    )
    referenced_by: dict[str, set[str]] = {str(row[0]): set() for row in tables}
    for child, parent in references:
        referenced_by.setdefault(str(parent).split(".")[-1], set()).add(str(child).split(".")[-1])
    return list(graphlib.TopologicalSorter(referenced_by).static_order())


async def _sqlite_copy(made: _Migrated, path: Path) -> None:
    """A copy of the session's migrated SQLite database at ``path``."""
    if not made.sqlite.exists():
        first = await open_store(f"sqlite:///{made.sqlite}", FakeClock(), migrate=True)
        await first.close()
    source, target = sqlite3.connect(made.sqlite), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


@pytest.fixture
async def store(
    backend: str, tmp_path: Path, clock: FakeClock, migrated: _Migrated
) -> AsyncIterator[Store]:
    if backend == "sqlite":
        path = tmp_path / "ringback.db"
        await _sqlite_copy(migrated, path)
        opened = await open_store(f"sqlite:///{path}", clock)
    else:
        name = await _emptied_pg(migrated)
        opened = await open_store(PG_URL, clock, search_path=name, notify_channel=name)
    try:
        yield opened
    finally:
        await opened.close()


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
