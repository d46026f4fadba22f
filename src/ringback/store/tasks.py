"""The tasks repository: adding, reading, paging, changing and canceling tasks.

Every change of a task writes the event that says so, with the task's next sequence number
(:func:`transition`). The engine's writes (claims, results) are in ``store/leases.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa

from ringback.domain.audit import Actor
from ringback.domain.model import PENDING_STATUSES, EventType, TaskStatus
from ringback.domain.task_rules import NewTask
from ringback.store import audit
from ringback.store import schema as t
from ringback.store.driver import Conn, Reader
from ringback.store.mappers import opt_ms, task_row
from ringback.store.queries import IS_RUNNING, STATUS_LITERALS, kept_count
from ringback.store.records import Conflict, NotFound, TaskRow, to_ms
from ringback.store.repository import Repository


class TaskRepository(Repository):
    """Tasks as the API and the CLI see them."""

    async def add_tasks(
        self,
        client_id: int,
        queue_id: int,
        new_tasks: Sequence[NewTask],
        now: datetime,
        *,
        actor: Actor | None = None,
    ) -> list[int]:
        """Store tasks (all or nothing) with their ``task.created`` events and, when ``actor``
        is given, the batch's audit entry (``domain.audit.tasks_added``)."""
        if not new_tasks:
            return []
        # one statement on PostgreSQL (its own transaction, with the wake-up and the audit
        # entry), unless other audit entries wait to be committed with it; one task, which a
        # caller waits on alone, the quickest way (``Driver.intake``)
        alone = not audit.pending()
        if alone and len(new_tasks) == 1:
            writing = self.driver.intake()
        else:
            writing = self.driver.write(one_statement=alone)
        async with writing as conn:
            ids = await self.driver.claims.add_tasks(
                conn, client_id, queue_id, new_tasks, to_ms(now), actor
            )
            if ids is None:
                raise NotFound(f"no queue {queue_id}")
        self._woke()
        return ids

    async def get_task(
        self, task_id: int, now: datetime, *, client_id: int | None = None
    ) -> TaskRow:
        """The task; ``now`` decides whether a due task counts as held by its queue's limit."""
        where = [t.tasks.c.id == task_id]
        if client_id is not None:
            where.append(t.tasks.c.client_id == client_id)
        rows = await self._tasks(where, now, limit=1)
        if not rows:
            raise NotFound(f"no task {task_id}")
        return rows[0]

    async def tasks_by_ids(self, ids: Sequence[int], now: datetime) -> list[TaskRow]:
        if not ids:
            return []
        return await self._tasks([t.tasks.c.id.in_(list(ids))], now, limit=len(ids))

    async def list_tasks(
        self, now: datetime, *, limit: int = 100, offset: int = 0, **filters: Unpack[TaskFilters]
    ) -> list[TaskRow]:
        async with self.driver.read() as conn:
            if not await _owns_queue(conn, filters):
                return []
            return await self._tasks(
                _task_filters(filters), now, limit=limit, offset=offset, conn=conn
            )

    async def page_tasks(
        self, now: datetime, *, limit: int = 100, offset: int = 0, **filters: Unpack[TaskFilters]
    ) -> tuple[list[TaskRow], int]:
        """One page of tasks and how many match in all, read from one snapshot, so that the
        total agrees with the page even while workers finish tasks."""
        where = _task_filters(filters)
        queue_id = filters.get("queue_id")
        narrowing = {k for k, v in filters.items() if v and k not in ("client_id", "queue_id")}
        if queue_id is not None and not narrowing:
            # the queue's count, kept by triggers: exact, and read in the same snapshot
            stmt = _status_count(t.queue_status_counts.c.queue_id == queue_id, None)
        elif queue_id is not None and narrowing == {"status"}:
            stmt = _status_count(t.queue_status_counts.c.queue_id == queue_id, filters["status"])
        elif queue_id is None and filters.get("client_id") is not None and not narrowing:
            stmt = _client_count(filters["client_id"])  # every task of the client: the counters
        elif queue_id is None and filters.get("client_id") is not None and narrowing == {"status"}:
            in_client = t.queue_status_counts.c.queue_id.in_(_client_queues(filters["client_id"]))
            stmt = _status_count(in_client, filters["status"])
        else:
            stmt = sa.select(sa.func.count()).select_from(t.tasks).where(*where)
        async with self.driver.read() as conn:
            if not await _owns_queue(conn, filters):
                return [], 0
            total = int((await conn.execute(stmt)).scalar_one())
            if offset >= total:
                return [], total
            # few matches of a window or a name: sort them all (see _SORT_MATCHES_UP_TO)
            sort = total <= _SORT_MATCHES_UP_TO and any(
                filters.get(key) is not None for key in _SORTABLE_FILTERS
            )
            if offset <= total // 2:
                rows = await self._tasks(
                    where, now, limit=limit, offset=offset, conn=conn, sort_matches=sort
                )
            else:  # nearer the end: skip fewer rows, counting back from the last one
                left = total - offset
                rows = await self._tasks(
                    where, now, limit=min(limit, left), offset=max(0, left - limit), conn=conn,
                    from_end=True, sort_matches=sort,
                )  # fmt: skip
        return rows, total

    async def update_task(
        self, task_id: int, client_id: int, task: NewTask, now: datetime
    ) -> TaskRow:
        """Replace a waiting task's fields (not its kind); refused once it runs or finished."""
        tk = t.tasks
        async with self.driver.write() as conn:
            row = (
                await conn.execute(
                    sa.select(tk.c.status, tk.c.kind)
                    .where(tk.c.id == task_id, tk.c.client_id == client_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound(f"no task {task_id}")
            if row.status not in PENDING_STATUSES:
                raise Conflict(
                    f"task {task_id} is {row.status}: only scheduled or delayed tasks can change"
                )
            if row.kind != task.kind.value:
                raise Conflict(f"task {task_id} is a {row.kind} task, not {task.kind.value}")
            await transition(
                conn,
                task_id,
                now,
                {
                    "name": task.name,
                    "payload": task.payload,
                    "status": TaskStatus.SCHEDULED.value
                    if row.status == TaskStatus.SCHEDULED.value
                    else TaskStatus.DELAYED.value,
                    "run_at": to_ms(task.run_at),
                    "start_time_utc": opt_ms(task.start_time_utc),
                    "timezone": task.timezone,
                    "max_tries": task.max_tries,
                    "max_caller_tries": task.max_caller_tries,
                    "backoff": task.backoff,
                    "caller_pause_s": task.caller_pause_s,
                    **({} if task.expires_at is None else {"expires_at": to_ms(task.expires_at)}),
                    "priority": task.priority,
                    "timezone_source": task.timezone_source,
                },
                EventType.TASK_UPDATED,
                lambda attempt: {"run_at": task.run_at.isoformat(), "attempts": attempt},
            )
            await self.driver.notify(conn)
        self._woke()
        return await self.get_task(task_id, now, client_id=client_id)

    async def _tasks(
        self,
        where: list[Any],
        now: datetime,
        *,
        limit: int,
        offset: int = 0,
        conn: Reader | None = None,
        from_end: bool = False,
        sort_matches: bool = False,
    ) -> list[TaskRow]:
        """Tasks matching ``where`` by id (read on ``conn`` when given, to share its snapshot);
        ``from_end``: ``offset`` counts back from the last one (the page is still by id);
        ``sort_matches``: every match is read through the filters' index and sorted, rather
        than walking ids in order until the page is full. ``now``: a due task of a queue at
        its limit shows as ``delayed_concurrent_task``."""
        q, tk = t.queues, t.tasks
        # deferred join: the page's ids first (from an index alone when one covers the
        # filters, however deep the offset), then only those rows
        key = tk.c.id + sa.literal_column("0") if sort_matches else tk.c.id
        order = key.desc() if from_end else key
        page = sa.select(tk.c.id).where(*where).order_by(order).limit(limit).offset(offset)
        ids = page.subquery("page")
        stmt = (
            sa.select(tk, q.c.status.label("queue_status"), q.c.concurrent_task_limit)
            .select_from(tk.join(ids, ids.c.id == tk.c.id).outerjoin(q, q.c.id == tk.c.queue_id))
            .order_by(tk.c.id)
        )
        async with contextlib.AsyncExitStack() as stack:
            if conn is None:
                conn = await stack.enter_async_context(self.driver.read())
            rows = (await conn.execute(stmt)).all()
            queue_ids = {row.queue_id for row in rows}
            running = await running_counts(conn, queue_ids) if queue_ids else {}
        now_ms = to_ms(now)
        return [task_row(row, running.get(row.queue_id, 0), now_ms) for row in rows]

    async def run_task_now(
        self, task_id: int, now: datetime, *, client_id: int | None = None
    ) -> bool:
        """Make a waiting task due now (its next try, or a start time still ahead), with a
        ``task.updated`` event. False if it is not waiting (running or finished)."""
        changed = await self._change_waiting(
            task_id, now, client_id, {"run_at": to_ms(now)},
            lambda attempt: {"run_at": now.isoformat(), "attempts": attempt, "run_now": True},
            notify=True,
        )  # fmt: skip
        if changed:
            self._woke()
        return changed

    async def set_task_priority(
        self, task_id: int, priority: int, now: datetime, *, client_id: int | None = None
    ) -> bool:
        """Give a waiting task another priority (0-9), with a ``task.updated`` event. False if
        it is not waiting (running or finished)."""
        return await self._change_waiting(
            task_id, now, client_id, {"priority": priority},
            lambda attempt: {"priority": priority, "attempts": attempt},
        )  # fmt: skip

    async def _change_waiting(
        self,
        task_id: int,
        now: datetime,
        client_id: int | None,
        values: dict[str, Any],
        data: Callable[[int], dict[str, Any]],
        *,
        notify: bool = False,
    ) -> bool:
        """Change a waiting task (locked while checked) with a ``task.updated`` event; False if
        it is not waiting; NotFound if it is not there (or not the client's)."""
        tk = t.tasks
        async with self.driver.write() as conn:
            where = [tk.c.id == task_id]
            if client_id is not None:
                where.append(tk.c.client_id == client_id)
            row = (
                await conn.execute(sa.select(tk.c.status).where(*where).with_for_update())
            ).first()
            if row is None:
                raise NotFound(f"no task {task_id}")
            if row.status not in PENDING_STATUSES:
                audit.discard()  # nothing changed: nothing to record
                return False
            await transition(conn, task_id, now, values, EventType.TASK_UPDATED, data)
            if notify:
                await self.driver.notify(conn)
        return True

    async def cancel_task(
        self, task_id: int, now: datetime, *, client_id: int | None = None
    ) -> bool:
        """Finish the task as failed / ``canceled``. False if it had already finished.

        A running attempt loses its fence: its result is refused when it comes back.
        """
        async with self.driver.write() as conn:
            where = [t.tasks.c.id == task_id]
            if client_id is not None:
                where.append(t.tasks.c.client_id == client_id)
            status = (
                await conn.execute(sa.select(t.tasks.c.status).where(*where).with_for_update())
            ).scalar()
            if status is None:
                raise NotFound(f"no task {task_id}")
            if status == TaskStatus.FINISHED.value:
                audit.discard()  # nothing changed: nothing to record
                return False
            await cancel(conn, task_id, now, "canceled")
        return True

    async def cancel_matching(
        self, now: datetime, *, limit: int, **filters: Unpack[TaskFilters]
    ) -> list[int]:
        """Cancel (as :meth:`cancel_task`) up to ``limit`` unfinished tasks matching ``filters``
        (those of :meth:`page_tasks`), oldest first, in one transaction of three statements
        whatever their number; returns their ids. The change's audit entries (if any) get the
        count (``cancelled``); with none cancelled they are not written."""
        tk = t.tasks
        async with self.driver.write() as conn:
            if not await _owns_queue(conn, filters):
                raise NotFound(f"no queue {filters.get('queue_id')}")
            unfinished = tk.c.status != TaskStatus.FINISHED.value
            picked = (
                sa.select(tk.c.id)
                .where(*_task_filters(filters), unfinished)
                .order_by(tk.c.id)
                .limit(limit)
            )
            ids = sorted(await cancel_where(conn, [tk.c.id.in_(picked)], now, "canceled"))
            if ids:
                audit.amend(cancelled=len(ids))
            else:
                audit.discard()
        return ids


async def running_counts(conn: Reader, queue_ids: Iterable[int]) -> dict[int, int]:
    """The running tasks of each of these queues (queues with none are left out)."""
    tk = t.tasks
    result = await conn.execute(
        sa.select(tk.c.queue_id, sa.func.count())
        .where(IS_RUNNING, tk.c.queue_id.in_(list(queue_ids)))
        .group_by(tk.c.queue_id)
    )
    rows: list[Any] = list(result.all())
    return {int(qid): int(n) for qid, n in rows}


def _cancel_values(now: datetime, comment: str) -> dict[str, Any]:
    tk = t.tasks
    return {
        "status": TaskStatus.FINISHED.value,
        "finish_result": "failed",
        "finish_comment": comment,
        "fence": tk.c.fence + 1,  # a running attempt's result will be refused
        "lease_owner": None,
        "lease_until": None,
        "finished_at": to_ms(now),
    }


def _canceled_data(comment: str) -> Callable[[int], dict[str, Any]]:
    return lambda attempt: {"result": "failed", "comment": comment, "attempts": attempt}


async def cancel(conn: Conn, task_id: int, now: datetime, comment: str) -> None:
    """Finish the task as failed with ``comment``; a running attempt loses its fence."""
    values = _cancel_values(now, comment)
    await transition(conn, task_id, now, values, EventType.TASK_CANCELED, _canceled_data(comment))


async def cancel_unfinished(conn: Conn, queue_id: int, now: datetime, comment: str) -> int:
    """:func:`cancel` every unfinished task of the queue, in two statements whatever their
    number; returns how many."""
    return len(await cancel_where(conn, [t.tasks.c.queue_id == queue_id], now, comment))


async def cancel_where(conn: Conn, where: list[Any], now: datetime, comment: str) -> list[int]:
    """:func:`cancel` every unfinished task matching ``where``, in two statements; returns
    their ids. "Unfinished" is tested on the row the UPDATE locks (PostgreSQL re-reads it after
    waiting for a worker's lock), so a task that finished meanwhile keeps its result."""
    unfinished = t.tasks.c.status != TaskStatus.FINISHED.value
    return await transition_where(
        conn,
        [*where, unfinished],
        now,
        _cancel_values(now, comment),
        EventType.TASK_CANCELED,
        _canceled_data(comment),
    )


async def transition(
    conn: Conn,
    task_id: int,
    now: datetime,
    values: dict[str, Any],
    event_type: EventType,
    data: Callable[[int], dict[str, Any]],
) -> None:
    """Change one task and record the event that says so, with the next sequence number.

    ``data`` makes the event's data from the task's attempt counter.
    """
    if not await transition_where(conn, [t.tasks.c.id == task_id], now, values, event_type, data):
        raise sa.exc.NoResultFound(f"no task {task_id}")


async def transition_where(
    conn: Conn,
    where: list[Any],
    now: datetime,
    values: dict[str, Any],
    event_type: EventType,
    data: Callable[[int], dict[str, Any]],
) -> list[int]:
    """:func:`transition` for every task matching ``where``, in two statements whatever their
    number (one UPDATE … RETURNING, one INSERT of their events); returns the ids changed."""
    tk = t.tasks
    rows = (
        await conn.execute(
            tk.update()
            .where(*where)
            .values(**values, event_seq=tk.c.event_seq + 1, updated_at=to_ms(now))
            .returning(tk.c.id, tk.c.client_id, tk.c.queue_id, tk.c.event_seq, tk.c.attempt)
        )
    ).all()
    if rows:
        await conn.execute(
            t.events.insert(),
            [
                {
                    "client_id": row.client_id,
                    "queue_id": row.queue_id,
                    "task_id": row.id,
                    "seq": row.event_seq,
                    "type": event_type.value,
                    "occurred_at": to_ms(now),
                    "data": data(row.attempt),
                }
                for row in rows
            ],
        )
    return [int(row.id) for row in rows]


async def release_delayed_to_hours(conn: Conn, queue_id: int, now: datetime) -> int:
    """The queue's calling hours changed: its tasks waiting for a window of the old hours
    (``delayed_interval``) are due now, and the next claim judges them by the new hours (moving
    them again if those are closed). Each gets a ``task.updated`` event saying why. Returns how
    many were released."""
    tk = t.tasks
    return len(await transition_where(
        conn,
        [tk.c.queue_id == queue_id, tk.c.status == TaskStatus.DELAYED_INTERVAL.value],
        now,
        {
            "status": sa.case(
                (tk.c.attempt > 0, TaskStatus.DELAYED.value), else_=TaskStatus.SCHEDULED.value
            ),
            "run_at": to_ms(now),
        },
        EventType.TASK_UPDATED,
        lambda attempt: {
            "reason": "calling hours changed", "run_at": now.isoformat(), "attempts": attempt,
        },
    ))  # fmt: skip


async def follow_queue_zone(conn: Conn, queue_id: int, zone: str | None) -> None:
    """The queue's calling hours changed: its unfinished tasks whose zone is the queue's
    (``timezone_source`` queue) take the new hours' zone (None: the queue has no hours)."""
    tk = t.tasks
    unfinished = [*PENDING_STATUSES, TaskStatus.EXECUTED.value]
    await conn.execute(
        tk.update()
        .where(
            tk.c.queue_id == queue_id,
            tk.c.status.in_(unfinished),
            tk.c.timezone_source == "queue",
        )
        .values(timezone=zone)
    )


class TaskFilters(TypedDict, total=False):
    """What a task list may be narrowed by (times: created / finished in [from, to))."""

    client_id: int | None
    queue_id: int | None
    status: str | None
    name: str | None
    kinds: Sequence[str] | None
    created_from: datetime | None
    created_to: datetime | None
    finished_from: datetime | None
    finished_to: datetime | None
    # the console's search: part of the name (any case), digits of a number in the task's data
    name_contains: str | None
    number: str | None


# A creation or finish window, or a name, matching at most this many tasks: its page is taken
# by sorting the matches (read through the window's or the name's index), not by walking ids in
# order until 100 match. The planners (PostgreSQL's, SQLite's) expect matches spread evenly over
# the ids, but a window's tasks sit together (ids rise with creation time): a window of the
# newest 10,000 tasks of a 1,000,000-task queue walked 990,000 ids (240 ms on PostgreSQL)
# where sorting its matches takes 2 ms. The total is counted first, so the choice is exact;
# past this many matches the walk finds 100 of them soon enough.
_SORT_MATCHES_UP_TO = 20_000
_SORTABLE_FILTERS = ("created_from", "created_to", "finished_from", "finished_to", "name")


async def _owns_queue(conn: Reader, filters: TaskFilters) -> bool:
    """Whether the filters' queue is the filters' client's (True when either is not given).

    With a queue, the client is tested here, once, rather than on every task: a task's client
    is always its queue's (``add_tasks`` checks it), and a test on every task would keep the
    per-queue indexes from answering alone (and costs per row scanned)."""
    queue_id, client_id = filters.get("queue_id"), filters.get("client_id")
    if queue_id is None or client_id is None:
        return True
    q = t.queues
    found = await conn.execute(
        sa.select(q.c.id).where(q.c.id == queue_id, q.c.client_id == client_id)
    )
    return found.first() is not None


def _client_queues(client_id: int | None) -> sa.Select[Any]:
    return sa.select(t.queues.c.id).where(t.queues.c.client_id == client_id)


def _status_count(queues: Any, status: str | None) -> sa.Select[Any]:
    """How many tasks of the queues ``queues`` selects have ``status`` (any status: None),
    from the counts the triggers keep."""
    sc = t.queue_status_counts
    return kept_count(queues) if status is None else kept_count(queues, sc.c.status == status)


def _client_count(client_id: int | None) -> sa.Select[Any]:
    """How many tasks the client has: the sum of its queues' counts (tasks never change
    client)."""
    return _status_count(t.queue_status_counts.c.queue_id.in_(_client_queues(client_id)), None)


#: the payload fields a number search looks at: a callback's A and B, a job's caller and callee
NUMBER_FIELDS = ("a_number", "b_number", "called_number", "calling_number")

#: the console's free-text searches (part of the name, digits of a number) read the newest this
#: many tasks stored (by id, every client's), not every task: a LIKE has no index to use
SEARCH_WINDOW = 50_000


def _task_filters(filters: TaskFilters) -> list[Any]:
    tk = t.tasks
    where: list[Any] = []
    queue_id, client_id = filters.get("queue_id"), filters.get("client_id")
    if queue_id is not None:  # tested once on the queue: _owns_queue
        client_id = None
    status = filters.get("status")
    if status in STATUS_LITERALS:  # a literal, so that a partial index may answer
        where.append(tk.c.status == STATUS_LITERALS[status])
        status = None
    for column, value in (
        (tk.c.client_id, client_id),
        (tk.c.queue_id, queue_id),
        (tk.c.status, status),
        (tk.c.name, filters.get("name")),
    ):
        if value is not None:
            where.append(column == value)
    kinds = filters.get("kinds")
    if kinds:
        where.append(tk.c.kind.in_(list(kinds)))
    text, number = filters.get("name_contains"), filters.get("number")
    if text or number:
        newest = sa.select(sa.func.max(tk.c.id)).scalar_subquery()
        where.append(tk.c.id > newest - SEARCH_WINDOW)
    if text:
        where.append(sa.func.lower(tk.c.name).contains(text.lower(), autoescape=True))
    if number:  # digits of one of the task's numbers (one field each: cheaper than the JSON text)
        where.append(
            sa.or_(*(
                tk.c.payload[field].as_string().contains(number, autoescape=True)
                for field in NUMBER_FIELDS
            ))
        )  # fmt: skip
    for column, low, high in (
        (tk.c.created_at, filters.get("created_from"), filters.get("created_to")),
        (tk.c.finished_at, filters.get("finished_from"), filters.get("finished_to")),
    ):
        if low is not None:
            where.append(column >= to_ms(low))
        if high is not None:
            where.append(column < to_ms(high))
    return where
