"""SQLite's read connections (store/sqlite_readers.py): statements in helper threads, a pool
that more readers than it holds wait on without stalling, and connections that come back even
when their reader is cancelled mid-statement."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringback.store.sqlite_readers import POOL_OVERFLOW, POOL_SIZE, SqliteReaders

CAPACITY = POOL_SIZE + POOL_OVERFLOW


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "readers.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE n (v INTEGER)")
        conn.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(1000)])
    return path


@pytest.fixture
def readers(database: Path) -> Iterator[SqliteReaders]:
    pool = SqliteReaders(f"sqlite:///{database}")
    yield pool
    pool.close()


async def test_a_result_is_read_after_its_connection_went_back_to_the_pool(
    readers: SqliteReaders,
) -> None:
    async with readers.connect() as conn:
        result = await conn.exec_driver_sql("SELECT v FROM n ORDER BY v")
    assert [v for (v,) in result.all()] == list(range(1000))


async def test_a_read_keeps_its_snapshot_while_another_connection_commits(
    readers: SqliteReaders, database: Path
) -> None:
    async with readers.connect() as conn:
        before = (await conn.exec_driver_sql("SELECT count(*) FROM n")).scalar_one()
        with sqlite3.connect(database) as writer:
            writer.execute("INSERT INTO n VALUES (1000)")
        during = (await conn.exec_driver_sql("SELECT count(*) FROM n")).scalar_one()
    async with readers.connect() as conn:
        after = (await conn.exec_driver_sql("SELECT count(*) FROM n")).scalar_one()
    assert (before, during, after) == (1000, 1000, 1001)


async def test_more_readers_than_the_pool_holds_all_finish(readers: SqliteReaders) -> None:
    holding = asyncio.Event()

    async def read(i: int) -> int:
        async with readers.connect() as conn:
            await holding.wait()  # every admitted reader holds its connection across an await
            return int((await conn.exec_driver_sql("SELECT ? + count(*) FROM n", (i,))).scalar())

    reads = [asyncio.ensure_future(read(i)) for i in range(CAPACITY * 4)]
    await asyncio.sleep(0)
    holding.set()
    assert await asyncio.wait_for(asyncio.gather(*reads), 60) == [
        1000 + i for i in range(CAPACITY * 4)
    ]


async def test_readers_cancelled_mid_statement_give_their_connections_back(
    readers: SqliteReaders,
) -> None:
    slow = (  # a statement that runs for a while in its helper thread
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300000) "
        "SELECT count(*) FROM c"
    )

    async def read() -> None:
        async with readers.connect() as conn:
            await conn.exec_driver_sql(slow)

    reads = [asyncio.ensure_future(read()) for _ in range(CAPACITY)]
    await asyncio.sleep(0.05)
    for _ in range(2):  # the second lands while each reader returns its connection
        for one in reads:
            one.cancel()
        await asyncio.sleep(0.01)
    await asyncio.gather(*reads, return_exceptions=True)

    admitted: list[int] = []
    everyone = asyncio.Event()

    async def count() -> int:  # all the pool's connections held at once: each one came back
        async with readers.connect() as conn:
            admitted.append(1)
            if len(admitted) == CAPACITY:
                everyone.set()
            await everyone.wait()
            return int((await conn.exec_driver_sql("SELECT count(*) FROM n")).scalar())

    counts = await asyncio.wait_for(asyncio.gather(*(count() for _ in range(CAPACITY))), 60)
    assert counts == [1000] * CAPACITY
    assert readers.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
