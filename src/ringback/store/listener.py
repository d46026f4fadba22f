"""PostgreSQL LISTEN for new work, kept up through database outages.

One asyncpg connection listens on the store's channel. When it is lost (the server restarted,
the network went away) or cannot be opened, it is opened again with a back-off of 0.5 s
doubling to 5 s, and the callback is called once it is back: notifications sent while no one
listened are lost, so the worker is woken to look for work itself. A worker polls in any case
(its next due time), so a listener that is away only makes it slower to notice new work, never
blind to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from ringback.clock import Clock, SystemClock

log = structlog.get_logger("ringback.store")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0


class Listener:
    """LISTEN on ``channel`` at ``dsn``, calling ``callback`` for each notification and once
    after each connection, the first included (:meth:`start` returns at once, before it is
    made, so work committed meanwhile is looked for then); :meth:`stop` closes."""

    def __init__(
        self, dsn: str, channel: str, callback: Callable[[], None], clock: Clock | None = None
    ) -> None:
        self._dsn = dsn
        self._clock = clock or SystemClock()  # the back-off between attempts waits on it
        self._channel = channel
        self._callback = callback
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        #: times the connection was (re)opened; tests and logs read it
        self.connections = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name="listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    async def _keep(self) -> None:
        import asyncpg

        delay = RETRY_FIRST_S
        failing = False
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                if not failing:  # one line when it starts failing, one when it is back
                    why = str(exc) or type(exc).__name__
                    log.warning("cannot listen for new work; polling", error=why)
                    failing = True
                await self._clock.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            self._lost.clear()
            conn.add_termination_listener(lambda *_: self._lost.set())
            try:
                await conn.add_listener(self._channel, lambda *_: self._callback())
            except (OSError, asyncpg.PostgresError):
                await self._close_conn(conn)
                continue
            self._conn = conn
            self.connections += 1
            if failing or self.connections > 1:
                log.info("listening for new work again")
            self._callback()  # what was committed while no one listened (also before the first)
            failing, delay = False, RETRY_FIRST_S
            await self._lost.wait()
            await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._close_conn(conn)

    @staticmethod
    async def _close_conn(conn: Any) -> None:
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 5)
        except Exception:  # the server is away: drop the socket
            conn.terminate()
