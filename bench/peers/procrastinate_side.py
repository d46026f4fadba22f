"""procrastinate on PostgreSQL: the no-op job in a database of its own (``bench_peers``,
dropped and created afresh for every measurement, so nothing clashes with the tests).

Its figures come from what it stored: ``procrastinate_events`` (``started``, ``succeeded``)
and each job's ``scheduled_at``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import procrastinate
from bench.engine import PG_ADMIN
from bench.peers.common import (
    RETRY_DELAY_S,
    RETRY_TRIES,
    Workers,
    due_instants,
    python_worker,
    rate_of,
    wait_until,
)

DATABASE = "bench_peers"
URL = PG_ADMIN.rsplit("/", 1)[0] + "/" + DATABASE
CONCURRENCY = 50  # jobs in flight per worker process (its default is 1)
QUEUE = "bench"

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=URL))


@app.task(
    name="noop",
    queue=QUEUE,
    retry=procrastinate.RetryStrategy(max_attempts=RETRY_TRIES, wait=int(RETRY_DELAY_S)),
)
async def noop(i: int) -> None:
    """The no-op job."""


async def run_worker() -> None:
    """One worker process: until SIGTERM (procrastinate's own handler stops it cleanly)."""
    async with app.open_async():
        await app.run_worker_async(queues=[QUEUE], concurrency=CONCURRENCY)


async def fresh_database() -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def drop_database() -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


async def defer_in_batches(n: int, batch: int) -> None:
    for start in range(0, n, batch):
        await noop.batch_defer_async(*({"i": i} for i in range(start, min(n, start + batch))))


async def succeeded(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
    )


class Procrastinate:
    name = "procrastinate"

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "procrastinate-worker.log"

    async def enqueue_single(self, n: int) -> float:
        await fresh_database()

        async def each() -> None:
            for i in range(n):
                await noop.defer_async(i=i)

        async with app.open_async():
            return await rate_of(n, each)

    async def enqueue_bulk(self, n: int, batch: int) -> float:
        await fresh_database()
        async with app.open_async():
            return await rate_of(n, lambda: defer_in_batches(n, batch))

    async def processed(self, n: int, processes: int) -> tuple[float, float]:
        await fresh_database()
        async with app.open_async():
            await defer_in_batches(n, 1000)
        conn = await asyncpg.connect(URL)
        try:
            async with Workers(python_worker("procrastinate"), processes, self.log) as workers:

                async def done() -> bool:
                    workers.check_alive()
                    return await succeeded(conn) >= n

                await wait_until(done, within=600, what="procrastinate throughput")
            row = await conn.fetchrow(
                "SELECT min(at) FILTER (WHERE type = 'started'), "
                "max(at) FILTER (WHERE type = 'succeeded'), "
                "count(*) FILTER (WHERE type = 'succeeded') FROM procrastinate_events"
            )
        finally:
            await conn.close()
        assert row is not None
        first, last, count = row
        if count != n:
            raise RuntimeError(f"procrastinate: {count} of {n} jobs succeeded")
        return n / (last - first).total_seconds(), workers.peak_mib

    async def lateness(self, rate: int, seconds: float) -> list[float]:
        await fresh_database()
        conn = await asyncpg.connect(URL)
        try:
            async with Workers(python_worker("procrastinate"), 1, self.log) as workers:
                dues = due_instants(rate, seconds)
                async with app.open_async():
                    jobs = [
                        noop.configure(schedule_at=datetime.fromtimestamp(due, UTC)).make_new_job(
                            i=i
                        )
                        for i, due in enumerate(dues)
                    ]
                    await app.job_manager.batch_defer_jobs_async(jobs=jobs)

                async def done() -> bool:
                    workers.check_alive()
                    return await succeeded(conn) >= len(dues)

                await wait_until(done, within=seconds + 120, what="procrastinate lateness")
            rows = await conn.fetch(
                "SELECT extract(epoch FROM e.at - j.scheduled_at) * 1000 "
                "FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                "WHERE e.type = 'started'"
            )
        finally:
            await conn.close()
        if len(rows) != len(dues):
            raise RuntimeError(f"procrastinate: {len(rows)} jobs started of {len(dues)}")
        return [float(row[0]) for row in rows]
