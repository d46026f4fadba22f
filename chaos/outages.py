"""Scenario b: database outages on the suite's own PostgreSQL cluster.

The plan takes the server down with ``stop("immediate")`` (a crash: no shutdown checkpoint)
for each length in ``Spec.outages``, 15 s after the start and 20 s apart, and starts it again;
the workers must ride it out on their own. For each outage it records how many lines each
worker logged while the database was gone (a worker should log a state change once and
summaries at most every few seconds, not a line per failed query).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING

from chaos.procs import Workers, say

if TYPE_CHECKING:
    from chaos.pgcluster import PgCluster
    from chaos.scenarios import Run, Spec

FIRST_AT_S = 15.0
GAP_S = 20.0
_STALL = re.compile(r"loop stall.*?max_ms[=:\"\s]+([0-9.]+)")


class OutagePlan:
    def __init__(self, spec: Spec, cluster: PgCluster, workers: Workers) -> None:
        self.spec = spec
        self.cluster = cluster
        self.workers = workers
        self.index = 0
        self.down_since: float | None = None
        self.next_at = FIRST_AT_S
        self.lines_before: dict[int, tuple[int, int]] = {}

    async def tick(self, run: Run, elapsed: float) -> None:
        if self.index >= len(self.spec.outages):
            return
        length = self.spec.outages[self.index]
        if self.down_since is None and elapsed >= self.next_at:
            self.lines_before = self.workers.log_sizes()
            say(f"{self.spec.name}: database down for {length:g} s (stop immediate)")
            run.db_down = True
            await asyncio.to_thread(self.cluster.stop, "immediate")
            self.down_since = time.time()
            return
        if self.down_since is not None and time.time() - self.down_since >= length:
            after = self.workers.log_sizes()
            await asyncio.to_thread(self.cluster.start)
            up_at = time.time()
            run.db_down = False
            run.outages.append(
                {
                    "seconds": length,
                    "measured_s": round(up_at - self.down_since, 1),
                    "log_lines_per_worker": _growth(after, self.lines_before, 0),
                    "log_records_per_worker": _growth(after, self.lines_before, 1),
                }
            )
            say(f"{self.spec.name}: database up again after {up_at - self.down_since:.1f} s")
            self.down_since = None
            self.index += 1
            self.next_at = elapsed + GAP_S
            if self.index >= len(self.spec.outages):
                run.notes.append("done")


def _growth(
    after: dict[int, tuple[int, int]], before: dict[int, tuple[int, int]], i: int
) -> dict[str, int]:
    return {str(n): after[n][i] - before.get(n, (0, 0))[i] for n in sorted(after)}


def stall_ms(workers: Workers) -> float | None:
    """The longest event-loop stall any worker logged (``loop stall … max_ms=…``), or None
    when no worker logs stalls."""
    longest: float | None = None
    for worker in workers.all:
        try:
            text = worker.log_path.read_text(errors="replace")
        except OSError:
            continue
        for match in _STALL.finditer(text):
            value = float(match.group(1))
            longest = value if longest is None else max(longest, value)
    return longest
