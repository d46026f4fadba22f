"""Shared fixtures: one test suite, run against every store (SQLite and PostgreSQL).

PostgreSQL tests use a real server (``RINGBACK_TEST_PG_URL``, default the local ``test``
database). Each session (each xdist worker) migrates one schema of its own once; before every
test that schema is emptied (every table but ``schema_migrations``, sequences back to 1), which
takes a hundredth of migrating a new one. SQLite tests likewise get a copy of a file migrated
once. Every test still opens its store with ``migrate=True`` (a no-op on an up-to-date
database) and tests/store checks what the migrations make. Without a server the PostgreSQL
tests are skipped, unless ``RINGBACK_REQUIRE_PG=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from ringback.clock import FakeClock
from ringback.domain import credentials
from ringback.store.db import Store, open_store
from support import PG_URL, PgSchema, WatchedClock, require_pg
from support_webhooks import Receiver

#: no time limit per hypothesis example: a shared 2-core machine under load runs an example
#: many times slower than a quiet one, and a timed failure there says nothing about the code
#: (performance is measured by bench/, never by tests); examples stay bounded by their sizes
settings.register_profile("ringback", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ringback")

#: fixtures that start a ``ringback serve`` process (tests/api/conftest.py): a test that talks
#: HTTP to one is ``slow`` (see the markers in pyproject.toml)
SERVER_FIXTURES = frozenset({"live", "own_live"})


#: the tests of these folders are ``serial``: the chaos runs start PostgreSQL clusters, network
#: namespaces and kill -9 soaks, and check time limits that assume a machine not busy with the
#: rest of the suite. ``make test`` runs every other test on 3 processes per core
#: (pytest-xdist), then these side by side on 4 (one long soak per process)
SERIAL_FOLDERS = ("chaos",)


def _folder(path: Path) -> str:
    """The folder of tests/ a test file is in ("" outside it)."""
    tests = Path(__file__).parent
    return path.relative_to(tests).parts[0] if path.is_relative_to(tests) else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if _folder(item.path) in SERIAL_FOLDERS:
            item.add_marker(pytest.mark.serial)
    # the slow tests first (a stable sort: files keep their order within each part): most of
    # them wait on real time (fax and audio paced at 20 ms, processes starting), so the
    # workers run them side by side early and the many short tests fill the end in, instead
    # of one worker still holding a queue of long tests when the others have nothing left
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


#: the tests of these folders pace media in real time (RTP every 20 ms; faxes whose T.30
#: timers give up when a stream stalls): ``make test`` keeps the CPU busy with 3 workers per
#: core, so while one of them runs its process (and what it starts) is scheduled first
REALTIME_FOLDERS = ("sip", "fax")
REALTIME_NICE = -5  # CFS weight ~3x a default process's


@pytest.fixture(autouse=True)
def _realtime_priority(request: pytest.FixtureRequest) -> Iterator[None]:
    """A higher scheduling priority for a real-time test's thread and the processes it starts
    (they inherit it), back to the worker's own afterwards; where raising it is not allowed
    (not root), the test runs as it is."""
    if _folder(request.node.path) not in REALTIME_FOLDERS:
        yield
        return
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, before + REALTIME_NICE)
    except PermissionError:
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


@pytest.fixture(autouse=True, scope="session")
def _cheaper_secret_hashing() -> Iterator[None]:
    """Secrets hashed in this process are hashed at scrypt N=2**10, 16 times cheaper than the
    product's 2**14: a work factor is a cost, not behaviour (each hash records its factor and
    is verified with it), and a few hundred tests each create credentials. Servers and CLIs
    the tests start as processes keep the product's factor."""
    product = credentials.SCRYPT_N
    credentials.SCRYPT_N = 2**10
    yield
    credentials.SCRYPT_N = product


@pytest.fixture
def clock() -> WatchedClock:
    return WatchedClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_pg()
    return str(request.param)


def _run_in_thread(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the coroutine function ``make`` to its end outside any running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, make()).result(timeout=120)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every migration applied, made once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "ringback.db"

    async def make() -> None:
        opened = await open_store(f"sqlite:///{path}", FakeClock(), migrate=True)
        await opened.close()

    _run_in_thread(make)
    leftovers = sorted(p.name for p in path.parent.iterdir() if p != path)
    assert not leftovers, f"the migrated SQLite file was not closed cleanly: {leftovers}"
    return path


class PgTestSchema:
    """One migrated schema, reused test after test: ``reset`` empties it before each."""

    def __init__(self) -> None:
        self.schema = PgSchema()
        self.tables: list[str] = []
        self.sequences: list[str] = []

    @property
    def name(self) -> str:
        return self.schema.name

    async def make(self) -> None:
        import asyncpg

        await self.schema.create()
        opened = await open_store(
            PG_URL, FakeClock(), migrate=True, search_path=self.name, notify_channel=self.name
        )
        await opened.close()
        conn = await asyncpg.connect(PG_URL, timeout=30)
        try:
            self.tables = [
                row[0]
                for row in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = $1"
                    " AND tablename <> 'schema_migrations' ORDER BY tablename",
                    self.name,
                )
            ]
            self.sequences = [
                row[0]
                for row in await conn.fetch(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = $1"
                    " ORDER BY sequencename",
                    self.name,
                )
            ]
        finally:
            await conn.close()

    async def reset(self) -> None:
        """Every table but schema_migrations emptied, every sequence back at its start: what a
        fresh migration leaves (rows are deleted with triggers and foreign keys off; without
        the rights for that, TRUNCATE, ten times slower)."""
        import asyncpg

        tables = ", ".join(f"{self.name}.{table}" for table in self.tables)
        conn = await asyncpg.connect(PG_URL, timeout=30)
        try:
            await conn.execute("SET lock_timeout = '10s'; SET synchronous_commit = off")
            try:
                async with conn.transaction():
                    await conn.execute(
                        "SET LOCAL session_replication_role = replica;"
                        + "".join(f"DELETE FROM {self.name}.{table};" for table in self.tables)
                        + "".join(
                            f"ALTER SEQUENCE {self.name}.{seq} RESTART;" for seq in self.sequences
                        )
                    )
            except asyncpg.InsufficientPrivilegeError:
                await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def pg_test_schema() -> Iterator[PgTestSchema]:
    """The PostgreSQL schema of this session's (xdist worker's) store tests, dropped at the end."""
    require_pg()
    made = PgTestSchema()
    try:
        _run_in_thread(made.make)
        yield made
    finally:
        _run_in_thread(made.schema.drop)


@pytest.fixture
async def store(
    backend: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    if backend == "sqlite":
        path = tmp_path / "ringback.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        opened = await open_store(f"sqlite:///{path}", clock, migrate=True)
        try:
            yield opened
        finally:
            await opened.close()
        return
    schema: PgTestSchema = request.getfixturevalue("pg_test_schema")
    await schema.reset()
    opened = await open_store(
        PG_URL, clock, migrate=True, search_path=schema.name,
        notify_channel=f"{schema.name}_{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    try:
        yield opened
    finally:
        await opened.close()


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
