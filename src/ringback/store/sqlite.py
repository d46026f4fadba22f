"""The SQLite driver: one writer on the event loop, readers in helper threads, no wake-ups
across processes, and SQLite's own SQL of the claims, the legs and the webhook deliveries.

Write transactions start with ``BEGIN IMMEDIATE`` (the database write lock) on the inline
writer (``store/sqlite_writer.py``), one at a time in this process; reads see the snapshot of
their ``BEGIN``. Statements run one by one (there are no round trips to save), with
``RETURNING``, and id lists passed as one JSON text read with ``json_each``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql.dml import Insert

from ringback.domain.audit import Actor, tasks_added
from ringback.domain.model import LegState, NewEvent
from ringback.domain.suppression import Suppression, lookup_keys
from ringback.domain.task_rules import SEED_URL_FIELDS, NewTask
from ringback.store import audit
from ringback.store import claims as cl
from ringback.store import legs_sql as legs
from ringback.store.campaign_rules import check_opens
from ringback.store.claims import Claim, TaskResult
from ringback.store.driver import Conn
from ringback.store.legs_sql import LegWrite, OpenedLegs, dumps, ms
from ringback.store.migrations import Migration
from ringback.store.sqlite_readers import ReaderConnection, SqliteReaders
from ringback.store.sqlite_writer import SqliteWriter
from ringback.store.suppressions import UPSERT_CONFLICT, first_match
from ringback.store.webhooks import (
    CLAIM_FROM,
    CLAIM_RETURNING,
    CLAIM_WHERE,
    FINISH_COLUMNS,
    FINISH_SET,
    NEW_DELIVERY_COLUMNS,
)

DIALECT = "sqlite"
SCHEMES = ("sqlite", "sqlite+aiosqlite")
#: one statement's parameter, a JSON list of ids, as a subquery
_IDS = "(SELECT value FROM json_each(?))"
_VALUES = f"VALUES ({', '.join('?' * (len(legs.CALL_FIELDS) + 3))})"
_ATTEMPT_LEGS = legs.attempt_legs_sql(_IDS)
_CLOSE_LEGS = legs.close_legs_sql(_IDS)
# batches this large are inserted in a helper thread (milliseconds of SQLite work, against
# ~50 µs for the hand-off), smaller ones inline
_IN_THREAD_FROM = 100
_CLAIM_DELIVERIES = (
    "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?, fence = fence + 1, "
    f"updated_at = ? WHERE id IN (SELECT d.id {CLAIM_FROM} WHERE "
    + CLAIM_WHERE.format(now="?")
    + f" ORDER BY d.next_attempt_at, d.id LIMIT ?) RETURNING {CLAIM_RETURNING}"
)

# a batch of deliveries, or of outcomes: one statement run for each row (executemany)
_INSERT_DELIVERIES = (
    f"INSERT INTO webhook_deliveries ({', '.join(NEW_DELIVERY_COLUMNS)}, status, attempts, "
    "next_attempt_at, created_at, updated_at) "
    f"VALUES ({', '.join('?' for _ in NEW_DELIVERY_COLUMNS)}, 'pending', 0, ?, ?, ?) "
    "ON CONFLICT (event_id, target_key) DO NOTHING"
)
_FINISH_DELIVERIES = (
    f"UPDATE webhook_deliveries SET {FINISH_SET.format(now='?')} FROM (SELECT "
    + ", ".join(f"? AS {c}" for c in FINISH_COLUMNS)
    + ") AS r WHERE webhook_deliveries.id = r.id AND webhook_deliveries.fence = r.fence "
    "AND webhook_deliveries.status = 'pending'"
)
_FINISH_TIMES = FINISH_SET.count("{now}")


def open_driver(url: str, *, notify_channel: str) -> SqliteDriver | None:
    """The driver of a ``sqlite:///path`` URL; None for another database's URL."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        return None
    sync_url = "sqlite" + url[len(scheme) :]
    readers = SqliteReaders(sync_url)
    writer = SqliteWriter(sync_url, sa.engine.make_url(sync_url).database or ":memory:")
    return SqliteDriver(readers, writer, notify_channel)


