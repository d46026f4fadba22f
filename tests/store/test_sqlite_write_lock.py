"""The SQLite writer takes the database's write lock with ``BEGIN IMMEDIATE``: while another
process holds it, it waits (the event loop free), and gives up with SQLAlchemy's "database is
locked" error after BUSY_GIVE_UP_SECONDS. Small reads (lookups) run on its connection when it
is idle."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from ringback.store import sqlite_writer
from ringback.store.sqlite_writer import SqliteWriter


def _writer(path: Path) -> SqliteWriter:
    return SqliteWriter(f"sqlite:///{path}", str(path))


async def _insert(writer: SqliteWriter, value: int) -> None:
    async with writer.transaction() as conn:
        await conn.exec_driver_sql(f"INSERT INTO t VALUES ({value})")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "lock.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.close()
    return path


async def test_a_write_waits_for_the_lock_another_process_holds_and_then_commits(
    database: Path,
) -> None:
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    writer = _writer(database)
    try:
        waiting = asyncio.ensure_future(_insert(writer, 1))
        for _ in range(5):  # the loop runs; the writer keeps trying while the lock is held
            await asyncio.sleep(0)
        assert not waiting.done()
        holder.execute("COMMIT")
        await asyncio.wait_for(waiting, 10)
        assert holder.execute("SELECT v FROM t").fetchall() == [(1,)]
    finally:
        holder.close()
        writer.close()


async def test_a_write_gives_up_with_database_is_locked_after_the_give_up_time(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_writer, "BUSY_GIVE_UP_SECONDS", 0.2)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    writer = _writer(database)
    try:
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            await asyncio.wait_for(_insert(writer, 1), 10)
        holder.execute("ROLLBACK")
        await _insert(writer, 2)  # the writer is usable again once the lock is free
        assert holder.execute("SELECT v FROM t").fetchall() == [(2,)]
    finally:
        holder.close()
        writer.close()


async def test_a_lookup_reads_inline_on_the_idle_writer_and_steps_aside_for_a_write(
    database: Path,
) -> None:
    """A small read runs on the write connection when no transaction holds it (no helper
    thread) and sees the last commit; while a write transaction is open it answers None at
    once: the store then reads through a pooled reader."""
    writer = _writer(database)
    select = sa.text("SELECT v FROM t ORDER BY v")
    try:
        await _insert(writer, 7)
        assert writer.lookup(select) == [(7,)]
        async with writer.transaction() as conn:
            await conn.exec_driver_sql("INSERT INTO t VALUES (8)")
            assert writer.lookup(select) is None
        await _insert(writer, 9)  # the writer's bookkeeping is intact after the lookups
        assert writer.lookup(select) == [(7,), (8,), (9,)]
    finally:
        writer.close()
