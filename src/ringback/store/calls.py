"""The calls repository: call legs as the engine writes them and as they are read back,
with the events of a task (its history)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ringback.store import schema as t
from ringback.store.legs_sql import LegWrite, OpenedLegs
from ringback.store.records import CallRow, EventRow, call_row, from_ms, to_ms
from ringback.store.repository import Repository


def leg_filters(
    legs: Any, *, start: datetime | None, end: datetime | None, outcome: str | None
) -> list[Any]:
    """The tests on legs (of ``t.calls`` or an alias of it) that a call listing filters by:
    started in [start, end), ended with ``outcome``. Not the client: a call is one client's,
    and the caller tests it on the outer legs only (in an inner test on the same call's legs
    the planner might walk the client's index instead of the call's)."""
    where: list[Any] = []
    if start is not None:
        where.append(legs.c.started_at >= to_ms(start))
    if end is not None:
        where.append(legs.c.started_at < to_ms(end))
    if outcome is not None:
        where.append(legs.c.outcome == outcome)
    return where


class CallRepository(Repository):
    """Legs written ahead of each call, and the history of tasks and calls."""

    async def write_legs(self, writes: Sequence[LegWrite]) -> OpenedLegs:
        """Store call legs as they are opened, answered and ended (see ``legs_sql``).

        Returns the leg_uuids of the opens accepted: a leg may be dialled only once its open
        was accepted (the task is still this worker's, and its called number is on none of
        the client's do-not-call lists: those refused are in ``suppressed``, with the entry;
        its frequency caps and allowed caller ids allow it: ``capped`` and ``refused``).
        """
        if not writes:
            return OpenedLegs()
        async with self.driver.write(one_statement=True) as conn:
            opened = await self.driver.legs.write(conn, writes)
        if opened.ruled:  # clients with campaign rules: counted and written under locks
            ruled = [w for w in writes if w.record.leg_uuid in opened.ruled]
            async with self.driver.write() as conn:
                clients = dict(opened.ruled)
                opened.merge(await self.driver.legs.write_ruled(conn, ruled, clients))
        return opened

    async def events_for_task(self, task_id: int) -> list[EventRow]:
        ev = t.events
        async with self.driver.read() as conn:
            rows = (
                await conn.execute(sa.select(ev).where(ev.c.task_id == task_id).order_by(ev.c.seq))
            ).all()
        return [
            EventRow(
                id=row.id,
                client_id=row.client_id,
                queue_id=row.queue_id,
                task_id=row.task_id,
                seq=row.seq,
                type=row.type,
                occurred_at=from_ms(row.occurred_at),  # type: ignore[arg-type]
                data=row.data,
            )
            for row in rows
        ]

    async def calls(
        self,
        *,
        task_id: int | None = None,
        call_uuid: str | None = None,
        client_id: int | None = None,
        limit: int = 1000,
    ) -> list[CallRow]:
        c = t.calls
        where: list[Any] = []
        if task_id is not None:
            where.append(c.c.task_id == task_id)
        if call_uuid is not None:
            where.append(c.c.call_uuid == call_uuid)
        if client_id is not None:
            where.append(c.c.client_id == client_id)
        async with self.driver.read() as conn:
            rows = (
                await conn.execute(leg_rows().where(*where).order_by(c.c.id).limit(limit))
            ).all()
        return [call_row(row) for row in rows]

    async def calls_of(self, call_uuids: Sequence[str]) -> list[CallRow]:
        """Every leg of these calls, in the order they were stored."""
        if not call_uuids:
            return []
        c = t.calls
        async with self.driver.read() as conn:
            rows = (
                await conn.execute(
                    leg_rows().where(c.c.call_uuid.in_(list(call_uuids))).order_by(c.c.id)
                )
            ).all()
        return [call_row(row) for row in rows]

    async def calls_for_tasks(self, task_ids: Sequence[int]) -> dict[int, list[CallRow]]:
        """The legs of every attempt of these tasks, by task id."""
        found: dict[int, list[CallRow]] = {task_id: [] for task_id in task_ids}
        if not task_ids:
            return found
        c = t.calls
        async with self.driver.read() as conn:
            rows = (
                await conn.execute(
                    leg_rows().where(c.c.task_id.in_(list(task_ids))).order_by(c.c.id)
                )
            ).all()
        for row in rows:
            found[row.task_id].append(call_row(row))
        return found

    async def call_history(
        self,
        client_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        outcome: str | None = None,
        newest_first: bool = False,
    ) -> tuple[list[list[CallRow]], int]:
        """Calls (legs grouped by call uuid) that started in [start, end), oldest first (or
        newest first), and how many there are in all; with ``outcome``, the calls one of whose
        legs ended so."""
        c = t.calls
        where: list[Any] = [c.c.client_id == client_id]
        if outcome is not None:
            where.append(c.c.outcome == outcome)
        if start is not None:
            where.append(c.c.started_at >= to_ms(start))
        if end is not None:
            where.append(c.c.started_at < to_ms(end))
        first = sa.func.min(c.c.started_at).label("first")
        groups = sa.select(c.c.call_uuid, first).where(*where).group_by(c.c.call_uuid)
        order = (first.desc(), c.c.call_uuid.desc()) if newest_first else (first, c.c.call_uuid)
        async with self.driver.read() as conn:
            total = (
                await conn.execute(sa.select(sa.func.count()).select_from(groups.subquery()))
            ).scalar_one()
            uuids = (
                (await conn.execute(groups.order_by(*order).limit(limit).offset(offset)))
                .scalars()
                .all()
            )
        legs = await self.calls_of(list(uuids))
        by_uuid: dict[str, list[CallRow]] = {uuid: [] for uuid in uuids}
        for leg in legs:
            by_uuid[leg.call_uuid].append(leg)
        return list(by_uuid.values()), int(total)

    async def recent_calls(
        self,
        client_id: int,
        *,
        before: tuple[int, int] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        outcome: str | None = None,
        limit: int = 50,
    ) -> tuple[list[list[CallRow]], tuple[int, int] | None]:
        """The client's calls, newest first, a page at a time by key (no offset, no count):
        each call is placed by its latest leg among those that match (started in [start, end),
        ended with ``outcome``). ``before``: the key the previous page returned; the key
        returned is None after the last page. Reads at most 8 legs per call asked for, along
        the index on (client_id, started_at, id) (or with an outcome (client_id, outcome,
        started_at, id))."""
        c, newer = t.calls, t.calls.alias("newer")

        def matching(legs: Any) -> list[Any]:
            return leg_filters(legs, start=start, end=end, outcome=outcome)

        where = [c.c.client_id == client_id, *matching(c)]
        if before is not None:
            at, leg_id = before
            where.append(c.c.started_at <= at)  # a range the index reads, then the ties
            where.append(
                sa.or_(c.c.started_at < at, sa.and_(c.c.started_at == at, c.c.id < leg_id))
            )
            seen = sa.or_(
                newer.c.started_at > at, sa.and_(newer.c.started_at == at, newer.c.id >= leg_id)
            )
            where.append(
                ~sa.exists().where(newer.c.call_uuid == c.c.call_uuid, seen, *matching(newer))
            )
        batch = limit * 8
        query = (
            sa.select(c.c.call_uuid, c.c.started_at, c.c.id)
            .where(*where)
            .order_by(c.c.started_at.desc(), c.c.id.desc())
            .limit(batch)
        )
        async with self.driver.read() as conn:
            legs = (await conn.execute(query)).all()
        owners: dict[str, tuple[int, int]] = {}
        for uuid, at, leg_id in legs:
            if uuid not in owners:
                if len(owners) == limit:
                    break
                owners[uuid] = (int(at), int(leg_id))
        more = len(owners) == limit or len(legs) == batch
        key = list(owners.values())[-1] if owners and more else None
        by_uuid: dict[str, list[CallRow]] = {uuid: [] for uuid in owners}
        for leg in await self.calls_of(list(owners)):
            by_uuid[leg.call_uuid].append(leg)
        return list(by_uuid.values()), key

    async def count_calls(
        self,
        client_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        outcome: str | None = None,
        max_legs: int,
    ) -> tuple[int, bool]:
        """How many of the client's calls have a leg that matches (started in [start, end),
        ended with ``outcome``), as :meth:`recent_calls` lists them; and whether that is exact.
        Reads at most ``max_legs + 1`` matching legs, the newest, along the same index as
        :meth:`recent_calls`: when more than ``max_legs`` match, the count is of the calls the
        legs read belong to (a lower bound) and ``False`` says so."""
        c = t.calls
        legs = (
            sa.select(c.c.call_uuid)
            .where(
                c.c.client_id == client_id, *leg_filters(c, start=start, end=end, outcome=outcome)
            )
            .order_by(c.c.started_at.desc(), c.c.id.desc())
            .limit(max_legs + 1)
            .subquery()
        )
        # GROUP BY rather than count(DISTINCT): PostgreSQL hashes it instead of sorting
        calls = (
            sa.select(legs.c.call_uuid, sa.func.count().label("legs"))
            .group_by(legs.c.call_uuid)
            .subquery()
        )
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(calls.c.legs), 0))
        async with self.driver.read() as conn:
            found, read = (await conn.execute(query)).one()
        return int(found), int(read) <= max_legs


def leg_rows() -> sa.Select[Any]:
    """Call legs with the kind of the task that placed them (None for calls of no task)."""
    c, tk = t.calls, t.tasks
    return sa.select(c, tk.c.kind.label("task_kind")).select_from(
        c.outerjoin(tk, tk.c.id == c.c.task_id)
    )
