"""Console benchmark: every page of the operator console with 1,000,000 tasks stored.

For each store (SQLite, PostgreSQL at 127.0.0.1:5432, a database of its own, dropped after)
the bench fills a fresh database with ``--fill`` tasks (1,000,000) through ``Store.add_tasks``
in chunks of 10,000, each chunk created 6 hours apart (the newest 6 hours ago), most of them
then marked finished by SQL, and one call leg per finished task (``INSERT … SELECT`` from the
tasks, a fast path of the bench only: 1 in 7 busy, the rest answered). A thousand of the
finished tasks are moved into the last hour, so the dashboard has something to draw. Then a
real ``ringback serve`` (its queues off: nothing dials) is signed in to like a browser, and
each page is requested ``--requests`` times (50) after 3 warm-up requests, one after another;
p50, p95 and the largest, in ms, as this process's HTTP client measures them.

``--keep DIR`` keeps the filled databases (SQLite file and PostgreSQL database named in
``DIR/kept.json``) for a later run with ``--reuse DIR`` (no fill; a newer ringback migrates
them when it starts: how a release's new indexes are measured before and after).

Progress goes to stderr; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import fill_template, free_port, machine, pg_version, say
from ringback.clock import SystemClock
from ringback.store.db import open_store

PG_ADMIN = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
FILL_CHUNK = 10_000
TARGET_P95_MS = 200.0
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HOUR_MS = 3_600_000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ringback", *args], env=env, capture_output=True, text=True,
        check=False, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ringback {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


class Database:
    """A database for one store: made fresh (and dropped after unless kept) or reused."""

    def __init__(self, kind: str, workdir: Path, reuse: dict[str, str] | None) -> None:
        self.kind, self.workdir = kind, workdir
        self.reused = reuse is not None and kind in reuse
        self.name: str | None = None
        if self.reused:
            assert reuse is not None
            self.url = reuse[kind]
        elif kind == "sqlite":
            self.url = f"sqlite:///{workdir / f'console-{uuid.uuid4().hex[:8]}.db'}"
        else:
            self.name = f"rb_consolebench_{uuid.uuid4().hex[:8]}"
            self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.name

    async def create(self) -> None:
        if self.name and not self.reused:
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f"CREATE DATABASE {self.name}")
            finally:
                await admin.close()

    async def drop(self) -> None:
        if self.kind == "pg" and self.url.startswith("postgresql"):
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(
                    f"DROP DATABASE IF EXISTS {self.url.rsplit('/', 1)[1]} WITH (FORCE)"
                )
            finally:
                await admin.close()
        elif self.kind == "sqlite":
            _unlink_sqlite(self.url)


def _unlink_sqlite(url: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def _remember(folder: str, kind: str, url: str) -> None:
    """Name the kept database of ``kind`` in ``folder/kept.json`` (for ``--reuse``)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    kept_path = Path(folder) / "kept.json"
    kept = json.loads(kept_path.read_text()) if kept_path.exists() else {}
    kept[kind] = url
    kept_path.write_text(json.dumps(kept))


