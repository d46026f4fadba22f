"""The audit log repository (``ringback.domain.audit``): entries written inside the write
transaction of the change they describe, and read back a page at a time by key.

The application layer names the entries of a change with :meth:`AuditRepository.audited`
(a context variable of this task); the drivers' ``write()`` calls :func:`flush` before their
transaction commits, so the first write transaction that commits inside the block carries the
entries, and a change that fails (rolled back) leaves none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ringback.domain.audit import Actor, AuditEntry, AuditRow, redact
from ringback.store import schema as t
from ringback.store.driver import Conn
from ringback.store.records import from_ms, to_ms
from ringback.store.repository import Repository


@dataclass(slots=True)
class _Pending:
    actor: Actor
    entries: list[AuditEntry]
    at_ms: int


_pending: ContextVar[_Pending | None] = ContextVar("ringback_audit_pending", default=None)

#: built once: SQLAlchemy keeps a statement object's cache key (every add writes an entry)
_INSERT = sa.insert(t.audit_log)


def _rows(actor: Actor, entries: Sequence[AuditEntry], at_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "client_id": actor.client_id, "occurred_at": at_ms, "channel": actor.channel,
            "credential_id": actor.credential_id, "operator": actor.operator,
            "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
            "summary": redact(e.summary),
        }
        for e in entries
    ]  # fmt: skip


async def flush(conn: Conn) -> None:
    """Write the entries named by :meth:`AuditRepository.audited`, if any, on ``conn`` (a
    write transaction about to commit); once only."""
    pending = _pending.get()
    if pending is None or not pending.entries:
        return
    await write_entries(conn, pending.actor, pending.entries, pending.at_ms)
    pending.entries = []


async def write_entries(
    conn: Conn, actor: Actor, entries: Sequence[AuditEntry], at_ms: int
) -> None:
    """Write ``entries`` on ``conn``, in its transaction."""
    await conn.execute(_INSERT, _rows(actor, entries, at_ms))


def pending() -> bool:
    """Whether a change's audit entries wait for the next write transaction to commit them."""
    found = _pending.get()
    return found is not None and bool(found.entries)


def discard() -> None:
    """The change turned out to change nothing (a store method returning False): its entries
    are not written."""
    pending = _pending.get()
    if pending is not None:
        pending.entries = []


def amend(**summary: Any) -> None:
    """The change's entries gain these summary values, known only once its statements ran (how
    many tasks a bulk cancel reached); written with them before the transaction commits."""
    pending = _pending.get()
    if pending is not None:
        pending.entries = [replace(e, summary={**e.summary, **summary}) for e in pending.entries]


class AuditRepository(Repository):
    """The audit log: written with changes, read by client, object, action and time."""

    @contextlib.contextmanager
    def audited(self, actor: Actor, entries: Sequence[AuditEntry], now: datetime) -> Iterator[None]:
        """The first write transaction committed inside the block also writes ``entries``."""
        token = _pending.set(_Pending(actor, list(entries), to_ms(now)))
        try:
            yield
        finally:
            _pending.reset(token)

    async def add_audit(self, actor: Actor, entries: Sequence[AuditEntry], now: datetime) -> None:
        """Write entries in their own transaction (a creation, once its id is known)."""
        if not entries:
            return
        async with self.driver.write(one_statement=not pending()) as conn:
            await write_entries(conn, actor, entries, to_ms(now))

    async def list_audit(
        self,
        client_id: int,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        """The client's entries, newest first, at most ``limit``: those in [since, until) of
        the object type / object / action given, with an id below ``before_id`` (the last id
        of the previous page)."""
        a = t.audit_log
        where: list[Any] = [a.c.client_id == client_id]
        for column, value in (
            (a.c.object_type, object_type), (a.c.object_id, object_id), (a.c.action, action)
        ):  # fmt: skip
            if value is not None:
                where.append(column == value)
        if since is not None:
            where.append(a.c.occurred_at >= to_ms(since))
        if until is not None:
            where.append(a.c.occurred_at < to_ms(until))
        if before_id is not None:
            where.append(a.c.id < before_id)
        query = sa.select(a).where(*where).order_by(a.c.id.desc()).limit(limit)
        async with self.driver.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditRow(
                id=int(r.id), client_id=int(r.client_id),
                occurred_at=from_ms(r.occurred_at),  # type: ignore[arg-type]
                channel=r.channel, credential_id=r.credential_id, operator=r.operator,
                action=r.action, object_type=r.object_type, object_id=r.object_id,
                summary=r.summary,
            )
            for r in rows
        ]  # fmt: skip
