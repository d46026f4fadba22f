"""The console's dashboard over the last hour: tasks finished per minute (throughput), by result
(outcomes), and how late their last attempt was dialled (lateness: claimed after it was due),
from one bounded query of the store (the period's finished tasks, per minute and result)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ringback.clock import Clock
from ringback.store import Store

MINUTES = 60


@dataclass(slots=True)
class Minute:
    """One minute: tasks finished, by result, and the lateness of those that dialled."""

    start: datetime
    finished: int = 0
    results: dict[str, int] = field(default_factory=dict)
    dialled: int = 0
    late_sum_ms: int = 0
    late_max_ms: int = 0

    @property
    def late_avg_s(self) -> float | None:
        return None if not self.dialled else self.late_sum_ms / self.dialled / 1000

    @property
    def late_max_s(self) -> float | None:
        return None if not self.dialled else self.late_max_ms / 1000


@dataclass(slots=True)
class DashboardView:
    """The last ``len(minutes)`` minutes, oldest first, and the totals by result."""

    since: datetime
    minutes: list[Minute]
    outcomes: dict[str, int]

    @property
    def finished(self) -> int:
        return sum(minute.finished for minute in self.minutes)


class Dashboard:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def last_hour(self, client_id: int, minutes: int = MINUTES) -> DashboardView:
        now = self.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
        since = now - timedelta(minutes=minutes)
        view = DashboardView(
            since, [Minute(since + timedelta(minutes=k)) for k in range(minutes)], {}
        )
        for k, result, n, dialled, late_sum, late_max in await self.store.finished_per_minute(
            client_id, since
        ):
            if not 0 <= k < minutes:
                continue
            minute = view.minutes[k]
            name = result or "none"
            minute.finished += n
            minute.results[name] = minute.results.get(name, 0) + n
            minute.dialled += dialled
            minute.late_sum_ms += late_sum
            minute.late_max_ms = max(minute.late_max_ms, late_max)
            view.outcomes[name] = view.outcomes.get(name, 0) + n
        return view
