"""``python -m chaos [--short] [--only a,b,c,d,e]``: the chaos suite (``make chaos``).

Progress goes to stderr; the last stdout line is one JSON object with every figure per
scenario and ``"pass"``; the exit code is 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chaos.procs import say
from chaos.scenarios import Spec, soak

FULL = {
    "a": Spec(
        "a", "postgresql", tasks=5000, workers=3, kills=60, limits=(100, 50), spread_s=150,
        finish_within_s=480,
    ),
    "b": Spec(
        "b", "pgcluster", tasks=1500, workers=3, kills=0, limits=(40, 20), spread_s=90,
        lease_s=8.0, outages=(20.0, 16.0), finish_within_s=200,
    ),
    "c": Spec(
        "c", "sqlite", tasks=1000, workers=2, kills=20, limits=(30, 15), spread_s=50,
        finish_within_s=300,
    ),
    "d": Spec(
        "d", "postgresql", tasks=600, workers=3, kills=30, limits=(30, 15), spread_s=70,
        webhooks=(60.0, 30.0), finish_within_s=300, kill_after_s=45,
    ),
    "e": Spec(
        "e", "multihost", tasks=1000, workers=4, kills=20, limits=(30, 15), spread_s=60,
        kill_every=(1.0, 3.0), lease_s=5.0, hosts=2, partition=(20.0, 10.0), max_in_flight=12,
        finish_within_s=300,
    ),
}  # fmt: skip

SHORT = {
    "a": Spec(
        "a", "postgresql", tasks=500, workers=3, kills=15, limits=(30, 15), spread_s=25,
        kill_every=(1.0, 2.0), finish_within_s=100,
    ),
    "b": Spec(
        "b", "pgcluster", tasks=150, workers=3, kills=0, limits=(20, 10), spread_s=15,
        lease_s=5.0, outages=(6.0,), finish_within_s=45,
    ),
    "c": Spec(
        "c", "sqlite", tasks=150, workers=2, kills=5, limits=(10, 5), spread_s=10,
        kill_every=(1.0, 2.0), finish_within_s=60,
    ),
    "d": Spec(
        "d", "postgresql", tasks=150, workers=3, kills=8, limits=(20, 10), spread_s=20,
        kill_every=(1.0, 2.0), webhooks=(10.0, 5.0), finish_within_s=90, kill_after_s=8,
    ),
    "e": Spec(
        "e", "multihost", tasks=150, workers=4, kills=6, limits=(12, 6), spread_s=12,
        kill_every=(1.0, 2.0), lease_s=4.0, hosts=2, partition=(6.0, 8.0), max_in_flight=5,
        finish_within_s=60,
    ),
}  # fmt: skip
# what --short runs unless --only names others (make test runs a, b and c this way and e through
# tests/chaos/test_multihost.py): a, b, c and e took 169 s here
SHORT_RUN = ("a", "b", "c", "e")


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the short run of make test")
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. a,c")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    specs = SHORT if args.short else FULL
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(
        SHORT_RUN if args.short else specs
    )
    unknown = [name for name in chosen if name not in specs]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(specs)}")
    seed_value = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed_value)
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="ringback-chaos-"))
    os.chmod(workdir, 0o755)  # a throwaway cluster's postgres user must reach its directory
    results: dict[str, Any] = {}
    try:
        for name in chosen:
            say(f"scenario {name}: starting")
            try:
                results[name] = await soak(specs[name], workdir / name, rng)
            except Exception as exc:
                say(f"scenario {name} broke: {exc!r}")
                results[name] = {"pass": False, "error": repr(exc)}
            say(f"scenario {name}: {'pass' if results[name]['pass'] else 'FAIL'}")
    finally:
        if args.keep:
            say(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        "suite": "short" if args.short else "full",
        "seed": seed_value,
        "duration_s": round(time.time() - started, 1),
        "scenarios": results,
        "pass": all(result["pass"] for result in results.values()),
    }
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0 if summary["pass"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
