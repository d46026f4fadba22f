"""The LISTEN connection for new work comes back by itself after the database restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from chaos.pgcluster import PgCluster
from ringback.store.listener import Listener

pytestmark = pytest.mark.slow


async def _until(condition: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


async def test_listening_for_new_work_resumes_after_a_database_crash(pg_root: Path) -> None:
    cluster = PgCluster(pg_root / "pg")
    woken = asyncio.Event()
    try:
        cluster.init()
        cluster.start()
        dsn = cluster.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        listener = Listener(dsn, "rb_wake", woken.set)
        listener.start()

        async def notified() -> bool:
            """True once a NOTIFY sent now reaches the callback."""
            woken.clear()
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
            except OSError:
                return False
            try:
                await conn.execute("SELECT pg_notify('rb_wake', '')")
            finally:
                await conn.close()
            try:
                await asyncio.wait_for(woken.wait(), 1.0)
            except TimeoutError:
                return False
            return True

        try:
            await _until(notified)
            assert listener.connections == 1
            cluster.stop("immediate")
            cluster.start()

            async def reconnected() -> bool:
                return listener.connections == 2

            await _until(reconnected)
            await _until(notified)
        finally:
            await listener.stop()
    finally:
        cluster.destroy()
