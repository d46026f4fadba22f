"""Worker processes of a chaos scenario: started, killed with SIGKILL, replaced, stopped by PID.

Each worker is a real ``ringback worker`` (the project's own entry point in ``.venv/bin``, or
``python -m ringback`` beside this interpreter), its stderr captured to a file per process so
the scenario can count what it logged during an outage.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_RECORD = re.compile(rb"^\d{4}-\d\d-\d\dT\S+ \[", re.MULTILINE)


def say(text: str) -> None:
    """A progress line on stderr (stdout carries only the final JSON line)."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def worker_command() -> list[str]:
    entry = Path(sys.executable).parent / "ringback"
    if entry.exists():
        return [str(entry), "worker", "--processes", "1"]
    return [sys.executable, "-m", "ringback", "worker", "--processes", "1"]


@dataclass
class Worker:
    number: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    killed_at: float | None = None
    stopped: bool = False  # stopped by the scenario at the end (SIGTERM)
    host: str = "local"  # the host (network namespace) it runs in (scenario e)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


#: starts ``argv`` with ``env`` in a host, its output to ``log`` (chaos.hosts.Network.spawn)
Launch = Callable[[str, list[str], dict[str, str], IO[bytes]], subprocess.Popen[bytes]]


def _launch_here(
    _host: str, argv: list[str], env: dict[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )


@dataclass
class Workers:
    """The workers of one scenario; ``kill_times`` maps each killed PID to when it died.

    With ``hosts`` (scenario e) each worker runs in one of them, started by ``launch``; a new
    worker goes to the host with the fewest running, a replacement to its victim's host. While
    ``kills_paused`` (around a host's partition) nobody is killed: the cut-off workers must
    outlive their leases and the other host's must live a lease to reap their tasks."""

    env: dict[str, str]
    logs: Path
    rng: random.Random
    all: list[Worker] = field(default_factory=list)
    kill_times: dict[int, float] = field(default_factory=dict)
    hosts: tuple[str, ...] = ("local",)
    launch: Launch = _launch_here
    kills_paused: bool = False

    def start(self, count: int = 1, host: str | None = None) -> list[Worker]:
        self.logs.mkdir(parents=True, exist_ok=True)
        started = []
        for _ in range(count):
            place = host or min(self.hosts, key=lambda h: len(self.running(h)))
            number = len(self.all) + 1
            log_path = self.logs / f"worker-{number}.log"
            with log_path.open("wb") as log:
                process = self.launch(place, worker_command(), self.env, log)
            worker = Worker(number, process, log_path, time.time(), host=place)
            self.all.append(worker)
            started.append(worker)
        return started

    def replace(self, victim: Worker) -> None:
        """A new worker in ``victim``'s host."""
        self.start(1, victim.host)

    def running(self, host: str | None = None) -> list[Worker]:
        return [w for w in self.all if w.killed_at is None and w.alive() and host in (None, w.host)]

    def kill_random(self) -> Worker | None:
        """SIGKILL one running worker, wait for it to be gone and record when it died."""
        candidates = [] if self.kills_paused else self.running()
        if not candidates:
            return None
        victim = self.rng.choice(candidates)
        os.kill(victim.pid, signal.SIGKILL)
        victim.process.wait()
        victim.killed_at = time.time()
        self.kill_times[victim.pid] = victim.killed_at
        return victim

    def died_unexpectedly(self) -> list[Worker]:
        """Workers that ended without being killed by the scenario (a crash is a finding)."""
        return [w for w in self.all if w.killed_at is None and not w.stopped and not w.alive()]

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM every running worker by PID; SIGKILL one that has not stopped in ``grace``."""
        for worker in self.all:
            if worker.alive():
                worker.stopped = True
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for worker in self.all:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"worker {worker.pid} did not stop after SIGTERM; killing it")
                worker.process.kill()
                worker.process.wait()

    def log_sizes(self) -> dict[int, tuple[int, int]]:
        """Per worker number: (lines, log records) in its log so far; a record is a line that
        starts with a timestamp (a traceback under it adds lines, not records)."""
        sizes = {}
        for worker in self.all:
            try:
                text = worker.log_path.read_bytes()
            except OSError:
                text = b""
            sizes[worker.number] = (text.count(b"\n"), len(_RECORD.findall(text)))
        return sizes
