"""ringback with a backlog of 1,000,000 scheduled tasks, against the same service empty.

Two real ``ringback serve --processes N`` run side by side (bench/api.py's ``Service``: a
fresh database each, API credentials, the simulator in fast mode). One gets 1,000,000 tasks due
tomorrow in its listed queue (switched on, so the workers' claims must step over them), in
chunks of 10,000 created 6 hours apart, each task with its own name; then PostgreSQL's
``VACUUM ANALYZE`` and ``CHECKPOINT`` (what it does on its own minutes after a bulk load). The
other stays empty. Then, on each: filtered task lists over HTTP, and the throughput of ``n``
due tasks, each run in a fresh queue (first claim to last result stored, as bench/engine.py
measures it), the two services' runs alternating. Each serve process's peak RSS is sampled.

The filtered lists are ``GET …/tasks/?limit=100`` with ``status=scheduled`` (every backlog
task matches: the exact total is a count of 1,000,000), ``name=`` (one task), and a
``created_from``/``created_to`` window holding one chunk; each answer's ``total`` and length are
checked against the database.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from bench.api import Service, check, count, seed_time, settle
from bench.engine import msg_task, pct, queue_rate, say, wait_queue_done, write_wav
from bench.peers.common import BenchError, RssPeak

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.domain.rows import QueueChanges
from ringback.store.db import Store, open_store

CHUNK = 10_000
FILTERS = ("status", "name", "created_range")


class Backlog:
    """One store: the service, and what was filled into it."""

    def __init__(self, svc: Service, store: Store) -> None:
        self.svc, self.store = svc, store
        self.names: list[str] = []
        self.windows: list[tuple[datetime, int]] = []  # (created, tasks) of every chunk
        self.runs = 0

    async def fill(self, total: int) -> float:
        """``total`` tasks due tomorrow in the listed queue; tasks stored per second."""
        clock = SystemClock()
        chunks = (total + CHUNK - 1) // CHUNK
        newest = clock.now() - timedelta(hours=6)
        started = time.perf_counter()
        done = 0
        for k in range(chunks):
            size = min(CHUNK, total - done)
            created = newest - timedelta(hours=6 * (chunks - 1 - k))
            tasks = [
                replace(msg_task(clock, done + i, 86_400), name=f"backlog-{done + i}")
                for i in range(size)
            ]
            await self.store.add_tasks(self.svc.client_id, self.svc.queue_id, tasks, created)
            self.names.append(f"backlog-{done + size // 2}")
            self.windows.append((created, size))
            done += size
            if (k + 1) % 20 == 0 or k + 1 == chunks:
                say(f"    {done:,} tasks stored ({done / (time.perf_counter() - started):,.0f}/s)")
        return done / (time.perf_counter() - started)

    async def lists(self, requests: int, problems: list[str]) -> dict[str, list[float]]:
        """Latency (ms) of ``requests`` filtered lists of the queue by kind, the kinds
        shuffled."""
        url = f"{self.svc.prefix}/task_scheduler/{self.svc.queue_id}/tasks/"
        scheduled = await count(
            self.store,
            "SELECT count(*) FROM tasks WHERE queue_id = :q AND status = 'scheduled'",
            q=self.svc.queue_id,
        )
        rng = random.Random(7)
        queries: list[tuple[str, dict[str, Any], int]] = []
        for k in range(requests + 6):  # the first 6 warm up
            kind = FILTERS[k % len(FILTERS)]
            if kind == "status":
                queries.append((kind, {"limit": 100, "status": "scheduled"}, scheduled))
            elif kind == "name":
                name = rng.choice(self.names) if self.names else "backlog-none"
                queries.append((kind, {"limit": 100, "name": name}, 1 if self.names else 0))
            else:
                created, size = rng.choice(self.windows) if self.windows else (datetime.now(UTC), 0)
                window = {
                    "limit": 100,
                    "created_from": seed_time(created - timedelta(hours=1)),
                    "created_to": seed_time(created + timedelta(hours=1)),
                }
                queries.append((kind, window, size))
        warm, timed = queries[:6], queries[6:]
        rng.shuffle(timed)
        times: dict[str, list[float]] = {kind: [] for kind in FILTERS}
        for position, (kind, query, total) in enumerate(warm + timed):
            started = time.perf_counter()
            answer = await self.svc.http.get(url, params=query)
            elapsed_ms = (time.perf_counter() - started) * 1000
            page = check(answer, 200, f"GET tasks/ ({kind})")
            rows = len(page.get("tasks", []))
            if page.get("total") != total or rows != min(100, total):
                problems.append(
                    f"{kind}: total {page.get('total')} and {rows} tasks, expected {total}"
                )
            if position >= len(warm):
                times[kind].append(elapsed_ms)
        return times

    async def throughput(self, n: int) -> float:
        """``n`` tasks due now in a fresh queue, run by the service's workers: tasks/s."""
        clock = SystemClock()
        self.runs += 1
        queue = await self.store.create_queue(
            self.svc.client_id, f"run-{self.runs}", clock.now(), concurrent_task_limit=10_000
        )
        for start in range(0, n, 5000):
            tasks = [msg_task(clock, i, 0) for i in range(start, min(n, start + 5000))]
            await self.store.add_tasks(self.svc.client_id, queue.id, tasks, clock.now())
        await self.store.update_queue(queue.id, QueueChanges(status="on"), clock.now())
        await wait_queue_done(self.store, queue.id, within=600)
        return await queue_rate(self.store, queue.id, n)


async def lists(backlog: Backlog, requests: int, label: str) -> dict[str, list[float]]:
    problems: list[str] = []
    times = await backlog.lists(requests, problems)
    if problems:
        raise BenchError(f"{label}: wrong list answers: {problems[:3]}")
    for kind, values in times.items():
        say(
            f"    {label}: list {kind} p50 {pct(values, 0.5):.1f} ms, "
            f"p95 {pct(values, 0.95):.1f} ms"
        )
    return times


