"""The claims SQL: the engine's hot path (claim, complete, progress) as plain SQL, per database.

Claiming and completing run thousands of times a second. Here SQLAlchemy's statement
construction and per-row parameter processing would cost more than the database work, so these
statements are written out once per dialect and run with tuples (``exec_driver_sql``):

- SQLite runs each step as its own statement on the inline writer connection (no round trips
  to save) and uses ``RETURNING`` and ``json_each`` for id lists;
- PostgreSQL does each step in one round trip: data-modifying CTEs, row locks with
  ``FOR UPDATE SKIP LOCKED``, batches passed as one JSON document (``jsonb_to_recordset``).

Status tests are SQL literals so that the partial indexes apply. Every statement that writes
the result of an attempt checks the task's fence (and that it is still ``executed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ringback.domain.model import EventType, NewEvent, TaskStatus
from ringback.domain.tasks import NewTask
from ringback.store.legs_sql import PostgresLegsSql, SqliteLegsSql, dumps, ms, pg_call_doc

PENDING_SQL = "('scheduled', 'delayed', 'delayed_interval')"

#: columns every claim returns, in this order
CLAIM_COLUMNS = (
    "id, client_id, kind, payload, attempt, fence, event_seq, run_at, timezone, tries_used, "
    "caller_tries_used, max_tries, max_caller_tries, backoff, caller_pause_s"
)
_CLAIM_SET = (
    "status = 'executed', lease_owner = {owner}, lease_until = {lease}, fence = fence + 1, "
    "attempt = attempt + 1, event_seq = event_seq + 1, "
    "first_attempt_at = COALESCE(first_attempt_at, {now}), last_attempt_at = {now}, "
    "updated_at = {now}"
)


def loads(value: Any) -> Any:
    """JSON columns come back as text from SQLite and already decoded from PostgreSQL."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


_ms = ms


@dataclass(slots=True)
class Claim:
    """What to claim from one queue (its row is locked by the caller's transaction)."""

    queue_id: int
    queue_limit: int  # concurrent_task_limit
    now_ms: int
    due_ms: int  # claim tasks whose run_at is at or before this
    want: int  # at most this many (the worker's room, the queue's rate tokens)
    owner: str
    lease: int  # lease_until for the claimed tasks (ms)
    tokens: float | None  # the queue's rate tokens after refill; None without a rate limit


@dataclass(slots=True)
class TaskResult:
    """One fenced write of an attempt's end: the new task state, its events and calls."""

    task_id: int
    fence: int
    expired_before: int | None  # reaper: only if the lease ran out before this (ms)
    status: str
    run_at: int | None
    tries_used: int
    caller_tries_used: int
    attempt: int
    finish_result: str | None
    finish_comment: str | None
    cdr: str | None
    finished_at: int | None
    events: list[NewEvent]
    # call_values() tuples: stored whether or not the fence holds (a leg placed is a leg)
    calls: list[tuple[Any, ...]]


_NEW_TASK_COLUMNS = (
    "id, client_id, queue_id, kind, name, payload, status, run_at, start_time_utc, timezone, "
    "max_tries, max_caller_tries, backoff, caller_pause_s, event_seq, created_at, updated_at, "
    "webhooks"
)
_SCHEDULED = TaskStatus.SCHEDULED.value
# SQLite: batches this large are inserted in a helper thread (milliseconds of SQLite work,
# against ~50 µs for the hand-off), smaller ones inline
_IN_THREAD_FROM = 100
_CREATED = EventType.TASK_CREATED.value


def _created_data(task: NewTask) -> dict[str, Any]:
    """The data of a new task's ``task.created`` event."""
    return {"kind": task.kind.value, "run_at": task.run_at.isoformat()}


class Connection(Protocol):
    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> Any: ...


class EngineSql(Protocol):
    async def add_tasks(
        self, conn: Connection, client_id: int, queue_id: int, tasks: Sequence[NewTask],
        now_ms: int,
    ) -> list[int] | None:  # fmt: skip
        """Insert the tasks and their ``task.created`` events; their ids in input order
        (increasing), or None if the client has no such queue."""
        ...

    async def due_queues(self, conn: Connection, now_ms: int) -> list[Any]: ...
    async def running(self, conn: Connection, queue_id: int) -> int: ...
    async def claim_due(self, conn: Connection, claim: Claim) -> list[Any]:
        """Claim up to ``want`` due tasks within the queue's limit; count the queue's call."""
        ...

    async def candidates(
        self, conn: Connection, queue_id: int, due_ms: int, room: int
    ) -> list[Any]: ...
    async def claim_ids(self, conn: Connection, claim: Claim, ids: list[int]) -> list[Any]: ...
    async def touch_queue(self, conn: Connection, claim: Claim, taken: int) -> None: ...
    async def complete(
        self, conn: Connection, results: Sequence[TaskResult], now_ms: int
    ) -> set[int]: ...
    async def progress(
        self, conn: Connection, items: Sequence[tuple[int, int, list[NewEvent]]]
    ) -> set[int]: ...


