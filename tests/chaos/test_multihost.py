"""chaos.multihost (scenario e, short size): workers on two hosts (network namespaces), some
killed, host h1 cut off for longer than a lease (its workers spared meanwhile); the checks of
chaos.check pass across hosts, both hosts dialled, h1 dialled nothing while cut off and the
other host's reaper closed the legs of h1's workers."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.__main__ import SHORT
from chaos.hosts import _namespaces
from chaos.multihost import several_hosts

pytestmark = pytest.mark.slow


def test_scenario_e_passes_across_hosts(pg_root: Path) -> None:
    spec = SHORT["e"]
    result = asyncio.run(several_hosts(spec, pg_root / "e", random.Random(7), prefix="rbtestmh"))
    assert result["pass"], result
    assert result["tasks"] == spec.tasks and result["kills"] == spec.kills
    assert all(n > 0 for n in result["dials_per_host"].values()), result["dials_per_host"]
    assert "?" not in result["dials_per_host"] and "?" not in result["call_rows_per_host"]
    assert sum(result["dials_per_host"].values()) == result["dials"]
    assert result["partition"]["seconds"] >= spec.partition[1] > spec.lease_s
    assert result["partition"]["dials_while_cut_off"] == 0
    # whether h1 had calls up at the cut depends on timing; what the reaper did with them is
    # checked by result["pass"] (nothing lost, nothing placed again, every leg recorded)
    assert sum(result["kills_per_host"].values()) == spec.kills
    assert not [n for n in _namespaces() if n.startswith("rbtestmh-")]


def test_refused_namespaces_fail_scenario_e_with_ips_error(pg_root: Path) -> None:
    """Without CAP_SYS_ADMIN ``ip netns add`` fails: scenario e says so in its JSON, exit 1."""
    chaos = [sys.executable, "-m", "chaos", "--short", "--only", "e"]
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-sys_admin", "--", *chaos],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=False,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])["scenarios"]["e"]
    assert done.returncode == 1 and result["pass"] is False, result
    assert result["error"] == "ip netns refused" and result["ip_command"].startswith("ip netns add")
    assert result["ip_stderr"], result
