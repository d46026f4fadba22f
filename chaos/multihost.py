"""Several hosts: ``ringback worker`` processes in two network namespaces against one
PostgreSQL (chaos.hosts), some killed with SIGKILL and restarted, one host cut off for a
while; the queue's concurrency limit and the tasks' outcomes, seen from the database.

    figures = run_multihost(workers_per_host=2, tasks=200, kills=4)

What happens, in order:

1. ``hosts(2)``: namespaces h1, h2 and db; PostgreSQL in db; a database ``ringback``,
   migrated with ``ringback migrate`` (the CLI, over the unix socket);
2. a client, a queue (``concurrent_task_limit=limit``, on) and ``tasks`` msg_call tasks, with
   the project's own API (``open_store``, ``TaskService.add_jobs``);
3. ``workers_per_host`` workers in each host (``RINGBACK_DATABASE_URL`` = the database's address
   as that host sees it, the simulator with a truth log, ``RINGBACK_LEASE_SECONDS=lease_s``,
   ``RINGBACK_MAX_IN_FLIGHT=max_in_flight``: no single worker can reach the limit alone);
4. while the tasks run: every ``kill_every_s`` a random live worker gets SIGKILL and a new one
   starts in its host (``kills`` in all); ``partition_at_s`` after the start host ``partition``
   is cut off the database for ``partition_s`` (longer than a lease: its tasks are reclaimed);
   a worker that ends by itself is recorded in ``exits`` and replaced;
5. every ~100 ms the running tasks of the queue (status 'executed') are sampled: their count
   (``max_running``) and their lease owners (which worker, so which host, claimed what);
6. once every task is finished (or after ``timeout_s``) the workers get SIGTERM.

The returned dict (JSON-serialisable; see ``_figures``) holds the figures and the raw data
for chaos/check.py: ``truth_dir`` (the simulator's dials-<pid>.jsonl), ``kills`` (pid, host,
Unix time ``t``), ``pid_host`` (every worker process ever started → its host; worker ids are
``hostname:pid:…`` and the hostname is the same in every namespace), ``partition``, and
``calls.jsonl`` / ``tasks.jsonl`` in ``workdir``: the database's calls and tasks, written
before the database goes away with the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from chaos.hosts import Network, hosts
from ringback.clock import SystemClock
from ringback.service import TaskService
from ringback.storage import Storage
from ringback.store.db import open_store

__all__ = ["MultihostError", "run_multihost"]

DATABASE = "ringback"
CLIENT = "chaos"
QUEUE = "multihost"


class MultihostError(RuntimeError):
    """The scenario could not be set up (migration, seeding); not a finding about ringback."""


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _ringback_command() -> list[str]:
    """``ringback`` beside this interpreter (.venv/bin/ringback), else ``python -m ringback``."""
    script = Path(sys.executable).parent / "ringback"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ringback"]


def _write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * round(8000 * seconds))


def _pid_of(owner: str | None) -> int | None:
    """The pid in a worker id ``hostname:pid:hex``."""
    if not owner:
        return None
    parts = owner.split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


@dataclass
class _Worker:
    host: str
    proc: subprocess.Popen[bytes]
    log: Path
    started: float  # Unix time
    replaced: bool = False  # it ended by itself and a new one took its place


@dataclass
class _Run:
    """The mutable state of one run."""

    net: Network
    workdir: Path
    env: dict[str, str]
    rng: random.Random
    queue_id: int = 0
    workers: list[_Worker] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    partition: dict[str, Any] = field(default_factory=dict)
    samples: list[tuple[float, int]] = field(default_factory=list)
    claims: dict[tuple[int, int], str] = field(default_factory=dict)  # (task, fence) → owner
    sample_errors: list[str] = field(default_factory=list)
    max_running: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    failures: Counter[str] = field(default_factory=Counter)  # in a row, per host

    def start_worker(self, host: str) -> _Worker:
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        log = logs / f"worker-{host}-{len(self.workers):03d}.log"
        env = {**self.env, "RINGBACK_DATABASE_URL": self.net.db_url_for(host, DATABASE)}
        with log.open("wb") as out:
            proc = self.net.spawn(host, [*_ringback_command(), "worker"], env, out, out)
        worker = _Worker(host, proc, log, time.time())
        self.workers.append(worker)
        return worker

    def live(self) -> list[_Worker]:
        return [w for w in self.workers if w.proc.poll() is None]


async def _sampler(run: _Run, dsn: str) -> None:
    """Every ~100 ms: the queue's running tasks (count and lease owners)."""
    query = "SELECT id, fence, lease_owner FROM tasks WHERE queue_id = $1 AND status = 'executed'"
    conn: Any = None
    while not run.done.is_set():
        try:
            if conn is None:
                conn = await asyncpg.connect(dsn, timeout=5)
            rows = await conn.fetch(query, run.queue_id, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            run.sample_errors.append(f"{time.time():.3f} {type(exc).__name__}: {exc}")
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            conn = None
        else:
            run.samples.append((round(time.time(), 3), len(rows)))
            run.max_running = max(run.max_running, len(rows))
            for row in rows:
                if row["lease_owner"]:
                    run.claims[(row["id"], row["fence"])] = row["lease_owner"]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run.done.wait(), 0.1)
    if conn is not None:
        await conn.close()


