"""chaos.multihost (scenario e, short size): workers on two hosts (network namespaces), some
killed, host h1 cut off for longer than a lease (its workers spared meanwhile); the checks of
chaos.check pass across hosts, both hosts dialled, h1 dialled nothing while cut off and the
other host's reaper closed the legs of h1's workers."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from chaos.__main__ import SHORT
from chaos.hosts import _namespaces
from chaos.multihost import several_hosts

pytestmark = pytest.mark.slow


def test_scenario_e_passes_across_hosts(pg_root: Path) -> None:
    spec = SHORT["e"]
    began = time.monotonic()
    result = asyncio.run(several_hosts(spec, pg_root / "e", random.Random(7), prefix="rbtestmh"))
    assert result["pass"], result
    assert result["tasks"] == spec.tasks and result["kills"] == spec.kills
    assert all(n > 0 for n in result["dials_per_host"].values()), result["dials_per_host"]
    assert "?" not in result["dials_per_host"] and "?" not in result["call_rows_per_host"]
    assert sum(result["dials_per_host"].values()) == result["dials"]
    assert result["partition"]["seconds"] >= spec.partition[1] > spec.lease_s
    assert result["partition"]["dials_while_cut_off"] == 0
    # the cut-off workers outlived their leases: the other host's reaper closed their legs
    assert result["partition"]["legs_of_cut_off_workers_interrupted"] > 0, result["partition"]
    assert sum(result["kills_per_host"].values()) == spec.kills
    assert not [n for n in _namespaces() if n.startswith("rbtestmh-")]
    assert time.monotonic() - began < 120
