"""Fixtures of the chaos infrastructure tests (chaos/pgcluster.py, chaos/hosts.py).

They start PostgreSQL servers of their own and network namespaces, so they need root and the
server binaries; without them they are skipped, unless ``RINGBACK_REQUIRE_PG=1`` (as in CI),
where they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.pgcluster import PgClusterError, find_pg_bin

REQUIRE_PG = os.environ.get("RINGBACK_REQUIRE_PG") == "1"


def _problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root (initdb/pg_ctl as the postgres user, ip netns)"
    try:
        pg_bin = find_pg_bin()
    except PgClusterError as exc:
        return str(exc)
    for tool in ("initdb", "pg_ctl", "pg_isready", "psql"):
        if not (pg_bin / tool).exists():
            return f"{pg_bin / tool} is missing"
    if shutil.which("runuser") is None:
        return "runuser is missing"
    return None


def require_root_pg() -> None:
    problem = _problem()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"{problem} (RINGBACK_REQUIRE_PG=1)")
        pytest.skip(problem)


@pytest.fixture
def pg_root() -> Iterator[Path]:
    """A short directory the postgres user can reach (pytest's tmp_path is 0700 to it)."""
    require_root_pg()
    root = Path(tempfile.mkdtemp(prefix="rbpg-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
