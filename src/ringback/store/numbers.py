"""The numbers repository: inbound routing (the ``numbers`` table) and inbound call records.

A called number belongs to one client at most (an inbound call must reach exactly one IVR), so
the number is the primary key: a client cannot route a number another client routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Row

from ringback.domain.cdr import CallRecord
from ringback.domain.rows import NumberRow  # shared row types
from ringback.store import schema as t
from ringback.store.legs_sql import CALL_FIELDS, call_values
from ringback.store.mappers import loads
from ringback.store.records import Conflict, NotFound, from_ms, to_ms
from ringback.store.repository import Repository


class NumberRepository(Repository):
    """Routes of called numbers, and the legs of calls that no task placed."""

    async def put_number(
        self,
        client_id: int,
        number: str,
        *,
        answer_url: str | None,
        ivr_file: str | None,
        notify_completed: bool,
        description: str,
        now: datetime,
    ) -> tuple[NumberRow, bool]:
        """Create or replace the route of ``number``; True when it was created.

        :raises Conflict: another client routes this number.
        """
        n = t.numbers
        values = {
            "answer_url": answer_url,
            "ivr_file": ivr_file,
            "notify_completed": notify_completed,
            "description": description,
            "updated_at": to_ms(now),
        }
        async with self.driver.write() as conn:
            owner = (
                await conn.execute(sa.select(n.c.client_id).where(n.c.number == number))
            ).scalar()
            if owner is None:
                await conn.execute(
                    n.insert().values(
                        number=number, client_id=client_id, created_at=to_ms(now), **values
                    )
                )
            elif owner == client_id:
                await conn.execute(n.update().where(n.c.number == number).values(**values))
            else:
                raise Conflict(f"number {number} is routed by another client")
        return await self.get_number(client_id, number), owner is None

    async def get_number(self, client_id: int, number: str) -> NumberRow:
        rows = await self._numbers(t.numbers.c.client_id == client_id, number=number)
        if not rows:
            raise NotFound(f"no route for number {number}")
        return rows[0]

    async def list_numbers(self, client_id: int) -> list[NumberRow]:
        return await self._numbers(t.numbers.c.client_id == client_id)

    async def route_for(self, number: str) -> NumberRow | None:
        """The route of a called number, whichever client it belongs to (inbound calls)."""
        rows = await self._numbers(sa.true(), number=number)
        return rows[0] if rows else None

    async def delete_number(self, client_id: int, number: str) -> None:
        n = t.numbers
        async with self.driver.write() as conn:
            deleted = await conn.execute(
                n.delete().where(n.c.client_id == client_id, n.c.number == number)
            )
            if deleted.rowcount == 0:
                raise NotFound(f"no route for number {number}")

    async def _numbers(
        self, where: sa.ColumnElement[bool], *, number: str | None = None
    ) -> list[NumberRow]:
        n = t.numbers
        query = sa.select(n).where(where).order_by(n.c.number)
        if number is not None:
            query = query.where(n.c.number == number)
        async with self.driver.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_number(row) for row in rows]

    async def save_calls(self, client_id: int, records: Sequence[CallRecord]) -> None:
        """Store the legs of a call that no task placed (an inbound call)."""
        if not records:
            return
        c = t.calls
        rows = []
        for rec in records:
            row = dict(zip(CALL_FIELDS, call_values(rec, 0), strict=True))
            # call_values gives JSON text (for plain SQL); these columns take the values
            row["played"], row["detail"] = loads(row["played"]), loads(row["detail"])
            row["fax"] = None if row["fax"] is None else loads(row["fax"])
            row["amd"] = None if row["amd"] is None else loads(row["amd"])
            rows.append({**row, "client_id": client_id})
        async with self.driver.write() as conn:
            await conn.execute(c.insert(), rows)


def _number(row: Row[tuple[object, ...]]) -> NumberRow:
    return NumberRow(
        number=row.number,
        client_id=int(row.client_id),
        answer_url=row.answer_url,
        ivr_file=row.ivr_file,
        notify_completed=bool(row.notify_completed),
        description=row.description,
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
    )
