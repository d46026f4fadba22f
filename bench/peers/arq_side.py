"""arq on Redis 127.0.0.1:6379: its queue is ``rbpeers:arq`` and its job ids start with
``rbpeers-``, so the keys it writes (``rbpeers:arq``, ``arq:job:rbpeers-…``,
``arq:result:rbpeers-…``, ``arq:in-progress:rbpeers-…``, ``arq:retry:rbpeers-…``) are the only
ones deleted, before and after every measurement.

arq has no bulk enqueue: "bulk" sends each batch's ``enqueue_job`` calls concurrently (they
share the connection pool, so Redis sees them pipelined). Its figures come from the results it
stores (``start_time``, ``finish_time``); a delayed job's due instant is the one it was given
(``_defer_until``), which arq keeps only until the job starts."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job
from arq.worker import Worker, func
from bench.peers.common import (
    RETRY_TRIES,
    BenchError,
    Workers,
    due_instants,
    python_worker,
    rate_of,
    wait_until,
)

REDIS_URL = os.environ.get("RINGBACK_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
QUEUE = "rbpeers:arq"
JOB_PREFIX = "rbpeers-"
MAX_JOBS = 100  # jobs in flight per worker process (its default is 10)


async def noop(ctx: dict[str, Any], i: int) -> None:
    """The no-op job."""


def settings() -> RedisSettings:
    return RedisSettings.from_dsn(REDIS_URL)


async def run_worker() -> None:
    """One worker process: until SIGTERM (arq's own handler stops it)."""
    worker = Worker(
        functions=[func(noop, name="noop", max_tries=RETRY_TRIES)],
        redis_settings=settings(),
        queue_name=QUEUE,
        max_jobs=MAX_JOBS,
        handle_signals=True,
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def delete_keys() -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.unlink(QUEUE)
        for pattern in (f"arq:*:{JOB_PREFIX}*", f"{QUEUE}:*"):
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=5000):
                batch.append(key)
                if len(batch) >= 5000:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)
    finally:
        await client.aclose()


def job_id(i: int) -> str:
    return f"{JOB_PREFIX}{i}"


async def enqueue(pool: ArqRedis, i: int, due: float | None = None) -> None:
    defer = None if due is None else datetime.fromtimestamp(due, UTC)
    job = await pool.enqueue_job(
        "noop", i, _job_id=job_id(i), _queue_name=QUEUE, _defer_until=defer
    )
    if job is None:
        raise BenchError(f"arq: job {job_id(i)} was not enqueued (id taken)")


async def enqueue_in_batches(pool: ArqRedis, n: int, batch: int) -> None:
    for start in range(0, n, batch):
        await asyncio.gather(*(enqueue(pool, i) for i in range(start, min(n, start + batch))))


async def results_stored(pool: ArqRedis, n: int) -> int:
    total = 0
    for start in range(0, n, 5000):
        keys = [f"arq:result:{job_id(i)}" for i in range(start, min(n, start + 5000))]
        total += int(await pool.exists(*keys))
    return total


async def results(pool: ArqRedis, n: int) -> list[tuple[float, float]]:
    """(start, finish) in epoch ms of jobs 0…n-1; every one must have succeeded."""
    times: list[tuple[float, float]] = []
    for i in range(n):
        info = await Job(job_id(i), pool, _queue_name=QUEUE).result_info()
        if info is None or not info.success:
            raise BenchError(f"arq: job {job_id(i)} has no successful result: {info}")
        times.append((info.start_time.timestamp() * 1000, info.finish_time.timestamp() * 1000))
    return times


class Arq:
    name = "arq"

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "arq-worker.log"

    async def _measure(self, action: Any) -> Any:
        await delete_keys()
        pool = await create_pool(settings(), default_queue_name=QUEUE)
        try:
            return await action(pool)
        finally:
            await pool.aclose()
            await delete_keys()

    async def enqueue_single(self, n: int) -> float:
        async def each(pool: ArqRedis) -> float:
            async def go() -> None:
                for i in range(n):
                    await enqueue(pool, i)

            return await rate_of(n, go)

        return float(await self._measure(each))

    async def enqueue_bulk(self, n: int, batch: int) -> float:
        async def bulk(pool: ArqRedis) -> float:
            return await rate_of(n, lambda: enqueue_in_batches(pool, n, batch))

        return float(await self._measure(bulk))

    async def processed(self, n: int, processes: int) -> tuple[float, float]:
        async def run(pool: ArqRedis) -> tuple[float, float]:
            await enqueue_in_batches(pool, n, 1000)
            async with Workers(python_worker("arq"), processes, self.log) as workers:

                async def done() -> bool:
                    workers.check_alive()
                    return await results_stored(pool, n) >= n

                await wait_until(done, within=600, what="arq throughput", every=0.25)
            times = await results(pool, n)
            first = min(start for start, _ in times)
            last = max(finish for _, finish in times)
            return n / ((last - first) / 1000), workers.peak_mib

        result: tuple[float, float] = await self._measure(run)
        return result

    async def lateness(self, rate: int, seconds: float) -> list[float]:
        async def run(pool: ArqRedis) -> list[float]:
            async with Workers(python_worker("arq"), 1, self.log) as workers:
                dues = due_instants(rate, seconds)
                for start in range(0, len(dues), 1000):
                    await asyncio.gather(
                        *(
                            enqueue(pool, i, due)
                            for i, due in enumerate(dues[start : start + 1000], start)
                        )
                    )

                async def done() -> bool:
                    workers.check_alive()
                    return await results_stored(pool, len(dues)) >= len(dues)

                await wait_until(done, within=seconds + 120, what="arq lateness", every=0.25)
            times = await results(pool, len(dues))
            return [start - due * 1000 for (start, _), due in zip(times, dues, strict=True)]

        result: list[float] = await self._measure(run)
        return result
