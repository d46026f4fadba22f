"""The suppressions repository: a client's do-not-call lists (``ringback.domain.suppression``).

Entries are upserted (the same number, kind and list again replaces its source and expiry) in
batches, each one statement run for many rows. Whether a called number is suppressed is one
index lookup of its prefixes (``client_id = ? AND number IN (…)``, the ``suppressions_entry``
index); the engine makes the same check inside the write of every call leg (the drivers'
``legs.write``, with :data:`MATCH_ORDER` deciding which entry is named when several match).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ringback.domain.suppression import (
    Suppression,
    SuppressionEntry,
    SuppressionRow,
    lookup_keys,
    matches,
)
from ringback.store import schema as t
from ringback.store.records import NotFound, from_ms, to_ms
from ringback.store.repository import Repository

#: when several entries match, the one named: the longest (the number itself before a prefix)
MATCH_ORDER = "length(number) DESC, prefix, list_name"
#: (list_name, number, prefix, source, expires_at) of each entry: what ``upsert_suppressions``
#: of a driver writes, in one statement per batch (an entry already there: new source, expiry)
UPSERT_CONFLICT = (
    "ON CONFLICT (client_id, number, prefix, list_name) DO UPDATE SET "
    "source = excluded.source, expires_at = excluded.expires_at"
)


def first_match(rows: Sequence[Any], called: str) -> Suppression | None:
    """Of entry rows (number, prefix, list_name, source) found for a number's keys, the one
    that suppresses a call to ``called`` (see :data:`MATCH_ORDER`), if any."""
    found = [
        Suppression(list_name=r[2], source=r[3], number=r[0], prefix=bool(r[1]))
        for r in rows
        if matches(r[0], bool(r[1]), called)
    ]
    found.sort(key=lambda s: (-len(s.number), s.prefix, s.list_name))
    return found[0] if found else None


class SuppressionRepository(Repository):
    """Entries of do-not-call lists: add, list, remove, and the lookup of a number."""

    async def add_suppressions(
        self, client_id: int, entries: Sequence[SuppressionEntry], now: datetime
    ) -> int:
        """Store ``entries`` in one transaction (an entry already there gets this source and
        expiry); returns how many were written. Duplicates in ``entries``: the last one wins."""
        unique = {(e.number, e.prefix, e.list_name): e for e in entries}
        if not unique:
            return 0
        rows = [
            (e.list_name, e.number, e.prefix, e.source,
             None if e.expires_at is None else to_ms(e.expires_at))
            for e in unique.values()
        ]  # fmt: skip
        async with self.driver.write() as conn:
            await self.driver.upsert_suppressions(conn, client_id, rows, to_ms(now))
        return len(rows)

    async def list_suppressions(
        self,
        client_id: int,
        *,
        list_name: str | None = None,
        number: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[SuppressionRow], int]:
        """A page of the client's entries by id, and how many match in all. ``number``: the
        entries that start with it."""
        s = t.suppressions
        where: list[Any] = [s.c.client_id == client_id]
        if list_name is not None:
            where.append(s.c.list_name == list_name)
        if number is not None:
            where.append(s.c.number >= number)
            where.append(s.c.number < number + "\uffff")
        async with self.driver.read() as conn:
            total = (
                await conn.execute(sa.select(sa.func.count()).select_from(s).where(*where))
            ).scalar_one()
            rows = (
                await conn.execute(
                    sa.select(s).where(*where).order_by(s.c.id).limit(limit).offset(offset)
                )
            ).all()
        return [_row(row) for row in rows], int(total)

    async def delete_suppression(self, client_id: int, entry_id: int) -> None:
        s = t.suppressions
        async with self.driver.write() as conn:
            deleted = await conn.execute(
                s.delete().where(s.c.client_id == client_id, s.c.id == entry_id)
            )
        if deleted.rowcount == 0:
            raise NotFound(f"no suppression entry {entry_id}")

    async def delete_suppressions(
        self, client_id: int, *, list_name: str | None = None, number: str | None = None
    ) -> int:
        """Remove the client's entries of ``number`` (number or prefix entry) on ``list_name``
        (both optional, not both None); returns how many."""
        if list_name is None and number is None:
            raise ValueError("name a list or a number")
        s = t.suppressions
        where: list[Any] = [s.c.client_id == client_id]
        if list_name is not None:
            where.append(s.c.list_name == list_name)
        if number is not None:
            where.append(s.c.number == number)
        async with self.driver.write() as conn:
            deleted = await conn.execute(s.delete().where(*where))
        return int(deleted.rowcount)

    async def suppression_for(
        self, client_id: int, called: str, now: datetime
    ) -> Suppression | None:
        """The entry that keeps a call to ``called`` from being placed now, if any."""
        keys = lookup_keys(called)
        if not keys:
            return None
        s = t.suppressions
        query = sa.select(s.c.number, s.c.prefix, s.c.list_name, s.c.source).where(
            s.c.client_id == client_id,
            s.c.number.in_(keys),
            sa.or_(s.c.expires_at.is_(None), s.c.expires_at > to_ms(now)),
        )
        async with self.driver.read() as conn:
            rows = (await conn.execute(query)).all()
        return first_match(rows, called)


def _row(row: Any) -> SuppressionRow:
    return SuppressionRow(
        id=int(row.id),
        client_id=int(row.client_id),
        list_name=row.list_name,
        number=row.number,
        prefix=bool(row.prefix),
        source=row.source,
        expires_at=from_ms(row.expires_at),
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
    )
