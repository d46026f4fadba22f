"""Extra worker processes on this machine, started and stopped with the main one.

One Python process uses one core; ``ringback worker --processes N`` runs N-1 more workers as
child processes (``python -m ringback worker``) with the same settings. Claims stay correct
across them (queue row locks on PostgreSQL, the write lock on SQLite). On stop each child gets
SIGTERM and shuts down gracefully; one that does not exit in time is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import structlog

log = structlog.get_logger("ringback.processes")


class WorkerProcesses:
    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        env = {**os.environ, "RINGBACK_WORKER_PROCESSES": "1"}
        for _ in range(count):
            child = subprocess.Popen(
                [sys.executable, "-m", "ringback", "worker", "--processes", "1"], env=env
            )
            self.children.append(child)
            log.info("worker process started", pid=child.pid)

    def stop(self, grace_seconds: float) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                code = child.wait(timeout=grace_seconds + 10)
            except subprocess.TimeoutExpired:
                log.error("worker process did not stop; killing it", pid=child.pid)
                child.kill()
                code = child.wait()
            if code not in (0, -signal.SIGTERM):
                log.warning("worker process ended badly", pid=child.pid, exit_code=code)
        self.children.clear()
