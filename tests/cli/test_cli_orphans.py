"""A child of ``ringback worker --processes N`` never outlives its parent: when the parent is
killed (``kill -9``: it cannot stop its children itself) the kernel sends the child SIGTERM and
it stops gracefully, instead of dialling on as an orphan no supervisor knows of."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from test_cli import ringback, start_group, started_children, wait_for_lines

from support import kill_group

pytestmark = pytest.mark.slow  # starts `ringback worker` processes

STOPPED_S = 60  # an upper bound on a loaded machine; the wait ends as soon as the child has


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
    parent = start_group(tmp_path, log, "worker", "--processes", "2")
    try:
        [child] = started_children(wait_for_lines(log_path, "worker started", 2, parent))
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
