"""The store: every query ringback makes, for SQLite and PostgreSQL behind one interface.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (the database write lock) and are
serialised in-process by a lock; on PostgreSQL the claim locks queue rows (``FOR UPDATE SKIP
LOCKED``) while it counts running tasks against ``concurrent_task_limit``, so the limit holds
across processes and hosts. Every write after an attempt is fenced by the task's ``fence``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ringback.clock import Clock
from ringback.domain.calling_hours import CallingHours
from ringback.domain.model import (
    PENDING_STATUSES,
    EventType,
    RetryState,
    TaskKind,
    TaskStatus,
)
from ringback.domain.rows import QueueChanges  # shared row types
from ringback.domain.tasks import NewTask
from ringback.store import schema as t
from ringback.store.access import AccessMixin
from ringback.store.claims import CLAIM_COLUMNS, Claim, TaskResult, engine_sql, loads
from ringback.store.legs_sql import (
    AttemptLegs,
    LegWrite,
    attempt_legs_sql,
    call_values,
    close_legs_sql,
    dumps,
    legs_sql,
)
from ringback.store.listener import Listener
from ringback.store.migrations import MIGRATIONS, SCHEMA_MIGRATIONS_DDL
from ringback.store.numbers import NumbersMixin
from ringback.store.records import (
    CallRow,
    ClaimedTask,
    ClaimResult,
    Completion,
    Conflict,
    EventRow,
    NotFound,
    Progress,
    QueueRow,
    StatusReport,
    TaskRow,
    call_row,
    from_ms,
    to_ms,
)
from ringback.store.sqlite_writer import InlineConnection, SqliteWriter, sqlite_pragmas
from ringback.store.webhooks import WebhookMixin

NOTIFY_CHANNEL = "ringback_wake"
Conn = AsyncConnection | InlineConnection
_PENDING = list(PENDING_STATUSES)
_EXECUTED = TaskStatus.EXECUTED.value
# Status tests written as SQL literals, never bound parameters: a partial index is only used
# when the query repeats its predicate literally (SQLite, and PostgreSQL's generic plans).
IS_PENDING = t.tasks.c.status.in_([sa.literal_column(f"'{s}'") for s in PENDING_STATUSES])
IS_RUNNING = t.tasks.c.status == sa.literal_column(f"'{_EXECUTED}'")
_STATUS_LITERALS: dict[str, sa.ColumnElement[Any]] = {
    s.value: sa.literal_column(f"'{s.value}'") for s in TaskStatus
}


def normalise_url(url: str) -> str:
    """``sqlite:///x.db`` and ``postgresql://…`` to their asyncio drivers."""
    scheme = urlsplit(url).scheme
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite" + url[len(scheme) :]
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return "postgresql+asyncpg" + url[len(scheme) :]
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/ringback.db or "
        "postgresql://user@host:port/dbname"
    )


