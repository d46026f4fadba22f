"""Do-not-call benchmark: a CSV of N numbers imported into a fresh database, on SQLite and
PostgreSQL, through the same path as ``ringback dnc import FILE`` (the application layer: the
file read and checked whole, then written in batches of 10,000 entries); then the lookup of a
called number among them (the query the write of every call leg makes).

Progress goes to stderr; the last line printed is one JSON object.
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

from ringback.clock import SystemClock
from ringback.service import Services
from ringback.store.db import Store, open_store

PG_ADMIN = os.environ.get("RINGBACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def open_target(kind: str, workdir: Path) -> tuple[Store, str | None]:
    clock = SystemClock()
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'dnc-{uuid.uuid4().hex[:8]}.db'}"
        return await open_store(url, clock, migrate=True), None
    database = f"rb_dnc_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f"CREATE DATABASE {database}")
    await admin.close()
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + database
    return await open_store(url, clock, migrate=True), database


async def drop(database: str | None) -> None:
    if database:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.close()


async def one_run(kind: str, workdir: Path, csv_path: Path, n: int) -> dict[str, float]:
    store, database = await open_target(kind, workdir)
    try:
        services = Services(store, SystemClock())
        client = await store.ensure_client("bench", services.clock.now())
        began = time.perf_counter()
        with csv_path.open(encoding="utf-8", newline="") as handle:
            added = await services.suppressions.import_csv(
                client, handle, list_name="dnc", source="bench"
            )
        seconds = time.perf_counter() - began
        assert added == n, (added, n)
        lookups = []
        for i in range(0, n, max(1, n // 500)):
            number = f"+3361{i:07d}" if i % 2 else f"+3362{i:07d}"  # half hit, half miss
            began = time.perf_counter()
            await services.suppressions.check(client, number)
            lookups.append((time.perf_counter() - began) * 1e6)
        return {"import_s": seconds, "lookup_us": statistics.median(lookups)}
    finally:
        await store.close()
        await drop(database)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    args = parser.parse_args()
    results: dict[str, Any] = {"numbers": args.numbers, "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="ringback-dnc-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "numbers.csv"
        csv_path.write_text("".join(f"+3361{i:07d}\n" for i in range(args.numbers)))
        say(f"{args.numbers:,} numbers: {csv_path.stat().st_size / 1e6:.1f} MB of CSV")
        for name, kind in (("sqlite", "sqlite"), ("pg", "postgresql")):
            if name not in args.stores:
                continue
            runs = []
            for run in range(1, args.runs + 1):
                say(f"[{run}/{args.runs}] {name}: importing…")
                runs.append(await one_run(kind, workdir, csv_path, args.numbers))
                say(f"    {runs[-1]['import_s']:.1f} s, lookup {runs[-1]['lookup_us']:.0f} µs")
            seconds = statistics.median(r["import_s"] for r in runs)
            results[f"{name}_import_s"] = round(seconds, 2)
            results[f"{name}_numbers_per_s"] = round(args.numbers / seconds)
            results[f"{name}_lookup_us"] = round(statistics.median(r["lookup_us"] for r in runs))
    results |= {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
