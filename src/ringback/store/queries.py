"""Query pieces the repositories share: the status predicates and the next due time.

Status tests are written as SQL literals, never bound parameters: a partial index is only used
when the query repeats its predicate literally (SQLite, and PostgreSQL's generic plans).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ringback.domain.model import PENDING_STATUSES, TaskStatus
from ringback.store import schema as t

EXECUTED = TaskStatus.EXECUTED.value
IS_PENDING = t.tasks.c.status.in_([sa.literal_column(f"'{s}'") for s in PENDING_STATUSES])
IS_RUNNING = t.tasks.c.status == sa.literal_column(f"'{EXECUTED}'")
STATUS_LITERALS: dict[str, sa.ColumnElement[Any]] = {
    s.value: sa.literal_column(f"'{s.value}'") for s in TaskStatus
}


def kept_count(*where: Any) -> sa.Select[Any]:
    """How many tasks the per-queue, per-status counts hold for the rows ``where`` selects:
    their sum (PostgreSQL keeps them as appended changes, migration 20; SQLite one row per
    queue and status, migration 8). A few rows, where a count of tasks reads up to a million
    index entries."""
    sc = t.queue_status_counts
    return sa.select(sa.func.coalesce(sa.func.sum(sc.c.n), 0)).where(*where)


def next_due_query(client_id: int | None = None) -> sa.Select[Any]:
    """The earliest run_at waiting in a switched-on queue: one index probe per queue."""
    q, tk = t.queues, t.tasks
    first = (
        sa.select(tk.c.run_at)
        .where(tk.c.queue_id == q.c.id, IS_PENDING)
        .order_by(tk.c.run_at)
        .limit(1)
        .scalar_subquery()
    )
    where = [q.c.status == "on"]
    if client_id is not None:
        where.append(q.c.client_id == client_id)
    return sa.select(sa.func.min(first)).where(*where)
