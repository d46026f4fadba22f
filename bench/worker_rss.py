"""Worker memory: the RSS of one ``ringback worker`` process with the simulator (fast mode),
on SQLite and on PostgreSQL, after it has processed ``--tasks`` msg_call tasks.

Each run: a fresh database (bench/engine.py's harness), the tasks added, one worker started
(``ringback worker`` under ``python -X importtime``, which logs the import time of every module
the process loaded, lazily too; the log also names imports that failed, such as a library's
optional ones, so what the process really held is the list of its modules it writes when it
stops), the queue opened; when every task is done, VmHWM (the peak) and VmRSS of the worker are
read from /proc/PID/status before it is stopped. Figures are medians of ``--runs`` runs, the
stores alternating. Also printed: the heavy packages the worker loaded (of a watched list) and
the top-level packages by cumulative import time. ``--webhook``: the client has a webhook
subscription to every event (a receiver in this process answers 200), so the worker also
delivers five webhooks per task, each carrying the task as the API shows it.

Progress goes to stderr; the last line printed is one JSON object.
Run from the repository's root: ``python -m bench.worker_rss``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from bench.api import machine
from bench.engine import Run, Target, msg_task, queue_rate, say, wait_queue_done

from ringback.clock import SystemClock
from ringback.domain.credentials import new_signing_secret

#: packages a dialling worker should not need (or whose share is worth knowing)
WATCHED = (
    "fastapi", "starlette", "uvicorn", "pydantic", "jinja2", "httpx", "aiohttp", "yarl",
    "lxml", "sqlalchemy", "sqlalchemy.orm", "asyncpg", "aiosqlite", "cryptography", "dns",
    "phonenumbers", "numpy", "PIL", "pypdfium2", "soundfile", "typer", "rich", "structlog",
    "orjson", "ringback.api", "ringback.console", "ringback.ivr.interpret", "ringback.ivr.parse",
    "ringback.service.numbers", "ringback.telephony.sip", "ringback.telephony.fax.loopback",
)  # fmt: skip

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def status_mib(pid: int) -> dict[str, float]:
    """VmHWM, VmRSS and its parts (RssAnon: the heap; RssFile: mapped files, libraries) of a
    process, in MiB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
            found[key] = int(value.split()[0]) / 1024
    return found


def imported(log: Path) -> dict[str, int]:
    """Every module of a ``-X importtime`` log, with its cumulative import time (µs)."""
    modules: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            modules[match.group(4)] = int(match.group(2))
    return modules


def top_level(modules: dict[str, int]) -> dict[str, int]:
    """Cumulative import time of each top-level package (its outermost imports summed)."""
    tops: dict[str, int] = {}
    for name, cumulative in modules.items():
        top = name.split(".")[0]
        tops[top] = max(tops.get(top, 0), cumulative)
    return tops


def heavy(modules: dict[str, int]) -> list[str]:
    return [w for w in WATCHED if any(m == w or m.startswith(w + ".") for m in modules)]


#: ``python -m ringback worker``, which writes the names of its modules to argv[1] at exit
_WORKER = (
    "import atexit, json, runpy, sys\n"
    "listing = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(listing, 'w').write(json.dumps(sorted(sys.modules))))\n"
    "runpy.run_module('ringback', run_name='__main__', alter_sys=True)\n"
)


