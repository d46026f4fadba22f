"""Scenario e: several hosts. ``ringback worker`` processes in host network namespaces
(chaos.hosts: h1, h2, … joined by veth to a db namespace running a throwaway PostgreSQL),
SIGKILLs with replacements in the victim's host, and host h1 cut off the database for a while
(longer than a lease: its leases run out and the other host's reaper takes its tasks).

The frame is the one of the other scenarios (chaos.scenarios): the same seed (chaos.seed), the
same workers (chaos.procs, started in a host by ``Network.spawn``), the same driver (kills,
samples, the partition as its phase) and the same checks (chaos.check) on the database, read
through the server's unix socket before the network is torn down. On top, per-host figures:
workers, kills, dials and call rows per host, the partition's length, dials of the cut-off host
while it was cut off.

If the machine refuses network namespaces the scenario fails with ``ip``'s exact error.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from chaos import check
from chaos.hosts import NetnsError, NetnsUnavailable, Network, hosts
from chaos.procs import Workers, say
from chaos.scenarios import Run, Spec, drive, read_rows, run_checks, summarize, worker_env
from chaos.seed import seed
from ringback.clock import SystemClock
from ringback.domain.rows import QueueChanges
from ringback.store.db import Store, open_store

__all__ = ["PREFIX", "PartitionPlan", "several_hosts"]

PREFIX = "rbchaos"  # namespaces rbchaos-<pid>x<hex>-{db,h1,h2,…}
DATABASE = "chaos"
CUT_HOST = "h1"


class PartitionPlan:
    """The phase of scenario e: ``spec.partition = (at_s, for_s)``: host h1's link to the
    database goes down ``at_s`` after the start and comes up ``for_s`` later. From a lease
    before the cut until the heal nobody is killed: at the cut h1's workers have run a while
    and hold tasks (a worker that cannot reach its database at start exits, so the cut also
    waits until each has started); cut off, they keep their calls going, their leases run out
    and the other host's reaper (a worker reaps only after two leases in touch with the
    database: kills there would keep it from ever reaping) takes their tasks (legs stored:
    finished "interrupted", not redialled)."""

    def __init__(self, spec: Spec, net: Network, workers: Workers, store: Store) -> None:
        self.spec = spec
        self.net = net
        self.workers = workers
        self.store = store
        self.cut_at: float | None = None
        self.window: tuple[float, float] | None = None  # Unix times of the cut and the heal
        self.tasks_at_cut = 0  # tasks leased by the cut-off host's workers when it was cut
        self.cut_pids: set[int] = set()  # the cut-off host's workers at the cut

    async def tick(self, run: Run, elapsed: float) -> None:
        at_s, for_s = self.spec.partition
        if self.window is not None:
            return
        if self.cut_at is None and elapsed >= at_s - self.spec.lease_s:
            self.workers.kills_paused = True
        if self.cut_at is None and elapsed >= at_s and self._started():
            self.cut_pids = {w.pid for w in self.workers.running(CUT_HOST)}
            self.tasks_at_cut = await self._leased()
            self.net.partition(CUT_HOST)
            self.cut_at = time.time()
            say(
                f"{self.spec.name}: host {CUT_HOST} cut off the database for {for_s:g} s "
                f"({self.tasks_at_cut} tasks leased there)"
            )
        elif self.cut_at is not None and time.time() - self.cut_at >= for_s:
            self.net.heal(CUT_HOST)
            healed = time.time()
            self.workers.kills_paused = False
            self.window = (self.cut_at, healed)
            run.outages.append(
                {
                    "host": CUT_HOST,
                    "seconds": for_s,
                    "measured_s": round(healed - self.cut_at, 1),
                    "leases": round((healed - self.cut_at) / self.spec.lease_s, 2),
                    "tasks_leased_at_cut": self.tasks_at_cut,
                }
            )
            say(f"{self.spec.name}: host {CUT_HOST} healed after {healed - self.cut_at:.1f} s")
            run.notes.append("done")

    def _started(self) -> bool:
        """Every running worker of the host has opened its database (logged its start)."""
        return all(
            b"worker started" in w.log_path.read_bytes() for w in self.workers.running(CUT_HOST)
        )

    async def _leased(self) -> int:
        pids = self.cut_pids
        async with self.store.engine.connect() as conn:
            owners = await conn.execute(
                sa.text("SELECT lease_owner FROM tasks WHERE status = 'executed'")
            )
            return sum(1 for (owner,) in owners if _pid_of(owner) in pids)


def _launcher(net: Network) -> Any:
    def launch(
        host: str, argv: list[str], env: dict[str, str], log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        env = {**env, "RINGBACK_DATABASE_URL": net.db_url_for(host, DATABASE)}
        return net.spawn(host, argv, env, log, subprocess.STDOUT)

    return launch


def _pid_of(worker_id: Any) -> int | None:
    """The pid in a worker id ``hostname:pid:hex``."""
    parts = str(worker_id or "").split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def host_figures(
    workers: Workers,
    truth: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    window: tuple[float, float] | None,
    cut_pids: set[int],
) -> dict[str, Any]:
    """Per host: workers started, kills, dials (truth log) and call rows (``calls.worker``);
    dials by the cut-off host while it was cut off, legs of its workers open at the cut that the
    reaper closed; the call states and the tasks' finish results."""
    host_of = {w.pid: w.host for w in workers.all}
    names = list(workers.hosts)
    originates = [line for line in truth if line["ev"] == "originate"]
    dials = Counter(host_of.get(int(line["pid"]), "?") for line in originates)
    rows = Counter(host_of.get(_pid_of(row.get("worker")) or -1, "?") for row in calls)
    cut_dials = 0
    if window is not None:
        cut = [line for line in originates if host_of.get(int(line["pid"])) == CUT_HOST]
        cut_dials = sum(1 for line in cut if window[0] <= float(line["t"]) <= window[1])

    def per_host(counts: Counter[str]) -> dict[str, int]:
        extra = ["?"] if counts.get("?") else []
        return {h: counts.get(h, 0) for h in [*names, *extra]}

    # legs open at the cut that the reaper closed for the cut-off workers: their leases ran out
    cut_ms = window[0] * 1000 if window else 0.0
    reaped_cut = sum(
        1
        for row in calls
        if row.get("state") == "interrupted"
        and _pid_of(row.get("worker")) in cut_pids
        and int(row.get("started_at") or 0) <= cut_ms
    )
    return {
        "hosts": names,
        "workers_started_per_host": per_host(Counter(w.host for w in workers.all)),
        "kills_per_host": per_host(Counter(w.host for w in workers.all if w.killed_at)),
        "dials_per_host": per_host(dials),
        "call_rows_per_host": per_host(rows),
        "partition": {
            "host": CUT_HOST,
            "seconds": round(window[1] - window[0], 1) if window else 0.0,
            "dials_while_cut_off": cut_dials,
            "legs_of_cut_off_workers_interrupted": reaped_cut,
        },
        "call_states": dict(Counter(str(row.get("state")) for row in calls)),
        "finish_results": dict(Counter(str(t.get("finish_result")) for t in tasks)),
    }


