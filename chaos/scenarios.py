"""The chaos scenarios: real ``ringback worker`` processes, SIGKILLs, database and webhook
outages, then the checks of :mod:`chaos.check` against the simulator's truth log.

a. kill -9 soak on PostgreSQL: 3 workers, kills of random workers every 1-4 s, replacements;
b. PostgreSQL outages on a cluster of the suite's own (20 s, then 2x the lease);
c. SQLite: 2 workers, kills, then ``PRAGMA integrity_check``;
d. webhooks: receiver down, then answering 500, then healthy, while senders are killed;
e. several hosts: workers in network namespaces against one PostgreSQL, one host cut off
   (chaos.multihost).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from chaos import check
from chaos.procs import Workers, say
from chaos.receiver import Receiver
from chaos.seed import Seeded, seed, sim_rules_toml
from ringback.clock import SystemClock
from ringback.domain.rows import QueueChanges
from ringback.store.db import Store, open_store

PG_ADMIN = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Spec:
    name: str
    store: str  # postgresql | sqlite | pgcluster
    tasks: int
    workers: int
    kills: int
    limits: tuple[int, int] = (40, 20)
    spread_s: float = 60.0  # tasks fall due evenly over this long
    kill_every: tuple[float, float] = (1.0, 4.0)
    kill_after_s: float = 0.0  # the first kill comes this long after the start (plus kill_every)
    lease_s: float = 5.0
    finish_within_s: float = 240.0
    webhooks: tuple[float, float] | None = None  # (down s, failing s), then healthy
    outages: tuple[float, ...] = ()  # seconds of each database outage (scenario b)
    hosts: int = 0  # scenario e: this many host namespaces, the workers spread over them
    partition: tuple[float, float] = (0.0, 0.0)  # scenario e: host h1 cut off at s, for s
    max_in_flight: int | None = None  # RINGBACK_MAX_IN_FLIGHT per worker


@dataclass
class Run:
    """What one scenario did while running; the checks read the database afterwards."""

    spec: Spec
    workdir: Path
    started: float = field(default_factory=time.time)
    samples: list[dict[int, int]] = field(default_factory=list)
    outages: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    db_down: bool = False  # during an outage the harness does not read the database


class PgDatabase:
    """A fresh database on the shared server, dropped afterwards."""

    def __init__(self, admin_url: str = PG_ADMIN) -> None:
        self.admin_url = admin_url
        self.name = f"chaos_{uuid.uuid4().hex[:10]}"
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    async def create(self) -> None:
        admin = await asyncpg.connect(_asyncpg_dsn(self.admin_url))
        try:
            await admin.execute(f"CREATE DATABASE {self.name}")
        finally:
            await admin.close()

    async def drop(self) -> None:
        admin = await asyncpg.connect(_asyncpg_dsn(self.admin_url))
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        finally:
            await admin.close()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def worker_env(spec: Spec, url: str, workdir: Path, webhook: bool) -> dict[str, str]:
    rules = workdir / "sim.toml"
    rules.write_text(sim_rules_toml())
    env = {
        **os.environ,
        "RINGBACK_DATABASE_URL": url,
        "RINGBACK_STORAGE_DIR": str(workdir / "storage"),
        "RINGBACK_DIALER": "sim",
        "RINGBACK_SIM_FAST": "0",
        "RINGBACK_SIM_RULES": str(rules),
        "RINGBACK_SIM_TRUTH_LOG": str(workdir / "truth"),
        "RINGBACK_LEASE_SECONDS": str(spec.lease_s),
        "RINGBACK_SHUTDOWN_GRACE": "10",
        "RINGBACK_WORKER_PROCESSES": "1",
    }
    if spec.max_in_flight is not None:
        env["RINGBACK_MAX_IN_FLIGHT"] = str(spec.max_in_flight)
    if webhook:
        env |= {
            "RINGBACK_ALLOW_PRIVATE": "1",
            "RINGBACK_WEBHOOK_RETRY_BASE": "1",
            "RINGBACK_WEBHOOK_LEASE_SECONDS": str(spec.lease_s),
            "RINGBACK_WEBHOOK_TIMEOUT": "5",
            "RINGBACK_WEBHOOK_CONNECT_TIMEOUT": "2",
        }
    return env


async def _rows(store: Store, query: str, **params: Any) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        result = await conn.execute(sa.text(query), params)
        return [dict(row._mapping) for row in result]


async def _unfinished(store: Store, client_id: int) -> int:
    rows = await _rows(
        store,
        "SELECT count(*) AS n FROM tasks WHERE client_id = :c AND status != 'finished'",
        c=client_id,
    )
    return int(rows[0]["n"])


async def _sample_executed(store: Store, client_id: int) -> dict[int, int]:
    rows = await _rows(
        store,
        "SELECT queue_id, count(*) AS n FROM tasks WHERE client_id = :c AND status = 'executed' "
        "GROUP BY queue_id",
        c=client_id,
    )
    return {int(row["queue_id"]): int(row["n"]) for row in rows}


async def _quietly(action: Callable[[], Awaitable[Any]]) -> Any:
    """The harness's own reads fail while the database is down; that is not a finding."""
    try:
        return await action()
    except Exception:
        return None