def start_worker(env: dict[str, str], err: IO[bytes], listing: Path) -> subprocess.Popen[bytes]:
    """``ringback worker``, with the import log (``-X importtime``) and its own log in ``err``,
    the names of its modules in ``listing`` once it stopped."""
    return subprocess.Popen(
        [sys.executable, "-X", "importtime", "-c", _WORKER, str(listing), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )


async def webhook_receiver() -> tuple[web.AppRunner, str]:
    """A local HTTP receiver answering every webhook 200, and its URL."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook"


async def one_run(
    kind: str, workdir: Path, n: int, in_flight: int, webhook: bool = False
) -> tuple[dict[str, float], dict[str, int]]:
    """One worker processing ``n`` fast tasks: its VmHWM / VmRSS at the end and its imports."""
    log = workdir / f"worker-{kind}-{time.monotonic_ns()}.log"
    async with Run(Target(kind, workdir), workdir) as run:
        clock = SystemClock()
        receiver = None
        if webhook:
            receiver, url = await webhook_receiver()
            await run.store.create_subscription(
                run.client, url=url, events=["*"], secret=new_signing_secret(), active=True,
                description="bench", now=clock.now(),
            )  # fmt: skip
        await run.add([msg_task(clock, i, 0) for i in range(n)])
        env = {
            **os.environ,
            "RINGBACK_DATABASE_URL": run.target.url,
            "RINGBACK_STORAGE_DIR": str(workdir / "storage"),
            "RINGBACK_SIM_FAST": "1",
            "RINGBACK_MAX_IN_FLIGHT": str(in_flight),
            "RINGBACK_ALLOW_PRIVATE": "1",  # the receiver is on 127.0.0.1
        }
        listing = log.with_suffix(".modules.json")
        with log.open("wb") as err:
            proc = start_worker(env, err, listing)
            run.processes.append(proc)
            await asyncio.sleep(2.0)  # let the worker start before the queue opens
            await run.switch_on()
            await wait_queue_done(run.store, run.queue.id, within=300)
            await queue_rate(run.store, run.queue.id, n)  # every task succeeded
            if proc.poll() is not None:
                raise RuntimeError(f"the worker ended early (exit {proc.returncode}): see {log}")
            figures = status_mib(proc.pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        if receiver is not None:
            await receiver.cleanup()
        held = set(json.loads(listing.read_text()))
        return figures, {name: us for name, us in imported(log).items() if name in held}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    parser.add_argument(
        "--in-flight", type=int, default=2000, help="RINGBACK_MAX_IN_FLIGHT (bench/engine.py's)"
    )
    parser.add_argument("--top", type=int, default=12, help="packages listed by import time")
    parser.add_argument(
        "--webhook", action="store_true", help="a webhook subscription to every event"
    )
    args = parser.parse_args()

    figures: dict[str, list[dict[str, float]]] = {name: [] for name in args.stores}
    modules: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="ringback-bench-rss-") as tmp:
        workdir = Path(tmp)
        for run in range(1, args.runs + 1):
            for name in args.stores:
                kind = "sqlite" if name == "sqlite" else "postgresql"
                say(f"[{run}/{args.runs}] {name}: one worker, {args.tasks} tasks…")
                found, loaded = await one_run(
                    kind, workdir, args.tasks, args.in_flight, args.webhook
                )
                figures[name].append(found)
                modules[name] = loaded
                say(f"    VmHWM {found['VmHWM']:.1f} MiB, VmRSS {found['VmRSS']:.1f} MiB")

    results: dict[str, Any] = {}
    for name in args.stores:
        parts = (("VmHWM", "hwm"), ("VmRSS", "rss"), ("RssAnon", "anon"), ("RssFile", "file"))
        for key, label in parts:
            values = [f[key] for f in figures[name]]
            results[f"{name}_{label}_mib"] = round(statistics.median(values), 1)
            results[f"{name}_{label}_mib_runs"] = [round(v, 1) for v in values]
        results[f"{name}_modules"] = len(modules[name])
        results[f"{name}_heavy_loaded"] = heavy(modules[name])
        tops = top_level(modules[name])
        results[f"{name}_top_import_ms"] = {
            top: round(us / 1000, 1)
            for top, us in sorted(tops.items(), key=lambda kv: -kv[1])[: args.top]
        }
    results |= {
        "target_mib": 60,
        "tasks": args.tasks,
        "in_flight": args.in_flight,
        "webhook": args.webhook,
        "runs": args.runs,
        **machine(),  # python, cpus, sqlite, os, cpu, memory: as every benchmark reports them
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
