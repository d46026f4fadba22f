"""The PostgreSQL driver: pooled connections, LISTEN/NOTIFY, the server's clock, and
PostgreSQL's own SQL of the claims, the legs and the webhook deliveries.

Claims lock queue rows (``FOR UPDATE SKIP LOCKED``) while they count running tasks against
``concurrent_task_limit``, so the limit holds across processes and hosts. Each step of the
engine is one round trip: data-modifying CTEs, batches passed as one JSON document
(``jsonb_to_recordset``). Commits that make work wake the other processes (``pg_notify``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from ringback.clock import Clock
from ringback.domain.audit import Actor
from ringback.domain.model import NewEvent
from ringback.domain.task_rules import SEED_URL_FIELDS, NewTask
from ringback.store import audit
from ringback.store import claims as cl
from ringback.store.claims import Claim, TaskResult
from ringback.store.driver import Conn
from ringback.store.legs_sql import dumps, ms
from ringback.store.listener import Listener
from ringback.store.migrations import Migration
from ringback.store.pg_direct import DirectConnections
from ringback.store.postgres_legs import STILL_RUNNING, PostgresLegs, call_doc
from ringback.store.suppressions import UPSERT_CONFLICT
from ringback.store.webhooks import (
    CLAIM_FROM,
    CLAIM_RETURNING,
    CLAIM_WHERE,
    FINISH_COLUMNS,
    FINISH_SET,
    NEW_DELIVERY_COLUMNS,
)

DIALECT = "postgresql"
SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
_CLAIM_DELIVERIES = (
    f"WITH picked AS (SELECT d.id {CLAIM_FROM} WHERE "
    + CLAIM_WHERE.format(now="$1")
    + " ORDER BY d.next_attempt_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED) "
    "UPDATE webhook_deliveries w SET lease_owner = $3, lease_until = $4, fence = w.fence + 1, "
    "updated_at = $1 FROM picked WHERE w.id = picked.id RETURNING "
    + ", ".join("w." + col.strip() for col in CLAIM_RETURNING.split(","))
)


def _unnest(first: int, alias: str, columns: Sequence[str], types: Sequence[str]) -> str:
    """``unnest($first::type[], …) AS alias(columns)``: a batch whose columns travel as one
    array parameter each, from ``$first`` on (see :func:`_in_columns`)."""
    arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(types, start=first))
    names = ", ".join(column for column, _ in zip(columns, types, strict=True))
    return f"unnest({arrays}) AS {alias}({names})"


# a batch of deliveries, or of outcomes, in one statement (the types of their columns)
_NEW_DELIVERY_TYPES = ("bigint", "bigint", "bigint", "integer", "text", "text", "text", "bigint",
                       "text", "text")  # fmt: skip
_FINISH_TYPES = ("bigint", "bigint", "text", "bigint", "integer", "text", "text")
_INSERT_DELIVERIES = (
    f"INSERT INTO webhook_deliveries ({', '.join(NEW_DELIVERY_COLUMNS)}, status, attempts, "
    "next_attempt_at, created_at, updated_at) "
    f"SELECT {', '.join('u.' + c for c in NEW_DELIVERY_COLUMNS)}, 'pending', 0, $1, $1, $1 "
    "FROM "
    + _unnest(2, "u", NEW_DELIVERY_COLUMNS, _NEW_DELIVERY_TYPES)
    + " ON CONFLICT (event_id, target_key) DO NOTHING"
)
_FINISH_DELIVERIES = (
    f"UPDATE webhook_deliveries SET {FINISH_SET.format(now='$1')} FROM "
    + _unnest(2, "r", FINISH_COLUMNS, _FINISH_TYPES)
    + " WHERE webhook_deliveries.id = r.id AND webhook_deliveries.fence = r.fence "
    "AND webhook_deliveries.status = 'pending'"
)

_COMPACT_STATUS_COUNTS = (
    "WITH gone AS (DELETE FROM queue_status_counts RETURNING queue_id, status, n) "
    "INSERT INTO queue_status_counts (queue_id, status, n) SELECT queue_id, status, sum(n) "
    "FROM gone GROUP BY queue_id, status HAVING sum(n) <> 0"
)

# one statement per batch: the columns travel as arrays
_UPSERT_SUPPRESSIONS = (
    "INSERT INTO suppressions (client_id, list_name, number, prefix, source, expires_at, "
    "created_at) SELECT $1, u.l, u.n, u.p, u.s, u.e, $2 FROM "
    + _unnest(3, "u", "lnpse", ("text", "text", "boolean", "text", "bigint"))
    + f" {UPSERT_CONFLICT}"
)


def open_driver(
    url: str, clock: Clock, *, notify_channel: str, search_path: str | None = None
) -> PostgresDriver | None:
    """The driver of a ``postgresql://user@host:port/dbname`` URL; None for another's."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        return None
    settings = {"search_path": search_path} if search_path else {}
    engine = create_async_engine(
        "postgresql+asyncpg" + url[len(scheme) :],
        pool_size=5,
        max_overflow=10,
        connect_args={"server_settings": settings} if settings else {},
    )
    return PostgresDriver(engine, clock, notify_channel, server_settings=settings)


