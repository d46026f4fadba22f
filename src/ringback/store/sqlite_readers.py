"""SQLite reads off the event loop: pooled pysqlite connections, each statement run in a
helper thread, its rows fetched there.

This is what SQLAlchemy's asyncio layer over aiosqlite did for ringback, without it: that
layer imports SQLAlchemy's ORM (~6 MiB in every process) and crosses two hand-offs per
statement (a greenlet switch, then aiosqlite's thread), where one thread hop does. Writes do
not come here (``store/sqlite_writer.py`` runs them inline); reads do, so that a long list
or count never holds up the loop.

A connection is taken from the pool and given back on the loop's thread (a checkout, and the
``ROLLBACK`` that ends a read snapshot, take microseconds; a new connection, well under a
millisecond), never waited for: a semaphore on the loop admits at most as many readers as the
pool holds, and gives a reader's place back only once its connection is back in the pool.
Each connection runs its work one piece at a time (a lock per connection): a statement that a
cancelled reader left running goes on in its thread, and the connection goes back to the pool
from there once the statement ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Dialect, Result

from ringback.store.sqlite_writer import sqlite_pragmas

T = TypeVar("T")
POOL_SIZE = 4
POOL_OVERFLOW = 4


class ReaderConnection:
    """One pooled connection, in its read snapshot (the ``BEGIN`` of its first statement)
    until it is returned; the subset of ``AsyncConnection`` the store, the tests and the
    benchmarks use."""

    __slots__ = ("_readers", "lock", "returned", "sync")

    def __init__(self, sync: Connection, readers: SqliteReaders) -> None:
        self.sync = sync
        self._readers = readers
        self.lock = threading.Lock()  # held by the piece of work that runs on it
        self.returned = False  # back in the pool: work that starts after it must not run

    async def run_sync(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in a helper thread, alone on this connection."""

        def alone() -> T:
            with self.lock:
                if self.returned:  # its reader was cancelled before this work began
                    raise ConnectionError("the reader's connection was returned to the pool")
                return work(self.sync)

        return await self._readers.in_thread(alone)

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        return await self.run_sync(lambda sync: _fetched(sync.execute(statement, parameters)))

    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> Result[Any]:
        return await self.run_sync(lambda sync: _fetched(sync.exec_driver_sql(sql, parameters)))

    async def execution_options(self, **options: Any) -> ReaderConnection:
        self.sync.execution_options(**options)
        return self

    async def commit(self) -> None:
        await self.run_sync(lambda sync: sync.commit())


def _fetched(result: CursorResult[Any]) -> Result[Any]:
    """The rows of ``result`` read now (in the helper thread), as a result the caller reads
    on the loop: ``all``, ``first``, ``scalar``, ``mappings`` and the rest."""
    if not result.returns_rows:
        return result
    return result.freeze()()


class SqliteReaders:
    """The pool of read connections of one database file (see the module docstring)."""

    def __init__(self, sync_url: str) -> None:
        self.engine = sa.create_engine(
            sync_url,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            # a connection's statements run in whichever helper thread is free, one at a time
            connect_args={"check_same_thread": False},
        )
        self._admitted = asyncio.Semaphore(POOL_SIZE + POOL_OVERFLOW)
        self._threads = ThreadPoolExecutor(
            max_workers=POOL_SIZE + POOL_OVERFLOW, thread_name_prefix="sqlite-read"
        )

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_connection, busy_timeout_ms=10_000)

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")  # a read snapshot; writes go through the SqliteWriter

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    async def in_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, work)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[ReaderConnection]:
        """A pooled connection; its snapshot ends (rolled back) when it is returned, whatever
        happens to the reader meanwhile (a cancellation included: nothing here awaits)."""
        await self._admitted.acquire()
        try:
            conn = ReaderConnection(self.engine.connect(), self)
        except BaseException:
            self._admitted.release()
            raise
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _give_back(self, conn: ReaderConnection) -> None:
        def close() -> None:  # conn.lock held
            conn.returned = True
            conn.sync.close()

        if conn.lock.acquire(blocking=False):  # nothing runs on it: back to the pool now
            try:
                close()
            finally:
                conn.lock.release()
                self._admitted.release()
            return
        loop = asyncio.get_running_loop()

        def after_the_statement() -> None:
            try:
                with conn.lock:
                    close()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self._admitted.release)

        self._threads.submit(after_the_statement)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[ReaderConnection]:
        """A connection whose transaction commits on a clean exit (tests and benchmarks that
        fill a database: ringback's own writes go through the SqliteWriter)."""
        async with self.connect() as conn:
            yield conn
            await conn.commit()

    async def dispose(self) -> None:
        await self.in_thread(self.engine.dispose)

    def close(self) -> None:
        self.engine.dispose()
        self._threads.shutdown(wait=False)