_DUE_QUEUES = (
    "SELECT id, concurrent_task_limit, max_calls_per_second, rate_tokens, rate_updated_at, "
    "calling_hours, redial_interrupted FROM queues q WHERE status = 'on' "
    "AND EXISTS (SELECT 1 FROM tasks t "
    f"WHERE t.queue_id = q.id AND t.status IN {PENDING_SQL} AND t.run_at <= {{now}}) "
)
_RUNNING = "SELECT count(*) FROM tasks WHERE queue_id = {q} AND status = 'executed'"
_DUE_TASKS = (
    f"FROM tasks WHERE queue_id = {{q}} AND status IN {PENDING_SQL} "
    "AND run_at <= {now} ORDER BY run_at, id LIMIT {room}"
)
_PICK = "SELECT id " + _DUE_TASKS
_CANDIDATES = "SELECT id, timezone " + _DUE_TASKS
_TOUCH_QUEUE = (
    "UPDATE queues SET last_call_at = CASE WHEN {took} THEN {now} ELSE last_call_at END, "
    "rate_tokens = COALESCE({tokens}, rate_tokens), "
    "rate_updated_at = CASE WHEN {tokens} IS NULL THEN rate_updated_at ELSE {now} END "
    "WHERE id = {q}"
)


def _event_tuple(
    task_id: int, client_id: int, queue_id: int, seq: int, event: NewEvent
) -> tuple[Any, ...]:
    return (
        client_id, queue_id, task_id, seq, event.type.value, _ms(event.occurred_at),
        dumps(event.data),
    )  # fmt: skip