async def _supervisor(run: _Run) -> None:
    """Replaces a worker that ended by itself (not killed by the chaos), and records it.
    Like a service manager, with a back-off: 0.5 s after the first of a host's exits in a
    row, doubling up to 4 s (a worker that cannot reach its database at start exits)."""
    due: dict[str, float] = {}  # host → when its next replacement starts (monotonic)
    owed: Counter[str] = Counter()  # replacements still to start, per host
    while not run.done.is_set():
        killed = {k["pid"] for k in run.kills}
        for worker in list(run.workers):
            code = worker.proc.poll()
            if code is None or worker.proc.pid in killed or worker.replaced:
                continue
            worker.replaced = True
            tail = worker.log.read_text(errors="replace").splitlines()[-5:]
            run.exits.append(
                {
                    "pid": worker.proc.pid,
                    "host": worker.host,
                    "returncode": code,
                    "t": time.time(),
                    "lived_s": round(time.time() - worker.started, 3),
                    "log": str(worker.log),
                    "log_tail": tail,
                }
            )
            if time.time() - worker.started > 10.0:
                run.failures[worker.host] = 0  # it ran a while: not a failure in a row
            run.failures[worker.host] += 1
            delay = min(4.0, 0.5 * 2 ** (run.failures[worker.host] - 1))
            due[worker.host] = time.monotonic() + delay
            owed[worker.host] += 1
        for host, count in list(owed.items()):
            if count and time.monotonic() >= due[host]:
                run.start_worker(host)
                owed[host] -= 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run.done.wait(), 0.2)


async def _killer(run: _Run, kills: int, every_s: tuple[float, float]) -> None:
    """``kills`` times: SIGKILL to a random live worker, a new one in its host."""
    for _ in range(kills):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run.done.wait(), run.rng.uniform(*every_s))
        if run.done.is_set():
            return
        live = run.live()
        if not live:
            continue
        victim = run.rng.choice(live)
        # recorded first: the supervisor must not take the corpse for a worker that died
        run.kills.append(
            {
                "pid": victim.proc.pid,
                "host": victim.host,
                "t": time.time(),
                "partitioned": victim.host in run.net.partitioned,
            }
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.proc.wait, 10)
        run.start_worker(victim.host)


async def _partitioner(run: _Run, host: str | None, at_s: float, for_s: float) -> None:
    if host is None or for_s <= 0:
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(run.done.wait(), at_s)
    if run.done.is_set():
        return
    run.net.partition(host)
    run.partition = {"host": host, "start": time.time(), "end": None}
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run.done.wait(), for_s)
    finally:
        run.net.heal(host)
        run.partition["end"] = time.time()


async def _wait_finished(dsn: str, queue_id: int, tasks: int, timeout_s: float) -> bool:
    """Until every task of the queue is finished; False after ``timeout_s``."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            finished = await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE queue_id = $1 AND status = 'finished'", queue_id
            )
            if finished == tasks:
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await conn.close()


async def _seed(url: str, storage_dir: Path, tasks: int, limit: int, attempts: int) -> int:
    """The client, its audio, the queue (on) and ``tasks`` msg_call tasks; the queue's id."""
    clock = SystemClock()
    store = await open_store(url, clock)
    try:
        client = await store.ensure_client(CLIENT, clock.now())
        _write_wav(Storage(storage_dir).resolve(client, "chaos.wav"), 1.0)
        queue = await store.create_queue(
            client, QUEUE, clock.now(), concurrent_task_limit=limit, status="on"
        )
        data = {"calling_number": "0506868000", "audio_file": "chaos.wav"}
        jobs = [
            {
                "type": "msg_call",
                "queue": QUEUE,
                "options": {"attempts": attempts},
                "data": {**data, "called_number": f"09{i:08d}1"},  # no failure suffix
            }
            for i in range(tasks)
        ]
        await TaskService(store, clock).add_jobs(client, jobs)
        return int(queue.id)
    finally:
        await store.close()


