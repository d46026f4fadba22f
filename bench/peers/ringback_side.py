"""ringback under the same workload, through bench/engine.py's harness: a fresh database per
measurement (a SQLite file or a PostgreSQL database), ``msg_call`` tasks with 3 tries 1 s
apart, real ``ringback worker`` processes with the simulator in fast mode (ringback's no-op
call: no ring, talk or media time). Jobs are enqueued with ``Store.add_tasks``, the call the
HTTP API's intake makes, in this process (as the peers' clients run in this process)."""

from __future__ import annotations

from pathlib import Path

from bench.engine import Run, Target, lateness, measure_throughput, msg_task
from bench.peers.common import RssPeak, rate_of

from ringback.clock import SystemClock


class Ringback:
    def __init__(self, store: str, workdir: Path) -> None:
        if store not in ("sqlite", "pg"):
            raise ValueError(f"unknown store {store!r}: sqlite or pg")
        self.name = f"ringback-{store}"
        self.kind = "sqlite" if store == "sqlite" else "postgresql"
        self.workdir = workdir

    def run(self) -> Run:
        return Run(Target(self.kind, self.workdir), self.workdir)

    async def enqueue_single(self, n: int) -> float:
        async with self.run() as run:
            clock = SystemClock()

            async def each() -> None:
                for i in range(n):
                    task = msg_task(clock, i, 0)
                    await run.store.add_tasks(run.client, run.queue.id, [task], clock.now())

            return await rate_of(n, each)

    async def enqueue_bulk(self, n: int, batch: int) -> float:
        async with self.run() as run:
            clock = SystemClock()

            async def batches() -> None:
                for start in range(0, n, batch):
                    tasks = [msg_task(clock, i, 0) for i in range(start, min(n, start + batch))]
                    await run.store.add_tasks(run.client, run.queue.id, tasks, clock.now())

            return await rate_of(n, batches)

    async def processed(self, n: int, processes: int) -> tuple[float, float]:
        async with self.run() as run, RssPeak(lambda: run.processes) as rss:
            rate = await measure_throughput(run, n, processes)
        return rate, rss.peak_mib

    async def lateness(self, rate: int, seconds: float) -> list[float]:
        return await lateness(self.kind, self.workdir, rate, seconds)