Phase = Callable[[Run, float], Awaitable[None]]


async def drive(
    run: Run,
    store: Store,
    seeded: Seeded,
    workers: Workers,
    phase: Phase | None = None,
) -> dict[str, Any]:
    """Kill random workers every ``kill_every`` seconds (a replacement started at once) until
    ``kills`` were made; sample the running count per queue; run ``phase`` (outages, receiver
    modes) each tick; wait (bounded) until every task is finished. Returns the figures."""
    spec = run.spec
    rng = workers.rng
    kills = 0
    next_kill = time.monotonic() + spec.kill_after_s + rng.uniform(*spec.kill_every)
    last_say = 0.0
    deadline = time.monotonic() + spec.finish_within_s
    seeded_total = len(seeded.queue_of_task)
    unfinished: int | None = seeded_total
    while time.monotonic() < deadline:
        now = time.monotonic()
        if kills < spec.kills and now >= next_kill:
            victim = workers.kill_random()
            if victim is not None:
                kills += 1
                workers.replace(victim)
            next_kill = now + rng.uniform(*spec.kill_every)
        if phase is not None:
            await phase(run, time.time() - run.started)
        if not run.db_down:
            sample = await _quietly(lambda: _sample_executed(store, seeded.client_id))
            if sample is not None:
                run.samples.append(sample)
            counted = await _quietly(lambda: _unfinished(store, seeded.client_id))
            unfinished = counted if counted is not None else unfinished
        if now - last_say >= 5.0:
            last_say = now
            done = seeded_total - (unfinished or 0)
            say(
                f"{spec.name}: {kills}/{spec.kills} kills, {done}/{seeded_total} tasks finished, "
                f"{len(workers.running())} workers running"
            )
        if (
            kills >= spec.kills
            and unfinished == 0
            and (phase is None or run.notes[-1:] == ["done"])
        ):
            break
        await asyncio.sleep(0.25)
    return {"kills": kills, "replacements": kills, "unfinished_at_end": unfinished}


async def read_rows(store: Store, client_id: int) -> dict[str, list[dict[str, Any]]]:
    return {
        "tasks": await _rows(store, "SELECT * FROM tasks WHERE client_id = :c", c=client_id),
        "calls": await _rows(store, "SELECT * FROM calls WHERE client_id = :c", c=client_id),
        "events": await _rows(
            store,
            "SELECT id, task_id, seq, type, data FROM events WHERE client_id = :c",
            c=client_id,
        ),
    }


def run_checks(
    run: Run,
    rows: dict[str, list[dict[str, Any]]],
    seeded: Seeded,
    workers: Workers,
    ended: float,
    cut: tuple[set[int], float] | None = None,
) -> dict[str, Any]:
    """Every check of a scenario's run (``cut``: see :func:`chaos.check.limit_held`)."""
    truth = check.read_truth(run.workdir / "truth")
    results: dict[str, Any] = {
        "lost_or_stuck": check.lost_or_stuck(rows["tasks"]),
        "dial_records": check.dial_records(truth, rows["calls"]),
        "answered_redialled": check.answered_redialled(
            truth, workers.kill_times, seeded.may_redial
        ),
        "tries_without_leg": check.tries_without_leg(rows["tasks"], rows["calls"]),
        "limit_truth": check.limit_held(
            truth,
            workers.kill_times,
            seeded.task_of_number,
            seeded.queue_of_task,
            seeded.limits,
            ended,
            cut,
        ),
        "limit_sampled": check.sampled_limit(run.samples, seeded.limits),
        "events": check.events_gap_free(rows["tasks"], rows["events"]),
        "reaped_without_death": check.reaped_without_death(rows["events"], len(workers.kill_times)),
    }
    unexpected = workers.died_unexpectedly()
    results["workers_survived"] = {
        "died_unexpectedly": len(unexpected),
        "violations": len(unexpected),
        "examples": [
            {
                "pid": w.pid,
                "host": w.host,
                "returncode": w.process.returncode,
                "log_tail": w.log_path.read_text(errors="replace").splitlines()[-3:],
            }
            for w in unexpected[:5]
        ],
    }
    return results


def summarize(
    run: Run, figures: dict[str, Any], checks: dict[str, Any], seeded: Seeded
) -> dict[str, Any]:
    violations = {name: int(result["violations"]) for name, result in checks.items()}
    dials = checks["dial_records"]
    return {
        "store": run.spec.store,
        "tasks": len(seeded.queue_of_task),
        "kinds": seeded.kinds,
        "workers": run.spec.workers,
        "lease_s": run.spec.lease_s,
        "dials": dials["dials"],
        "call_rows": dials["call_rows"],
        **figures,
        "outages": run.outages,
        "duration_s": round(time.time() - run.started, 1),
        "violations": violations,
        "checks": checks,
        "pass": not any(violations.values()),
    }