class Store(AccessMixin, WebhookMixin, NumbersMixin):
    """Open with :func:`open_store`; close with :meth:`close`."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        notify_channel: str = NOTIFY_CHANNEL,
        sqlite_writer: SqliteWriter | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.dialect = engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"
        self.notify_channel = notify_channel
        self.engine_sql = engine_sql(self.dialect, notify_channel)
        self.legs_sql = legs_sql(self.dialect)
        #: write transactions a worker may run at once (SQLite has one writer)
        self.parallel_writes = 1 if self.is_sqlite else 3
        self._sqlite_writer = sqlite_writer
        self._listeners: list[Callable[[], None]] = []

    # --- plumbing ---------------------------------------------------------------------------

    async def close(self) -> None:
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
        await self.engine.dispose()

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after this process commits new or changed work."""
        self._listeners.append(callback)

    def _woke(self) -> None:
        for callback in self._listeners:
            callback()

    @contextlib.asynccontextmanager
    async def _write(self, *, one_statement: bool = False) -> AsyncIterator[Conn]:
        """A write transaction: inline on SQLite (see sqlite_writer), pooled on PostgreSQL.

        ``one_statement``: the work is a single statement, which PostgreSQL runs as its own
        transaction (autocommit), saving the BEGIN and COMMIT round trips.
        """
        if self._sqlite_writer is not None:
            async with self._sqlite_writer.transaction() as inline:
                yield inline
            return
        if one_statement:
            async with self.engine.connect() as conn:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        async with self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: every statement in it sees the same snapshot (SQLite: the
        reader's ``BEGIN``; PostgreSQL: REPEATABLE READ), so a page and its total agree."""
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = await conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            yield conn

    async def listen(self, callback: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """Call ``callback`` when any process commits new work (PostgreSQL LISTEN/NOTIFY).

        On SQLite only this process's writes are seen (:meth:`on_wake`); workers also poll.
        Returns an async function that stops listening.
        """
        if self.is_sqlite:
            return _nothing
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        listener = Listener(dsn, self.notify_channel, callback)
        listener.start()  # kept up through outages; returns at once
        return listener.stop

    async def database_time(self) -> datetime | None:
        """The database server's clock now; None on SQLite, whose file is on this host and
        read by this host's processes only, so there is no other clock to follow."""
        if self.is_sqlite:
            return None
        async with self.engine.connect() as conn:
            found = (await conn.execute(sa.text("SELECT clock_timestamp()"))).scalar_one()
        return cast(datetime, found)

    async def _notify(self, conn: Conn) -> None:
        if not self.is_sqlite:
            await conn.execute(sa.select(sa.func.pg_notify(self.notify_channel, "")))

    # --- migrations -------------------------------------------------------------------------

    async def migrate(self, now: datetime) -> list[int]:
        """Apply the migrations this database lacks; returns their versions."""
        applied: list[int] = []
        async with self._write() as conn:
            if not self.is_sqlite:
                # one migrator at a time across processes
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(72517001)"))
            await conn.execute(sa.text(SCHEMA_MIGRATIONS_DDL))
            done = set((await conn.execute(sa.select(t.schema_migrations.c.version))).scalars())
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                for statement in migration.sql(self.dialect):
                    await conn.execute(sa.text(statement))
                await conn.execute(
                    t.schema_migrations.insert().values(
                        version=migration.version, name=migration.name, applied_at=to_ms(now)
                    )
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        async with self._read() as conn:
            try:
                version = (
                    await conn.execute(sa.select(sa.func.max(t.schema_migrations.c.version)))
                ).scalar()
            except sa.exc.DBAPIError:
                return 0
        return int(version or 0)

    # --- clients ----------------------------------------------------------------------------

    async def ensure_client(self, name: str, now: datetime) -> int:
        async with self._write() as conn:
            found = (
                await conn.execute(sa.select(t.clients.c.id).where(t.clients.c.name == name))
            ).scalar()
            if found is not None:
                return int(found)
            result = await conn.execute(
                t.clients.insert()
                .values(name=name, created_at=to_ms(now))
                .returning(t.clients.c.id)
            )
            return int(result.scalar_one())

    async def find_client(self, name: str) -> int:
        async with self._read() as conn:
            found = (
                await conn.execute(sa.select(t.clients.c.id).where(t.clients.c.name == name))
            ).scalar()
        if found is None:
            raise NotFound(f"no client named {name!r}")
        return int(found)

    # --- queues -----------------------------------------------------------------------------

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
    ) -> QueueRow:
        async with self._write() as conn:
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
                        rate_tokens=_burst(max_calls_per_second),
                        rate_updated_at=to_ms(now),
                        created_at=to_ms(now),
                        updated_at=to_ms(now),
                    )
                    .returning(t.queues.c.id)
                )
            ).scalar_one()
            if status == "on":
                await self._notify(conn)
        if status == "on":
            self._woke()
        return await self.get_queue(int(queue_id), client_id=client_id)

    async def ensure_queue(
        self, client_id: int, name: str, now: datetime, **fields: Any
    ) -> QueueRow:
        """The named queue, created with ``fields`` if it does not exist yet."""
        try:
            return await self.find_queue(client_id, name)
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
            values["rate_tokens"] = _burst(changes.max_calls_per_second)
            values["rate_updated_at"] = to_ms(now)
        if changes.calling_hours is not None or changes.clear_calling_hours:
            values["calling_hours"] = changes.calling_hours
        async with self._write() as conn:
            where = [t.queues.c.id == queue_id]
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
            await self._notify(conn)
        self._woke()
        return await self.get_queue(queue_id)

    async def get_queue(
        self, queue_id: int, *, client_id: int | None = None, pending: bool = True
    ) -> QueueRow:
        """The queue with its counters; ``pending=False`` leaves ``sched_task_count`` at 0
        (not counted: it costs a count over the queue's waiting tasks)."""
        rows = await self._queues([t.queues.c.id == queue_id], client_id, pending=pending)
        if not rows:
            raise NotFound(f"no queue {queue_id}")
        return rows[0]

    async def find_queue(self, client_id: int, name: str) -> QueueRow:
        rows = await self._queues([t.queues.c.name == name], client_id)
        if not rows:
            raise NotFound(f"no queue named {name!r}")
        return rows[0]

    async def list_queues(self, client_id: int | None = None) -> list[QueueRow]:
        return await self._queues([], client_id)

    async def _queues(
        self, where: list[Any], client_id: int | None, *, pending: bool = True
    ) -> list[QueueRow]:
        q = t.queues
        where = [*where, q.c.deleted_at.is_(None)]
        if client_id is not None:
            where.append(q.c.client_id == client_id)
        tk = t.tasks

        def count(*conditions: Any) -> Any:  # per queue, through the (partial) indexes
            return (
                sa.select(sa.func.count())
                .select_from(tk)
                .where(tk.c.queue_id == q.c.id, *conditions)
                .scalar_subquery()
            )

        stmt = (
            sa.select(
                q,
                sa.select(t.queue_task_counts.c.n)  # kept by triggers (migration 3)
                .where(t.queue_task_counts.c.queue_id == q.c.id)
                .scalar_subquery()
                .label("task_count"),
                (count(IS_PENDING) if pending else sa.literal(0)).label("sched"),
                count(IS_RUNNING).label("running"),
            )
            .where(*where)
            .order_by(q.c.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_queue_row(row) for row in rows]

    async def delete_queue(
        self, queue_id: int, now: datetime, *, force: bool = False, client_id: int | None = None
    ) -> int:
        """Delete a queue; with ``force`` its unfinished tasks are canceled first.

        Finished tasks keep their history, so the queue row stays, marked deleted and renamed
        (its name is free again); it no longer shows anywhere. Returns the tasks canceled.
        """
        q, tk = t.queues, t.tasks
        async with self._write() as conn:
            where = [q.c.id == queue_id, q.c.deleted_at.is_(None)]
            if client_id is not None:
                where.append(q.c.client_id == client_id)
            name = (await conn.execute(sa.select(q.c.name).where(*where))).scalar()
            if name is None:
                raise NotFound(f"no queue {queue_id}")
            unfinished = (
                (
                    await conn.execute(
                        sa.select(tk.c.id).where(
                            tk.c.queue_id == queue_id, tk.c.status != "finished"
                        )
                    )
                )
                .scalars()
                .all()
            )
            if unfinished and not force:
                raise Conflict(
                    f"queue {queue_id} has {len(unfinished)} unfinished tasks: cancel them "
                    "first, or delete with force=true to cancel them"
                )
            for task_id in unfinished:
                await self._cancel(conn, task_id, now, "canceled: queue deleted")
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
        return len(unfinished)

    # --- tasks ------------------------------------------------------------------------------

    async def add_tasks(
        self, client_id: int, queue_id: int, new_tasks: Sequence[NewTask], now: datetime
    ) -> list[int]:
        """Store tasks (all or nothing) with their ``task.created`` events."""
        if not new_tasks:
            return []
        async with self._write() as conn:
            ids = await self.engine_sql.add_tasks(
                conn, client_id, queue_id, new_tasks, to_ms(now)
            )  # on PostgreSQL with the wake-up
            if ids is None:
                raise NotFound(f"no queue {queue_id}")
        self._woke()
        return ids

    async def get_task(self, task_id: int, *, client_id: int | None = None) -> TaskRow:
        where = [t.tasks.c.id == task_id]
        if client_id is not None:
            where.append(t.tasks.c.client_id == client_id)
        rows = await self._tasks(where, limit=1)
        if not rows:
            raise NotFound(f"no task {task_id}")
        return rows[0]

    async def tasks_by_ids(self, ids: Sequence[int]) -> list[TaskRow]:
        if not ids:
            return []
        return await self._tasks([t.tasks.c.id.in_(list(ids))], limit=len(ids))

    async def list_tasks(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[TaskFilters]
    ) -> list[TaskRow]:
        async with self._read() as conn:
            if not await _owns_queue(conn, filters):
                return []
            return await self._tasks(_task_filters(filters), limit=limit, offset=offset, conn=conn)

    async def page_tasks(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[TaskFilters]
    ) -> tuple[list[TaskRow], int]:
        """One page of tasks and how many match in all, read from one snapshot, so that the
        total agrees with the page even while workers finish tasks."""
        where = _task_filters(filters)
        queue_id = filters.get("queue_id")
        narrowing = {k for k, v in filters.items() if v and k not in ("client_id", "queue_id")}
        if queue_id is not None and not narrowing:
            # the queue's count, kept by triggers: exact, and read in the same snapshot
            qc = t.queue_task_counts
            stmt = sa.select(sa.func.coalesce(sa.func.max(qc.c.n), 0)).where(
                qc.c.queue_id == queue_id
            )
        elif queue_id is not None and narrowing == {"status"} and self.is_sqlite:
            # the count of one status of the queue, kept by triggers on SQLite (migration 8)
            sc = t.queue_status_counts
            stmt = sa.select(sa.func.coalesce(sa.func.max(sc.c.n), 0)).where(
                sc.c.queue_id == queue_id, sc.c.status == filters["status"]
            )
        else:
            stmt = sa.select(sa.func.count()).select_from(t.tasks).where(*where)
        async with self._read() as conn:
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
                    where, limit=limit, offset=offset, conn=conn, sort_matches=sort
                )
            else:  # nearer the end: skip fewer rows, counting back from the last one
                left = total - offset
                rows = await self._tasks(
                    where, limit=min(limit, left), offset=max(0, left - limit), conn=conn,
                    from_end=True, sort_matches=sort,
                )  # fmt: skip
        return rows, total

    async def update_task(
        self, task_id: int, client_id: int, task: NewTask, now: datetime
    ) -> TaskRow:
        """Replace a waiting task's fields (not its kind); refused once it runs or finished."""
        tk = t.tasks
        async with self._write() as conn:
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
            await self._transition(
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
                    "start_time_utc": _opt_ms(task.start_time_utc),
                    "timezone": task.timezone,
                    "max_tries": task.max_tries,
                    "max_caller_tries": task.max_caller_tries,
                    "backoff": task.backoff,
                    "caller_pause_s": task.caller_pause_s,
                },
                EventType.TASK_UPDATED,
                lambda attempt: {"run_at": task.run_at.isoformat(), "attempts": attempt},
            )
            await self._notify(conn)
        self._woke()
        return await self.get_task(task_id, client_id=client_id)

    async def _tasks(
        self,
        where: list[Any],
        *,
        limit: int,
        offset: int = 0,
        conn: AsyncConnection | None = None,
        from_end: bool = False,
        sort_matches: bool = False,
    ) -> list[TaskRow]:
        """Tasks matching ``where`` by id (read on ``conn`` when given, to share its snapshot);
        ``from_end``: ``offset`` counts back from the last one (the page is still by id);
        ``sort_matches``: every match is read through the filters' index and sorted, rather
        than walking ids in order until the page is full."""
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
                conn = await stack.enter_async_context(self._read())
            rows = (await conn.execute(stmt)).all()
            queue_ids = {row.queue_id for row in rows}
            running = await self._running(conn, queue_ids) if queue_ids else {}
        now_ms = to_ms(self.clock.now())
        return [_task_row(row, running.get(row.queue_id, 0), now_ms) for row in rows]

    async def _running(self, conn: Conn, queue_ids: Iterable[int]) -> dict[int, int]:
        tk = t.tasks
        result = await conn.execute(
            sa.select(tk.c.queue_id, sa.func.count())
            .where(IS_RUNNING, tk.c.queue_id.in_(list(queue_ids)))
            .group_by(tk.c.queue_id)
        )
        return {int(qid): int(n) for qid, n in result.all()}

    async def cancel_task(
        self, task_id: int, now: datetime, *, client_id: int | None = None
    ) -> bool:
        """Finish the task as failed / ``canceled``. False if it had already finished.

        A running attempt loses its fence: its result is refused when it comes back.
        """
        async with self._write() as conn:
            where = [t.tasks.c.id == task_id]
            if client_id is not None:
                where.append(t.tasks.c.client_id == client_id)
            status = (
                await conn.execute(sa.select(t.tasks.c.status).where(*where).with_for_update())
            ).scalar()
            if status is None:
                raise NotFound(f"no task {task_id}")
            if status == TaskStatus.FINISHED.value:
                return False
            await self._cancel(conn, task_id, now, "canceled")
        return True

    async def _cancel(self, conn: Conn, task_id: int, now: datetime, comment: str) -> None:
        tk = t.tasks
        await self._transition(
            conn,
            task_id,
            now,
            {
                "status": TaskStatus.FINISHED.value,
                "finish_result": "failed",
                "finish_comment": comment,
                "fence": tk.c.fence + 1,  # a running attempt's result will be refused
                "lease_owner": None,
                "lease_until": None,
                "finished_at": to_ms(now),
            },
            EventType.TASK_CANCELED,
            lambda attempt: {"result": "failed", "comment": comment, "attempts": attempt},
        )

    async def _transition(
        self,
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
        tk = t.tasks
        row = (
            await conn.execute(
                tk.update()
                .where(tk.c.id == task_id)
                .values(**values, event_seq=tk.c.event_seq + 1, updated_at=to_ms(now))
                .returning(tk.c.client_id, tk.c.queue_id, tk.c.event_seq, tk.c.attempt)
            )
        ).one()
        await conn.execute(
            t.events.insert().values(
                client_id=row.client_id,
                queue_id=row.queue_id,
                task_id=task_id,
                seq=row.event_seq,
                type=event_type.value,
                occurred_at=to_ms(now),
                data=data(row.attempt),
            )
        )

    # --- the engine's side ------------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        now: datetime,
        limit: int,
        lease_seconds: float,
        *,
        lookahead_seconds: float = 0.0,
    ) -> ClaimResult:
        """Take up to ``limit`` tasks due by ``now + lookahead``, oldest first, within every
        queue's limits.

        Queues are taken in turn, least recently called first. On PostgreSQL each queue row is
        locked (skipped if another worker holds it) before its running tasks are counted, so
        ``concurrent_task_limit`` holds across processes and hosts.
        """
        now_ms = to_ms(now)
        due_ms = now_ms + int(lookahead_seconds * 1000)
        lease = now_ms + int(lease_seconds * 1000)
        ops = self.engine_sql
        claimed: list[ClaimedTask] = []
        delayed = 0
        rate_wait: int | None = None
        async with self._write() as conn:
            for queue in await ops.due_queues(conn, due_ms):
                queue_id, queue_limit, rate = queue[0], queue[1], queue[2]
                redial = bool(queue[6])
                calling_hours = loads(queue[5]) if queue[5] else None
                want = limit - len(claimed)
                tokens = None
                if rate:
                    tokens = _refill(rate, queue[3], queue[4], now_ms)
                    want = min(want, math.floor(tokens))
                    if want <= 0:
                        wait_ms = now_ms + math.ceil((1 - tokens) / rate * 1000)
                        rate_wait = wait_ms if rate_wait is None else min(rate_wait, wait_ms)
                        continue
                claim = Claim(queue_id, queue_limit, now_ms, due_ms, want, owner, lease, tokens)
                if calling_hours:
                    rows, moved = await self._claim_in_hours(conn, claim, calling_hours, now)
                    delayed += moved
                else:
                    rows = await ops.claim_due(conn, claim)
                claimed.extend(_claimed(row, queue_id, redial) for row in rows)
                if len(claimed) >= limit:
                    break
            next_due = None
            if len(claimed) < limit:  # else the worker claims again at once
                next_due = (await conn.execute(_next_due_query())).scalar()
        return ClaimResult(
            tasks=claimed,
            delayed=delayed,
            next_due=from_ms(next_due),
            rate_limited_until=from_ms(rate_wait),
            blocked=len(claimed) < limit
            and next_due is not None
            and next_due <= due_ms
            and rate_wait is None,
        )

    async def _claim_in_hours(
        self, conn: Conn, claim: Claim, calling_hours: dict[str, Any], now: datetime
    ) -> tuple[list[Any], int]:
        """Claim the due tasks whose calling hours are open; move the others to their window."""
        ops = self.engine_sql
        room = min(claim.want, claim.queue_limit - await ops.running(conn, claim.queue_id))
        if room <= 0:
            return [], 0
        hours = CallingHours.parse(calling_hours)
        open_ids, moved = [], 0
        for task_id, timezone in await ops.candidates(conn, claim.queue_id, claim.due_ms, room):
            if hours.is_open(now, timezone):
                open_ids.append(task_id)
            else:
                await self._delay_to_window(conn, task_id, hours.next_opening(now, timezone), now)
                moved += 1
        rows = await ops.claim_ids(conn, claim, open_ids) if open_ids else []
        if rows or claim.tokens is not None:
            await ops.touch_queue(conn, claim, len(rows))
        return rows, moved

    async def _delay_to_window(
        self, conn: Conn, task_id: int, opening: datetime, now: datetime
    ) -> None:
        await self._transition(
            conn,
            task_id,
            now,
            {"status": TaskStatus.DELAYED_INTERVAL.value, "run_at": to_ms(opening)},
            EventType.TASK_DELAYED,
            lambda _: {"reason": "outside calling hours", "run_at": opening.isoformat()},
        )

    async def complete(self, completions: Sequence[Completion]) -> list[bool]:
        """Apply attempt results whose fence still holds; returns which were applied."""
        if not completions:
            return []
        now_ms = to_ms(self.clock.now())
        results = [_task_result(c, now_ms) for c in completions]
        async with self._write(one_statement=True) as conn:
            accepted = await self.engine_sql.complete(conn, results, now_ms)
        return [c.task_id in accepted for c in completions]

    async def record_progress(self, items: Sequence[Progress]) -> list[bool]:
        """Write events of attempts still running, if their fence holds."""
        if not items:
            return []
        async with self._write(one_statement=True) as conn:
            accepted = await self.engine_sql.progress(
                conn, [(p.task_id, p.fence, p.events) for p in items]
            )
        return [p.task_id in accepted for p in items]

    async def heartbeat(
        self, owner: str, now: datetime, lease_seconds: float, task_ids: Sequence[int]
    ) -> int:
        """Extend the leases of these tasks, which this worker runs, in one statement.

        Only the tasks the worker knows it runs: a claim that committed while its reply was
        lost (the database went away at that moment) leaves tasks leased to a worker that
        never started them; their lease must run out so that a reaper gives them back."""
        tk = t.tasks
        async with self._write() as conn:
            result = await conn.execute(
                tk.update()
                .where(tk.c.id.in_(list(task_ids)), tk.c.lease_owner == owner, IS_RUNNING)
                .values(lease_until=to_ms(now) + int(lease_seconds * 1000))
            )
        return int(result.rowcount)

    async def write_legs(self, writes: Sequence[LegWrite]) -> set[str]:
        """Store call legs as they are opened, answered and ended (see ``legs_sql``).

        Returns the leg_uuids of the opens accepted: a leg may be dialled only once its open
        was accepted (the task is still this worker's).
        """
        if not writes:
            return set()
        async with self._write(one_statement=True) as conn:
            return await self.legs_sql.write(conn, writes)

    async def reap(
        self,
        now: datetime,
        judge: Callable[[ClaimedTask, AttemptLegs], Completion],
        limit: int = 500,
    ) -> int:
        """Send running tasks whose lease ran out (their worker is presumed dead) down the
        retry path, in one transaction: each is judged on the legs its attempt stored, and
        those legs still open are closed as ``interrupted``. Returns how many were reaped.

        On PostgreSQL the reaped rows are locked ``FOR UPDATE``: a leg being opened for one of
        them either committed first (and is judged) or fails (and is never dialled).
        """
        tk, q = t.tasks, t.queues
        columns = [tk.c[name.strip()] for name in CLAIM_COLUMNS.split(",")]
        now_ms = to_ms(now)
        query = (
            sa.select(*columns, tk.c.queue_id, q.c.redial_interrupted)
            .join(q, q.c.id == tk.c.queue_id)
            .where(IS_RUNNING, tk.c.lease_until < now_ms)
            .order_by(tk.c.lease_until)
            .limit(limit)
        )
        if not self.is_sqlite:
            query = query.with_for_update(of=tk, skip_locked=True)
        async with self._write() as conn:
            rows: list[Any] = list((await conn.execute(query)).all())
            if not rows:
                return 0
            expired = [_claimed(row[:-2], row[-2], bool(row[-1])) for row in rows]
            ids = dumps([task.id for task in expired])
            legs: list[Any] = list(
                await conn.exec_driver_sql(attempt_legs_sql(self.dialect), (ids,))
            )
            stored = {leg[0]: AttemptLegs(int(leg[1]), bool(leg[2])) for leg in legs}
            completions = [judge(task, stored.get(task.id, AttemptLegs())) for task in expired]
            results = [_task_result(c, now_ms) for c in completions]
            accepted = await self.engine_sql.complete(conn, results, now_ms)
            if accepted:
                closing = dumps(sorted(accepted))
                await conn.exec_driver_sql(close_legs_sql(self.dialect), (closing,))
        return len(accepted)

    async def release(self, owner: str, task_ids: Sequence[int], now: datetime) -> int:
        """Hand back claimed tasks whose attempt never started (shutdown): attempt given back."""
        if not task_ids:
            return 0
        tk = t.tasks
        async with self._write() as conn:
            result = await conn.execute(
                tk.update()
                .where(tk.c.id.in_(list(task_ids)), tk.c.lease_owner == owner, IS_RUNNING)
                .values(
                    status=sa.case((tk.c.attempt > 1, "delayed"), else_="scheduled"),
                    attempt=tk.c.attempt - 1,
                    fence=tk.c.fence + 1,
                    lease_owner=None,
                    lease_until=None,
                    run_at=to_ms(now),
                    updated_at=to_ms(now),
                )
            )
            await self._notify(conn)
        return int(result.rowcount)

    # --- reading history --------------------------------------------------------------------

    async def events_for_task(self, task_id: int) -> list[EventRow]:
        ev = t.events
        async with self._read() as conn:
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
        async with self._read() as conn:
            rows = (await conn.execute(_legs().where(*where).order_by(c.c.id).limit(limit))).all()
        return [call_row(row) for row in rows]

    async def calls_of(self, call_uuids: Sequence[str]) -> list[CallRow]:
        """Every leg of these calls, in the order they were stored."""
        if not call_uuids:
            return []
        c = t.calls
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    _legs().where(c.c.call_uuid.in_(list(call_uuids))).order_by(c.c.id)
                )
            ).all()
        return [call_row(row) for row in rows]

    async def calls_for_tasks(self, task_ids: Sequence[int]) -> dict[int, list[CallRow]]:
        """The legs of every attempt of these tasks, by task id."""
        found: dict[int, list[CallRow]] = {task_id: [] for task_id in task_ids}
        if not task_ids:
            return found
        c = t.calls
        async with self._read() as conn:
            rows = (
                await conn.execute(_legs().where(c.c.task_id.in_(list(task_ids))).order_by(c.c.id))
            ).all()
        for row in rows:
            found[row.task_id].append(call_row(row))
        return found

    async def status_report(self, now: datetime, client_id: int | None = None) -> StatusReport:
        tk = t.tasks
        where = [tk.c.client_id == client_id] if client_id is not None else []
        async with self._read() as conn:
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
            next_due = (await conn.execute(_next_due_query(client_id))).scalar()
        for result, n in finished.items():
            counts[f"finished/{result}"] = n
        return StatusReport(
            counts=counts,
            in_flight=counts.get(_EXECUTED, 0),
            next_due=from_ms(next_due),
            queues=await self.list_queues(client_id),
        )


