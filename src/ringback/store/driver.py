"""The driver protocol: what the repositories ask of a database, SQLite's or PostgreSQL's.

A driver owns the connections (the write transaction, the read snapshot), the wake-ups
(NOTIFY / LISTEN), the database's clock, and every statement whose SQL differs by dialect:
the engine's claim and completion SQL (:class:`ClaimSql`), the call legs' (:class:`LegSql`),
the webhook deliveries' claim, the migration lock. The repositories write dialect-neutral
SQLAlchemy and call the driver for the rest; the two drivers are ``store/sqlite.py`` and
``store/postgres.py``, and no other module of the store tells the databases apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVarTuple, overload

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.selectable import TypedReturnsRows

from ringback.domain.audit import Actor
from ringback.domain.model import NewEvent
from ringback.domain.task_rules import NewTask
from ringback.store.claims import Claim, TaskResult
from ringback.store.legs_sql import LegWrite, OpenedLegs
from ringback.store.migrations import Migration

_Ts = TypeVarTuple("_Ts")


class Conn(Protocol):
    """A connection in a write transaction: pooled (``AsyncConnection``) or inline (SQLite)."""

    async def execute(self, statement: Any, parameters: Any = None) -> CursorResult[Any]: ...

    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> Any: ...


class Reader(Protocol):
    """A connection in a read snapshot: pooled (PostgreSQL's ``AsyncConnection``) or a SQLite
    reader (``store/sqlite_readers.py``)."""

    @overload
    async def execute(
        self, statement: TypedReturnsRows[*_Ts], parameters: Any = None
    ) -> Result[*_Ts]: ...
    @overload
    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> Result[*tuple[Any, ...]]: ...

    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> Result[Any]: ...


class Engine(Protocol):
    """The driver's pool of connections, for tests and benchmarks that fill or inspect a
    database directly: SQLAlchemy's ``AsyncEngine`` (PostgreSQL) or ``SqliteReaders``."""

    @property
    def dialect(self) -> Dialect: ...

    def connect(self) -> AbstractAsyncContextManager[Any]: ...

    def begin(self) -> AbstractAsyncContextManager[Any]: ...

    async def dispose(self) -> None: ...


class ClaimSql(Protocol):
    """The engine's hot path, written out once per database (see ``store/claims.py``)."""

    async def add_tasks(
        self, conn: Conn, client_id: int, queue_id: int, tasks: Sequence[NewTask], now_ms: int,
        actor: Actor | None,
    ) -> list[int] | None:  # fmt: skip
        """Insert the tasks, their ``task.created`` events and, with ``actor``, the batch's
        audit entry (``domain.audit.tasks_added``); their ids in input order (increasing), or
        None if the client has no such queue (then nothing is written)."""
        ...

    async def due_queues(self, conn: Conn, now_ms: int) -> list[Any]: ...
    async def running(self, conn: Conn, queue_id: int) -> int: ...
    async def claim_due(self, conn: Conn, claim: Claim) -> list[Any]:
        """Claim up to ``want`` due tasks within the queue's limit; count the queue's call."""
        ...

    async def candidates(self, conn: Conn, queue_id: int, due_ms: int, room: int) -> list[Any]: ...
    async def claim_ids(self, conn: Conn, claim: Claim, ids: list[int]) -> list[Any]: ...
    async def touch_queue(self, conn: Conn, claim: Claim, taken: int) -> None: ...
    async def complete(
        self, conn: Conn, results: Sequence[TaskResult], now_ms: int
    ) -> set[int]: ...
    async def progress(
        self, conn: Conn, items: Sequence[tuple[int, int, list[NewEvent]]]
    ) -> set[int]: ...


class LegSql(Protocol):
    """Write-ahead call legs, written out once per database (see ``store/legs_sql.py``)."""

    def upsert_sql(self) -> str:
        """The statement that stores finished legs (``CALL_FIELDS`` + client, queue, task)."""
        ...

    async def write(self, conn: Conn, writes: Sequence[LegWrite]) -> OpenedLegs:
        """Apply the writes; returns the leg_uuids of the opens that were accepted."""
        ...

    async def write_ruled(
        self, conn: Conn, writes: Sequence[LegWrite], clients: dict[str, int]
    ) -> OpenedLegs:
        """Open the legs :meth:`write` left ``ruled`` (their clients have campaign rules; the
        client of each leg in ``clients``), the rules checked (``store/campaign_rules.py``),
        in ``conn``'s transaction."""
        ...

    async def attempt_legs(self, conn: Conn, task_ids: Sequence[int]) -> list[Any]:
        """Per task: (task_id, legs stored by its current attempt, whether one answered)."""
        ...

    async def close(self, conn: Conn, task_ids: Sequence[int]) -> None:
        """Mark the open legs of these tasks ``interrupted``."""
        ...


class Driver(Protocol):
    """One database: its connections, its wake-ups, its clock and its own SQL."""

    @property
    def engine(self) -> Engine: ...

    notify_channel: str
    #: write transactions a worker may run at once
    parallel_writes: int

    @property
    def claims(self) -> ClaimSql: ...
    @property
    def legs(self) -> LegSql: ...

    def write(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[Conn]:
        """A write transaction; ``one_statement``: the work is a single statement, which may
        then run as its own transaction."""
        ...

    def intake(self) -> AbstractAsyncContextManager[Conn]:
        """A connection for one statement of driver SQL (``exec_driver_sql``) that is its own
        transaction and that a caller waits on alone (the add of one task), run the quickest
        way the database allows."""
        ...

    def read(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[Reader]:
        """A read-only transaction: every statement in it sees the same snapshot;
        ``one_statement``: the read is a single statement, which may then run on its own."""
        ...

    async def lookup(self, statement: Any, parameters: Any = None) -> Sequence[Any]:
        """The rows of one small indexed read (a queue by name, a client's caller ids): a
        single statement, which sees one snapshot by itself, run the cheapest way the database
        allows."""
        ...

    async def close(self) -> None: ...

    async def notify(self, conn: Conn) -> None:
        """Wake the other processes' workers once ``conn``'s transaction commits."""
        ...

    async def listen(self, callback: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """Call ``callback`` when any process commits new work; returns the stop function."""
        ...

    async def upsert_suppressions(
        self, conn: Conn, client_id: int, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        """Write do-not-call entries (``store/suppressions.py``: ``UPSERT_CONFLICT``), one
        statement for the batch."""
        ...

    async def database_time(self) -> datetime | None:
        """The database server's clock now; None if it has none of its own."""
        ...

    async def compact_status_counts(self) -> None:
        """Fold the per-queue status counts into one row per (queue, status), where they are
        kept as appended changes (migration 20)."""
        ...

    async def lock_migrations(self, conn: Conn) -> None:
        """One migrator at a time, until ``conn``'s transaction ends."""
        ...

    def migration_sql(self, migration: Migration) -> list[str]: ...

    def insert_ignoring(self, table: sa.Table, keys: Sequence[str]) -> sa.Executable:
        """``INSERT INTO table … ON CONFLICT (keys) DO NOTHING``."""
        ...

    def lock_skipping(self, query: sa.Select[Any], of: sa.Table) -> sa.Select[Any]:
        """``query`` locking the rows of ``of`` it reads, skipping rows locked by others
        (where the database has row locks)."""
        ...

    async def claim_deliveries(
        self, conn: Conn, owner: str, now_ms: int, limit: int, lease_ms: int
    ) -> list[Any]:
        """Lease due webhook deliveries (see ``store/webhooks.py``); their claim columns."""
        ...

    async def insert_deliveries(
        self, conn: Conn, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        """Store new webhook deliveries, pending and due now: ``rows`` in the order of
        ``store/webhooks.py: NEW_DELIVERY_COLUMNS``; one already stored (same event and target)
        is left as it is. One statement for the batch where the database allows."""
        ...

    async def finish_deliveries(
        self, conn: Conn, rows: Sequence[tuple[Any, ...]], now_ms: int
    ) -> None:
        """Record tries' outcomes (``store/webhooks.py: FINISH_COLUMNS``) where the lease
        (fence) still holds and the delivery is pending. One statement for the batch where the
        database allows."""
        ...