async def soak(spec: Spec, workdir: Path, rng: random.Random) -> dict[str, Any]:
    """Scenarios a and c (and the frame of b and d): seed, run workers, kill, check."""
    os.makedirs(workdir, exist_ok=True)
    if spec.hosts:
        from chaos.multihost import several_hosts

        return await several_hosts(spec, workdir, rng)
    clock = SystemClock()
    database: Any = None
    cluster: Any = None
    if spec.store == "postgresql":
        database = PgDatabase()
        await database.create()
        url = database.url
    elif spec.store == "pgcluster":
        from chaos.pgcluster import PgCluster

        cluster = PgCluster(workdir / "pg")
        await asyncio.to_thread(cluster.init)
        await asyncio.to_thread(cluster.start)
        url = await asyncio.to_thread(cluster.create_database, "chaos")
    else:
        url = f"sqlite:///{workdir / 'chaos.db'}"
    receiver = Receiver() if spec.webhooks else None
    store = await open_store(url, clock, migrate=True)
    workers: Workers | None = None
    try:
        seeded = await seed(
            store,
            workdir / "storage",
            tasks=spec.tasks,
            spread_s=spec.spread_s,
            limits=spec.limits,
            rng=rng,
            webhook_url=receiver.url if receiver else None,
        )
        run = Run(spec, workdir)
        env = worker_env(spec, url, workdir, webhook=receiver is not None)
        workers = Workers(env, workdir / "logs", rng)
        workers.start(spec.workers)
        for queue_id in seeded.limits:
            await store.update_queue(queue_id, QueueChanges(status="on"), clock.now())
        say(f"{spec.name}: {spec.tasks} tasks seeded, {spec.workers} workers on {spec.store}")
        phase = _phase(spec, receiver, cluster, workers)
        figures = await drive(run, store, seeded, workers, phase)
        if receiver is not None:
            figures |= await _await_deliveries(store, seeded, receiver)
        ended = time.time()
        workers.stop()
        if cluster is not None:
            figures["worker_logs"] = _outage_logs(run, workers)
        rows = await read_rows(store, seeded.client_id)
        checks = run_checks(run, rows, seeded, workers, ended)
        if receiver is not None:
            checks["webhooks"] = check.webhooks_delivered(rows["events"], receiver.deliveries())
            figures["receiver_requests"] = len(receiver.requests)
        if spec.store == "sqlite":
            integrity = await _rows(store, "PRAGMA integrity_check")
            checks["sqlite_integrity"] = check.sqlite_integrity(
                [str(next(iter(row.values()))) for row in integrity]
            )
        return summarize(run, figures, checks, seeded)
    finally:
        if workers is not None:
            workers.stop()
        if receiver is not None:
            await receiver.down()
        await store.close()
        if database is not None:
            await database.drop()
        if cluster is not None:
            cluster.destroy()


def _phase(spec: Spec, receiver: Receiver | None, cluster: Any, workers: Workers) -> Phase | None:
    if receiver is not None and spec.webhooks is not None:
        down_s, failing_s = spec.webhooks

        async def webhook_phase(run: Run, elapsed: float) -> None:
            if elapsed < down_s:
                return  # the receiver starts down: connections refused
            if elapsed < down_s + failing_s:
                if receiver.mode != "failing":
                    say(f"{spec.name}: receiver answers 500 now")
                    await receiver.failing()
                return
            if receiver.mode != "healthy":
                say(f"{spec.name}: receiver healthy now")
                await receiver.healthy()
                run.notes.append("done")

        return webhook_phase
    if cluster is not None and spec.outages:
        from chaos.outages import OutagePlan

        return OutagePlan(spec, cluster, workers).tick
    return None


async def _await_deliveries(store: Store, seeded: Seeded, receiver: Receiver) -> dict[str, Any]:
    """Until every event of the client reached the receiver (bounded: 180 s)."""
    started = time.monotonic()
    missing = -1
    while time.monotonic() - started < 180:
        rows = await _rows(store, "SELECT id FROM events WHERE client_id = :c", c=seeded.client_id)
        got = {str(r["event_id"]) for r in receiver.deliveries()}
        missing = len({str(r["id"]) for r in rows} - got)
        if missing == 0:
            break
        await asyncio.sleep(1.0)
    return {"webhook_wait_s": round(time.monotonic() - started, 1), "undelivered_at_end": missing}


def _outage_logs(run: Run, workers: Workers) -> dict[str, Any]:
    from chaos.outages import stall_ms

    return {"loop_stall_max_ms": stall_ms(workers)}