class PostgresDriver:
    """See the module docstring."""

    parallel_writes = 3

    def __init__(
        self, engine: AsyncEngine, clock: Clock, notify_channel: str,
        *, server_settings: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.notify_channel = notify_channel
        self.claims = PostgresClaims(notify_channel)
        self.legs = PostgresLegs()
        self._clock = clock
        self.direct = DirectConnections(self._dsn(), server_settings=server_settings)

    def _dsn(self) -> str:
        """The URL for asyncpg itself (the listener, the direct connections)."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @contextlib.asynccontextmanager
    async def write(self, *, one_statement: bool = False) -> AsyncIterator[Conn]:
        """Pooled; ``one_statement`` runs as its own transaction (autocommit), saving the
        BEGIN and COMMIT round trips."""
        if one_statement:
            async with self.engine.connect() as conn:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        async with self.engine.begin() as conn:
            yield conn
            await audit.flush(conn)  # the change's audit entries, if the service named some

    @contextlib.asynccontextmanager
    async def read(self, *, one_statement: bool = False) -> AsyncIterator[AsyncConnection]:
        """REPEATABLE READ, read-only: a page and its total agree; ``one_statement`` (a single
        statement sees one snapshot by itself) saves the BEGIN and ROLLBACK round trips."""
        async with self.engine.connect() as conn:
            if one_statement:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
                return
            yield await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )

    def intake(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        """A direct connection (``store/pg_direct.py``): no SQLAlchemy between the add and
        asyncpg; each statement its own transaction."""
        return self.direct.connection()

    async def lookup(self, statement: Any, parameters: Any = None) -> Sequence[Any]:
        """On a pooled connection in autocommit: the statement alone, no BEGIN or ROLLBACK."""
        async with self.read(one_statement=True) as conn:
            return (await conn.execute(statement, parameters)).all()

    async def close(self) -> None:
        await self.direct.close()
        await self.engine.dispose()

    async def notify(self, conn: Conn) -> None:
        await conn.execute(sa.select(sa.func.pg_notify(self.notify_channel, "")))

    async def listen(self, callback: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        listener = Listener(self._dsn(), self.notify_channel, callback, self._clock)
        listener.start()  # kept up through outages; returns at once
        return listener.stop

    async def compact_status_counts(self) -> None:
        """One row per (queue, status) for the changes committed so far (migration 20); the
        changes appended meanwhile stay for the next time. Two at once are safe: a row is
        deleted, and its change summed, by one of them only."""
        async with self.write(one_statement=True) as conn:
            await conn.exec_driver_sql(_COMPACT_STATUS_COUNTS)

    async def database_time(self) -> datetime | None:
        async with self.engine.connect() as conn:
            found = (await conn.execute(sa.text("SELECT clock_timestamp()"))).scalar_one()
        return cast(datetime, found)

    async def upsert_suppressions(
        self, conn: Conn, client_id: int, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        await _in_columns(conn, _UPSERT_SUPPRESSIONS, rows, client_id, now_ms)

    async def lock_migrations(self, conn: Conn) -> None:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(72517001)"))

    def migration_sql(self, migration: Migration) -> list[str]:
        return migration.sql(DIALECT)

    def insert_ignoring(self, table: sa.Table, keys: Sequence[str]) -> Insert:
        return pg_dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))

    def lock_skipping(self, query: sa.Select[Any], of: sa.Table) -> sa.Select[Any]:
        return query.with_for_update(of=of, skip_locked=True)

    async def claim_deliveries(
        self, conn: Conn, owner: str, now_ms: int, limit: int, lease_ms: int
    ) -> list[Any]:
        params = (now_ms, limit, owner, lease_ms)
        return list((await conn.exec_driver_sql(_CLAIM_DELIVERIES, params)).all())

    async def insert_deliveries(
        self, conn: Conn, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        await _in_columns(conn, _INSERT_DELIVERIES, rows, now_ms)

    async def finish_deliveries(
        self, conn: Conn, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        await _in_columns(conn, _FINISH_DELIVERIES, rows, now_ms)


async def _in_columns(conn: Conn, sql: str, rows: Sequence[tuple[Any, ...]], *first: Any) -> None:
    """``sql`` run once for all ``rows``: the ``first`` parameters, then each column of the
    rows as one array parameter (the statement unnests them). Nothing when there are none."""
    if rows:
        columns = (list(c) for c in zip(*rows, strict=True))
        await conn.exec_driver_sql(sql, (*first, *columns))


# Whether a task's events can reach no webhook target of the task itself (no ``webhooks``, no
# seed URL): with no active subscription of its client either, the engine's statements write
# its events as already dispatched, as migration 5's trigger would decide row by row (that
# trigger looked the task up again for every event: ~30 us of server time per task).
def _no_seed_url(task: str) -> str:
    """SQL: the task row ``task`` (an alias, or "" for the row itself) names no seed URL."""
    fields = ", ".join(f"{task}payload ->> '{name}'" for name in SEED_URL_FIELDS)
    return f"COALESCE({fields}) IS NULL"


_QUIET_TASK = f"(t.webhooks IS NULL AND {_no_seed_url('t.')}) AS quiet"


def _new_events(source: str) -> str:
    """The ``new_events`` CTE: the events in ``$2`` (a JSON list) of the tasks the CTE
    ``source`` returned (each with the ``base_seq`` its events are numbered from)."""
    return (
        f"""new_events AS (
            INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, data,
                                dispatched_at)
            SELECT {source}.client_id, {source}.queue_id, {source}.id,
                   {source}.base_seq + e.k, e.type, e.occurred_at, e.data, """
        + _dispatched_if_quiet(source, "e.occurred_at")
        + f"""
            FROM jsonb_to_recordset($2::jsonb) AS e(
                task_id bigint, k int, type text, occurred_at bigint, data jsonb)
            JOIN {source} ON {source}.id = e.task_id
        )"""
    )


def _dispatched_if_quiet(rows: str, at: str) -> str:
    """``dispatched_at`` of an event of ``rows`` (which carry ``quiet`` and ``client_id``)."""
    return (
        f"CASE WHEN {rows}.quiet AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s "
        f"WHERE s.client_id = {rows}.client_id AND s.active) THEN {at} END"
    )


# the batch's audit entry, as domain.audit.tasks_added writes it ($6 channel, $7 credential,
# $8 operator); none when nothing was added
_TASKS_ADDED = (
    ", audited AS (INSERT INTO audit_log (client_id, occurred_at, channel, credential_id, "
    "operator, action, object_type, object_id, summary) SELECT $2, $4, $6::text, $7::bigint, "
    "$8::text, 'created', 'task', min(id)::text, jsonb_build_object('count', count(*), "
    "'queue_id', $3::bigint, 'first_id', min(id), 'last_id', max(id)) FROM numbered "
    "HAVING count(*) > 0) "
)


class PostgresClaims:
    """The claims SQL: one round trip per step; batches travel as one JSON document."""

    def __init__(self, notify_channel: str) -> None:
        self.notify_channel = notify_channel
        self._add_tasks_sql: tuple[str, str] | None = None  # without, with the audit entry

    # One statement, sent once: the ids from the tasks' own sequence (none when the client has
    # no such queue: the statement then adds and wakes nothing), numbered in increasing order
    # and matched to the tasks' positions ``k`` in the JSON document $1 (input order), the tasks,
    # their events and the wake-up. It is its own (implicit) transaction: all or nothing.
    _add_tasks = (
        "WITH ids AS MATERIALIZED (SELECT nextval({seq}::regclass) AS id "
        "FROM generate_series(1, jsonb_array_length($1::jsonb)) "
        "WHERE EXISTS (SELECT 1 FROM queues WHERE id = $3 AND client_id = $2 "
        "AND deleted_at IS NULL)), "
        "numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM ids), "
        "r AS (SELECT numbered.id, d.* FROM numbered JOIN jsonb_to_recordset($1::jsonb) AS d("
        "k bigint, kind text, name text, payload jsonb, run_at bigint, start_time_utc bigint, "
        "timezone text, max_tries int, max_caller_tries int, backoff jsonb, "
        "caller_pause_s double precision, created jsonb, webhooks jsonb, expires_at bigint, "
        "priority int, timezone_source text) ON d.k = numbered.k), "
        f"new_tasks AS (INSERT INTO tasks ({cl.NEW_TASK_COLUMNS}) "
        f"SELECT id, $2, $3, kind, name, payload, '{cl.SCHEDULED}', run_at, start_time_utc, "
        "timezone, max_tries, max_caller_tries, backoff, caller_pause_s, 1, $4, $4, webhooks, "
        # no expires_at: the queue's time-to-live, if it has one
        "COALESCE(expires_at, $4 + (SELECT task_ttl_seconds FROM queues WHERE id = $3)::bigint "
        "* 1000), priority, timezone_source FROM r), "
        "new_events AS (INSERT INTO events (client_id, queue_id, task_id, seq, type, "
        f"occurred_at, data, dispatched_at) SELECT $2, $3, id, 1, '{cl.CREATED}', $4, created, "
        # written as dispatched when no webhook target can receive it (see migration 5)
        f"CASE WHEN webhooks IS NULL AND {_no_seed_url('')} "
        "AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.client_id = $2 "
        "AND s.active) THEN $4 END FROM r) "
        "{audited}"
        # no row (no queue): nothing added, no wake-up
        "SELECT array_agg(id ORDER BY id), pg_notify($5, '') FROM numbered HAVING count(*) > 0"
    )

    async def add_tasks(
        self, conn: Conn, client_id: int, queue_id: int, tasks: Sequence[NewTask],
        now_ms: int, actor: Actor | None,
    ) -> list[int] | None:  # fmt: skip
        if self._add_tasks_sql is None:  # the sequence's name, looked up once (search_path)
            seq = (
                await conn.exec_driver_sql("SELECT pg_get_serial_sequence('tasks', 'id')")
            ).scalar()
            sql = self._add_tasks.replace("{seq}", "'" + seq.replace("'", "''") + "'")
            self._add_tasks_sql = (
                sql.replace("{audited}", ""),
                sql.replace("{audited}", _TASKS_ADDED),
            )
        doc = [
            {
                "k": k, "kind": task.kind.value, "name": task.name,
                "payload": task.payload, "run_at": ms(task.run_at),
                "start_time_utc": ms(task.start_time_utc), "timezone": task.timezone,
                "max_tries": task.max_tries, "max_caller_tries": task.max_caller_tries,
                "backoff": task.backoff, "caller_pause_s": task.caller_pause_s,
                "created": cl.created_data(task), "webhooks": task.webhooks or None,
                "expires_at": ms(task.expires_at), "priority": task.priority,
                "timezone_source": task.timezone_source,
            }
            for k, task in enumerate(tasks, 1)
        ]  # fmt: skip
        params: tuple[Any, ...] = (dumps(doc), client_id, queue_id, now_ms, self.notify_channel)
        if actor is not None:
            params += (actor.channel, actor.credential_id, actor.operator)
        sql = self._add_tasks_sql[actor is not None]
        row = (await conn.exec_driver_sql(sql, params)).first()
        return None if row is None else [int(i) for i in row[0]]

    # $1 queue, $2 now, $3 want, $4 owner, $5 lease, $6 due, $7 queue limit, $8 rate tokens
    _claim_cte = (
        "WITH room AS (SELECT GREATEST(0, LEAST($3::int, $7::int - (SELECT count(*) FROM tasks "
        "WHERE queue_id = $1 AND status = 'executed')))::int AS n, $6::bigint AS due), "
        "picked AS ({pick}), "
        # no row locks while picking: the queue row lock keeps other claimers out, and the
        # status test below is re-checked on any row a concurrent cancel or edit changed
        "claimed AS (UPDATE tasks t SET {set} FROM picked WHERE t.id = picked.id "
        f"AND t.status IN {cl.PENDING_SQL} "
        f"RETURNING {', '.join('t.' + c.strip() for c in cl.CLAIM_COLUMNS.split(','))}, "
        f"{_QUIET_TASK}), "
        # a task that expired was finished instead (status finished): its task.finished event
        "started AS (INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, "
        "data, dispatched_at) SELECT client_id, $1, id, event_seq, CASE WHEN status = "
        "'executed' THEN 'task.started' ELSE 'task.finished' END, $2, CASE WHEN status = "
        "'executed' THEN jsonb_build_object('attempt', attempt) ELSE jsonb_build_object("
        f"'result', 'failed', 'comment', '{cl.EXPIRED_COMMENT}', 'attempts', attempt) END, "
        f"{_dispatched_if_quiet('claimed', '$2')} FROM claimed), "
        "run AS (SELECT count(*) AS n FROM claimed WHERE status = 'executed'), "
        "touched AS (UPDATE queues SET last_call_at = CASE WHEN (SELECT n FROM run) > 0 "
        "THEN $2 ELSE last_call_at END, "
        "rate_tokens = COALESCE($8::double precision - (SELECT n FROM run), "
        "rate_tokens), rate_updated_at = CASE WHEN $8::double precision IS NULL "
        "THEN rate_updated_at ELSE $2 END "
        "WHERE id = $1 AND ((SELECT n FROM run) > 0 OR $8::double precision IS NOT NULL)) "
        f"SELECT {cl.CLAIM_COLUMNS} FROM claimed ORDER BY run_at, id"
    )
    _set = cl.claim_set(owner="$4::text", lease="$5::bigint", now="$2::bigint")

    async def due_queues(self, conn: Conn, now_ms: int) -> list[Any]:
        sql = (
            cl.DUE_QUEUES.format(now="$1")
            + "ORDER BY last_call_at NULLS FIRST, id FOR UPDATE OF q SKIP LOCKED"
        )
        return list((await conn.exec_driver_sql(sql, (now_ms,))).all())

    async def running(self, conn: Conn, queue_id: int) -> int:
        return int((await conn.exec_driver_sql(cl.RUNNING.format(q="$1"), (queue_id,))).scalar())

    def _params(self, claim: Claim, want: int) -> tuple[Any, ...]:
        return (
            claim.queue_id, claim.now_ms, want, claim.owner, claim.lease, claim.due_ms,
            claim.queue_limit, claim.tokens,
        )  # fmt: skip

    async def claim_due(self, conn: Conn, claim: Claim) -> list[Any]:
        pick = cl.PICK.format(q="$1", now="(SELECT due FROM room)", room="(SELECT n FROM room)")
        sql = self._claim_cte.format(pick=pick, set=self._set)
        return list((await conn.exec_driver_sql(sql, self._params(claim, claim.want))).all())

    async def candidates(self, conn: Conn, queue_id: int, due_ms: int, room: int) -> list[Any]:
        sql = cl.CANDIDATES.format(q="$1", now="$2", room="$3") + " FOR UPDATE SKIP LOCKED"
        return list((await conn.exec_driver_sql(sql, (queue_id, due_ms, room))).all())

    async def claim_ids(self, conn: Conn, claim: Claim, ids: list[int]) -> list[Any]:
        # the ids were counted against the limit by the caller; its touch_queue counts tokens
        pick = "SELECT unnest($9::bigint[]) AS id"
        sql = self._claim_cte.format(pick=pick, set=self._set)
        params = (*self._params(claim, len(ids))[:7], None, ids)
        return list((await conn.exec_driver_sql(sql, params)).all())

    async def touch_queue(self, conn: Conn, claim: Claim, taken: int) -> None:
        sql = cl.TOUCH_QUEUE.format(
            took="$1::boolean", now="$2::bigint", tokens="$3::double precision", q="$4"
        )
        left = None if claim.tokens is None else claim.tokens - taken
        await conn.exec_driver_sql(sql, (taken > 0, claim.now_ms, left, claim.queue_id))

    _complete = (
        """
        WITH r AS (
            SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
                id bigint, fence bigint, expired_before bigint, status text, run_at bigint,
                tries_used int, caller_tries_used int, attempt int, finish_result text,
                finish_comment text, cdr text, n_events int, finished_at bigint)
        ),
        done AS (
            UPDATE tasks t SET status = r.status, run_at = COALESCE(r.run_at, t.run_at),
                tries_used = r.tries_used, caller_tries_used = r.caller_tries_used,
                attempt = r.attempt, finish_result = r.finish_result,
                finish_comment = r.finish_comment, cdr = COALESCE(r.cdr, t.cdr),
                event_seq = t.event_seq + r.n_events, finished_at = r.finished_at,
                updated_at = $4, lease_owner = NULL, lease_until = NULL
            FROM r
            WHERE t.id = r.id AND t.fence = r.fence AND """
        + STILL_RUNNING
        + """
              AND (r.expired_before IS NULL OR t.lease_until < r.expired_before)
            RETURNING t.id, t.client_id, t.queue_id, t.event_seq - r.n_events AS base_seq,
                """
        + _QUIET_TASK
        + """
        ),
        """
        + _new_events("done")
        + """,
        new_calls AS ("""
        + PostgresLegs().upsert_sql()
        + """
        )
        SELECT id FROM done
        UNION ALL  -- wake the other workers: slots were freed, retries scheduled
        SELECT NULL FROM (SELECT pg_notify($5, '') FROM (SELECT 1 FROM done LIMIT 1) d) w
    """
    )

    async def complete(self, conn: Conn, results: Sequence[TaskResult], now_ms: int) -> set[int]:
        tasks: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for res in results:
            tasks.append(
                {
                    "id": res.task_id, "fence": res.fence, "expired_before": res.expired_before,
                    "status": res.status, "run_at": res.run_at, "tries_used": res.tries_used,
                    "caller_tries_used": res.caller_tries_used, "attempt": res.attempt,
                    "finish_result": res.finish_result, "finish_comment": res.finish_comment,
                    "cdr": res.cdr, "n_events": len(res.events), "finished_at": res.finished_at,
                }
            )  # fmt: skip
            events.extend(
                {
                    "task_id": res.task_id, "k": k, "type": e.type.value,
                    "occurred_at": ms(e.occurred_at), "data": e.data,
                }
                for k, e in enumerate(res.events, start=1)
            )  # fmt: skip
            calls.extend(call_doc(call, res.task_id) for call in res.calls)
        params = (dumps(tasks), dumps(events), dumps(calls), now_ms)
        rows = (await conn.exec_driver_sql(self._complete, (*params, self.notify_channel))).all()
        return {row[0] for row in rows if row[0] is not None}

    _progress = (
        """
        WITH p AS (
            SELECT * FROM jsonb_to_recordset($1::jsonb) AS p(id bigint, fence bigint, n int)
        ),
        moved AS (
            UPDATE tasks t SET event_seq = t.event_seq + p.n FROM p
            WHERE t.id = p.id AND t.fence = p.fence AND """
        + STILL_RUNNING
        + """
            RETURNING t.id, t.client_id, t.queue_id, t.event_seq - p.n AS base_seq,
                """
        + _QUIET_TASK
        + """
        ),
        """
        + _new_events("moved")
        + """
        SELECT id FROM moved
    """
    )

    async def progress(
        self, conn: Conn, items: Sequence[tuple[int, int, list[NewEvent]]]
    ) -> set[int]:
        heads = [{"id": task_id, "fence": fence, "n": len(evs)} for task_id, fence, evs in items]
        events = [
            {"task_id": task_id, "k": k, "type": e.type.value,
             "occurred_at": ms(e.occurred_at), "data": e.data}
            for task_id, _, evs in items
            for k, e in enumerate(evs, start=1)
        ]  # fmt: skip
        result = await conn.exec_driver_sql(self._progress, (dumps(heads), dumps(events)))
        return {row[0] for row in result.all()}