# --- helpers ----------------------------------------------------------------------------------


def _next_due_query(client_id: int | None = None) -> sa.Select[Any]:
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


async def _nothing() -> None:
    return None


def _burst(rate: float | None) -> float:
    return max(1.0, rate) if rate else 0.0


def _refill(rate: float, tokens: float, updated_at: int, now_ms: int) -> float:
    elapsed = max(0, now_ms - int(updated_at)) / 1000
    return float(min(_burst(rate), float(tokens) + elapsed * rate))


def _claimed(row: Sequence[Any], queue_id: int, redial_interrupted: bool = False) -> ClaimedTask:
    """A row of ``CLAIM_COLUMNS`` (values after the claim) as a ClaimedTask."""
    (task_id, client_id, kind_name, payload, attempt, fence, event_seq, run_at, _tz, tries_used,
     caller_tries_used, max_tries, max_caller_tries, backoff, caller_pause_s) = row  # fmt: skip
    kind = TaskKind(kind_name)
    return ClaimedTask(
        id=task_id,
        client_id=client_id,
        queue_id=queue_id,
        kind=kind,
        payload=loads(payload),
        attempt=attempt,
        fence=fence,
        event_seq=event_seq,
        run_at=datetime.fromtimestamp(run_at / 1000, UTC),
        retry=RetryState(
            kind=kind,
            attempt=attempt,
            tries_used=tries_used,
            caller_tries_used=caller_tries_used,
            max_tries=max_tries,
            max_caller_tries=max_caller_tries,
            backoff=loads(backoff),
            caller_pause_s=caller_pause_s,
            event_seq=event_seq,
            redial_interrupted=redial_interrupted,
        ),
    )


