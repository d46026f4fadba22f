"""Single-task intake: ``Store.add_tasks`` with one task, the path of an API create and of an
IVR's ``<AddJob>``, one after another and from several callers at once, on each store.

Each run: a fresh database (bench/engine.py's harness), ``--warm`` adds first, then ``--adds``
adds one after another (each awaited before the next) and ``--adds`` more from
``--concurrency`` callers at once (each caller's adds one after another). Figures are adds per
second, medians of ``--runs`` runs, the stores alternating.

Progress goes to stderr; the last line printed is one JSON object.
Run from the repository's root: ``python -m bench.single_add``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.api import machine
from bench.engine import Run, Target, msg_task, say

from ringback.clock import SystemClock


async def one_run(kind: str, adds: int, concurrency: int, warm: int) -> tuple[float, float]:
    """(adds per second one at a time, adds per second ``concurrency`` at once)."""
    with tempfile.TemporaryDirectory() as folder:
        async with Run(Target(kind, Path(folder)), Path(folder)) as run:
            clock = SystemClock()

            async def add(count: int) -> None:
                for i in range(count):
                    task = msg_task(clock, i, 0)
                    await run.store.add_tasks(run.client, run.queue.id, [task], clock.now())

            await add(warm)
            started = time.perf_counter()
            await add(adds)
            alone = adds / (time.perf_counter() - started)
            each = max(1, adds // concurrency)
            started = time.perf_counter()
            await asyncio.gather(*(add(each) for _ in range(concurrency)))
            together = each * concurrency / (time.perf_counter() - started)
            return alone, together


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    args = parser.parse_args()
    found: dict[str, list[tuple[float, float]]] = {kind: [] for kind in args.stores}
    for number in range(1, args.runs + 1):
        for kind in args.stores:
            say(f"[{number}/{args.runs}] {kind}: {args.adds} adds alone, then "
                f"{args.concurrency} at once…")  # fmt: skip
            alone, together = await one_run(kind, args.adds, args.concurrency, args.warm)
            found[kind].append((alone, together))
            say(f"    {alone:,.0f}/s alone, {together:,.0f}/s {args.concurrency} at once")
    result: dict[str, object] = {}
    for kind, runs in found.items():
        result[f"{kind}_alone_per_s"] = round(statistics.median(a for a, _ in runs))
        result[f"{kind}_together_per_s"] = round(statistics.median(t for _, t in runs))
        result[f"{kind}_runs"] = [[round(a), round(t)] for a, t in runs]
    result.update(adds=args.adds, concurrency=args.concurrency, runs=args.runs, **machine())
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
