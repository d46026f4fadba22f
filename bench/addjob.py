"""AddJob benchmark: an IVR's ``<AddJob>`` run through the real interpreter (the simulator in
fast mode) against a real store, one call after another, as a caller waits for ``JobAdded``.

``python -m bench.addjob`` (from the repository root). For each store (a fresh SQLite file, a
fresh PostgreSQL database): ``--adds`` simulated calls of a parsed document whose AddJob puts
an ``ivr_call`` job (called back on the caller's number, rendered from ``{{CallingNumber}}``)
into a named queue through :class:`ringback.service.TaskService`, the service a worker gives
the interpreter. The time of one add is from the call's start to the moment the service
returned the new task's id to the AddJob element (which then sets ``JobAdded``); each run
checks that every call set ``JobAdded`` true and that the store holds every task. Figures:
p50 / p95 / p99 / max milliseconds and adds per second (the calls' whole time), each the
median of ``--runs`` runs. Progress goes to stderr; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.api import machine, pg_version
from bench.engine import Target, pct, say

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.ivr.parse import parse
from ringback.ivr.simulate import simulate_call
from ringback.service import TaskService

QUEUE = "callbacks"
INNER = "&lt;IVR&gt;&lt;Speak&gt;We call you back.&lt;/Speak&gt;&lt;Hangup/&gt;&lt;/IVR&gt;"
JOB = (
    f'{{"type": "ivr_call", "queue": "{QUEUE}", "data": {{"calling_number": "0506868000", '
    '"called_number": "{{CallingNumber}}", '
    f'"ivr_xml": {{"type": "inline", "data": "{INNER}"}}}}}}'
)
DOCUMENT = (
    "<IVR><Set var='asked' val='callback'/>"
    f"<AddJob>{JOB}</AddJob>"
    "<If expr='not JobAdded'><Then><Hangup reason='busy'/></Then></If></IVR>"
)


class TimedJobs:
    """The service, passed through: notes when each add returned its ids to the element."""

    def __init__(self, service: TaskService) -> None:
        self.service = service
        self.returned_at = 0.0

    async def add_jobs(self, client_id: int, items: Sequence[Any]) -> list[int]:
        ids = await self.service.add_jobs(client_id, items)
        self.returned_at = time.perf_counter()
        return ids


async def one_run(kind: str, workdir: Path, adds: int) -> dict[str, float]:
    target = Target(kind, workdir)
    store = await target.open()
    try:
        clock = SystemClock()
        client = await store.ensure_client("bench", clock.now())
        queue = await store.create_queue(client, QUEUE, clock.now(), status="off")
        jobs = TimedJobs(TaskService(store, clock, Storage(workdir / "storage")))
        document = parse(DOCUMENT)
        times_ms: list[float] = []
        began = time.perf_counter()
        for i in range(adds):
            caller = f"090{i:08d}"
            start = time.perf_counter()
            run, _ = await simulate_call(
                document, clock, caller=caller, client_id=client, jobs=jobs
            )
            times_ms.append((jobs.returned_at - start) * 1000)
            if run.variables.get("JobAdded") != "true" or len(run.jobs_added) != 1:
                raise SystemExit(f"{kind}: call {i} added no job: {run.trace}")
        elapsed = time.perf_counter() - began
        stored = await store.queue_counts(client, clock.now())
        if sum(stored.get(queue.id, {}).values()) != adds:
            raise SystemExit(f"{kind}: {stored} tasks stored, not {adds}")
    finally:
        await target.close(store)
    return {
        "p50_ms": pct(times_ms, 0.50), "p95_ms": pct(times_ms, 0.95),
        "p99_ms": pct(times_ms, 0.99), "max_ms": max(times_ms), "adds_per_s": adds / elapsed,
    }  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rb-addjob-") as tmp:
        for kind in args.stores.split(","):
            runs = []
            for n in range(args.runs):
                got = await one_run(kind, Path(tmp), args.adds)
                say(
                    f"{kind} run {n + 1}: p50 {got['p50_ms']:.2f} ms, p95 {got['p95_ms']:.2f}, "
                    f"p99 {got['p99_ms']:.2f}, max {got['max_ms']:.2f}; "
                    f"{got['adds_per_s']:,.0f} adds/s"
                )
                runs.append(got)
            figures[kind] = {
                key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]
            } | {"runs": [{k: round(v, 3) for k, v in r.items()} for r in runs]}
    result = {
        "benchmark": "addjob", "adds": args.adds, "runs": args.runs, "target_p99_ms": 5.0,
        "figures": figures, "machine": machine(), "postgresql": await pg_version(),
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
