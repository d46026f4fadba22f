"""chaos.multihost: workers on two hosts (network namespaces), some killed, one host cut off
for longer than a lease; the queue's limit holds across hosts and every task finishes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chaos.hosts import _namespaces
from chaos.multihost import run_multihost

pytestmark = pytest.mark.slow


def test_limit_and_outcomes_hold_across_hosts(pg_root: Path) -> None:
    began = time.monotonic()
    figures = run_multihost(
        workers_per_host=2,
        tasks=60,
        kills=2,
        limit=6,
        max_in_flight=4,  # no worker reaches the limit alone: it is held across hosts
        partition_s=7.0,  # longer than the 6 s lease: the host's tasks are reclaimed
        timeout_s=120,
        seed=7,
        workdir=pg_root / "run",
        prefix="rbtestmh",
    )
    assert figures["completed"], figures
    assert figures["finished"] == figures["tasks"] == 60
    assert 0 < figures["max_running"] <= figures["limit"] == 6
    assert figures["kills"] == 2
    assert figures["claimed_per_host"]["h1"] > 0 and figures["claimed_per_host"]["h2"] > 0
    assert figures["claimed_per_host"]["?"] == 0
    assert figures["partition"]["host"] == "h1" and figures["partition"]["end"]
    assert all(str(k["pid"]) in figures["pid_host"] for k in figures["kill_log"])
    tasks = [json.loads(line) for line in Path(figures["tasks_file"]).read_text().splitlines()]
    assert len(tasks) == 60 and all(t["status"] == "finished" for t in tasks)
    assert Path(figures["calls_file"]).exists() and Path(figures["truth_dir"]).is_dir()
    assert not [n for n in _namespaces() if n.startswith("rbtestmh-")]
    assert time.monotonic() - began < 120
