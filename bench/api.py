"""API benchmark: bulk task intake and task listing over HTTP, on SQLite and PostgreSQL.

Each store gets a fresh database, API credentials (``ringback client create``) and a real
``ringback serve`` process on a free port; its queue stays switched off, so the workers dial
nothing while it is measured. The figures are taken by this process's HTTP client (httpx,
keep-alive connections), so they include the network stack and JSON on both sides.

- bulk: ``--batches`` POSTs of ``--batch`` callback tasks each to
  ``/task_scheduler/{id}/tasks/``, once one after another and once from 4 concurrent clients;
  tasks accepted per second (the headline is the better of the two), median of ``--runs``;
- list: the store is filled to ``--fill`` tasks (1,000,000) directly through the store (not
  HTTP), most of them finished, spread over three queues, created 6 hours apart per chunk;
  then ~200 ``GET …/tasks/?limit=100`` in a shuffled mix of five kinds: first page, a deep
  page (``offset=500000``), a status filter, a ``created_from``/``created_to`` range, a name
  filter; p50 and p95 per kind and over all. Only for the stores named by ``--million``
  (PostgreSQL unless told otherwise: the fill takes minutes per store).

Progress goes to stderr; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import sqlite3
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
import orjson
import sqlalchemy as sa

from ringback.clock import SystemClock
from ringback.domain.model import TaskKind
from ringback.domain.task_rules import NewTask
from ringback.store.db import Store, open_store

PG_ADMIN = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
API = "/api/ver1.0/client/{id}"
KINDS = ("first_page", "deep_page", "status", "created_range", "name")
FILL_CHUNK = 10_000
HOUR_MS = 3_600_000


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class ApiFailure(RuntimeError):
    pass


def check(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise ApiFailure(
            f"{what}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}"
        )
    return orjson.loads(response.content)


class Service:
    """A fresh database, API credentials and a running ``ringback serve`` against it."""

    def __init__(self, kind: str, workdir: Path, processes: int = 1) -> None:
        self.kind, self.workdir, self.processes = kind, workdir, processes
        self.database: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"serve-{kind}-{uuid.uuid4().hex[:6]}.log"

    async def __aenter__(self) -> Service:
        try:
            await self.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def start(self) -> None:
        if self.kind == "sqlite":
            self.url = f"sqlite:///{self.workdir / f'api-{uuid.uuid4().hex[:8]}.db'}"
        else:
            self.database = f"rb_apibench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"CREATE DATABASE {self.database}")
            await admin.close()
            self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.database
        self.port = free_port()
        self.env = {
            **os.environ,
            "RINGBACK_DATABASE_URL": self.url,
            "RINGBACK_STORAGE_DIR": str(self.workdir / "storage"),
            "RINGBACK_SIM_FAST": "1",
            "RINGBACK_WORKER_PROCESSES": str(self.processes),
            "RINGBACK_HOST": "127.0.0.1",
            "RINGBACK_PORT": str(self.port),
        }
        creds = self.create_client()
        self.client_id = int(creds["id"])
        self.process = self.start_serve()
        base = f"http://127.0.0.1:{self.port}"
        form = {
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        }
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"ringback serve exited:\n{self.tail()}")
                try:
                    answer = await http.post("/oauth/token", data=form)
                    break
                except httpx.TransportError as exc:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"ringback serve did not answer:\n{self.tail()}"
                        ) from exc
                    await asyncio.sleep(0.2)
            token = check(answer, 200, "POST /oauth/token")["access_token"]
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.http = self.client()
        self.prefix = API.format(id=self.client_id)
        self.queue_id = await self.create_queue("bench")

    def create_client(self) -> dict[str, Any]:
        made = subprocess.run(
            [sys.executable, "-m", "ringback", "client", "create", "bench", "--json"],
            env=self.env,
            capture_output=True,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(f"ringback client create failed: {made.stderr.decode()[-2000:]}")
        creds: dict[str, Any] = json.loads(made.stdout)
        return creds

    def start_serve(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "ringback", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=300)

    async def create_queue(self, name: str) -> int:
        answer = await self.http.post(
            f"{self.prefix}/task_scheduler/",
            json={"name": name, "comment": "api bench", "status": "off",
                  "concurrent_task_limit": 100},
        )  # fmt: skip
        return int(check(answer, 201, "POST task_scheduler/")["id"])

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    async def __aexit__(self, *_: object) -> None:
        with contextlib.suppress(AttributeError):
            await self.http.aclose()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.database:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
            await admin.close()


# --- bulk -----------------------------------------------------------------------------------


def batch_body(first: int, size: int, start_time: str) -> bytes:
    tasks = [
        {
            "name": f"bulk-{n}",
            "a_number": f"3361{n:07d}",
            "b_number": f"3362{n:07d}",
            "try_count": 3,
            "try_again_pause": 60,
            "start_time_utc": start_time,
            "callback_params": {"caller_id_name": "Bench", "caller_id_number": "33100000000"},
        }
        for n in range(first, first + size)
    ]
    return orjson.dumps({"tasks": tasks})


async def post_batches(svc: Service, bodies: list[bytes], clients: int, size: int) -> float:
    """POST every body, ``clients`` at a time; tasks accepted per second. Each connection
    first sends one untimed request (connection set-up, warm caches)."""
    url = f"{svc.prefix}/task_scheduler/{svc.queue_id}/tasks/"
    headers = {"Content-Type": "application/json"}
    connections = [svc.client() for _ in range(clients)]

    async def send(http: httpx.AsyncClient, body: bytes) -> None:
        answer = await http.post(url, content=body, headers=headers)
        added = check(answer, 201, "POST tasks/")
        if len(added.get("tasks", [])) != size:
            raise ApiFailure(f"POST tasks/: {len(added.get('tasks', []))} tasks back, not {size}")

    async def sender(http: httpx.AsyncClient, pending: list[bytes]) -> None:
        while pending:
            await send(http, pending.pop())

    try:
        await asyncio.gather(*(send(http, bodies[0]) for http in connections))
        pending = list(reversed(bodies))
        started = time.perf_counter()
        await asyncio.gather(*(sender(http, pending) for http in connections))
        elapsed = time.perf_counter() - started
    finally:
        for http in connections:
            await http.aclose()
    return len(bodies) * size / elapsed


async def bulk(svc: Service, args: argparse.Namespace, counter: list[int]) -> dict[str, float]:
    start_time = seed_time(datetime.now(UTC) + timedelta(days=1))
    rates: dict[str, list[float]] = {"seq": [], "4clients": []}
    for run in range(1, args.runs + 1):
        for mode, clients in (("seq", 1), ("4clients", 4)):
            bodies = []
            for _ in range(args.batches):
                bodies.append(batch_body(counter[0], args.batch, start_time))
                counter[0] += args.batch
            rate = await post_batches(svc, bodies, clients, args.batch)
            rates[mode].append(rate)
            say(
                f"    [{run}/{args.runs}] {args.batches} x {args.batch} tasks, "
                f"{clients} client(s): {rate:,.0f} tasks/s"
            )
    return {mode: statistics.median(values) for mode, values in rates.items()}


# --- list with 1,000,000 tasks --------------------------------------------------------------


def fill_template() -> NewTask:
    return NewTask(
        kind=TaskKind.CALLBACK,
        name=None,
        payload={
            "a_number": "33611111111",
            "b_number": "33622222222",
            "try_again_pause": 60.0,
            "try_again_pause_caller": 60.0,
            "callback_params": {"extended_a_numbers": [], "caller_id_name": "Bench"},
            "variables": {},
            "attempts_src_ani_numbers": [],
            "attempts_dst_ani_numbers": [],
        },
        run_at=datetime.now(UTC),
        max_tries=3,
        backoff={"type": "fixed", "delay": 60000, "jitter": 0.0},
        max_caller_tries=0,
        caller_pause_s=60.0,
        timezone=None,
        start_time_utc=None,
    )


async def count(store: Store, sql: str, **params: Any) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(sa.text(sql), params)).scalar_one())


async def fill(svc: Service, store: Store, total: int) -> dict[str, Any]:
    """Add tasks until the store holds ``total``: chunks of 10,000 through ``Store.add_tasks``,
    each chunk created at its own time (6 h apart, the newest 6 h ago); four chunks in five go
    to the bench queue, the others to two more queues; 9 tasks in 10 are then marked finished.
    """
    others = [await svc.create_queue("other-1"), await svc.create_queue("other-2")]
    have = await count(store, "SELECT count(*) FROM tasks")
    chunks = max(0, (total - have + FILL_CHUNK - 1) // FILL_CHUNK)
    template = fill_template()
    newest = datetime.now(UTC) - timedelta(hours=6)
    plan: list[tuple[int, int, datetime]] = []  # (queue, size, created)
    left = total - have
    for k in range(chunks):
        size = min(FILL_CHUNK, left)
        left -= size
        queue = others[k % 2] if k % 5 == 2 else svc.queue_id
        plan.append((queue, size, newest - timedelta(hours=6 * (chunks - 1 - k))))
    finish = sa.text(
        "UPDATE tasks SET status = 'finished', finish_result = 'success', "
        "finish_comment = 'A and B connected', attempt = 1, tries_used = 1, "
        "first_attempt_at = created_at + 1000, last_attempt_at = created_at + 1000, "
        "finished_at = created_at + 9000, updated_at = created_at + 9000 "
        "WHERE id BETWEEN :low AND :high AND id % 10 <> 0"
    )
    say(f"    filling {have:,} -> {total:,} tasks ({chunks} chunks of {FILL_CHUNK:,})…")
    started = time.perf_counter()
    done = 0
    chunk_times: list[tuple[int, int, int]] = []  # (queue, created_ms, size) of every chunk
    names: list[str] = []
    for k, (queue, size, created) in enumerate(plan):
        first = done
        tasks = [replace(template, name=f"fill-{first + i}", run_at=created) for i in range(size)]
        ids = await store.add_tasks(svc.client_id, queue, tasks, created)
        async with store.engine.begin() as conn:
            await conn.execute(finish, {"low": min(ids), "high": max(ids)})
        done += size
        chunk_times.append((queue, int(created.timestamp() * 1000), size))
        if queue == svc.queue_id:
            names.append(f"fill-{first + size // 2}")
        if (k + 1) % 10 == 0 or k + 1 == len(plan):
            rate = done / (time.perf_counter() - started)
            say(f"    {have + done:,} tasks stored ({rate:,.0f}/s)")
    fill_s = time.perf_counter() - started
    return {
        "fill_s": fill_s,
        "fill_rate": done / fill_s if done else 0.0,
        "chunk_times": chunk_times,
        "names": names,
    }


async def settle(svc: Service) -> None:
    """What the database would do on its own soon after a bulk load: PostgreSQL's autovacuum
    (VACUUM ANALYZE). SQLite is left as it is (nothing runs ANALYZE for it)."""
    if svc.kind == "sqlite":
        return
    conn = await asyncpg.connect(svc.url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def list_requests(
    svc: Service, filled: dict[str, Any], per_kind: int, deep: int, rng: random.Random
) -> list[tuple[str, dict[str, Any], int | None]]:
    """(kind, query, expected total or None) in a shuffled order."""
    main_chunks = [(ms, n) for queue, ms, n in filled["chunk_times"] if queue == svc.queue_id]
    requests: list[tuple[str, dict[str, Any], int | None]] = []
    for _ in range(per_kind):
        requests.append(("first_page", {"limit": 100}, None))
        requests.append(("deep_page", {"limit": 100, "offset": deep}, None))
        requests.append(("status", {"limit": 100, "status": "scheduled"}, None))
        created, size = rng.choice(main_chunks)
        window = {
            "limit": 100,
            "created_from": seed_time(datetime.fromtimestamp((created - HOUR_MS) / 1000, UTC)),
            "created_to": seed_time(datetime.fromtimestamp((created + HOUR_MS) / 1000, UTC)),
        }
        requests.append(("created_range", window, size))
        requests.append(("name", {"limit": 100, "name": rng.choice(filled["names"])}, 1))
    rng.shuffle(requests)
    return requests


async def listing(
    svc: Service,
    store: Store,
    filled: dict[str, Any],
    per_kind: int,
    deep: int,
    problems: list[str],
) -> dict[str, list[float]]:
    """Latency of each request by kind; a page whose total or length is not what the store
    holds is noted in ``problems`` (once per kind) and still timed."""
    url = f"{svc.prefix}/task_scheduler/{svc.queue_id}/tasks/"
    in_queue = await count(store, "SELECT count(*) FROM tasks WHERE queue_id = :q", q=svc.queue_id)
    scheduled = await count(
        store,
        "SELECT count(*) FROM tasks WHERE queue_id = :q AND status = 'scheduled'",
        q=svc.queue_id,
    )
    expect_total = {"first_page": in_queue, "deep_page": in_queue, "status": scheduled}
    wrong: set[str] = set()
    if in_queue < deep + 100:
        raise RuntimeError(f"the bench queue holds {in_queue:,} tasks, too few for the deep page")
    rng = random.Random(7)
    warmup = list_requests(svc, filled, 2, deep, rng)
    timed = list_requests(svc, filled, per_kind, deep, rng)
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for position, (kind, query, expected) in enumerate(warmup + timed):
        started = time.perf_counter()
        answer = await svc.http.get(url, params=query)
        elapsed_ms = (time.perf_counter() - started) * 1000
        page = check(answer, 200, f"GET tasks/ ({kind})")
        want_total = expect_total.get(kind, expected) or 0
        want_rows = max(0, min(100, want_total - query.get("offset", 0)))
        got_rows = len(page.get("tasks", []))
        if (page.get("total") != want_total or got_rows != want_rows) and kind not in wrong:
            wrong.add(kind)
            problems.append(
                f"GET tasks/?{httpx.QueryParams(query)}: total {page.get('total')} and "
                f"{got_rows} tasks, expected {want_total} and {want_rows}"
            )
            say(f"    WRONG ANSWER: {problems[-1]}")
        if position >= len(warmup):
            times[kind].append(elapsed_ms)
            done = position + 1 - len(warmup)
            if done % 50 == 0:
                say(f"    {done} of {len(timed)} requests")
    return times


# --- main -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(terse=True),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        facts["mem_gib"] = round(mem_kib / 2**20)
    return facts


async def pg_version() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def one_store(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    kind = "sqlite" if name == "sqlite" else "postgresql"
    started = time.perf_counter()
    say(f"{name}: starting ringback serve…")
    async with Service(kind, workdir, args.processes) as svc:
        say(f"{name}: bulk, {args.batches} batches of {args.batch} callback tasks…")
        rates = await bulk(svc, args, [0])
        results[f"{name}_bulk_tasks_per_s_seq"] = round(rates["seq"])
        results[f"{name}_bulk_tasks_per_s_4clients"] = round(rates["4clients"])
        results[f"{name}_bulk_tasks_per_s"] = round(max(rates.values()))
        if name in args.million:
            store = await open_store(svc.url, SystemClock(), migrate=True)
            try:
                filled = await fill(svc, store, args.fill)
                results[f"{name}_fill_s"] = round(filled["fill_s"], 1)
                results[f"{name}_fill_tasks_per_s"] = round(filled["fill_rate"])
                await settle(svc)
                say(f"{name}: listing, {args.requests} requests of 100 tasks…")
                problems: list[str] = []
                per_kind = max(1, args.requests // len(KINDS))
                times = await listing(svc, store, filled, per_kind, args.deep_offset, problems)
                if problems:
                    results[f"{name}_list_problems"] = problems
            finally:
                await store.close()
            every: list[float] = []
            for list_kind, values in times.items():
                every += values
                p50, p95 = pct(values, 0.5), pct(values, 0.95)
                results[f"{name}_list_p50_ms_{list_kind}"] = round(p50, 1)
                results[f"{name}_list_p95_ms_{list_kind}"] = round(p95, 1)
                say(f"    {list_kind:>13}: p50 {p50:7.1f} ms, p95 {p95:7.1f} ms")
            results[f"{name}_list_p50_ms_1m"] = round(pct(every, 0.5), 1)
            results[f"{name}_list_p95_ms_1m"] = round(pct(every, 0.95), 1)
            say(f"    {'all':>13}: p95 {results[f'{name}_list_p95_ms_1m']:.1f} ms")
    results[f"{name}_seconds"] = round(time.perf_counter() - started)
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="tasks per POST")
    parser.add_argument("--batches", type=int, default=20, help="POSTs per measurement")
    parser.add_argument("--runs", type=int, default=3, help="bulk runs (median)")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="ringback serve --processes N: API processes sharing the port (one per core)",
    )
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    parser.add_argument(
        "--million", nargs="*", choices=["sqlite", "pg"], default=["pg"],
        help="stores filled to --fill tasks for the list measurement (default pg; "
        "'--million sqlite pg' for both, '--million' alone for none)",
    )  # fmt: skip
    parser.add_argument("--fill", type=int, default=1_000_000, help="tasks stored for listing")
    parser.add_argument("--requests", type=int, default=200, help="timed list requests")
    parser.add_argument("--deep-offset", type=int, default=500_000, help="offset of the deep page")
    args = parser.parse_args()

    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ringback-apibench-") as tmp:
        for name in ("sqlite", "pg"):
            if name in args.stores:
                results |= await one_store(name, args, Path(tmp))
    measured = [name for name in ("pg", "sqlite") if f"{name}_list_p95_ms_1m" in results]
    if measured:  # the PostgreSQL figure when there is one
        results["list_p95_ms_1m"] = results[f"{measured[0]}_list_p95_ms_1m"]
        results["list_store"] = measured[0]
    floors = {"sqlite_bulk_tasks_per_s": 10_000, "pg_bulk_tasks_per_s": 10_000}
    below = [key for key, floor in floors.items() if key in results and results[key] < floor]
    if "list_p95_ms_1m" in results and results["list_p95_ms_1m"] > 100:
        below.append("list_p95_ms_1m")
    if below:
        say(f"below the floor (10,000 tasks/s, 100 ms): {', '.join(below)}")
    results |= {
        "below_floor": below,
        "bulk_batch": args.batch,
        "api_processes": args.processes,
        "bulk_batches": args.batches,
        "runs": args.runs,
        "deep_offset": args.deep_offset,
        "fill": args.fill,
        "list_requests": args.requests,
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.perf_counter() - started),
        **machine(),
    }
    if "pg" in args.stores:
        results["postgresql"] = await pg_version()
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
