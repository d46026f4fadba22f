"""The exports repository: tasks and calls read a chunk at a time by key, for CSV exports of
any size (``ringback.service.exports``).

Each chunk is one short read that starts after the key of the previous chunk's last row (no
offset, no count, no snapshot held between chunks): tasks by id with the task list's filters
(``store/tasks.py``), calls by their first leg's ``(started_at, id)`` along the
``calls_client_started_id`` index (or ``calls_client_outcome`` with an outcome).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

import sqlalchemy as sa

from ringback.domain.rows import CallRow, TaskRow
from ringback.store import schema as t
from ringback.store.calls import leg_filters, leg_rows
from ringback.store.mappers import task_row
from ringback.store.records import call_row, to_ms
from ringback.store.repository import Repository
from ringback.store.tasks import TaskFilters, _owns_queue, _task_filters, running_counts


class ExportRepository(Repository):
    """Keyset reads of tasks and calls."""

    async def tasks_after(
        self, now: datetime, after_id: int, *, limit: int, **filters: Unpack[TaskFilters]
    ) -> list[TaskRow]:
        """Up to ``limit`` tasks matching ``filters`` whose id is above ``after_id``, by id."""
        q, tk = t.queues, t.tasks
        where = [*_task_filters(filters), tk.c.id > after_id]
        ids = sa.select(tk.c.id).where(*where).order_by(tk.c.id).limit(limit).subquery("chunk")
        stmt = (
            sa.select(tk, q.c.status.label("queue_status"), q.c.concurrent_task_limit)
            .select_from(tk.join(ids, ids.c.id == tk.c.id).outerjoin(q, q.c.id == tk.c.queue_id))
            .order_by(tk.c.id)
        )
        async with self.driver.read() as conn:
            if not await _owns_queue(conn, filters):
                return []
            rows = (await conn.execute(stmt)).all()
            queue_ids = {row.queue_id for row in rows}
            running = await running_counts(conn, queue_ids) if queue_ids else {}
        now_ms = to_ms(now)
        return [task_row(row, running.get(row.queue_id, 0), now_ms) for row in rows]

    async def calls_after(
        self,
        client_id: int,
        after: tuple[int, int] | None,
        *,
        limit: int,
        start: datetime | None = None,
        end: datetime | None = None,
        outcome: str | None = None,
    ) -> tuple[list[list[CallRow]], tuple[int, int] | None]:
        """Up to ``limit`` of the client's calls, oldest first, each placed by its first leg
        among those that match (started in [start, end), ended with ``outcome``), after the
        key ``after`` (``(started_at ms, leg id)`` of that first leg); each call's legs in
        order, and the key of the last call (None once there are no more)."""
        c, older = t.calls, t.calls.alias("older")

        def matching(legs: Any) -> list[Any]:
            return leg_filters(legs, start=start, end=end, outcome=outcome)

        where = [c.c.client_id == client_id, *matching(c)]
        if after is not None:
            at, leg_id = after
            where.append(c.c.started_at >= at)  # a range the index reads, then the ties
            where.append(
                sa.or_(c.c.started_at > at, sa.and_(c.c.started_at == at, c.c.id > leg_id))
            )
        earlier = sa.or_(
            older.c.started_at < c.c.started_at,
            sa.and_(older.c.started_at == c.c.started_at, older.c.id < c.c.id),
        )
        # the call's first matching leg only: no matching leg of the same call before it
        where.append(
            ~sa.exists().where(older.c.call_uuid == c.c.call_uuid, earlier, *matching(older))
        )
        query = (
            sa.select(c.c.call_uuid, c.c.started_at, c.c.id)
            .where(*where)
            .order_by(c.c.started_at, c.c.id)
            .limit(limit)
        )
        async with self.driver.read() as conn:
            heads = (await conn.execute(query)).all()
            if not heads:
                return [], None
            legs = (
                await conn.execute(
                    leg_rows()
                    .where(c.c.call_uuid.in_([h.call_uuid for h in heads]))
                    .order_by(c.c.id)
                )
            ).all()
        by_uuid: dict[str, list[CallRow]] = {h.call_uuid: [] for h in heads}
        for leg in legs:
            by_uuid[leg.call_uuid].append(call_row(leg))
        last = heads[-1]
        return list(by_uuid.values()), (int(last.started_at), int(last.id))
