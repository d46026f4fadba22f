"""The queues repository: queues, their limits and their counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ringback.domain.frequency_caps import CallerIdEntry
from ringback.domain.model import PENDING_STATUSES
from ringback.domain.rows import QueueChanges  # shared row types
from ringback.store import schema as t
from ringback.store.driver import Driver
from ringback.store.mappers import queue_row
from ringback.store.queries import IS_RUNNING, kept_count
from ringback.store.records import Conflict, NotFound, QueueRow, to_ms
from ringback.store.repository import Repository
from ringback.store.tasks import cancel_unfinished, follow_queue_zone, release_delayed_to_hours


class QueueRepository(Repository):
    """Create, change, read and delete queues."""

    async def create_queue(
        self,
        client_id: int,
        name: str,
        now: datetime,
        *,
        comment: str = "",
        status: str = "off",
        concurrent_task_limit: int = 10,
        max_calls_per_second: float | None = None,
        calling_hours: dict[str, Any] | None = None,
        redial_interrupted: bool = False,
        task_ttl_seconds: int | None = None,
    ) -> QueueRow:
        async with self.driver.write() as conn:
            taken = (
                await conn.execute(
                    sa.select(t.queues.c.id).where(
                        t.queues.c.client_id == client_id, t.queues.c.name == name
                    )
                )
            ).scalar()
            if taken is not None:
                raise Conflict(f"a queue named {name!r} already exists (id {taken})")
            queue_id = (
                await conn.execute(
                    t.queues.insert()
                    .values(
                        client_id=client_id,
                        name=name,
                        comment=comment,
                        status=status,
                        concurrent_task_limit=concurrent_task_limit,
                        max_calls_per_second=max_calls_per_second,
                        calling_hours=calling_hours,
                        redial_interrupted=redial_interrupted,
                        task_ttl_seconds=task_ttl_seconds,
                        rate_tokens=burst(max_calls_per_second),
                        rate_updated_at=to_ms(now),
                        created_at=to_ms(now),
                        updated_at=to_ms(now),
                    )
                    .returning(t.queues.c.id)
                )
            ).scalar_one()
            if status == "on":
                await self.driver.notify(conn)
        if status == "on":
            self._woke()
        return await self.get_queue(int(queue_id), client_id=client_id)

    async def ensure_queue(
        self, client_id: int, name: str, now: datetime, *, counted: bool = True, **fields: Any
    ) -> QueueRow:
        """The named queue, created with ``fields`` if it does not exist yet (``counted``: as
        :meth:`find_queue`)."""
        try:
            return await self.find_queue(client_id, name, counted=counted)
        except NotFound:
            try:
                return await self.create_queue(client_id, name, now, **fields)
            except Conflict:  # created meanwhile by another process
                return await self.find_queue(client_id, name)

    async def update_queue(
        self, queue_id: int, changes: QueueChanges, now: datetime, *, client_id: int | None = None
    ) -> QueueRow:
        values: dict[str, Any] = {"updated_at": to_ms(now)}
        for name in ("name", "comment", "status", "concurrent_task_limit", "redial_interrupted"):
            value = getattr(changes, name)
            if value is not None:
                values[name] = value
        if changes.max_calls_per_second is not None or changes.clear_max_calls_per_second:
            values["max_calls_per_second"] = changes.max_calls_per_second
            values["rate_tokens"] = burst(changes.max_calls_per_second)
            values["rate_updated_at"] = to_ms(now)
        if changes.calling_hours is not None or changes.clear_calling_hours:
            values["calling_hours"] = changes.calling_hours
        if changes.task_ttl_seconds is not None or changes.clear_task_ttl_seconds:
            values["task_ttl_seconds"] = changes.task_ttl_seconds
        async with self.driver.write() as conn:
            where = [t.queues.c.id == queue_id, t.queues.c.deleted_at.is_(None)]
            if client_id is not None:
                where.append(t.queues.c.client_id == client_id)
            if changes.name is not None:
                clash = (
                    await conn.execute(
                        sa.select(t.queues.c.id).where(
                            t.queues.c.name == changes.name,
                            t.queues.c.id != queue_id,
                            t.queues.c.client_id
                            == sa.select(t.queues.c.client_id)
                            .where(t.queues.c.id == queue_id)
                            .scalar_subquery(),
                        )
                    )
                ).scalar()
                if clash is not None:
                    raise Conflict(f"a queue named {changes.name!r} already exists (id {clash})")
            result = await conn.execute(t.queues.update().where(*where).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"no queue {queue_id}")
            if "calling_hours" in values:
                await release_delayed_to_hours(conn, queue_id, now)
                hours = values["calling_hours"]
                await follow_queue_zone(conn, queue_id, hours["timezone"] if hours else None)
            await self.driver.notify(conn)
        self._woke()
        return await self.get_queue(queue_id)

    async def get_queue(
        self, queue_id: int, *, client_id: int | None = None, pending: bool = True
    ) -> QueueRow:
        """The queue with its counters; ``pending=False`` leaves ``sched_task_count`` at 0
        (not counted: it costs a count over the queue's waiting tasks)."""
        rows = await read_queues(
            self.driver, [t.queues.c.id == queue_id], client_id, pending=pending
        )
        if not rows:
            raise NotFound(f"no queue {queue_id}")
        return rows[0]

    async def find_queue(self, client_id: int, name: str, *, counted: bool = True) -> QueueRow:
        """The client's queue named ``name``; ``counted=False``: the row alone, its counters
        left at 0 (what an add needs: the queue's id and calling hours, read without counting
        its tasks, by a statement built once)."""
        if counted:
            rows = await read_queues(self.driver, [t.queues.c.name == name], client_id)
        else:
            found = await self.driver.lookup(_QUEUE_NAMED, {"name": name, "client_id": client_id})
            rows = [queue_row(row) for row in found]
        if not rows:
            raise NotFound(f"no queue named {name!r}")
        return rows[0]

    async def intake_view(self, client_id: int, names: Sequence[str]) -> IntakeView:
        """What an add checks before it writes, read by **one** statement (an AddJob's
        caller waits on every round trip): the client's allowed caller ids and its live
        queues named ``names`` (the rows alone, counters at 0, as ``find_queue(counted=False)``)."""
        rows = await self.driver.lookup(_INTAKE, {"client_id": client_id, "names": list(names)})
        return IntakeView(
            caller_ids=sorted(
                (CallerIdEntry(r.cid_number, bool(r.cid_prefix)) for r in rows if r.id is None),
                key=lambda e: (e.number, e.prefix),
            ),
            queues={r.name: queue_row(r) for r in rows if r.id is not None},
        )

    async def list_queues(self, client_id: int | None = None) -> list[QueueRow]:
        return await read_queues(self.driver, [], client_id)

    async def queue_counts(
        self, client_id: int, finished_since: datetime
    ) -> dict[int, dict[str, int]]:
        """The client's tasks per queue: how many of each unfinished status (as stored:
        ``scheduled``, ``executed``, ``delayed``, ``delayed_interval``), and
        ``finished/<result>`` for those finished since ``finished_since``. Queues with none
        are left out."""
        tk, q = t.tasks, t.queues
        counts: dict[int, dict[str, int]] = {}
        queues = sa.select(q.c.id).where(q.c.client_id == client_id)
        async with self.driver.read() as conn:
            # the counts kept per queue and status (migrations 8 and 20): summed, as PostgreSQL
            # keeps them as appended changes
            sc = t.queue_status_counts
            n = sa.func.sum(sc.c.n)
            waiting = await conn.execute(
                sa.select(sc.c.queue_id, sc.c.status, n)
                .where(sc.c.queue_id.in_(queues), sc.c.status != "finished")
                .group_by(sc.c.queue_id, sc.c.status)
                .having(n > 0)
            )
            for queue_id, status, n in waiting.all():
                counts.setdefault(int(queue_id), {})[str(status)] = int(n)
            finished = await conn.execute(
                sa.select(tk.c.queue_id, tk.c.finish_result, sa.func.count())
                .where(
                    tk.c.client_id == client_id,
                    tk.c.status == "finished",
                    tk.c.finished_at >= to_ms(finished_since),
                )
                .group_by(tk.c.queue_id, tk.c.finish_result)
            )
            for queue_id, result, n in finished.all():
                counts.setdefault(int(queue_id), {})[f"finished/{result}"] = int(n)
        return counts

    async def delete_queue(
        self, queue_id: int, now: datetime, *, force: bool = False, client_id: int | None = None
    ) -> int:
        """Delete a queue; with ``force`` its unfinished tasks are canceled first.

        Finished tasks keep their history, so the queue row stays, marked deleted and renamed
        (its name is free again); it no longer shows anywhere. Returns the tasks canceled.
        """
        q, tk = t.queues, t.tasks
        async with self.driver.write() as conn:
            where = [q.c.id == queue_id, q.c.deleted_at.is_(None)]
            if client_id is not None:
                where.append(q.c.client_id == client_id)
            name = (await conn.execute(sa.select(q.c.name).where(*where))).scalar()
            if name is None:
                raise NotFound(f"no queue {queue_id}")
            canceled = 0
            if force:  # set-based: a queue of 1,000,000 tasks is two statements
                canceled = await cancel_unfinished(conn, queue_id, now, "canceled: queue deleted")
            else:
                unfinished = (
                    await conn.execute(
                        sa.select(sa.func.count()).where(
                            tk.c.queue_id == queue_id, tk.c.status != "finished"
                        )
                    )
                ).scalar_one()
                if unfinished:
                    raise Conflict(
                        f"queue {queue_id} has {unfinished} unfinished tasks: cancel them "
                        "first, or delete with force=true to cancel them"
                    )
            await conn.execute(
                q.update()
                .where(q.c.id == queue_id)
                .values(
                    status="off",
                    deleted_at=to_ms(now),
                    updated_at=to_ms(now),
                    name=f"{name} (deleted queue {queue_id})",
                )
            )
        return canceled


#: a live queue by client and name, with its counters at 0. Built once: SQLAlchemy keeps a
#: statement object's cache key, so each read skips building and keying the statement (the
#: intake path of every AddJob and job add reads it)
_ZERO_COUNTERS = ("task_count", "sched", "running")
_QUEUE_ROW = sa.select(t.queues, *(sa.literal_column("0").label(n) for n in _ZERO_COUNTERS))
_QUEUE_NAMED = _QUEUE_ROW.where(
    t.queues.c.name == sa.bindparam("name"),
    t.queues.c.client_id == sa.bindparam("client_id"),
    t.queues.c.deleted_at.is_(None),
)


@dataclass(frozen=True)
class IntakeView:
    """What an add checks before it writes (:meth:`QueueRepository.intake_view`)."""

    caller_ids: list[CallerIdEntry]  # empty: any caller id is allowed
    queues: dict[str, QueueRow]  # by name; a name asked for and missing is not here


#: the client's queues by name (rows with an ``id``) and its allowed caller ids (rows without),
#: as one UNION: the result's columns are the first SELECT's, padded with NULLs in the other
_INTAKE: sa.CompoundSelect[Any] = sa.union_all(
    _QUEUE_ROW.add_columns(sa.null().label("cid_number"), sa.null().label("cid_prefix")).where(
        t.queues.c.name.in_(sa.bindparam("names", expanding=True)),
        t.queues.c.client_id == sa.bindparam("client_id"),
        t.queues.c.deleted_at.is_(None),
    ),
    sa.select(
        *(sa.null() for _ in t.queues.c),
        *(sa.literal_column("0") for _ in _ZERO_COUNTERS),
        t.caller_ids.c.number,
        t.caller_ids.c.prefix,
    ).where(t.caller_ids.c.client_id == sa.bindparam("client_id")),
)


async def read_queues(
    driver: Driver, where: list[Any], client_id: int | None, *, pending: bool = True
) -> list[QueueRow]:
    """The queues matching ``where`` (of ``client_id`` if given) with their counters."""
    q = t.queues
    where = [*where, q.c.deleted_at.is_(None)]
    if client_id is not None:
        where.append(q.c.client_id == client_id)
    tk = t.tasks

    sc = t.queue_status_counts

    def kept(*conditions: Any) -> Any:  # the queue's tasks (of some statuses), as kept
        return kept_count(sc.c.queue_id == q.c.id, *conditions).scalar_subquery()

    running = (  # few (at most the queue's limit): counted along the partial index
        sa.select(sa.func.count()).select_from(tk).where(tk.c.queue_id == q.c.id, IS_RUNNING)
    ).scalar_subquery()
    stmt = (
        sa.select(
            q,
            kept().label("task_count"),
            (kept(sc.c.status.in_(PENDING_STATUSES)) if pending else sa.literal(0)).label("sched"),
            running.label("running"),
        )
        .where(*where)
        .order_by(q.c.id)
    )
    # without the waiting tasks' count (over as many as a queue holds) the read is small: a
    # lookup (inline on SQLite's idle writer)
    if not pending:
        return [queue_row(row) for row in await driver.lookup(stmt)]
    async with driver.read(one_statement=True) as conn:
        rows = (await conn.execute(stmt)).all()
    return [queue_row(row) for row in rows]


def burst(rate: float | None) -> float:
    """The rate tokens a queue may hold (its burst): at least 1 with a rate, else none."""
    return max(1.0, rate) if rate else 0.0