async def checkpoint(svc: Service) -> None:
    """PostgreSQL writes the bulk load's dirty pages out at its next checkpoint, within
    minutes on its own: done here before measuring, so that it does not land in the middle."""
    if svc.kind == "sqlite":
        return
    conn = await asyncpg.connect(svc.url)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def measure(
    store_name: str,
    workdir: Path,
    *,
    total: int,
    n: int,
    runs: int,
    processes: int,
    requests: int,
) -> dict[str, Any]:
    """Two services side by side, one empty, one with the backlog; their throughput runs
    alternate in pairs (empty then backlog, backlog then empty, …), so that both see the same
    machine load."""
    kind = "sqlite" if store_name == "sqlite" else "postgresql"
    saved = os.environ.get("RINGBACK_MAX_IN_FLIGHT")
    os.environ["RINGBACK_MAX_IN_FLIGHT"] = "2000"  # as bench/engine.py runs its workers
    stores: list[Store] = []
    try:
        async with (
            Service(kind, workdir, processes) as empty_svc,
            Service(kind, workdir, processes) as full_svc,
        ):
            sides: list[Backlog] = []
            for svc in (empty_svc, full_svc):
                write_wav(Storage(workdir / "storage").resolve(svc.client_id, "bench.wav"))
                stores.append(await open_store(svc.url, SystemClock(), migrate=True))
                sides.append(Backlog(svc, stores[-1]))
                now = SystemClock().now()
                await stores[-1].update_queue(svc.queue_id, QueueChanges(status="on"), now)
            empty, full = sides
            say(f"{store_name}: backlog, filling {total:,} scheduled tasks…")
            fill_rate = await full.fill(total)
            await settle(full_svc)
            await checkpoint(full_svc)
            assert empty_svc.process is not None and full_svc.process is not None
            empty_process, full_process = empty_svc.process, full_svc.process
            async with (
                RssPeak(lambda: [empty_process]) as empty_rss,
                RssPeak(lambda: [full_process]) as full_rss,
            ):
                empty_lists = await lists(empty, requests, "empty")
                full_lists = await lists(full, requests, f"{total:,}")
                empty_rates: list[float] = []
                full_rates: list[float] = []
                for run in range(runs):
                    # the pair's order alternates (empty first, then the backlog first, …):
                    # the machine's drift over the runs weighs on both sides alike
                    if run % 2 == 0:
                        empty_rates.append(await empty.throughput(n))
                        full_rates.append(await full.throughput(n))
                    else:
                        full_rates.append(await full.throughput(n))
                        empty_rates.append(await empty.throughput(n))
                    say(
                        f"    tasks/s: empty {empty_rates[-1]:,.0f}, "
                        f"{total:,} stored {full_rates[-1]:,.0f}"
                    )
    finally:
        for store in stores:
            await store.close()
        if saved is None:
            os.environ.pop("RINGBACK_MAX_IN_FLIGHT", None)
        else:
            os.environ["RINGBACK_MAX_IN_FLIGHT"] = saved
    prefix = f"{store_name}_backlog"
    empty_rate, full_rate = statistics.median(empty_rates), statistics.median(full_rates)
    every_empty = [v for values in empty_lists.values() for v in values]
    every_full = [v for values in full_lists.values() for v in values]
    by_kind = {
        f"{prefix}_full_list_p95_ms_{kind}": round(pct(values, 0.95), 1)
        for kind, values in full_lists.items()
    }
    return {
        f"{prefix}_tasks": total,
        f"{prefix}_fill_tasks_per_s": round(fill_rate),
        f"{prefix}_empty_tasks_per_s": round(empty_rate),
        f"{prefix}_full_tasks_per_s": round(full_rate),
        f"{prefix}_full_over_empty": round(full_rate / empty_rate, 3),
        f"{prefix}_empty_runs_tasks_per_s": [round(r) for r in empty_rates],
        f"{prefix}_full_runs_tasks_per_s": [round(r) for r in full_rates],
        f"{prefix}_empty_list_p95_ms": round(pct(every_empty, 0.95), 1),
        f"{prefix}_full_list_p50_ms": round(pct(every_full, 0.5), 1),
        f"{prefix}_full_list_p95_ms": round(pct(every_full, 0.95), 1),
        **by_kind,
        f"{prefix}_empty_rss_mib": round(empty_rss.peak_mib, 1),
        f"{prefix}_full_rss_mib": round(full_rss.peak_mib, 1),
    }


def main() -> None:
    """``python -m bench.peers.backlog``: the backlog part of ``bench.peers`` alone (its own
    databases, uniquely named, so that it may run beside a full ``bench.peers``)."""
    import argparse
    import asyncio
    import json
    import sys
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "pg"], default=["pg", "sqlite"])
    parser.add_argument("--backlog", type=int, default=1_000_000, help="tasks stored")
    parser.add_argument("--jobs", type=int, default=15_000, help="tasks per throughput run")
    parser.add_argument("--runs", type=int, default=5, help="throughput runs per phase")
    parser.add_argument("--processes", type=int, default=2, help="serve processes")
    parser.add_argument("--requests", type=int, default=150, help="filtered lists per phase")
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        results: dict[str, Any] = {"backlog_tasks": args.backlog}
        with tempfile.TemporaryDirectory(prefix="ringback-backlog-") as tmp:
            for store in args.stores:
                results |= await measure(
                    store, Path(tmp), total=args.backlog, n=args.jobs, runs=args.runs,
                    processes=args.processes, requests=args.requests,
                )  # fmt: skip
        return results

    results = asyncio.run(run())
    print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