class SqliteEngineSql:
    """Plain statements on the inline writer (see sqlite_writer)."""

    _add_tasks = (
        f"INSERT INTO tasks ({_NEW_TASK_COLUMNS}) "
        f"VALUES ({', '.join('?' * len(_NEW_TASK_COLUMNS.split(',')))})"
    )

    async def add_tasks(
        self, conn: Connection, client_id: int, queue_id: int, tasks: Sequence[NewTask],
        now_ms: int,
    ) -> list[int] | None:  # fmt: skip
        # The ids are given, not left to SQLite: the write lock is held (BEGIN IMMEDIATE), so
        # max(id) + 1 onwards is what SQLite would pick itself (no AUTOINCREMENT), and one
        # executemany needs no RETURNING, whose row order SQLite does not promise.
        head = (
            await conn.exec_driver_sql(
                "SELECT (SELECT max(id) FROM tasks), EXISTS (SELECT 1 FROM webhook_subscriptions "
                "WHERE client_id = ? AND active) FROM queues WHERE id = ? AND client_id = ?",
                (client_id, queue_id, client_id),
            )
        ).first()
        if head is None:
            return None
        first, subscribed = int(head[0] or 0) + 1, bool(head[1])
        ids = list(range(first, first + len(tasks)))
        rows = [
            (
                task_id, client_id, queue_id, task.kind.value, task.name, dumps(task.payload),
                _SCHEDULED, _ms(task.run_at), _ms(task.start_time_utc), task.timezone,
                task.max_tries, task.max_caller_tries,
                None if task.backoff is None else dumps(task.backoff), task.caller_pause_s, 1,
                now_ms, now_ms, dumps(task.webhooks) if task.webhooks else None,
            )
            for task_id, task in zip(ids, tasks, strict=True)
        ]  # fmt: skip
        # written as dispatched when no webhook target can receive them, as on PostgreSQL
        # (migration 5): the dispatcher then neither reads nor updates them
        events = [
            (
                client_id, queue_id, task_id, 1, _CREATED, now_ms, dumps(_created_data(task)),
                None if subscribed or task.names_webhook_urls else now_ms,
            )
            for task_id, task in zip(ids, tasks, strict=True)
        ]  # fmt: skip

        def insert(sync: Any) -> None:
            sync.exec_driver_sql(self._add_tasks, rows)
            sync.exec_driver_sql(self._created_events, events)

        in_thread = getattr(conn, "in_thread", None)  # the inline writer (sqlite_writer)
        if in_thread is not None and len(tasks) >= _IN_THREAD_FROM:
            await in_thread(insert)
        else:
            await conn.exec_driver_sql(self._add_tasks, rows)
            await conn.exec_driver_sql(self._created_events, events)
        return ids

    _created_events = (
        "INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, data, "
        "dispatched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )

    _events = (
        "INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    _calls = SqliteLegsSql().upsert_sql()
    _result = (
        "UPDATE tasks SET status = ?, run_at = COALESCE(?, run_at), tries_used = ?, "
        "caller_tries_used = ?, attempt = ?, finish_result = ?, finish_comment = ?, "
        "cdr = COALESCE(?, cdr), event_seq = ?, finished_at = ?, updated_at = ?, "
        "lease_owner = NULL, lease_until = NULL WHERE id = ?"
    )
    _current = (
        "SELECT id, fence, status, event_seq, lease_until, client_id, queue_id FROM tasks "
        "WHERE id IN (SELECT value FROM json_each(?))"
    )

    async def due_queues(self, conn: Connection, now_ms: int) -> list[Any]:
        sql = _DUE_QUEUES.format(now="?") + "ORDER BY last_call_at IS NOT NULL, last_call_at, id"
        return list((await conn.exec_driver_sql(sql, (now_ms,))).all())

    async def running(self, conn: Connection, queue_id: int) -> int:
        return int((await conn.exec_driver_sql(_RUNNING.format(q="?"), (queue_id,))).scalar())

    async def claim_due(self, conn: Connection, claim: Claim) -> list[Any]:
        room = min(claim.want, claim.queue_limit - await self.running(conn, claim.queue_id))
        if room <= 0:
            if claim.tokens is not None:
                await self.touch_queue(conn, claim, 0)
            return []
        sql = (
            f"UPDATE tasks SET {_CLAIM_SET.format(owner='?', lease='?', now='?')} "
            f"WHERE id IN ({_PICK.format(q='?', now='?', room='?')}) "
            f"RETURNING {CLAIM_COLUMNS}"
        )
        now = claim.now_ms
        params = (claim.owner, claim.lease, now, now, now, claim.queue_id, claim.due_ms, room)
        rows = (await conn.exec_driver_sql(sql, params)).all()
        if rows or claim.tokens is not None:
            await self.touch_queue(conn, claim, len(rows))
        return await self._started(conn, claim, rows)

    async def candidates(
        self, conn: Connection, queue_id: int, due_ms: int, room: int
    ) -> list[Any]:
        sql = _CANDIDATES.format(q="?", now="?", room="?")
        return list((await conn.exec_driver_sql(sql, (queue_id, due_ms, room))).all())

    async def claim_ids(self, conn: Connection, claim: Claim, ids: list[int]) -> list[Any]:
        sql = (
            f"UPDATE tasks SET {_CLAIM_SET.format(owner='?', lease='?', now='?')} "
            f"WHERE id IN (SELECT value FROM json_each(?)) RETURNING {CLAIM_COLUMNS}"
        )
        now = claim.now_ms
        params = (claim.owner, claim.lease, now, now, now, dumps(ids))
        rows = (await conn.exec_driver_sql(sql, params)).all()
        return await self._started(conn, claim, rows)

    async def _started(self, conn: Connection, claim: Claim, rows: Sequence[Any]) -> list[Any]:
        # rows are CLAIM_COLUMNS after the claim: 0 id, 1 client_id, 4 attempt, 6 event_seq
        started = [
            (
                r[1],
                claim.queue_id,
                r[0],
                r[6],
                "task.started",
                claim.now_ms,
                f'{{"attempt":{r[4]}}}',
            )
            for r in rows
        ]
        if started:
            await conn.exec_driver_sql(self._events, started)
        return sorted(rows, key=lambda r: (r[7], r[0]))  # RETURNING has no order

    async def touch_queue(self, conn: Connection, claim: Claim, taken: int) -> None:
        sql = _TOUCH_QUEUE.format(took="?", now="?", tokens="?", q="?")
        left = None if claim.tokens is None else claim.tokens - taken
        params = (taken > 0, claim.now_ms, left, left, claim.now_ms, claim.queue_id)
        await conn.exec_driver_sql(sql, params)

    async def _current_rows(self, conn: Connection, ids: list[int]) -> dict[int, Any]:
        rows = (await conn.exec_driver_sql(self._current, (dumps(ids),))).all()
        return {row[0]: row for row in rows}

    async def complete(
        self, conn: Connection, results: Sequence[TaskResult], now_ms: int
    ) -> set[int]:
        current = await self._current_rows(conn, [r.task_id for r in results])
        accepted: set[int] = set()
        updates: list[tuple[Any, ...]] = []
        calls: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for res in results:
            row = current.get(res.task_id)
            if row is not None:
                calls.extend((*call, row[5], row[6], row[0]) for call in res.calls)
            if row is None or row[2] != "executed" or row[1] != res.fence:
                continue
            lease_until = row[4]
            if res.expired_before is not None and not (
                lease_until is not None and lease_until < res.expired_before
            ):
                continue
            accepted.add(res.task_id)
            seq = row[3]
            for event in res.events:
                seq += 1
                events.append(_event_tuple(row[0], row[5], row[6], seq, event))
            updates.append(
                (res.status, res.run_at, res.tries_used, res.caller_tries_used, res.attempt,
                 res.finish_result, res.finish_comment, res.cdr, seq, res.finished_at, now_ms,
                 res.task_id)
            )  # fmt: skip
        if updates:
            await conn.exec_driver_sql(self._result, updates)
        if calls:
            await conn.exec_driver_sql(self._calls, calls)
        if events:
            await conn.exec_driver_sql(self._events, events)
        return accepted

    async def progress(
        self, conn: Connection, items: Sequence[tuple[int, int, list[NewEvent]]]
    ) -> set[int]:
        current = await self._current_rows(conn, [task_id for task_id, _, _ in items])
        accepted: set[int] = set()
        seqs, events = [], []
        for task_id, fence, new_events in items:
            row = current.get(task_id)
            if row is None or row[2] != "executed" or row[1] != fence:
                continue
            accepted.add(task_id)
            seq = row[3]
            for event in new_events:
                seq += 1
                events.append(_event_tuple(row[0], row[5], row[6], seq, event))
            seqs.append((seq, task_id))
        if seqs:
            await conn.exec_driver_sql("UPDATE tasks SET event_seq = ? WHERE id = ?", seqs)
            await conn.exec_driver_sql(self._events, events)
        return accepted


# Whether a task's events can reach no webhook target of the task itself (no ``webhooks``, no
# seed URL): with no active subscription of its client either, the engine's statements write
# its events as already dispatched, as migration 5's trigger would decide row by row (that
# trigger looked the task up again for every event: ~30 us of server time per task).
_QUIET_TASK = (
    "(t.webhooks IS NULL AND COALESCE(t.payload ->> 'url_before', "
    "t.payload ->> 'url_before_again', t.payload ->> 'url_success', "
    "t.payload ->> 'url_after') IS NULL) AS quiet"
)


def _dispatched_if_quiet(rows: str, at: str) -> str:
    """``dispatched_at`` of an event of ``rows`` (which carry ``quiet`` and ``client_id``)."""
    return (
        f"CASE WHEN {rows}.quiet AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s "
        f"WHERE s.client_id = {rows}.client_id AND s.active) THEN {at} END"
    )


class PostgresEngineSql:
    """One round trip per step; batches travel as one JSON document."""

    def __init__(self, notify_channel: str) -> None:
        self.notify_channel = notify_channel
        self._task_ids_sql: str | None = None

    # ids from the tasks' own sequence first (one round trip, sorted: input order), then the
    # tasks and their events in one statement from one JSON document, and the wake-up
    _task_ids = (
        "SELECT array_agg(nextval({seq}::regclass)) FROM generate_series(1, $1) "
        "WHERE EXISTS (SELECT 1 FROM queues WHERE id = $2 AND client_id = $3)"
    )
    _add_tasks = (
        "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, kind text, "
        "name text, payload jsonb, run_at bigint, start_time_utc bigint, timezone text, "
        "max_tries int, max_caller_tries int, backoff jsonb, caller_pause_s double precision, "
        "created jsonb, webhooks jsonb)), "
        f"new_tasks AS (INSERT INTO tasks ({_NEW_TASK_COLUMNS}) "
        f"SELECT id, $2, $3, kind, name, payload, '{_SCHEDULED}', run_at, start_time_utc, "
        "timezone, max_tries, max_caller_tries, backoff, caller_pause_s, 1, $4, $4, webhooks "
        "FROM r), "
        "new_events AS (INSERT INTO events (client_id, queue_id, task_id, seq, type, "
        f"occurred_at, data, dispatched_at) SELECT $2, $3, id, 1, '{_CREATED}', $4, created, "
        # written as dispatched when no webhook target can receive it (see migration 5)
        "CASE WHEN webhooks IS NULL AND COALESCE(payload ->> 'url_before', "
        "payload ->> 'url_before_again', payload ->> 'url_success', payload ->> 'url_after') "
        "IS NULL AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.client_id = $2 "
        "AND s.active) THEN $4 END FROM r) "
        "SELECT pg_notify($5, '')"
    )

    async def add_tasks(
        self, conn: Connection, client_id: int, queue_id: int, tasks: Sequence[NewTask],
        now_ms: int,
    ) -> list[int] | None:  # fmt: skip
        if self._task_ids_sql is None:  # the sequence's name, looked up once (search_path)
            seq = (
                await conn.exec_driver_sql("SELECT pg_get_serial_sequence('tasks', 'id')")
            ).scalar()
            self._task_ids_sql = self._task_ids.format(seq="'" + seq.replace("'", "''") + "'")
        result = await conn.exec_driver_sql(self._task_ids_sql, (len(tasks), queue_id, client_id))
        got = result.scalar()
        if not got:
            return None
        ids = sorted(int(i) for i in got)
        doc = [
            {
                "id": task_id, "kind": task.kind.value, "name": task.name,
                "payload": task.payload, "run_at": _ms(task.run_at),
                "start_time_utc": _ms(task.start_time_utc), "timezone": task.timezone,
                "max_tries": task.max_tries, "max_caller_tries": task.max_caller_tries,
                "backoff": task.backoff, "caller_pause_s": task.caller_pause_s,
                "created": _created_data(task), "webhooks": task.webhooks or None,
            }
            for task_id, task in zip(ids, tasks, strict=True)
        ]  # fmt: skip
        params = (dumps(doc), client_id, queue_id, now_ms, self.notify_channel)
        await conn.exec_driver_sql(self._add_tasks, params)
        return ids

    # $1 queue, $2 now, $3 want, $4 owner, $5 lease, $6 due, $7 queue limit, $8 rate tokens
    _claim_cte = (
        "WITH room AS (SELECT GREATEST(0, LEAST($3::int, $7::int - (SELECT count(*) FROM tasks "
        "WHERE queue_id = $1 AND status = 'executed')))::int AS n, $6::bigint AS due), "
        "picked AS ({pick}), "
        # no row locks while picking: the queue row lock keeps other claimers out, and the
        # status test below is re-checked on any row a concurrent cancel or edit changed
        "claimed AS (UPDATE tasks t SET {set} FROM picked WHERE t.id = picked.id "
        f"AND t.status IN {PENDING_SQL} "
        f"RETURNING {', '.join('t.' + c.strip() for c in CLAIM_COLUMNS.split(','))}, "
        f"{_QUIET_TASK}), "
        "started AS (INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, "
        "data, dispatched_at) SELECT client_id, $1, id, event_seq, 'task.started', $2, "
        f"jsonb_build_object('attempt', attempt), {_dispatched_if_quiet('claimed', '$2')} "
        "FROM claimed), "
        "touched AS (UPDATE queues SET last_call_at = CASE WHEN EXISTS (SELECT 1 FROM claimed) "
        "THEN $2 ELSE last_call_at END, "
        "rate_tokens = COALESCE($8::double precision - (SELECT count(*) FROM claimed), "
        "rate_tokens), rate_updated_at = CASE WHEN $8::double precision IS NULL "
        "THEN rate_updated_at ELSE $2 END "
        "WHERE id = $1 AND (EXISTS (SELECT 1 FROM claimed) OR $8::double precision IS NOT NULL)) "
        f"SELECT {CLAIM_COLUMNS} FROM claimed ORDER BY run_at, id"
    )
    _set = _CLAIM_SET.format(owner="$4", lease="$5", now="$2")

    async def due_queues(self, conn: Connection, now_ms: int) -> list[Any]:
        sql = (
            _DUE_QUEUES.format(now="$1")
            + "ORDER BY last_call_at NULLS FIRST, id FOR UPDATE OF q SKIP LOCKED"
        )
        return list((await conn.exec_driver_sql(sql, (now_ms,))).all())

    async def running(self, conn: Connection, queue_id: int) -> int:
        return int((await conn.exec_driver_sql(_RUNNING.format(q="$1"), (queue_id,))).scalar())

    def _params(self, claim: Claim, want: int) -> tuple[Any, ...]:
        return (
            claim.queue_id, claim.now_ms, want, claim.owner, claim.lease, claim.due_ms,
            claim.queue_limit, claim.tokens,
        )  # fmt: skip

    async def claim_due(self, conn: Connection, claim: Claim) -> list[Any]:
        pick = _PICK.format(q="$1", now="(SELECT due FROM room)", room="(SELECT n FROM room)")
        sql = self._claim_cte.format(pick=pick, set=self._set)
        return list((await conn.exec_driver_sql(sql, self._params(claim, claim.want))).all())

    async def candidates(
        self, conn: Connection, queue_id: int, due_ms: int, room: int
    ) -> list[Any]:
        sql = _CANDIDATES.format(q="$1", now="$2", room="$3") + " FOR UPDATE SKIP LOCKED"
        return list((await conn.exec_driver_sql(sql, (queue_id, due_ms, room))).all())

    async def claim_ids(self, conn: Connection, claim: Claim, ids: list[int]) -> list[Any]:
        # the ids were counted against the limit by the caller; its touch_queue counts tokens
        pick = "SELECT unnest($9::bigint[]) AS id"
        sql = self._claim_cte.format(pick=pick, set=self._set)
        params = (*self._params(claim, len(ids))[:7], None, ids)
        return list((await conn.exec_driver_sql(sql, params)).all())

    async def touch_queue(self, conn: Connection, claim: Claim, taken: int) -> None:
        sql = _TOUCH_QUEUE.format(
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
            WHERE t.id = r.id AND t.fence = r.fence AND t.status = 'executed'
              AND (r.expired_before IS NULL OR t.lease_until < r.expired_before)
            RETURNING t.id, t.client_id, t.queue_id, t.event_seq - r.n_events AS base_seq,
                """
        + _QUIET_TASK
        + """
        ),
        new_events AS (
            INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, data,
                                dispatched_at)
            SELECT done.client_id, done.queue_id, done.id, done.base_seq + e.k, e.type,
                   e.occurred_at, e.data, """
        + _dispatched_if_quiet("done", "e.occurred_at")
        + """
            FROM jsonb_to_recordset($2::jsonb) AS e(
                task_id bigint, k int, type text, occurred_at bigint, data jsonb)
            JOIN done ON done.id = e.task_id
        ),
        new_calls AS ("""
        + PostgresLegsSql().upsert_sql()
        + """
        )
        SELECT id FROM done
        UNION ALL  -- wake the other workers: slots were freed, retries scheduled
        SELECT NULL FROM (SELECT pg_notify($5, '') FROM (SELECT 1 FROM done LIMIT 1) d) w
    """
    )

    async def complete(
        self, conn: Connection, results: Sequence[TaskResult], now_ms: int
    ) -> set[int]:
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
                    "occurred_at": _ms(e.occurred_at), "data": e.data,
                }
                for k, e in enumerate(res.events, start=1)
            )  # fmt: skip
            calls.extend(pg_call_doc(call, res.task_id) for call in res.calls)
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
            WHERE t.id = p.id AND t.fence = p.fence AND t.status = 'executed'
            RETURNING t.id, t.client_id, t.queue_id, t.event_seq - p.n AS base_seq,
                """
        + _QUIET_TASK
        + """
        ),
        new_events AS (
            INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, data,
                                dispatched_at)
            SELECT moved.client_id, moved.queue_id, moved.id, moved.base_seq + e.k, e.type,
                   e.occurred_at, e.data, """
        + _dispatched_if_quiet("moved", "e.occurred_at")
        + """
            FROM jsonb_to_recordset($2::jsonb) AS e(
                task_id bigint, k int, type text, occurred_at bigint, data jsonb)
            JOIN moved ON moved.id = e.task_id
        )
        SELECT id FROM moved
    """
    )

    async def progress(
        self, conn: Connection, items: Sequence[tuple[int, int, list[NewEvent]]]
    ) -> set[int]:
        heads = [{"id": task_id, "fence": fence, "n": len(evs)} for task_id, fence, evs in items]
        events = [
            {"task_id": task_id, "k": k, "type": e.type.value,
             "occurred_at": _ms(e.occurred_at), "data": e.data}
            for task_id, _, evs in items
            for k, e in enumerate(evs, start=1)
        ]  # fmt: skip
        result = await conn.exec_driver_sql(self._progress, (dumps(heads), dumps(events)))
        return {row[0] for row in result.all()}


def engine_sql(dialect: str, notify_channel: str) -> EngineSql:
    return SqliteEngineSql() if dialect == "sqlite" else PostgresEngineSql(notify_channel)
