"""Claim benchmark: how fast a worker's claims take tasks from a queue holding N waiting tasks
(1,000,000 by default), on SQLite and PostgreSQL, and the plan of the statement that picks them.

The tasks are written straight into a fresh, migrated database (one INSERT … SELECT), all due,
in one queue switched on; with ``--priorities`` their priority cycles 0–9 (needs a version with
task priority). Then ``Store.claim`` takes ``--batch`` tasks at a time until ``--claims`` were
taken; only the claims are timed (each claimed batch is then marked finished, untimed, so the
queue's running count stays small). Figures are medians of ``--runs`` runs. Progress and the
plans go to stderr; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from ringback.clock import SystemClock
from ringback.store import claims as cl
from ringback.store.db import Store, open_store

PG_ADMIN = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAYLOAD = '{"calling_number": "0506868000", "called_number": "0901234000", "audio_file": "a.wav"}'


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def fill(store: Store, kind: str, n: int, priorities: bool) -> int:
    now = int(SystemClock().now().timestamp() * 1000)
    client = await store.ensure_client("bench", SystemClock().now())
    queue = await store.create_queue(
        client, "bench", SystemClock().now(), status="on", concurrent_task_limit=1_000_000
    )
    cols = "client_id, queue_id, kind, payload, status, run_at, max_tries, event_seq, created_at, "
    cols += "updated_at" + (", priority" if priorities else "")
    pri = ", i % 10" if priorities else ""
    values = f"{client}, {queue.id}, 'msg_call', '{PAYLOAD}', 'scheduled', {now - n} + i, 1, 1, "
    values += f"{now}, {now}{pri}"
    if kind == "sqlite":
        sql = (
            f"INSERT INTO tasks ({cols}) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL "
            f"SELECT i + 1 FROM s WHERE i < {n}) SELECT {values} FROM s"
        )
    else:
        sql = f"INSERT INTO tasks ({cols}) SELECT {values} FROM generate_series(1, {n}) AS i"
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql(sql)
    async with store.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("ANALYZE")
    return queue.id


async def plan(store: Store, kind: str, queue_id: int) -> str:
    due = int(SystemClock().now().timestamp() * 1000)
    pick = cl.PICK.format(q=queue_id, now=due, room=200)
    explain = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN "
    async with store.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(explain + pick)).all()
    return "\n".join(str(row[-1]) for row in rows)


async def one_run(kind: str, workdir: Path, args: argparse.Namespace) -> tuple[float, str]:
    clock = SystemClock()
    database = None
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'claim-{uuid.uuid4().hex[:8]}.db'}"
        store = await open_store(url, clock, migrate=True)
    else:
        database = f"rb_claim_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"CREATE DATABASE {database}")
        await admin.close()
        store = await open_store(PG_ADMIN.rsplit("/", 1)[0] + "/" + database, clock, migrate=True)
    try:
        began = time.perf_counter()
        queue_id = await fill(store, kind, args.tasks, args.priorities)
        say(f"    {args.tasks:,} tasks written in {time.perf_counter() - began:.0f} s")
        shown = await plan(store, kind, queue_id)
        taken, spent = 0, 0.0
        while taken < args.claims:
            began = time.perf_counter()
            result = await store.claim("bench", clock.now(), args.batch, 60)
            spent += time.perf_counter() - began
            ids = [task.id for task in result.tasks]
            assert ids, "nothing claimed"
            taken += len(ids)
            async with store.engine.begin() as conn:
                tk = sa.table("tasks", sa.column("id"), sa.column("status"))
                await conn.execute(sa.update(tk).where(tk.c.id.in_(ids)).values(status="finished"))
        return taken / spent, shown
    finally:
        await store.close()
        if database:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--priorities", action="store_true", help="priorities cycle 0-9")
    parser.add_argument("--label", default="")
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    args = parser.parse_args()
    results: dict[str, Any] = {"label": args.label, "tasks": args.tasks, "claims": args.claims,
                               "batch": args.batch, "runs": args.runs,
                               "priorities": args.priorities}  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in args.stores}
    with tempfile.TemporaryDirectory(prefix="ringback-claim-") as tmp:
        for run in range(1, args.runs + 1):
            for name, kind in (("sqlite", "sqlite"), ("pg", "postgresql")):
                if name not in args.stores:
                    continue
                say(f"[{run}/{args.runs}] {name}…")
                rate, shown = await one_run(kind, Path(tmp), args)
                rates[name].append(rate)
                say(f"    {rate:,.0f} claims/s\n    plan: {shown}")
                results[f"{name}_plan"] = shown
    for name in args.stores:
        results[f"{name}_claims_per_s"] = round(statistics.median(rates[name]))
        results[f"{name}_runs"] = [round(r) for r in rates[name]]
    results |= {"python": platform.python_version(), "cpus": os.cpu_count(),
                "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
