"""Export benchmark: a queue's tasks as CSV through the API's export route (the ASGI app run
in process, the body counted and dropped), N tasks (1,000,000 by default) on SQLite (and
PostgreSQL with ``--pg``). Reports rows per second and the process's peak RSS before and
after the export: a streamed export holds one chunk of rows, whatever N is.

The tasks are written straight into a fresh, migrated database (one INSERT … SELECT). Progress
goes to stderr; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from ringback.api.app import create_app
from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import Settings
from ringback.service import Services
from ringback.store.db import Store, open_store

PG_ADMIN = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAYLOAD = '{"calling_number": "0506868000", "called_number": "0901234000", "audio_file": "a.wav"}'


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def fill(store: Store, client: int, queue_id: int, kind: str, n: int) -> None:
    now = int(time.time() * 1000)
    cols = "client_id, queue_id, kind, name, payload, status, run_at, max_tries, event_seq, "
    cols += "created_at, updated_at"
    values = f"{client}, {queue_id}, 'msg_call', 'lead-' || i, '{PAYLOAD}', 'scheduled', "
    values += f"{now} + i, 1, 1, {now}, {now}"
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


async def export(app: Any, path: str, token: str) -> tuple[int, int, int]:
    """GET ``path`` on the ASGI app; (bytes, body messages, the largest message)."""
    done = asyncio.Event()
    requested = False
    seen = {"bytes": 0, "messages": 0, "largest": 0, "status": 0}

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body") or b""
            seen["bytes"] += len(body)
            seen["messages"] += 1
            seen["largest"] = max(seen["largest"], len(body))
            if not message.get("more_body"):
                done.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("bench", 80), "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
    }  # fmt: skip
    await app(scope, receive, send)
    assert seen["status"] == 200, seen
    return seen["bytes"], seen["messages"], seen["largest"]


async def one_run(kind: str, workdir: Path, n: int) -> dict[str, Any]:
    clock = SystemClock()
    database = None
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'export.db'}"
    else:
        database = f"rb_export_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"CREATE DATABASE {database}")
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    store = await open_store(url, clock, migrate=True)
    try:
        services = Services(store, clock, storage=Storage(workdir / f"files-{kind}"))
        made = await services.clients.create_credentials("bench")
        queue = await services.queues.create(made.client_id, "bench", status="off")
        say(f"{kind}: writing {n:,} tasks")
        await fill(store, made.client_id, queue.id, kind, n)
        credential = await services.clients.authenticate(made.key, made.secret)
        assert credential is not None
        token = await services.clients.issue_token(credential)
        app = create_app(services, Settings())
        path = f"/api/ver1.0/client/{made.client_id}/task_scheduler/{queue.id}/tasks/export.csv"
        rss_before = peak_rss_mb()
        say(f"{kind}: exporting (peak RSS so far {rss_before:.0f} MB)")
        started = time.perf_counter()
        size, messages, largest = await export(app, path, token)
        elapsed = time.perf_counter() - started
        rss_after = peak_rss_mb()
        say(
            f"{kind}: {n:,} rows, {size / 1e6:.0f} MB in {elapsed:.1f} s, "
            f"peak RSS {rss_after:.0f} MB"
        )
        return {
            "rows": n, "bytes": size, "seconds": round(elapsed, 2),
            "rows_per_s": round(n / elapsed), "mb_per_s": round(size / 1e6 / elapsed, 1),
            "body_messages": messages, "largest_message_bytes": largest,
            "peak_rss_mb_before": round(rss_before, 1), "peak_rss_mb_after": round(rss_after, 1),
        }  # fmt: skip
    finally:
        await store.close()
        if database is not None:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "export", "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ["sqlite", *(["postgresql"] if args.pg else [])]:
            results[kind] = await one_run(kind, Path(tmp), args.tasks)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
