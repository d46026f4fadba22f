"""ringback beside procrastinate, bullmq and arq: the same workload in the same run.

``python -m bench.peers`` (from the repository root; ``make bench-peers`` installs the peers
and runs it). The workload is a no-op job with one retry policy (3 tries, 1 s apart): for
ringback a ``msg_call`` task dialed by the simulator in fast mode (no ring, talk or media time),
for the peers a job whose function returns at once. Every system gets the same figures, each
repetition runs every system once (the order rotating), and the table shows medians:

- enqueue, single: ``--single`` jobs, one call each, one after another;
- enqueue, bulk: ``--bulk`` jobs in batches of ``--batch`` (the peer's bulk call; arq has none,
  so its batches are concurrent single calls);
- processed: ``--jobs`` jobs already waiting (``--procrastinate-jobs`` for procrastinate, which
  is slower), ``--processes`` worker processes; jobs per second from the first start to the last
  finish, both as the system stored them; and the peak RSS of one worker process;
- lateness: jobs due at a steady ``--rate`` per second for ``--seconds`` (one worker process):
  each job's start minus the instant it was due, p50 / p99 / max;
- backlog (ringback only, ``--backlog-stores``): a real ``ringback serve`` with ``--backlog``
  scheduled tasks against the same service empty: throughput, filtered task lists, RSS.

Ratios are ringback / peer, each ringback store against each peer. Progress goes to stderr;
the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from bench.api import machine, pg_version
from bench.engine import pct, say
from bench.peers import backlog
from bench.peers.common import REPO, Figures, Sizes, System

PEERS = ("procrastinate", "bullmq", "arq")
RINGBACKS = ("ringback-sqlite", "ringback-pg")


def make_system(name: str, workdir: Path) -> System:
    if name.startswith("ringback-"):
        from bench.peers.ringback_side import Ringback

        return Ringback(name.removeprefix("ringback-"), workdir)
    if name == "procrastinate":
        from bench.peers.procrastinate_side import Procrastinate

        return Procrastinate(workdir)
    if name == "bullmq":
        from bench.peers.bullmq_side import BullMQ

        return BullMQ(workdir)
    if name == "arq":
        from bench.peers.arq_side import Arq

        return Arq(workdir)
    raise ValueError(f"unknown system {name!r}")


async def one_repetition(system: System, sizes: Sizes, jobs: int) -> Figures:
    figures = Figures()
    figures.enqueue_single = await system.enqueue_single(sizes.single)
    figures.enqueue_bulk = await system.enqueue_bulk(sizes.bulk, sizes.batch)
    figures.processed, figures.rss_mib = await system.processed(jobs, sizes.processes)
    figures.lateness_ms = await system.lateness(sizes.rate, sizes.seconds)
    late = figures.lateness_ms
    say(
        f"    {system.name}: enqueue {figures.enqueue_single:,.0f}/s single, "
        f"{figures.enqueue_bulk:,.0f}/s bulk; processed {figures.processed:,.0f}/s "
        f"(RSS {figures.rss_mib:.0f} MiB); lateness p50 {pct(late, 0.5):.0f} ms, "
        f"p99 {pct(late, 0.99):.0f} ms, max {max(late):.0f} ms"
    )
    return figures


# figure key, label, unit, True when higher is better
ROWS: list[tuple[str, str, bool]] = [
    ("enqueue_single_per_s", "enqueue, single (jobs/s)", True),
    ("enqueue_bulk_per_s", "enqueue, bulk (jobs/s)", True),
    ("processed_per_s", "processed (jobs/s)", True),
    ("lateness_p50_ms", "lateness p50 (ms)", False),
    ("lateness_p99_ms", "lateness p99 (ms)", False),
    ("lateness_max_ms", "lateness max (ms)", False),
    ("worker_rss_mib", "worker RSS (MiB)", False),
]


def medians(runs: list[Figures]) -> dict[str, float]:
    return {
        "enqueue_single_per_s": statistics.median(f.enqueue_single for f in runs),
        "enqueue_bulk_per_s": statistics.median(f.enqueue_bulk for f in runs),
        "processed_per_s": statistics.median(f.processed for f in runs),
        "lateness_p50_ms": statistics.median(pct(f.lateness_ms, 0.5) for f in runs),
        "lateness_p99_ms": statistics.median(pct(f.lateness_ms, 0.99) for f in runs),
        "lateness_max_ms": statistics.median(max(f.lateness_ms) for f in runs),
        "worker_rss_mib": statistics.median(f.rss_mib for f in runs),
    }


def ratio(ours: float, theirs: float) -> float | None:
    return None if theirs == 0 else ours / theirs


def shown(value: float | None, *, as_ratio: bool = False) -> str:
    if value is None:
        return "n/a"
    if as_ratio:
        return f"{value:.3f}" if value < 1 else f"{value:.2f}"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"


def table(figures: dict[str, dict[str, float]]) -> tuple[str, dict[str, Any]]:
    """The markdown table (values, then ringback / peer ratios) and the ratios by key."""
    systems = [s for s in (*RINGBACKS, *PEERS) if s in figures]
    pairs = [(r, p) for r in RINGBACKS if r in figures for p in PEERS if p in figures]
    head = ["figure", *systems, *(f"{r.removeprefix('ringback-')} / {p}" for r, p in pairs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios: dict[str, Any] = {}
    for key, label, higher in ROWS:
        cells = [label + ("" if higher else ", lower is better")]
        cells += [shown(figures[s][key]) for s in systems]
        for r, p in pairs:
            value = ratio(figures[r][key], figures[p][key])
            ratios[f"{r.removeprefix('ringback-')}_over_{p}_{key}"] = (
                None if value is None else round(value, 4)
            )
            cells.append(shown(value, as_ratio=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), ratios


def backlog_table(results: dict[str, Any], stores: list[str]) -> str:
    lines = [
        "| ringback, backlog | empty store | " + f"{results.get('backlog_tasks', 0):,} tasks"
        " | with backlog / empty |",
        "|---|---|---|---|",
    ]
    for store in stores:
        p = f"{store}_backlog"
        rows = [
            (f"{store}: processed (tasks/s)", "empty_tasks_per_s", "full_tasks_per_s"),
            (f"{store}: filtered list p95 (ms)", "empty_list_p95_ms", "full_list_p95_ms"),
            (f"{store}: serve process RSS (MiB)", "empty_rss_mib", "full_rss_mib"),
        ]
        for label, empty, full in rows:
            a, b = results[f"{p}_{empty}"], results[f"{p}_{full}"]
            if full == "full_list_p95_ms":
                kinds = ", ".join(
                    f"{kind} {shown(results[f'{p}_full_list_p95_ms_{kind}'])}"
                    for kind in backlog.FILTERS
                )
                b_text = f"{shown(b)} ({kinds})"
                lines.append(
                    f"| {label} | {shown(a)} | {b_text} | {shown(ratio(b, a), as_ratio=True)} |"
                )
                continue
            lines.append(
                f"| {label} | {shown(a)} | {shown(b)} | {shown(ratio(b, a), as_ratio=True)} |"
            )
    return "\n".join(lines)


def checks(figures: dict[str, dict[str, float]], results: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, each as measured in this run."""
    found: dict[str, bool] = {}
    if "ringback-pg" in figures and "procrastinate" in figures:
        found["pg_processed_10x_procrastinate"] = (
            figures["ringback-pg"]["processed_per_s"]
            >= 10 * figures["procrastinate"]["processed_per_s"]
        )
    for r in RINGBACKS:
        if r in figures and "bullmq" in figures:
            found[f"{r.removeprefix('ringback-')}_processed_beats_bullmq"] = (
                figures[r]["processed_per_s"] > figures["bullmq"]["processed_per_s"]
            )
        peers = [p for p in PEERS if p in figures]
        if r in figures and peers:
            found[f"{r.removeprefix('ringback-')}_p99_lateness_below_every_peer"] = all(
                figures[r]["lateness_p99_ms"] < figures[p]["lateness_p99_ms"] for p in peers
            )
    for store in ("sqlite", "pg"):
        p = f"{store}_backlog"
        if f"{p}_full_over_empty" in results:
            found[f"{store}_backlog_throughput_within_10pct"] = (
                results[f"{p}_full_over_empty"] >= 0.9
            )
            found[f"{store}_backlog_list_p95_le_50ms"] = results[f"{p}_full_list_p95_ms"] <= 50
    return found