def _task_result(completion: Completion, now_ms: int) -> TaskResult:
    decision = completion.decision
    finished = decision.status is TaskStatus.FINISHED
    result = decision.finish_result
    return TaskResult(
        task_id=completion.task_id,
        fence=completion.fence,
        expired_before=_opt_ms(completion.expired_before),
        status=decision.status.value,
        run_at=_opt_ms(decision.run_at),
        tries_used=decision.tries_used,
        caller_tries_used=decision.caller_tries_used,
        attempt=decision.attempt,
        finish_result=result.value if finished and result else None,
        finish_comment=decision.finish_comment,
        cdr=completion.cdr,
        finished_at=now_ms if finished else None,
        events=completion.events,
        calls=[
            call_values(rec, completion.attempt or decision.attempt) for rec in completion.calls
        ],
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


# A creation or finish window, or a name, matching at most this many tasks: its page is taken
# by sorting the matches (read through the window's or the name's index), not by walking ids in
# order until 100 match. The planners (PostgreSQL's, SQLite's) expect matches spread evenly over
# the ids, but a window's tasks sit together (ids rise with creation time): a window of the
# newest 10,000 tasks of a 1,000,000-task queue walked 990,000 ids (240 ms on PostgreSQL)
# where sorting its matches takes 2 ms. The total is counted first, so the choice is exact;
# past this many matches the walk finds 100 of them soon enough.
_SORT_MATCHES_UP_TO = 20_000
_SORTABLE_FILTERS = ("created_from", "created_to", "finished_from", "finished_to", "name")


async def _owns_queue(conn: AsyncConnection, filters: TaskFilters) -> bool:
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


def _task_filters(filters: TaskFilters) -> list[Any]:
    tk = t.tasks
    where: list[Any] = []
    queue_id, client_id = filters.get("queue_id"), filters.get("client_id")
    if queue_id is not None:  # tested once on the queue: _owns_queue
        client_id = None
    status = filters.get("status")
    if status in _STATUS_LITERALS:  # a literal, so that a partial index may answer
        where.append(tk.c.status == _STATUS_LITERALS[status])
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
    for column, low, high in (
        (tk.c.created_at, filters.get("created_from"), filters.get("created_to")),
        (tk.c.finished_at, filters.get("finished_from"), filters.get("finished_to")),
    ):
        if low is not None:
            where.append(column >= to_ms(low))
        if high is not None:
            where.append(column < to_ms(high))
    return where


def _opt_ms(when: datetime | None) -> int | None:
    return None if when is None else to_ms(when)


def _queue_row(row: Row[Any]) -> QueueRow:
    return QueueRow(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        comment=row.comment,
        status=row.status,
        concurrent_task_limit=row.concurrent_task_limit,
        max_calls_per_second=row.max_calls_per_second,
        calling_hours=row.calling_hours,
        redial_interrupted=bool(row.redial_interrupted),
        last_call_at=from_ms(row.last_call_at),
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        task_count=int(row.task_count or 0),
        sched_task_count=int(row.sched or 0),
        running_count=int(row.running or 0),
    )


def _task_row(row: Row[Any], running: int, now_ms: int) -> TaskRow:
    status, blocked = row.status, None
    if status in PENDING_STATUSES:
        if row.queue_status == "off":
            blocked = "queue_off"
        elif row.run_at <= now_ms and running >= row.concurrent_task_limit:
            status = TaskStatus.DELAYED_CONCURRENT_TASK.value
            blocked = "concurrent_task_limit"
        elif status == TaskStatus.DELAYED_INTERVAL.value:
            blocked = "calling_hours"
    return TaskRow(
        id=row.id,
        client_id=row.client_id,
        queue_id=row.queue_id,
        kind=TaskKind(row.kind),
        name=row.name,
        payload=row.payload,
        status=status,
        stored_status=row.status,
        blocked_reason=blocked,
        run_at=from_ms(row.run_at),  # type: ignore[arg-type]
        start_time_utc=from_ms(row.start_time_utc),
        timezone=row.timezone,
        max_tries=row.max_tries,
        tries_used=row.tries_used,
        max_caller_tries=row.max_caller_tries,
        caller_tries_used=row.caller_tries_used,
        backoff=row.backoff,
        caller_pause_s=row.caller_pause_s,
        attempt=row.attempt,
        finish_result=row.finish_result,
        finish_comment=row.finish_comment,
        cdr=row.cdr,
        lease_owner=row.lease_owner,
        lease_until=from_ms(row.lease_until),
        fence=row.fence,
        event_seq=row.event_seq,
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        first_attempt_at=from_ms(row.first_attempt_at),
        last_attempt_at=from_ms(row.last_attempt_at),
        finished_at=from_ms(row.finished_at),
        webhooks=row.webhooks,
    )


def _legs() -> sa.Select[Any]:
    """Call legs with the kind of the task that placed them (None for calls of no task)."""
    c, tk = t.calls, t.tasks
    return sa.select(c, tk.c.kind.label("task_kind")).select_from(
        c.outerjoin(tk, tk.c.id == c.c.task_id)
    )


# --- opening ----------------------------------------------------------------------------------


async def open_store(
    url: str,
    clock: Clock,
    *,
    migrate: bool = False,
    notify_channel: str = NOTIFY_CHANNEL,
    search_path: str | None = None,
) -> Store:
    """Open a store; with ``migrate`` also apply pending migrations."""
    async_url = normalise_url(url)
    writer = None
    if async_url.startswith("sqlite"):
        engine = create_async_engine(async_url, pool_size=4, max_overflow=4)
        _sqlite_reader_setup(engine)
        sync_url = "sqlite" + async_url[len("sqlite+aiosqlite") :]
        writer = SqliteWriter(sync_url, sa.engine.make_url(sync_url).database or ":memory:")
    else:
        connect_args: dict[str, Any] = {}
        if search_path:
            connect_args["server_settings"] = {"search_path": search_path}
        engine = create_async_engine(
            async_url, pool_size=5, max_overflow=10, connect_args=connect_args
        )
    store = Store(engine, clock, notify_channel=notify_channel, sqlite_writer=writer)
    if migrate:
        await store.migrate(clock.now())
    return store


def _sqlite_reader_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        sqlite_pragmas(dbapi_connection, busy_timeout_ms=10_000)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")  # a read snapshot; writes go through the SqliteWriter
