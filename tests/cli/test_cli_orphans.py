"""A child of ``ringback worker --processes N`` never outlives its parent: when the parent is
killed (``kill -9``: it cannot stop its children itself) the kernel sends the child SIGTERM and
it stops gracefully, instead of dialling on as an orphan no supervisor knows of."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import cli_env, ringback

from support import kill_group

pytestmark = pytest.mark.slow  # starts `ringback worker` processes

STARTED_S = 90  # upper bounds on a loaded machine; each wait ends as soon as its condition holds
STOPPED_S = 60


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_a_child_worker_stops_gracefully_when_its_parent_is_killed(tmp_path: Path) -> None:
    assert ringback(tmp_path, "migrate").code == 0
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGBACK_")}
    parent = subprocess.Popen(
        [sys.executable, "-m", "ringback", "worker", "--processes", "2"],
        env={**env, **cli_env(tmp_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a group of its own: kill_group ends the child if all fails
    )
    try:
        deadline = time.monotonic() + STARTED_S
        while log_path.read_text().count("worker started") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            assert parent.poll() is None, log_path.read_text()
            time.sleep(0.1)
        [child] = [
            int(line.rsplit("pid=", 1)[1].split()[0])
            for line in log_path.read_text().splitlines()
            if "worker process started" in line
        ]
        parent.send_signal(signal.SIGKILL)
        assert parent.wait(timeout=10) == -signal.SIGKILL
        deadline = time.monotonic() + STOPPED_S
        while not gone(child):
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        # the child shut down as on SIGTERM: its own "worker stopped" line, the parent had none
        assert log_path.read_text().count("worker stopped") == 1, log_path.read_text()
    finally:
        kill_group(parent)
        log.close()