async def several_hosts(
    spec: Spec, workdir: Path, rng: random.Random, prefix: str = PREFIX
) -> dict[str, Any]:
    """Scenario e (see the module's docstring); the summary of chaos.scenarios plus per-host
    figures, or ``pass: false`` with ``ip``'s exact error when namespaces are refused."""
    try:
        with hosts(spec.hosts, prefix=prefix) as net:
            return await _run(spec, workdir, rng, net)
    except NetnsError as exc:
        refused = isinstance(exc, NetnsUnavailable)
        say(f"{spec.name}: network namespaces {'refused' if refused else 'failed'}: {exc}")
        return {
            "store": spec.store,
            "pass": False,
            "error": "ip netns refused" if refused else "ip failed",
            "ip_command": " ".join(exc.argv),
            "ip_exit": exc.returncode,
            "ip_stderr": exc.stderr.strip(),
        }


async def _run(spec: Spec, workdir: Path, rng: random.Random, net: Network) -> dict[str, Any]:
    clock = SystemClock()
    net.create_database(DATABASE)
    url = net.db_socket_url_of(DATABASE)  # the orchestrator's way in, from the root namespace
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
        )
        run = Run(spec, workdir)
        env = worker_env(spec, url, workdir, webhook=False)
        workers = Workers(
            env, workdir / "logs", rng, hosts=tuple(net.host_names), launch=_launcher(net)
        )
        workers.start(spec.workers)
        for queue_id in seeded.limits:
            await store.update_queue(queue_id, QueueChanges(status="on"), clock.now())
        say(
            f"{spec.name}: {spec.tasks} tasks seeded, {spec.workers} workers on "
            f"{spec.hosts} hosts ({', '.join(net.host_names)})"
        )
        plan = PartitionPlan(spec, net, workers, store)
        figures = await drive(run, store, seeded, workers, plan.tick)
        ended = time.time()
        workers.stop()
        rows = await read_rows(store, seeded.client_id)  # through the socket, network still up
        cut = (plan.cut_pids, plan.cut_at) if plan.cut_at is not None else None
        checks = run_checks(run, rows, seeded, workers, ended, cut)
        truth = check.read_truth(workdir / "truth")
        calls, tasks = rows["calls"], rows["tasks"]
        figures |= host_figures(workers, truth, calls, tasks, plan.window, plan.cut_pids)
        return summarize(run, figures, checks, seeded)
    finally:
        if workers is not None:
            workers.stop()
        await store.close()
