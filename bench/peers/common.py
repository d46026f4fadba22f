"""What every system's measurement shares: the workload's shape, worker processes and their
memory, and the figures one repetition gives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[2]
RETRY_TRIES = 3  # the one retry policy: 3 tries in all, 1 s apart, no jitter
RETRY_DELAY_S = 1.0
LEAD_S = 3.0  # the first delayed job is due this long after the enqueueing starts


class BenchError(RuntimeError):
    """A measurement could not be taken (a job lost, a worker that died, a timeout)."""


@dataclass
class Sizes:
    single: int  # jobs enqueued one call each
    bulk: int  # jobs enqueued in batches
    batch: int  # jobs per batch
    jobs: int  # jobs processed for the throughput
    processes: int  # worker processes for the throughput
    rate: int  # delayed jobs falling due per second (lateness)
    seconds: float  # for this long


@dataclass
class Figures:
    """One repetition of one system."""

    enqueue_single: float = 0.0  # jobs/s
    enqueue_bulk: float = 0.0  # jobs/s
    processed: float = 0.0  # jobs/s
    rss_mib: float = 0.0  # peak RSS of one worker process while processing
    lateness_ms: list[float] = field(default_factory=list)


class System(Protocol):
    """One job system under the same workload."""

    name: str

    async def enqueue_single(self, n: int) -> float: ...

    async def enqueue_bulk(self, n: int, batch: int) -> float: ...

    async def processed(self, n: int, processes: int) -> tuple[float, float]:
        """(jobs per second, peak worker RSS in MiB)."""
        ...

    async def lateness(self, rate: int, seconds: float) -> list[float]:
        """Lateness in ms of every delayed job: its start minus the instant it was due."""
        ...


def due_instants(rate: int, seconds: float, lead: float = LEAD_S) -> list[float]:
    """Epoch seconds at which each delayed job falls due: a steady ``rate`` per second."""
    start = time.time() + lead
    return [start + i / rate for i in range(int(rate * seconds))]


async def rate_of(n: int, action: Callable[[], object]) -> float:
    """``n`` divided by the seconds the awaited ``action()`` takes."""
    started = time.perf_counter()
    result = action()
    if asyncio.iscoroutine(result):
        await result
    return n / (time.perf_counter() - started)


async def wait_until(
    done: Callable[[], object], within: float, what: str, every: float = 0.1
) -> None:
    """Polls the awaitable ``done()`` until it is true; a clear error after ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = done()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(every)
    raise BenchError(f"{what}: not done within {within:.0f} s")


# --- worker processes -----------------------------------------------------------------------


class RssPeak:
    """Samples, while the block runs, the RSS of the processes ``processes()`` returns (and
    of their children); ``peak_mib`` is the largest one process reached."""

    def __init__(self, processes: Callable[[], Iterable[subprocess.Popen[bytes]]]) -> None:
        self.processes = processes
        self.peak_kib = 0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            for proc in self.processes():
                self.peak_kib = max(self.peak_kib, tree_rss_kib(proc.pid))
            await asyncio.sleep(0.2)

    async def __aenter__(self) -> RssPeak:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


class Workers:
    """Worker processes of one system (``python -m bench.peers.worker SYSTEM``), stopped by
    PID (SIGTERM, then SIGKILL) when the block ends; their RSS is sampled while it runs."""

    def __init__(self, argv: list[str], count: int, log: Path, env: dict[str, str] | None = None):
        self.argv, self.count, self.log = argv, count, log
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.rss = RssPeak(lambda: self.processes)

    def _start(self) -> None:
        with self.log.open("ab") as log:
            for _ in range(self.count):
                self.processes.append(
                    subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log)
                )

    async def __aenter__(self) -> Workers:
        try:
            self._start()
            await self.rss.__aenter__()
        except BaseException:
            stop_processes(self.processes)
            raise
        return self

    def check_alive(self) -> None:
        for proc in self.processes:
            if proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise BenchError(f"a worker exited with {proc.returncode}:\n{tail}")

    async def __aexit__(self, *_: object) -> None:
        try:
            await self.rss.__aexit__()
        finally:
            stop_processes(self.processes)

    @property
    def peak_mib(self) -> float:
        return self.rss.peak_mib


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    running = [proc for proc in processes if proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_kib(pid: int) -> int:
    """Resident set size of one process (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


def tree_rss_kib(pid: int) -> int:
    """The largest RSS among a process and its descendants: one worker's memory even where
    a process hands the work to children (``ringback serve --processes``)."""
    peak, pending = 0, [pid]
    while pending:
        current = pending.pop()
        peak = max(peak, rss_kib(current))
        pending += children(current)
    return peak


def python_worker(system: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench.peers.worker", system, *args]
