"""chaos.pgcluster: a server of its own that survives a crash (``pg_ctl stop -m immediate``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import asyncpg
import pytest

from chaos.pgcluster import PgCluster, PgClusterError, pg_cluster

pytestmark = pytest.mark.slow


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_crash_and_restart_keeps_committed_rows(pg_root: Path) -> None:
    began = time.monotonic()
    cluster = PgCluster(pg_root / "pg")
    try:
        cluster.init()
        assert cluster.port > 0
        assert cluster.url == f"postgresql+asyncpg://postgres@127.0.0.1:{cluster.port}/postgres"
        cluster.start()
        assert cluster.running

        url = cluster.create_database("chaos_t")
        conn = await asyncpg.connect(_dsn(url), timeout=5)
        try:
            await conn.execute("CREATE TABLE marks (id int PRIMARY KEY, note text)")
            await conn.execute("INSERT INTO marks VALUES (1, 'before the crash')")
        finally:
            await conn.close()

        cluster.stop("immediate")
        assert not cluster.running
        with pytest.raises((ConnectionRefusedError, OSError)):
            await asyncpg.connect(_dsn(url), timeout=5)

        cluster.start()
        # after crash recovery, over the unix socket this time
        conn = await asyncpg.connect(_dsn(cluster.socket_database_url("chaos_t")), timeout=5)
        try:
            assert await conn.fetchval("SELECT note FROM marks WHERE id = 1") == "before the crash"
        finally:
            await conn.close()
        assert "database system was interrupted" in cluster.log.read_text()
    finally:
        cluster.destroy()
    assert not (pg_root / "pg").exists()
    assert time.monotonic() - began < 15


async def test_context_manager_stops_and_removes(pg_root: Path) -> None:
    root = pg_root / "cm"
    with pg_cluster(root) as cluster:
        conn = await asyncpg.connect(_dsn(cluster.socket_url), timeout=5)
        try:
            assert await conn.fetchval("SHOW fsync") == "on"
            assert await conn.fetchval("SHOW shared_buffers") == "16MB"
        finally:
            await conn.close()
        data = cluster.data
    assert not data.exists()
    assert not root.exists()


def test_unreachable_root_is_a_clear_error(pg_root: Path) -> None:
    hidden = Path("/tmp") / f"{pg_root.name}-hidden"
    hidden.mkdir(mode=0o700)
    try:
        with pytest.raises(PgClusterError, match="postgres user cannot write"):
            PgCluster(hidden / "pg").init()
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
