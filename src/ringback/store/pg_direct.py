"""A few PostgreSQL connections used straight through asyncpg, without SQLAlchemy, for the
statement a caller waits on alone: the add of one task (an API create, an IVR's ``<AddJob>``,
whose caller hears silence until ``JobAdded``).

Why a second, small set of connections beside the engine's pool: measured on one add
(2,000 in a row, the same statement, docs/performance.md "Issue 19, sixth step"), checking a
connection out of SQLAlchemy's asyncio pool and executing through its layers costs about
0.6 ms of client time per statement, more than the server's whole work; asyncpg's own pool
resets each connection it takes back (one more round trip). Here a connection is taken from a
list and put back, nothing else.

These connections plan their prepared statements once (``plan_cache_mode =
force_generic_plan``): the add's statement (data-modifying CTEs over a JSON document) cost
about 0.4 ms to plan each time with the server's default custom plans, more than it costs to
run. They only ever run statements whose plan does not depend on their parameters' values
(the add of one task), which is why they are not the engine's pool.

Only driver SQL runs here (``exec_driver_sql``, ``$n`` parameters): :class:`DirectConn` is the
store's ``Conn`` for them. A connection that fails is closed, and the idle ones with it (after a
lost connection they are likely lost too): the next statement connects afresh. Nothing is
retried: a statement that failed may have been committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when the first connection opens: a SQLite process never does
    import asyncpg

#: settings of every direct connection (see the module docstring)
SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


class DirectResult:
    """The rows of one statement, read as SQLAlchemy's result is by the store's SQL."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def all(self) -> list[Any]:
        return list(self._rows)


class DirectConn:
    """One direct connection as the store's ``Conn``: driver SQL only."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> DirectResult:
        return DirectResult(await self._conn.fetch(sql, *(parameters or ())))

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        raise TypeError("a direct connection runs driver SQL only (exec_driver_sql)")


class DirectConnections:
    """At most ``size`` direct connections to ``dsn``, opened when first needed and kept."""

    def __init__(
        self, dsn: str, *, size: int = 4, server_settings: dict[str, str] | None = None
    ) -> None:
        self._dsn = dsn
        self._settings = {**SERVER_SETTINGS, **(server_settings or {})}
        self._room = asyncio.Semaphore(size)
        self._idle: list[asyncpg.Connection] = []
        #: called with each connection opened (tests count its exchanges with the server)
        self.on_connect: list[Callable[[asyncpg.Connection], None]] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[DirectConn]:
        """A connection in autocommit: each statement is its own transaction."""
        async with self._room:
            conn = await self._take()
            try:
                yield DirectConn(conn)
            except BaseException:
                conn.terminate()  # whatever state it is in (a statement cancelled midway)
                self._drop_idle()
                raise
            self._idle.append(conn)

    async def _take(self) -> asyncpg.Connection:
        """An idle connection still open (the server may have closed one: skipped), else a
        new one."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
        return await self._connect()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def _connect(self) -> asyncpg.Connection:
        import asyncpg

        conn = await asyncpg.connect(self._dsn, server_settings=self._settings)
        for hook in self.on_connect:
            hook(conn)
        return conn

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()