def git_commit() -> str | None:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


async def versions() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for package in ("procrastinate", "bullmq", "arq", "redis", "psycopg", "sqlalchemy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    client = aioredis.from_url("redis://127.0.0.1:6379")
    try:
        found["redis_server"] = (await client.info("server")).get("redis_version")
    except OSError:
        found["redis_server"] = None
    finally:
        await client.aclose()
    found["postgresql"] = await pg_version()
    found["ringback_commit"] = git_commit()
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions (medians)")
    parser.add_argument("--systems", nargs="+", choices=[*RINGBACKS, *PEERS], default=None)
    parser.add_argument("--single", type=int, default=1000, help="jobs enqueued one by one")
    parser.add_argument("--bulk", type=int, default=10_000, help="jobs enqueued in batches")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per batch")
    parser.add_argument("--jobs", type=int, default=15_000, help="jobs processed")
    parser.add_argument("--procrastinate-jobs", type=int, default=5_000)
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--rate", type=int, default=200, help="delayed jobs due per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="for this long")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="tasks stored")
    parser.add_argument(
        "--backlog-stores", nargs="*", choices=["sqlite", "pg"], default=["pg", "sqlite"],
        help="ringback stores measured with the backlog ('--backlog-stores' alone: none)",
    )  # fmt: skip
    parser.add_argument("--backlog-jobs", type=int, default=15_000, help="tasks per run")
    # 5 pairs: a pair's two rates move by up to ~19% with nothing changed, and the target
    # (with the backlog >= 0.95 of empty) asks the medians to resolve 5%
    parser.add_argument("--backlog-runs", type=int, default=5, help="throughput runs per phase")
    parser.add_argument("--requests", type=int, default=150, help="filtered lists per phase")
    args = parser.parse_args()
    if min(args.runs, args.single, args.bulk, args.batch, args.jobs, args.processes) < 1:
        parser.error("--runs, --single, --bulk, --batch, --jobs and --processes must be >= 1")
    systems: list[str] = args.systems or [*RINGBACKS, *PEERS]
    sizes = Sizes(
        single=args.single,
        bulk=args.bulk,
        batch=args.batch,
        jobs=args.jobs,
        processes=args.processes,
        rate=args.rate,
        seconds=args.seconds,
    )

    started = time.perf_counter()
    runs: dict[str, list[Figures]] = {name: [] for name in systems}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ringback-peers-") as tmp:
        workdir = Path(tmp)
        made = {name: make_system(name, workdir) for name in systems}
        for run in range(args.runs):
            order = systems[run % len(systems) :] + systems[: run % len(systems)]
            for name in order:
                say(f"[{run + 1}/{args.runs}] {name}…")
                jobs = args.procrastinate_jobs if name == "procrastinate" else args.jobs
                runs[name].append(await one_repetition(made[name], sizes, jobs))
        if "procrastinate" in made:
            from bench.peers.procrastinate_side import drop_database

            await drop_database()
        for store in args.backlog_stores:
            results |= await backlog.measure(
                store,
                workdir,
                total=args.backlog,
                n=args.backlog_jobs,
                runs=args.backlog_runs,
                processes=args.processes,
                requests=args.requests,
            )
    figures = {name: medians(values) for name, values in runs.items()}
    text, ratios = table(figures)
    if args.backlog_stores:
        results["backlog_tasks"] = args.backlog
    for name, values in figures.items():
        for key, value in values.items():
            results[f"{name.replace('-', '_')}_{key}"] = round(value, 1)
    results |= ratios
    results["checks"] = checks(figures, results)
    results |= {
        "runs": args.runs,
        "jobs": args.jobs,
        "procrastinate_jobs": args.procrastinate_jobs,
        "processes": args.processes,
        "lateness_rate": args.rate,
        "lateness_seconds": args.seconds,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.perf_counter() - started),
        "versions": await versions(),
        **machine(),
    }
    print(text)
    if args.backlog_stores:
        print()
        print(backlog_table(results, args.backlog_stores))
    print()
    for name, ok in results["checks"].items():
        print(f"{'met    ' if ok else 'NOT MET'}  {name}")
    print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
