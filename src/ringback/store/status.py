"""The status report: how many tasks of each status, what is due next, every queue."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ringback.store import schema as t
from ringback.store.queries import EXECUTED, next_due_query
from ringback.store.queues import read_queues
from ringback.store.records import MetricsCounts, StatusReport, from_ms, to_ms
from ringback.store.repository import Repository


class StatusRepository(Repository):
    """The report ``ringback status`` and the API's status show."""

    async def compact_status_counts(self) -> bool:
        """Fold the per-queue status counts where they are kept as appended changes (every
        worker does, every few seconds: ``Driver.compact_status_counts``); True (it reached
        the database)."""
        await self.driver.compact_status_counts()
        return True

    async def status_report(self, now: datetime, client_id: int | None = None) -> StatusReport:
        tk = t.tasks
        where = [tk.c.client_id == client_id] if client_id is not None else []
        async with self.driver.read() as conn:
            counts = {
                str(status): int(n)
                for status, n in (
                    await conn.execute(
                        sa.select(tk.c.status, sa.func.count()).where(*where).group_by(tk.c.status)
                    )
                ).all()
            }
            finished = {
                str(result): int(n)
                for result, n in (
                    await conn.execute(
                        sa.select(tk.c.finish_result, sa.func.count())
                        .where(tk.c.status == "finished", *where)
                        .group_by(tk.c.finish_result)
                    )
                ).all()
            }
            next_due = (await conn.execute(next_due_query(client_id))).scalar()
        for result, n in finished.items():
            counts[f"finished/{result}"] = n
        return StatusReport(
            counts=counts,
            in_flight=counts.get(EXECUTED, 0),
            next_due=from_ms(next_due),
            queues=await read_queues(self.driver, [], client_id),
        )

    async def metrics_counts(self) -> MetricsCounts:
        """What a metrics scrape shows of the store: tasks by queue and status, webhook
        deliveries by client and status, with the names of the clients and queues (deleted
        queues included while they hold tasks)."""
        q, c, d = t.queues, t.clients, t.webhook_deliveries
        async with self.driver.read() as conn:
            # the counts kept per queue and status (migrations 8 and 20), not a scan of every
            # task: a scrape (or a readiness probe) every few seconds reads a few rows
            sc = t.queue_status_counts
            n = sa.func.sum(sc.c.n)
            tasks = (
                await conn.execute(
                    sa.select(c.c.name, q.c.name, sc.c.status, n)
                    .select_from(
                        sc.join(q, q.c.id == sc.c.queue_id).join(c, c.c.id == q.c.client_id)
                    )
                    .group_by(c.c.name, q.c.name, sc.c.status)
                    .having(n > 0)
                )
            ).all()
            deliveries = (
                await conn.execute(
                    sa.select(c.c.name, d.c.status, sa.func.count())
                    .select_from(d.join(c, c.c.id == d.c.client_id))
                    .group_by(c.c.name, d.c.status)
                )
            ).all()
            oldest_due = (
                await conn.execute(
                    sa.select(sa.func.min(d.c.next_attempt_at)).where(d.c.status == "pending")
                )
            ).scalar()
        return MetricsCounts(
            tasks=[(str(a), str(b), str(s), int(n)) for a, b, s, n in tasks],
            deliveries=[(str(a), str(s), int(n)) for a, s, n in deliveries],
            oldest_pending_delivery=from_ms(oldest_due),
        )


#: a minute of the dashboard: (minute since the start, result, tasks, tasks that dialled,
#: their summed lateness in ms, the largest lateness in ms)
MinuteRow = tuple[int, str | None, int, int, int, int]


class DashboardRepository(Repository):
    """What the console's dashboard reads: the client's tasks finished recently, per minute."""

    async def finished_per_minute(self, client_id: int, since: datetime) -> list[MinuteRow]:
        """The client's tasks finished at or after ``since``, per minute since then and result,
        with the lateness of their last attempt (how long after it was due it was claimed).
        Bounded by the index on (client_id, finished_at): only the period's rows are read."""
        tk = t.tasks
        since_ms = to_ms(since)
        minute = ((tk.c.finished_at - since_ms) // 60_000).label("minute")
        late = sa.case(
            (tk.c.last_attempt_at > tk.c.run_at, tk.c.last_attempt_at - tk.c.run_at), else_=0
        )
        dialled = tk.c.last_attempt_at.is_not(None)
        query = (
            sa.select(
                minute, tk.c.finish_result, sa.func.count(), sa.func.count(tk.c.last_attempt_at),
                sa.func.coalesce(sa.func.sum(sa.case((dialled, late), else_=None)), 0),
                sa.func.coalesce(sa.func.max(sa.case((dialled, late), else_=None)), 0),
            )
            .where(tk.c.client_id == client_id, tk.c.finished_at >= since_ms)
            .group_by(minute, tk.c.finish_result)
            .order_by(minute)
        )  # fmt: skip
        async with self.driver.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            (int(m), None if r is None else str(r), int(n), int(d), int(s), int(x))
            for m, r, n, d, s, x in rows
        ]
