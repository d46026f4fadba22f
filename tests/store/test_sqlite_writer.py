"""The SQLite writer keeps its WAL bounded: big commits are checkpointed long before the
200-commit mark, and the WAL file shrinks back once it starts over. A write waits for another
process's write lock (it never fails on it), and other errors are SQLAlchemy's, as ever."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from ringback.store.sqlite_writer import SqliteWriter

MIB = 1024 * 1024


async def _commit_rows(writer: SqliteWriter, commits: int, bytes_each: int) -> None:
    for _ in range(commits):
        async with writer.transaction() as conn:
            await conn.execute(
                sa.text("INSERT INTO blobs (body) VALUES (:body)"),
                [{"body": os.urandom(4096)} for _ in range(bytes_each // 4096)],
            )
        checkpointing = writer._checkpointing
        if checkpointing is not None:  # let a checkpoint begun by it finish
            await checkpointing


async def test_big_commits_are_checkpointed_by_wal_size_and_the_wal_stays_bounded(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "wal.db")
    writer = SqliteWriter(f"sqlite:///{path}", path)
    writer.CHECKPOINT_WAL_BYTES = 2 * MIB
    try:
        async with writer.transaction() as conn:
            await conn.execute(sa.text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)"))
        await _commit_rows(writer, commits=30, bytes_each=MIB)  # 30 MiB in 30 commits
        # 30 commits is far below CHECKPOINT_EVERY: only the size made it checkpoint
        assert os.stat(path).st_size >= 30 * MIB  # the rows reached the database file
        assert os.stat(path + "-wal").st_size <= 8 * MIB
    finally:
        writer.close()


async def test_a_write_waits_while_another_connection_holds_the_lock_then_commits(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "lock.db")
    writer = SqliteWriter(f"sqlite:///{path}", path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        async with writer.transaction() as conn:
            await conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        other.execute("BEGIN IMMEDIATE")  # another process's write lock

        async def write() -> None:
            async with writer.transaction() as conn:
                await conn.execute(sa.text("INSERT INTO t (id) VALUES (1)"))

        waiting = asyncio.create_task(write())
        for _ in range(20):  # it keeps trying (busy), without raising, while the lock is held
            await asyncio.sleep(0)
        assert not waiting.done()
        other.execute("INSERT INTO t (id) VALUES (2)")
        other.execute("COMMIT")
        await asyncio.wait_for(waiting, 30)
        assert sorted(r[0] for r in other.execute("SELECT id FROM t")) == [1, 2]
    finally:
        other.close()
        writer.close()


async def test_a_write_that_cannot_begin_for_another_reason_raises_sqlalchemys_error(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "ro.db")
    writer = SqliteWriter(f"sqlite:///{path}", path)
    try:
        async with writer.transaction() as conn:
            await conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        raw = writer._conn.connection.dbapi_connection  # type: ignore[union-attr]
        raw.execute("BEGIN")  # a transaction already open: BEGIN IMMEDIATE is refused
        with pytest.raises(sa.exc.OperationalError, match="within a transaction"):
            async with writer.transaction():
                pass
    finally:
        writer.close()