def _workdir(args: argparse.Namespace) -> Path:
    workdir = Path(args.keep or args.reuse or tempfile.mkdtemp(prefix="rb-console-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _calls_sql(dialect: str) -> str:
    empty_list, empty_map = ("'[]'::jsonb", "'{}'::jsonb") if dialect == "postgresql" else (
        "'[]'", "'{}'")  # fmt: skip
    return (
        "INSERT INTO calls (call_uuid, leg_uuid, leg, client_id, queue_id, task_id, attempt, "
        "direction, from_number, to_number, sip_code, outcome, hangup_cause, started_at, "
        "answered_at, ended_at, duration_ms, billsec_ms, played, dtmf_received, detail, state) "
        "SELECT 'bench-' || id, 'bench-' || id || '-b', 'b', client_id, queue_id, id, 1, "
        "'outbound', '33611111111', '33622222222', "
        "CASE WHEN id % 7 = 0 THEN 486 ELSE 200 END, "
        "CASE WHEN id % 7 = 0 THEN 'busy' ELSE 'answered' END, "
        "CASE WHEN id % 7 = 0 THEN 'USER_BUSY' ELSE 'NORMAL_CLEARING' END, "
        "created_at + 1000, CASE WHEN id % 7 = 0 THEN NULL ELSE created_at + 3000 END, "
        "created_at + 9000, 8000, CASE WHEN id % 7 = 0 THEN 0 ELSE 6000 END, "
        f"{empty_list}, '', {empty_map}, 'ended' "
        "FROM tasks WHERE id BETWEEN :low AND :high AND status = 'finished'"
    )


async def fill(url: str, client_id: int, queues: list[int], total: int) -> dict[str, Any]:
    """``total`` tasks through ``Store.add_tasks`` (chunks of 10,000 created 6 h apart; four
    chunks in five in the first queue); 9 in 10 finished (success, 1 in 7 failed), each
    finished one with a call leg; 1,000 of them finished within the last hour."""
    store = await open_store(url, SystemClock())
    try:
        dialect = store.engine.dialect.name
        chunks = (total + FILL_CHUNK - 1) // FILL_CHUNK
        template = fill_template()
        newest = datetime.now(UTC) - timedelta(hours=6)
        finish = sa.text(
            "UPDATE tasks SET status = 'finished', "
            "finish_result = CASE WHEN id % 7 = 0 THEN 'failed' ELSE 'success' END, "
            "finish_comment = 'A and B connected', attempt = 1, tries_used = 1, "
            "first_attempt_at = created_at + 1000 + id % 5000, "
            "last_attempt_at = created_at + 1000 + id % 5000, "
            "finished_at = created_at + 9000, updated_at = created_at + 9000 "
            "WHERE id BETWEEN :low AND :high AND id % 10 <> 0"
        )
        calls = sa.text(_calls_sql(dialect))
        say(f"    filling {total:,} tasks ({chunks} chunks of {FILL_CHUNK:,}) and their calls…")
        started = time.perf_counter()
        done = 0
        for k in range(chunks):
            size = min(FILL_CHUNK, total - done)
            created = newest - timedelta(hours=6 * (chunks - 1 - k))
            queue = queues[1 + k % 2] if k % 5 == 2 else queues[0]
            tasks = [
                replace(template, name=f"fill-{done + i}", run_at=created) for i in range(size)
            ]
            ids = await store.add_tasks(client_id, queue, tasks, created)
            async with store.engine.begin() as conn:
                await conn.execute(finish, {"low": min(ids), "high": max(ids)})
                await conn.execute(calls, {"low": min(ids), "high": max(ids)})
            done += size
            if (k + 1) % 10 == 0 or k + 1 == chunks:
                say(f"    {done:,} tasks ({done / (time.perf_counter() - started):,.0f}/s)")
        now_ms = int(time.time() * 1000)
        async with store.engine.begin() as conn:  # 1,000 finished within the last hour
            await conn.execute(
                sa.text(
                    "UPDATE tasks SET finished_at = :now - (id % 3500) * 1000, "
                    "run_at = :now - (id % 3500) * 1000 - 5000 - id % 3000, "
                    "last_attempt_at = :now - (id % 3500) * 1000 - 4000 "
                    "WHERE id % 997 = 1 AND status = 'finished' AND id <= :last"
                ),
                {"now": now_ms, "last": 997 * 1000},
            )
        fill_s = time.perf_counter() - started
    finally:
        await store.close()
    return {"fill_s": round(fill_s, 1), "fill_rate": round(total / fill_s)}


async def settle(db: Database) -> None:
    """What the database does on its own after a bulk load: PostgreSQL's autovacuum (VACUUM
    ANALYZE). SQLite gets nothing (nothing runs ANALYZE for it)."""
    if db.kind != "pg":
        return
    conn = await asyncpg.connect(db.url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


class Serve:
    """``ringback serve`` over the database, and an HTTP client signed in to its console."""

    def __init__(self, db: Database, workdir: Path) -> None:
        self.db, self.workdir = db, workdir
        self.port = free_port()
        self.env = {
            **os.environ,
            "RINGBACK_DATABASE_URL": db.url,
            "RINGBACK_STORAGE_DIR": str(workdir / "storage"),
            "RINGBACK_SIM_FAST": "1",
            "RINGBACK_WORKER_PROCESSES": "1",
            "RINGBACK_HOST": "127.0.0.1",
            "RINGBACK_PORT": str(self.port),
        }
        self.log = workdir / f"serve-{db.kind}-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ringback", "serve", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 600  # a migration of a big database may take minutes
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ringback serve exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"ringback serve did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def signed_in(self, creds: dict[str, Any]) -> httpx.Client:
        http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120)
        form = http.get("/ui/signin").text
        found = CSRF.search(form)
        assert found, form[:500]
        answer = http.post(
            "/ui/signin",
            data={"csrf": found.group(1), "client_id": creds["client_id"],
                  "client_secret": creds["client_secret"]},
        )  # fmt: skip
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in: {answer.status_code} {answer.text[:300]}")
        return http


def pages(first_queue: int, task_id: int, call_uuid: str, older: str) -> dict[str, str]:
    """Every console page (and the fragments the pages poll), by a short name."""
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    day_ago = (datetime.now(UTC) - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M")
    return {
        "queues": "/ui/queues",
        "queue_counts": "/ui/queues/counts",
        "tasks": "/ui/tasks",
        "task_rows": "/ui/tasks/rows",
        "tasks_queue": f"/ui/tasks?queue={first_queue}",
        "tasks_status": "/ui/tasks?status=scheduled",
        "tasks_deep_page": "/ui/tasks?page=2000",
        "tasks_name": "/ui/tasks?q=fill-4242",
        "tasks_number": "/ui/tasks?number=33622222222",
        "task": f"/ui/tasks/{task_id}",
        "add": "/ui/tasks/add",
        "calls": "/ui/calls",
        "calls_busy": "/ui/calls?outcome=busy",
        "calls_last_hour": f"/ui/calls?start={hour_ago}",
        "calls_window": f"/ui/calls?start={week_ago}&end={day_ago}",
        "calls_older": f"/ui/calls?before={older}",
        "call": f"/ui/calls/{call_uuid}",
        "webhooks": "/ui/webhooks",
        "numbers": "/ui/numbers",
        "dashboard": "/ui/dashboard",
        "dashboard_charts": "/ui/dashboard/charts",
    }


def measure(http: httpx.Client, paths: dict[str, str], requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in paths.items():
        times: list[float] = []
        for k in range(3 + requests):
            started = time.perf_counter()
            answer = http.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
            if k >= 3:
                times.append(elapsed)
        out[name] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(pct(times, 0.95), 1),
            "max_ms": round(max(times), 1),
        }
        say(f"    {name:18} {path[:60]:60} p50 {out[name]['p50_ms']:7.1f}  "
            f"p95 {out[name]['p95_ms']:7.1f} ms")  # fmt: skip
    return out


async def one_store(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    say(f"{kind}:")
    db = Database(kind, workdir, args.reuse_urls)
    await db.create()
    serve: Serve | None = None
    result: dict[str, Any] = {}
    try:
        env = {**os.environ, "RINGBACK_DATABASE_URL": db.url,
               "RINGBACK_STORAGE_DIR": str(workdir / "storage")}  # fmt: skip
        if not db.reused:
            run_cli(env, "migrate")
            creds = json.loads(run_cli(env, "client", "create", "bench", "--json"))
            for name in ("bench", "other-1", "other-2"):
                run_cli(env, "queue", "add", name, "--client", "bench")
            store = await open_store(db.url, SystemClock())
            try:
                queues = sorted(q.id for q in await store.list_queues(int(creds["id"])))
            finally:
                await store.close()
            result.update(await fill(db.url, int(creds["id"]), queues, args.fill))
            await settle(db)
            (workdir / f"creds-{kind}.json").write_text(json.dumps(creds))
        else:
            creds = json.loads((Path(args.reuse) / f"creds-{kind}.json").read_text())
        store = await open_store(db.url, SystemClock(), migrate=False)
        try:
            async with store.engine.connect() as conn:
                tasks = int(
                    (await conn.execute(sa.text("SELECT count(*) FROM tasks"))).scalar_one()
                )
                legs = int((await conn.execute(sa.text("SELECT count(*) FROM calls"))).scalar_one())
                task_id = int(
                    (
                        await conn.execute(
                            sa.text("SELECT max(id) FROM tasks WHERE status = 'finished'")
                        )
                    ).scalar_one()
                )
                queue = int(
                    (await conn.execute(sa.text("SELECT min(id) FROM queues"))).scalar_one()
                )
                middle = (
                    await conn.execute(
                        sa.text("SELECT started_at, id FROM calls WHERE call_uuid = :uuid"),
                        {"uuid": f"bench-{task_id // 2}"},
                    )
                ).first()
        finally:
            await store.close()
        result.update({"tasks": tasks, "call_legs": legs})
        serve = Serve(db, workdir)
        started = time.perf_counter()
        serve.start()  # migrates a reused database first
        result["start_s"] = round(time.perf_counter() - started, 1)
        await settle(db)
        http = serve.signed_in(creds)
        try:
            result["pages"] = measure(
                http,
                pages(
                    queue, task_id, f"bench-{task_id}", f"{middle[0]}.{middle[1]}" if middle else ""
                ),
                args.requests,
            )
        finally:
            http.close()
        worst = max(result["pages"].items(), key=lambda item: item[1]["p95_ms"])
        result["worst"] = {"page": worst[0], "p95_ms": worst[1]["p95_ms"]}
        result["all_within_target"] = worst[1]["p95_ms"] <= TARGET_P95_MS
        say(f"  worst p95: {worst[0]} {worst[1]['p95_ms']} ms")
    finally:
        if serve is not None:
            serve.stop()
        if args.keep:
            _remember(args.keep, kind, db.url)
        elif not db.reused:  # a reused database stays for the next --reuse
            await db.drop()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", type=int, default=1_000_000, help="tasks stored (1,000,000)")
    parser.add_argument("--requests", type=int, default=50, help="requests per page (50)")
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    parser.add_argument("--keep", help="a folder: keep the filled databases, named there")
    parser.add_argument("--reuse", help="a folder --keep wrote: measure those databases again")
    args = parser.parse_args()
    args.reuse_urls = None
    if args.reuse:
        args.reuse_urls = json.loads((Path(args.reuse) / "kept.json").read_text())
    report: dict[str, Any] = {
        "bench": "console", "fill": args.fill, "requests": args.requests,
        "target_p95_ms": TARGET_P95_MS, "machine": machine(), "postgresql": await pg_version(),
    }  # fmt: skip
    workdir = _workdir(args)
    for kind in args.stores:
        report[kind] = await one_store(kind, args, workdir)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
