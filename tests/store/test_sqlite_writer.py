"""The SQLite writer keeps its WAL bounded: big commits are checkpointed long before the
200-commit mark, and the WAL file shrinks back once it starts over."""

from __future__ import annotations

import os
from pathlib import Path

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
