"""SQLite writes on the event loop's own thread.

A SQLite write in WAL mode takes microseconds; handing every statement to a helper thread (as
aiosqlite does) costs more than the statement itself and serialises the worker behind thread
hand-offs. So ringback keeps one SQLAlchemy (pysqlite) connection for writes and runs its
statements inline. It never blocks on another process: the write lock is taken with
``BEGIN IMMEDIATE`` and ``busy_timeout=0``, and while another process holds it the coroutine
sleeps and tries again. Reads run in helper threads, off the loop (``sqlite_readers.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult

T = TypeVar("T")
BUSY_GIVE_UP_SECONDS = 30.0
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
log = logging.getLogger(__name__)


def sqlite_pragmas(
    dbapi_connection: Any, *, busy_timeout_ms: int, autocheckpoint: bool = True
) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun explicitly
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    if not autocheckpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        # once a checkpoint lets the WAL start over, its file shrinks back to this size
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


class InlineConnection:
    """The subset of ``AsyncConnection`` the store uses, run synchronously."""

    __slots__ = ("sync",)

    def __init__(self, sync: Connection) -> None:
        self.sync = sync

    async def execute(self, statement: Any, parameters: Any = None) -> CursorResult[Any]:
        return self.sync.execute(statement, parameters)

    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> CursorResult[Any]:
        return self.sync.exec_driver_sql(sql, parameters)

    async def in_thread(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on this connection in a helper thread, the loop free meanwhile: for
        long statements only (a bulk insert), where SQLite's work (without the GIL) then
        overlaps the next request's Python on another core. The transaction's lock is held
        throughout, so no other statement uses the connection meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(None, work, self.sync)


class SqliteWriter:
    """One write connection, one transaction at a time.

    Checkpoints (copying the WAL back into the database, with an fsync) would stall the loop
    for milliseconds if a commit ran them; the writer turns them off for its connection and
    runs them in a helper thread instead, every ``CHECKPOINT_EVERY`` commits, or sooner once
    the WAL holds ``CHECKPOINT_WAL_BYTES``: bulk intake commits thousands of tasks at a time,
    and 200 such commits had left a WAL of 750 MB beside a 560 MB database, which every read
    then looked through (and the next checkpoint had to copy while the workers ran).
    """

    CHECKPOINT_EVERY = 200
    CHECKPOINT_WAL_BYTES = 64 * 1024 * 1024

    def __init__(self, sync_url: str, database_path: str) -> None:
        self.engine = sa.create_engine(
            sync_url,
            poolclass=sa.pool.StaticPool,
            # used from a helper thread at times (InlineConnection.in_thread), never at once
            connect_args={"check_same_thread": False},
        )
        self.database_path = database_path
        self.wal_path = database_path + "-wal"

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_connection, busy_timeout_ms=0, autocheckpoint=False)

        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._commits = 0
        self._checkpointing: asyncio.Future[None] | None = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[InlineConnection]:
        async with self._lock:
            if self._conn is None:
                self._conn = self.engine.connect()
            conn = self._conn
            with conn.begin():  # SQLAlchemy's bookkeeping; pysqlite sends nothing yet
                await _begin_immediate(conn)
                yield InlineConnection(conn)
        self._commits += 1
        if self._checkpointing is None and (
            self._commits >= self.CHECKPOINT_EVERY or self._wal_bytes() >= self.CHECKPOINT_WAL_BYTES
        ):
            self._commits = 0
            self._checkpointing = asyncio.get_running_loop().run_in_executor(
                None, _checkpoint, self.database_path
            )
            self._checkpointing.add_done_callback(self._checkpointed)

    def lookup(self, statement: Any, parameters: Any = None) -> Sequence[Any] | None:
        """The rows of one small read run inline on the write connection (the statement
        alone, in autocommit: it sees the last commit; nothing else runs meanwhile, there is
        no await); None when a transaction holds the connection or SQLite answers busy (its
        busy timeout is 0 here): the caller then reads through a pooled reader."""
        if self._lock.locked():
            return None
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
            with self._conn.begin():  # SQLAlchemy's bookkeeping only: pysqlite sends no BEGIN
                return self._conn.execute(statement, parameters).all()
        except sa.exc.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            raise

    def _wal_bytes(self) -> int:
        try:
            return os.stat(self.wal_path).st_size
        except OSError:
            return 0

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("WAL checkpoint failed: %s", done.exception())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()


def _checkpoint(database_path: str) -> None:
    """Copy what the WAL holds into the database without blocking writers (PASSIVE), and let
    SQLite refresh its statistics where they are stale."""
    conn = sqlite3.connect(database_path, timeout=5)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        # keep the planner's statistics fresh as tables grow, or it ignores the indexes
        conn.execute("PRAGMA optimize")
    finally:
        conn.close()


async def _begin_immediate(conn: Connection) -> None:
    """Take the write lock, sleeping while another process holds it.

    The lock is tried on the driver's own connection: a busy answer is then a plain
    ``sqlite3.OperationalError``, not SQLAlchemy's wrapped error whose message (with the
    statement) was built on every try — two workers contending for the lock tried thousands of
    times a run. Any other error, and the last try, go through SQLAlchemy as before, so callers
    see the same errors."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + BUSY_GIVE_UP_SECONDS
    pause = 0.0005
    raw = conn.connection.dbapi_connection
    while raw is not None and loop.time() <= give_up:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                break  # not the lock: SQLAlchemy raises it, as it always did
        # real time, not the injected clock: the lock is another process's, freed on its time
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.002)
    # the last try (the lock is still held), or another error: through SQLAlchemy, which raises
    # its own error for it
    conn.exec_driver_sql("BEGIN IMMEDIATE")
