"""The short chaos run (``python -m chaos --short``) as part of ``make test``, one scenario per
test: a kill -9 soak on PostgreSQL (>= 15 kills), a small SQLite run with kills and, with root
and the server binaries, a database outage on a PostgreSQL cluster of the suite's own. Each
must say pass, in <= 3 min.
Workers on two hosts (scenario e) are tests/chaos/test_multihost.py.

It needs the shared PostgreSQL server; without it the test is skipped, unless
``RINGBACK_REQUIRE_PG=1`` (as in CI), where it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos import __main__ as chaos_main
from chaos.pgcluster import PgClusterError, find_pg_bin
from support import require_pg

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 180


def can_run_a_cluster() -> bool:
    """Root (initdb and pg_ctl run as the postgres user) and the server binaries."""
    try:
        find_pg_bin()
    except PgClusterError:
        return False
    return os.geteuid() == 0


#: the short run's scenarios here, one test each (make test runs them side by side): a, kill -9
#: on the shared PostgreSQL; b, a database outage on a cluster of the suite's own; c, SQLite
SCENARIOS = ("a", "b", "c")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_short_chaos_scenario_passes(scenario: str) -> None:
    require_pg()
    if scenario == "b" and not (
        os.environ.get("RINGBACK_REQUIRE_PG") == "1" or can_run_a_cluster()
    ):
        # in CI (RINGBACK_REQUIRE_PG=1) the outage scenario runs, and fails without its cluster
        pytest.skip("the database outage needs root and PostgreSQL's server binaries")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "--short", "--only", scenario],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT_S + 60,
        check=False,
    )
    took = time.monotonic() - began
    lines = done.stdout.strip().splitlines()
    assert lines, f"no JSON line; stderr:\n{done.stderr[-4000:]}"
    summary = json.loads(lines[-1])
    assert set(summary["scenarios"]) == {scenario}
    result = summary["scenarios"][scenario]
    if scenario in ("a", "c"):
        assert result["kills"] >= chaos_main.SHORT[scenario].kills
    assert summary["pass"], (
        f"violations: {result.get('violations', result.get('error'))}\n{lines[-1]}"
    )
    assert done.returncode == 0
    assert took <= LIMIT_S, f"the short run of scenario {scenario} took {took:.0f} s"