def _migrate(url: str, workdir: Path) -> None:
    result = subprocess.run(
        [*_ringback_command(), "migrate"],
        env={**os.environ, "RINGBACK_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=workdir,
    )
    if result.returncode != 0:
        raise MultihostError(f"ringback migrate failed: {result.stderr.strip()}")


async def _export(dsn: str, queue_id: int, workdir: Path) -> tuple[list[dict[str, Any]], Any]:
    """The queue's calls and tasks, into workdir/calls.jsonl and tasks.jsonl."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        calls = await conn.fetch(
            "SELECT id, task_id, attempt, call_uuid, leg_uuid, leg, to_number, outcome, "
            "started_at, answered_at, ended_at, detail->>'worker' AS worker "
            "FROM calls WHERE queue_id = $1 ORDER BY id",
            queue_id,
        )
        tasks = await conn.fetch(
            "SELECT id, status, finish_result, attempt, tries_used, fence, first_attempt_at, "
            "finished_at FROM tasks WHERE queue_id = $1 ORDER BY id",
            queue_id,
        )
    finally:
        await conn.close()
    call_rows = [dict(r) for r in calls]
    with (workdir / "calls.jsonl").open("w") as out:
        out.writelines(json.dumps(r) + "\n" for r in call_rows)
    with (workdir / "tasks.jsonl").open("w") as out:
        out.writelines(json.dumps(dict(r)) + "\n" for r in tasks)
    return call_rows, tasks


def _stop_workers(run: _Run, timeout_s: float = 30.0) -> dict[int, int | None]:
    """SIGTERM to the live workers; their exit codes (None: killed after ``timeout_s``)."""
    live = run.live()
    for worker in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.proc.pid, signal.SIGTERM)
    codes: dict[int, int | None] = {}
    for worker in live:
        try:
            codes[worker.proc.pid] = worker.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
            codes[worker.proc.pid] = None
    return codes


async def _scenario(run: _Run, opts: dict[str, Any]) -> dict[str, Any]:
    net, workdir = run.net, run.workdir
    socket_url = net.db_socket_url_of(DATABASE)
    dsn = _dsn(socket_url)
    await asyncio.to_thread(_migrate, socket_url, workdir)
    run.queue_id = await _seed(
        socket_url, workdir / "storage", opts["tasks"], opts["limit"], opts["attempts"]
    )
    began = time.time()
    for host in net.host_names:
        for _ in range(opts["workers_per_host"]):
            run.start_worker(host)
    helpers = [
        asyncio.create_task(_sampler(run, dsn)),
        asyncio.create_task(_supervisor(run)),
        asyncio.create_task(_killer(run, opts["kills"], opts["kill_every_s"])),
        asyncio.create_task(
            _partitioner(run, opts["partition"], opts["partition_at_s"], opts["partition_s"])
        ),
    ]
    try:
        completed = await _wait_finished(dsn, run.queue_id, opts["tasks"], opts["timeout_s"])
    finally:
        run.done.set()
        await asyncio.gather(*helpers, return_exceptions=True)
    ended = time.time()
    final_codes = await asyncio.to_thread(_stop_workers, run)
    calls, tasks = await _export(dsn, run.queue_id, workdir)
    return _figures(run, opts, calls, tasks, completed, began, ended, final_codes)


def _figures(
    run: _Run,
    opts: dict[str, Any],
    calls: list[dict[str, Any]],
    tasks: Any,
    completed: bool,
    began: float,
    ended: float,
    final_codes: dict[int, int | None],
) -> dict[str, Any]:
    pid_host = dict(run.net.pid_host)

    def host_of(owner: str | None) -> str:
        pid = _pid_of(owner)
        return pid_host.get(pid, "?") if pid is not None else "?"

    claimed = Counter(host_of(owner) for owner in run.claims.values())
    called = Counter(host_of(call["worker"]) for call in calls)
    per_task = Counter(call["task_id"] for call in calls)
    results = Counter(str(t["finish_result"]) for t in tasks if t["status"] == "finished")
    return {
        "tasks": opts["tasks"],
        "finished": sum(1 for t in tasks if t["status"] == "finished"),
        "completed": completed,
        "finish_results": dict(results),
        "max_running": run.max_running,
        "limit": opts["limit"],
        "kills": len(run.kills),
        "kills_requested": opts["kills"],
        "claimed_per_host": {h: claimed.get(h, 0) for h in [*run.net.host_names, "?"]},
        "calls_per_host": {h: called.get(h, 0) for h in [*run.net.host_names, "?"]},
        "calls": len(calls),
        "tasks_called_more_than_once": sum(1 for n in per_task.values() if n > 1),
        "workers_per_host": opts["workers_per_host"],
        "workers_started": len(run.workers),
        "exits": run.exits,  # workers that ended by themselves (replaced)
        "final_exit_codes": {str(pid): code for pid, code in final_codes.items()},
        "duration_s": round(ended - began, 3),
        "began": began,
        "ended": ended,
        # raw data for chaos/check.py
        "truth_dir": str(run.workdir / "truth"),
        "workdir": str(run.workdir),
        "calls_file": str(run.workdir / "calls.jsonl"),
        "tasks_file": str(run.workdir / "tasks.jsonl"),
        "kill_log": run.kills,  # [{"pid", "host", "t" (Unix s), "partitioned"}]
        "pid_host": {str(pid): host for pid, host in pid_host.items()},
        "partition": run.partition,  # {"host", "start", "end"} (Unix s), {} if none
        "samples": run.samples,  # [(Unix s, running)], every ~100 ms
        "sample_errors": run.sample_errors,
        "lease_seconds": opts["lease_s"],
    }


def run_multihost(
    workers_per_host: int = 2,
    tasks: int = 200,
    kills: int = 4,
    *,
    limit: int = 10,
    max_in_flight: int = 4,
    attempts: int = 5,
    lease_s: float = 6.0,
    kill_every_s: tuple[float, float] = (1.5, 3.0),
    partition: str | None = "h1",
    partition_at_s: float = 3.0,
    partition_s: float = 10.0,
    timeout_s: float = 300.0,
    seed: int | None = None,
    workdir: Path | None = None,
    prefix: str = "rbchaos",
) -> dict[str, Any]:
    """Run the scenario (see the module's docstring); its figures and raw data. ``workdir``
    (default a new /tmp/rbmulti-* directory) is kept: truth logs, worker logs, exports.
    Call it outside an event loop (it runs its own); ``NetnsUnavailable`` (chaos.hosts) when
    the machine refuses network namespaces, with ip's exact error."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="rbmulti-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    seed = seed if seed is not None else random.randrange(1 << 30)
    (workdir / "truth").mkdir(exist_ok=True)
    rules = workdir / "sim.toml"
    rules.write_text("[defaults]\nring_seconds = 0.2\ntalk_seconds = 600.0\n")
    env = {
        **os.environ,
        "RINGBACK_DIALER": "sim",
        "RINGBACK_LEASE_SECONDS": str(lease_s),
        "RINGBACK_SIM_TRUTH_LOG": str(workdir / "truth"),
        "RINGBACK_SIM_RULES": str(rules),
        "RINGBACK_STORAGE_DIR": str(workdir / "storage"),
        "RINGBACK_MAX_IN_FLIGHT": str(max_in_flight),
        "RINGBACK_WORKER_PROCESSES": "1",  # the Popen's pid is the worker's: pid_host holds
    }
    opts = {
        "workers_per_host": workers_per_host,
        "tasks": tasks,
        "kills": kills,
        "limit": limit,
        "attempts": attempts,
        "lease_s": lease_s,
        "kill_every_s": kill_every_s,
        "partition": partition,
        "partition_at_s": partition_at_s,
        "partition_s": partition_s,
        "timeout_s": timeout_s,
    }
    with hosts(2, prefix=prefix) as net:
        net.create_database(DATABASE)
        run = _Run(net, workdir, env, random.Random(seed))
        figures = asyncio.run(_scenario(run, opts))
    figures["seed"] = seed
    return figures


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="ringback workers on two hosts, with chaos")
    parser.add_argument("--workers-per-host", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--partition-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    figures = run_multihost(
        args.workers_per_host,
        args.tasks,
        args.kills,
        limit=args.limit,
        partition_s=args.partition_s,
        seed=args.seed,
    )
    print(json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