class SqliteDriver:
    """See the module docstring."""

    parallel_writes = 1  # SQLite has one writer

    def __init__(self, readers: SqliteReaders, writer: SqliteWriter, notify_channel: str) -> None:
        self.engine = readers
        self.notify_channel = notify_channel
        self.claims = SqliteClaims()
        self.legs = SqliteLegs()
        self._writer = writer

    @contextlib.asynccontextmanager
    async def write(self, *, one_statement: bool = False) -> AsyncIterator[Conn]:
        """Inline on the event loop's thread (see sqlite_writer), whatever the statements."""
        async with self._writer.transaction() as inline:
            yield inline
            await audit.flush(inline)  # the change's audit entries, if the service named some

    def intake(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        """The write: it is inline already, nothing is quicker."""
        return self.write(one_statement=True)

    @contextlib.asynccontextmanager
    async def read(self, *, one_statement: bool = False) -> AsyncIterator[ReaderConnection]:
        """The reader's ``BEGIN`` (see ``SqliteReaders``) makes the snapshot."""
        async with self.engine.connect() as conn:
            yield conn

    async def lookup(self, statement: Any, parameters: Any = None) -> Sequence[Any]:
        """On the writer's connection, inline, when no write holds it and SQLite does not
        answer busy (no helper thread: a pooled reader's BEGIN, statement and ROLLBACK each
        cross to a helper thread and back); else on a pooled reader, which waits out a
        lock."""
        rows = self._writer.lookup(statement, parameters)
        if rows is not None:
            return rows
        async with self.read(one_statement=True) as conn:
            found: Sequence[Any] = (await conn.execute(statement, parameters)).all()
        return found

    async def close(self) -> None:
        self._writer.close()
        self.engine.close()

    async def notify(self, conn: Conn) -> None:
        """Nothing to send: other processes' workers poll."""

    async def listen(self, callback: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """Only this process's writes are seen (``Store.on_wake``); workers also poll."""
        return _nothing

    async def compact_status_counts(self) -> None:
        """Nothing to fold: SQLite's triggers keep one row per (queue, status) (migration 8)."""

    async def database_time(self) -> datetime | None:
        """None: the file is on this host and read by this host's processes only, so there is
        no other clock to follow."""
        return None

    async def upsert_suppressions(
        self, conn: Conn, client_id: int, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        params = [(client_id, *row, now_ms) for row in rows]

        def insert(sync: Any) -> None:
            sync.exec_driver_sql(_UPSERT_SUPPRESSIONS, params)

        in_thread = getattr(conn, "in_thread", None)  # the inline writer (sqlite_writer)
        if in_thread is not None and len(rows) >= _IN_THREAD_FROM:
            await in_thread(insert)
        else:
            await conn.exec_driver_sql(_UPSERT_SUPPRESSIONS, params)

    async def lock_migrations(self, conn: Conn) -> None:
        """Nothing more: the write transaction holds the database's one write lock."""

    def migration_sql(self, migration: Migration) -> list[str]:
        return migration.sql(DIALECT)

    def insert_ignoring(self, table: sa.Table, keys: Sequence[str]) -> Insert:
        return sqlite_dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))

    def lock_skipping(self, query: sa.Select[Any], of: sa.Table) -> sa.Select[Any]:
        return query  # no row locks: the write transaction holds the database's write lock

    async def claim_deliveries(
        self, conn: Conn, owner: str, now_ms: int, limit: int, lease_ms: int
    ) -> list[Any]:
        params = (owner, lease_ms, now_ms, now_ms, now_ms, limit)
        return list((await conn.exec_driver_sql(_CLAIM_DELIVERIES, params)).all())

    async def insert_deliveries(
        self, conn: Conn, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        if rows:
            params = [(*row, now_ms, now_ms, now_ms) for row in rows]
            await conn.exec_driver_sql(_INSERT_DELIVERIES, params)

    async def finish_deliveries(
        self, conn: Conn, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        # the SET's times come before the FROM's outcome columns
        if rows:
            params = [(now_ms,) * _FINISH_TIMES + tuple(row) for row in rows]
            await conn.exec_driver_sql(_FINISH_DELIVERIES, params)


_SEED_URL_PATHS = ", ".join(f"'$.{name}'" for name in SEED_URL_FIELDS)
#: what json_extract gives for them when the payload names none (absent or JSON null); a
#: payload (JSON text written by ``dumps``) without ``url_`` anywhere is not parsed at all
_NO_SEED_URLS = "[" + ",".join("null" for _ in SEED_URL_FIELDS) + "]"


async def _nothing() -> None:
    return None


class SqliteClaims:
    """The claims SQL as plain statements on the inline writer (see sqlite_writer)."""

    _add_tasks = (
        f"INSERT INTO tasks ({cl.NEW_TASK_COLUMNS}) "
        f"VALUES ({', '.join('?' * len(cl.NEW_TASK_COLUMNS.split(',')))})"
    )

    async def add_tasks(
        self, conn: Conn, client_id: int, queue_id: int, tasks: Sequence[NewTask],
        now_ms: int, actor: Actor | None,
    ) -> list[int] | None:  # fmt: skip
        # The ids are given, not left to SQLite: the write lock is held (BEGIN IMMEDIATE), so
        # max(id) + 1 onwards is what SQLite would pick itself (no AUTOINCREMENT), and one
        # executemany needs no RETURNING, whose row order SQLite does not promise.
        head = (
            await conn.exec_driver_sql(
                "SELECT (SELECT max(id) FROM tasks), EXISTS (SELECT 1 FROM webhook_subscriptions "
                "WHERE client_id = ? AND active), task_ttl_seconds FROM queues WHERE id = ? "
                "AND client_id = ? "
                "AND deleted_at IS NULL",
                (client_id, queue_id, client_id),
            )
        ).first()
        if head is None:
            return None
        first, subscribed = int(head[0] or 0) + 1, bool(head[1])
        ttl_expiry = None if head[2] is None else now_ms + int(head[2]) * 1000
        ids = list(range(first, first + len(tasks)))
        rows = [
            (
                task_id, client_id, queue_id, task.kind.value, task.name, dumps(task.payload),
                cl.SCHEDULED, ms(task.run_at), ms(task.start_time_utc), task.timezone,
                task.max_tries, task.max_caller_tries,
                None if task.backoff is None else dumps(task.backoff), task.caller_pause_s, 1,
                now_ms, now_ms, dumps(task.webhooks) if task.webhooks else None,
                ttl_expiry if task.expires_at is None else ms(task.expires_at), task.priority,
                task.timezone_source,
            )
            for task_id, task in zip(ids, tasks, strict=True)
        ]  # fmt: skip
        # written as dispatched when no webhook target can receive them, as on PostgreSQL
        # (migration 5): the dispatcher then neither reads nor updates them
        events = [
            (
                client_id, queue_id, task_id, 1, cl.CREATED, now_ms, dumps(cl.created_data(task)),
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
        if actor is not None:  # in the same transaction
            await audit.write_entries(conn, actor, [tasks_added(queue_id, ids)], now_ms)
        return ids

    _created_events = (
        "INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, data, "
        "dispatched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )

    # The engine's events (started, answered, ended, finished), each (client_id, queue_id,
    # task_id, seq, type, occurred_at, data): written as already dispatched when no webhook
    # target can receive them (the task names no webhooks and no seed URL, its client has no
    # active subscription), as on PostgreSQL (_dispatched_if_quiet): the dispatcher then
    # neither reads nor marks them (it found no target for them either; same deliveries)
    _events = (
        "INSERT INTO events (client_id, queue_id, task_id, seq, type, occurred_at, data, "
        "dispatched_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN EXISTS (SELECT 1 FROM "
        "tasks t WHERE t.id = ?3 AND t.webhooks IS NULL AND (instr(t.payload, 'url_') = 0 "
        f"OR json_extract(t.payload, {_SEED_URL_PATHS}) = '{_NO_SEED_URLS}')) AND NOT EXISTS "
        "(SELECT 1 FROM "
        "webhook_subscriptions s WHERE s.client_id = ?1 AND s.active) THEN ?6 END"
    )
    _calls = legs.insert(_VALUES, legs.REPLACE)
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

    async def due_queues(self, conn: Conn, now_ms: int) -> list[Any]:
        sql = cl.DUE_QUEUES.format(now="?") + "ORDER BY last_call_at IS NOT NULL, last_call_at, id"
        return list((await conn.exec_driver_sql(sql, (now_ms,))).all())

    async def running(self, conn: Conn, queue_id: int) -> int:
        return int((await conn.exec_driver_sql(cl.RUNNING.format(q="?"), (queue_id,))).scalar())

    async def claim_due(self, conn: Conn, claim: Claim) -> list[Any]:
        room = min(claim.want, claim.queue_limit - await self.running(conn, claim.queue_id))
        if room <= 0:
            if claim.tokens is not None:
                await self.touch_queue(conn, claim, 0)
            return []
        # each priority's due range in turn, highest first, until the room is filled: a few
        # index probes on the inline writer, no sort (cl.PICK does it in one statement)
        ids: list[int] = []
        for priority in range(9, -1, -1):
            params = (claim.queue_id, claim.due_ms, room - len(ids), priority)
            ids += [r[0] for r in (await conn.exec_driver_sql(_PICK_ONE, params)).all()]
            if len(ids) >= room:
                break
        rows = await self._update_claimed(conn, claim, ids) if ids else []
        if rows or claim.tokens is not None:
            await self.touch_queue(conn, claim, sum(r[15] == "executed" for r in rows))
        return await self._started(conn, claim, rows)

    async def candidates(self, conn: Conn, queue_id: int, due_ms: int, room: int) -> list[Any]:
        sql = cl.CANDIDATES.format(q="?1", now="?2", room="?3")
        return list((await conn.exec_driver_sql(sql, (queue_id, due_ms, room))).all())

    async def claim_ids(self, conn: Conn, claim: Claim, ids: list[int]) -> list[Any]:
        return await self._started(conn, claim, await self._update_claimed(conn, claim, ids))

    async def _update_claimed(self, conn: Conn, claim: Claim, ids: list[int]) -> list[Any]:
        params = (claim.owner, claim.lease, claim.now_ms, dumps(ids))
        return list((await conn.exec_driver_sql(_CLAIM_IDS, params)).all())

    async def _started(self, conn: Conn, claim: Claim, rows: Sequence[Any]) -> list[Any]:
        # rows are cl.CLAIM_COLUMNS after the claim: 0 id, 1 client_id, 4 attempt, 6 event_seq,
        # 15 status (finished: it expired instead)
        started = [
            (r[1], claim.queue_id, r[0], r[6], "task.started", claim.now_ms,
             f'{{"attempt":{r[4]}}}')
            if r[15] == "executed"
            else (r[1], claim.queue_id, r[0], r[6], "task.finished", claim.now_ms,
                  cl.expired_data(r[4]))
            for r in rows
        ]  # fmt: skip
        if started:
            await conn.exec_driver_sql(self._events, started)
        return sorted(rows, key=lambda r: (r[7], r[0]))  # RETURNING has no order

    async def touch_queue(self, conn: Conn, claim: Claim, taken: int) -> None:
        sql = cl.TOUCH_QUEUE.format(took="?", now="?", tokens="?", q="?")
        left = None if claim.tokens is None else claim.tokens - taken
        params = (taken > 0, claim.now_ms, left, left, claim.now_ms, claim.queue_id)
        await conn.exec_driver_sql(sql, params)

    async def _current_rows(self, conn: Conn, ids: list[int]) -> dict[int, Any]:
        rows = (await conn.exec_driver_sql(self._current, (dumps(ids),))).all()
        return {row[0]: row for row in rows}

    async def complete(self, conn: Conn, results: Sequence[TaskResult], now_ms: int) -> set[int]:
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
                events.append(cl.event_tuple(row[0], row[5], row[6], seq, event))
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
        self, conn: Conn, items: Sequence[tuple[int, int, list[NewEvent]]]
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
                events.append(cl.event_tuple(row[0], row[5], row[6], seq, event))
            seqs.append((seq, task_id))
        if seqs:
            await conn.exec_driver_sql("UPDATE tasks SET event_seq = ? WHERE id = ?", seqs)
            await conn.exec_driver_sql(self._events, events)
        return accepted


class SqliteLegs:
    """Leg writes as plain statements on the inline writer."""

    _current = (
        "SELECT id, fence, status, client_id, queue_id FROM tasks "
        "WHERE id IN (SELECT value FROM json_each(?))"
    )
    _open = legs.insert(_VALUES, legs.KEEP)
    _answer = (
        "UPDATE calls SET state = 'answered', answered_at = ?, ringing_at = COALESCE("
        "ringing_at, ?) WHERE leg_uuid = ? AND state = 'dialing'"
    )

    def upsert_sql(self) -> str:
        return legs.insert(_VALUES, legs.REPLACE)

    async def write(self, conn: Conn, writes: Sequence[LegWrite]) -> OpenedLegs:
        ids = sorted({w.task_id for w in writes})
        rows = (await conn.exec_driver_sql(self._current, (dumps(ids),))).all()
        tasks = {row[0]: row for row in rows}
        opens, answers, ends = [], [], []
        accepted = OpenedLegs()
        suppressed = await _suppressed(conn, writes, tasks)
        candidates = [
            (w, tasks[w.task_id][3])
            for w in writes
            if w.state is LegState.DIALING
            and w.task_id in tasks
            and tasks[w.task_id][2] == "executed"
            and tasks[w.task_id][1] == w.fence
            and w.record.leg_uuid not in suppressed
        ]
        ruled = await check_opens(conn, candidates)  # one writer: counted and written at once
        accepted.capped, accepted.refused = ruled.capped, ruled.refused
        for w in writes:
            task = tasks.get(w.task_id)
            if w.state is LegState.DIALING:
                if task is None or task[2] != "executed" or task[1] != w.fence:
                    continue
                leg = w.record.leg_uuid
                if leg in suppressed:
                    accepted.suppressed[leg] = suppressed[leg]
                    continue
                if leg in ruled.capped or leg in ruled.refused:
                    continue
                accepted.add(leg)
                opens.append((*legs.fixed(w), task[3], task[4], w.task_id))
            elif w.state is LegState.ANSWERED:
                at = ms(w.record.answered_at)
                answers.append((at, ms(w.record.ringing_at) or at, w.record.leg_uuid))
            elif task is not None:
                ends.append((*legs.fixed(w), task[3], task[4], w.task_id))
        if opens:
            await conn.exec_driver_sql(self._open, opens)
        if answers:
            await conn.exec_driver_sql(self._answer, answers)
        if ends:
            await conn.exec_driver_sql(self.upsert_sql(), ends)
        return accepted

    async def write_ruled(
        self, conn: Conn, writes: Sequence[LegWrite], clients: dict[str, int]
    ) -> OpenedLegs:
        return await self.write(conn, writes)  # never needed: write checks the rules itself

    async def attempt_legs(self, conn: Conn, task_ids: Sequence[int]) -> list[Any]:
        return list(await conn.exec_driver_sql(_ATTEMPT_LEGS, (dumps(list(task_ids)),)))

    async def close(self, conn: Conn, task_ids: Sequence[int]) -> None:
        await conn.exec_driver_sql(_CLOSE_LEGS, (dumps(list(task_ids)),))


#: one priority's due tasks of a queue, first come first served (the tasks_claim index)
_PICK_ONE = (
    f"SELECT id FROM tasks WHERE queue_id = ?1 AND priority = ?4 AND status IN {cl.PENDING_SQL} "
    "AND run_at <= ?2 ORDER BY run_at, id LIMIT ?3"
)
_CLAIM_IDS = (
    f"UPDATE tasks SET {cl.claim_set(owner='?1', lease='?2', now='?3')} "
    f"WHERE id IN (SELECT value FROM json_each(?4)) RETURNING {cl.CLAIM_COLUMNS}"
)
_UPSERT_SUPPRESSIONS = (
    "INSERT INTO suppressions (client_id, list_name, number, prefix, source, expires_at, "
    f"created_at) VALUES (?, ?, ?, ?, ?, ?, ?) {UPSERT_CONFLICT}"
)
_SUPPRESSIONS = (
    "SELECT number, prefix, list_name, source, expires_at FROM suppressions "
    "WHERE client_id = ? AND number IN (SELECT value FROM json_each(?))"
)


async def _suppressed(
    conn: Conn, writes: Sequence[LegWrite], tasks: dict[int, Any]
) -> dict[str, Suppression]:
    """The opens among ``writes`` whose called number is on a do-not-call list of the task's
    client (tasks: id -> (id, fence, status, client_id, queue_id)): one index lookup of the
    numbers' prefixes per client, in the leg write's transaction."""
    keys: dict[int, set[str]] = {}
    for w in writes:
        task = tasks.get(w.task_id)
        if w.state is LegState.DIALING and task is not None:
            keys.setdefault(task[3], set()).update(lookup_keys(w.record.to_number))
    found: dict[int, list[Any]] = {}
    for client_id, numbers in keys.items():
        if numbers:
            params = (client_id, dumps(sorted(numbers)))
            found[client_id] = list((await conn.exec_driver_sql(_SUPPRESSIONS, params)).all())
    suppressed: dict[str, Suppression] = {}
    for w in writes:
        task = tasks.get(w.task_id)
        entries = found.get(task[3]) if task is not None else None
        if w.state is LegState.DIALING and entries:
            now = ms(w.record.started_at) or 0
            live = [e for e in entries if e[4] is None or e[4] > now]
            match = first_match(live, w.record.to_number)
            if match is not None:
                suppressed[w.record.leg_uuid] = match
    return suppressed
