"""The Python ``bullmq`` package on Redis 127.0.0.1:6379, under its own key prefix
(``rbpeers``): only those keys are deleted, before and after every measurement.

Its figures come from what it stored in each job's hash: ``timestamp`` and ``delay`` (when the
job was due), ``processedOn`` and ``finishedOn``."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from bench.peers.common import (
    RETRY_DELAY_S,
    RETRY_TRIES,
    BenchError,
    Workers,
    due_instants,
    python_worker,
    rate_of,
    wait_until,
)
from bullmq import Queue, Worker

REDIS_URL = os.environ.get("RINGBACK_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
PREFIX = "rbpeers"
QUEUE = "bench"
CONCURRENCY = 100  # jobs in flight per worker process (its default is 1)
JOB_OPTIONS: dict[str, Any] = {
    "attempts": RETRY_TRIES,
    "backoff": {"type": "fixed", "delay": int(RETRY_DELAY_S * 1000)},
}


async def noop(job: Any, token: str) -> None:
    """The no-op job."""


async def run_worker() -> None:
    """One worker process: until SIGTERM, then it closes (waits for its jobs in flight)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    worker = Worker(
        QUEUE, noop, {"connection": REDIS_URL, "prefix": PREFIX, "concurrency": CONCURRENCY}
    )
    await stopping.wait()
    await worker.close()


async def delete_keys() -> None:
    """Every key under this bench's prefix, and no other."""
    client = aioredis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{PREFIX}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


def new_queue() -> Queue:
    return Queue(QUEUE, {"connection": REDIS_URL, "prefix": PREFIX})


async def add_in_batches(queue: Queue, n: int, batch: int) -> None:
    for start in range(0, n, batch):
        await queue.addBulk(
            [
                {"name": "noop", "data": {"i": i}, "opts": JOB_OPTIONS}
                for i in range(start, min(n, start + batch))
            ]
        )


async def job_fields(n: int, *fields: str) -> list[list[int]]:
    """The named fields of jobs 1…n (bullmq numbers them in order from 1 per queue)."""
    client = aioredis.from_url(REDIS_URL)
    try:
        rows: list[list[int]] = []
        for start in range(1, n + 1, 5000):
            pipe = client.pipeline(transaction=False)
            for job_id in range(start, min(n, start + 4999) + 1):
                pipe.hmget(f"{PREFIX}:{QUEUE}:{job_id}", *fields)
            for values in await pipe.execute():
                if any(value is None for value in values):
                    raise BenchError(f"bullmq: a job lacks one of {fields}: {values}")
                rows.append([int(value) for value in values])
        return rows
    finally:
        await client.aclose()


async def completed(queue: Queue) -> int:
    counts = await queue.getJobCounts("completed", "failed")
    if counts.get("failed"):
        raise BenchError(f"bullmq: {counts['failed']} jobs failed")
    return int(counts.get("completed", 0))


class BullMQ:
    name = "bullmq"

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "bullmq-worker.log"

    async def _measure(self, action: Any) -> Any:
        await delete_keys()
        queue = new_queue()
        try:
            return await action(queue)
        finally:
            await queue.close()
            await delete_keys()

    async def enqueue_single(self, n: int) -> float:
        async def each(queue: Queue) -> float:
            async def go() -> None:
                for i in range(n):
                    await queue.add("noop", {"i": i}, JOB_OPTIONS)

            return await rate_of(n, go)

        return float(await self._measure(each))

    async def enqueue_bulk(self, n: int, batch: int) -> float:
        async def bulk(queue: Queue) -> float:
            return await rate_of(n, lambda: add_in_batches(queue, n, batch))

        return float(await self._measure(bulk))

    async def processed(self, n: int, processes: int) -> tuple[float, float]:
        async def run(queue: Queue) -> tuple[float, float]:
            await add_in_batches(queue, n, 1000)
            async with Workers(python_worker("bullmq"), processes, self.log) as workers:

                async def done() -> bool:
                    workers.check_alive()
                    return await completed(queue) >= n

                await wait_until(done, within=600, what="bullmq throughput")
            rows = await job_fields(n, "processedOn", "finishedOn")
            first = min(row[0] for row in rows)
            last = max(row[1] for row in rows)
            return n / ((last - first) / 1000), workers.peak_mib

        result: tuple[float, float] = await self._measure(run)
        return result

    async def lateness(self, rate: int, seconds: float) -> list[float]:
        async def run(queue: Queue) -> list[float]:
            async with Workers(python_worker("bullmq"), 1, self.log) as workers:
                dues = due_instants(rate, seconds)
                for start in range(0, len(dues), 1000):
                    now = time.time()
                    await queue.addBulk(
                        [
                            {
                                "name": "noop",
                                "data": {"i": i},
                                "opts": {**JOB_OPTIONS, "delay": int((due - now) * 1000)},
                            }
                            for i, due in enumerate(dues[start : start + 1000], start)
                        ]
                    )

                async def done() -> bool:
                    workers.check_alive()
                    return await completed(queue) >= len(dues)

                await wait_until(done, within=seconds + 120, what="bullmq lateness")
            rows = await job_fields(len(dues), "timestamp", "delay", "processedOn")
            return [float(started - (created + delay)) for created, delay, started in rows]

        result: list[float] = await self._measure(run)
        return result
