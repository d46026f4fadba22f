"""The audit log in the application layer: who changed what, recorded with each change.

The edge that serves a request says who acts (:func:`acting_as`: the API with the token's
client and credential and the ``Ringback-Operator`` header, the console, the host's CLI with
the operator's login name, an IVR's AddJob); the services then record each change through
:meth:`AuditLog.change` (in the change's own transaction) or :meth:`AuditLog.created` (right
after a creation commits, with the new id). Without a declared actor the change is recorded
as the client's own, channel ``system``. Bulk changes are one entry per batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from ringback.clock import Clock
from ringback.domain.audit import Actor, AuditEntry, AuditRow, clean_operator
from ringback.store import Store

_actor: ContextVar[Actor | None] = ContextVar("ringback_actor", default=None)
#: an actor's client id meaning "whichever client the change is for" (the host's CLI)
ANY_CLIENT = 0
#: the most entries one page of the audit log holds
MAX_PAGE = 1000


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Changes made inside the block are recorded as ``actor``'s."""
    actor = Actor(
        actor.client_id, actor.channel, actor.credential_id, clean_operator(actor.operator)
    )
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def declare_actor(actor: Actor) -> None:
    """Changes made from now on in this task (one request) are recorded as ``actor``'s."""
    _actor.set(Actor(actor.client_id, actor.channel, actor.credential_id,
                     clean_operator(actor.operator)))  # fmt: skip


def actor_for(client_id: int) -> Actor:
    """Who acts for ``client_id`` now: the declared actor if it is that client's, else the
    client itself (channel ``system``)."""
    actor = _actor.get()
    if actor is not None and actor.client_id == client_id:
        return actor
    if actor is not None and actor.client_id == ANY_CLIENT:  # the host's CLI
        return Actor(client_id, actor.channel, actor.credential_id, actor.operator)
    return Actor(client_id)


def entry(action: str, object_type: str, object_id: Any, **summary: Any) -> AuditEntry:
    """An entry; summary values that are None are left out."""
    kept = {k: v for k, v in summary.items() if v is not None}
    return AuditEntry(action, object_type, None if object_id is None else str(object_id), kept)


class AuditLog:
    """Record changes; read a client's entries."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    @contextlib.contextmanager
    def change(self, client_id: int, *entries: AuditEntry) -> Iterator[None]:
        """The store's write inside the block commits ``entries`` with it."""
        with self.store.audited(actor_for(client_id), entries, self.clock.now()):
            yield

    async def created(self, client_id: int, *entries: AuditEntry) -> None:
        """Record a creation (its id now known), in a transaction of its own."""
        await self.store.add_audit(actor_for(client_id), entries, self.clock.now())

    async def page(
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
    ) -> tuple[list[AuditRow], int | None]:
        """The client's entries, newest first, and the ``before_id`` of the next page (None:
        this is the last)."""
        rows = await self.store.list_audit(
            client_id, object_type=object_type, object_id=object_id, action=action,
            since=since, until=until, before_id=before_id, limit=min(limit, MAX_PAGE) + 1,
        )  # fmt: skip
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, rows[-1].id if more and rows else None
