"""T.38 through a lossy UDP relay: success rates by loss and redundancy (issue 14, point 7).

For each redundancy depth, every (loss, seed) pair sends one fax at once, in one event loop:
two ``T38Session`` s on 127.0.0.1 through the tests' ``LossyRelay``, which drops each datagram
with the given probability (seeded, each direction). Success: both ends code 0 and every page
bit for bit. A one-page fax takes ~20.5 s of real time whatever the number run together.

    .venv/bin/python -m bench.t38_loss --levels 0,0.005,0.01,0.02 --seeds 25 --depths 3,0

``--fec`` sends parity FEC (span 3, ``depth`` entries) instead of ``depth`` secondaries.

Progress and the table go to stderr; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tests.fax.support_fax import bitmaps, fax_document
from tests.fax.support_t38 import fax_through_relay


async def run_depth(
    document: Path,
    workdir: Path,
    levels: list[float],
    seeds: int,
    depth: int,
    pages: int,
    fec: bool = False,
) -> dict[str, Any]:
    runs = [(loss, seed) for loss in levels for seed in range(seeds)]
    started, cpu = time.monotonic(), time.process_time()
    results = await asyncio.gather(
        *(
            fax_through_relay(
                document, workdir / f"rx-{depth}-{loss}-{seed}.tif", loss=loss, seed=seed,
                depth=depth, fec=fec, max_seconds=60.0 + 60.0 * pages,
            )
            for loss, seed in runs
        )
    )  # fmt: skip
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    want = bitmaps(document)
    by_loss: dict[str, dict[str, Any]] = {}
    for (loss, seed), run in zip(runs, results, strict=True):
        ok = (run.sent.code, run.received.code, run.received.pages) == (0, 0, pages) and all(
            np.array_equal(a, b)
            for a, b in zip(want, bitmaps(workdir / f"rx-{depth}-{loss}-{seed}.tif"), strict=True)
        )
        row = by_loss.setdefault(str(loss), {"ok": 0, "runs": 0, "failures": []})
        row["runs"] += 1
        row["ok"] += ok
        if not ok:
            row["failures"].append([seed, run.sent.code, run.received.code])
    timing = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 2)}
    return {"depth": depth, "fec": fec, **timing, "loss": by_loss}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="0,0.005,0.01,0.02")
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--depths", default="3,0")
    parser.add_argument("--pages", type=int, default=1)
    parser.add_argument("--fec", action="store_true", help="parity FEC, not redundancy")
    args = parser.parse_args()
    levels = [float(x) for x in args.levels.split(",")]
    report: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="t38-loss-") as tmp:
        workdir = Path(tmp)
        document = fax_document(workdir / "out.tif", pages=args.pages)
        for depth in (int(x) for x in args.depths.split(",")):
            result = await run_depth(
                document, workdir, levels, args.seeds, depth, args.pages, args.fec
            )
            report.append(result)
            for loss, row in result["loss"].items():
                kind = "FEC" if args.fec else "redundancy"
                print(
                    f"{kind} {depth}, loss {float(loss):.1%}: {row['ok']}/{row['runs']}",
                    file=sys.stderr,
                    flush=True,
                )
            print(
                f"  {result['wall_s']} s wall, {result['cpu_s']} s CPU", file=sys.stderr, flush=True
            )
    print(json.dumps({"pages": args.pages, "results": report}))


if __name__ == "__main__":
    asyncio.run(main())
