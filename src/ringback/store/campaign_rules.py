"""The campaign rules repository: a client's frequency caps and allowed caller ids
(``ringback.domain.frequency_caps``), and their check in the write of every call leg.

:func:`check_opens` runs inside the transaction that stores the legs about to be dialled: it
reads the rules of the clients concerned, then, for each leg of a client with caps, the start
times of the client's legs to the same number within the longest window (an index range of
``calls_callee``), counting the legs accepted earlier in the same batch too. On SQLite writes
are serial (one writer), so the count and the write are one atomic step. On PostgreSQL the
driver first takes a transaction advisory lock per (client, number) (``lock_callees``), in a
statement of its own, so that two workers dialling one number at the same moment are counted
one after the other: the second counts the first's leg once it committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ringback.domain.frequency_caps import (
    CallerIdEntry,
    CallerIdRefused,
    CapDelay,
    CapRule,
    caller_id_allowed,
    cap_delay,
)
from ringback.store import schema as t
from ringback.store.driver import Conn
from ringback.store.legs_sql import NOT_SENT, LegWrite
from ringback.store.records import from_ms, to_ms
from ringback.store.repository import Repository

#: the client's allowed caller ids; built once (SQLAlchemy keeps a statement object's cache
#: key): every add reads it
_CALLER_IDS = (
    sa.select(t.caller_ids.c.number, t.caller_ids.c.prefix)
    .where(t.caller_ids.c.client_id == sa.bindparam("client_id"))
    .order_by(t.caller_ids.c.number, t.caller_ids.c.prefix)
)


@dataclass(slots=True)
class Verdicts:
    """What the campaign rules say about some opens: the legs delayed by a cap, and the legs
    refused for their caller id (by leg_uuid)."""

    capped: dict[str, CapDelay] = field(default_factory=dict)
    refused: dict[str, CallerIdRefused] = field(default_factory=dict)


async def check_opens(conn: Conn, opens: Sequence[tuple[LegWrite, int]]) -> Verdicts:
    """The verdicts on ``opens`` (each write with its task's client id), in their order."""
    verdicts = Verdicts()
    clients = sorted({client_id for _, client_id in opens})
    if not clients:
        return verdicts
    caps, allowed = await _rules(conn, clients)
    if not caps and not allowed:
        return verdicts
    starts = await _starts(conn, [(w, c) for w, c in opens if caps.get(c)], caps)
    for write, client_id in opens:
        record = write.record
        caller = record.from_number
        if caller and not caller_id_allowed(allowed.get(client_id, []), caller):
            verdicts.refused[record.leg_uuid] = CallerIdRefused(caller)
            continue
        rules = caps.get(client_id)
        if not rules:
            continue
        placed = starts.setdefault((client_id, record.to_number), [])
        delay = cap_delay(record.to_number, rules, placed, record.started_at)
        if delay is not None:
            verdicts.capped[record.leg_uuid] = delay
        else:
            placed.append(record.started_at)  # counts for the next legs of the batch
    return verdicts


async def _rules(
    conn: Conn, clients: list[int]
) -> tuple[dict[int, list[CapRule]], dict[int, list[CallerIdEntry]]]:
    f, c = t.frequency_caps, t.caller_ids
    query = sa.union_all(
        sa.select(f.c.client_id, f.c.max_calls, f.c.window_seconds, sa.null(), sa.null()).where(
            f.c.client_id.in_(clients)
        ),
        sa.select(c.c.client_id, sa.null(), sa.null(), c.c.number, c.c.prefix).where(
            c.c.client_id.in_(clients)
        ),
    )
    caps: dict[int, list[CapRule]] = {}
    allowed: dict[int, list[CallerIdEntry]] = {}
    rows: list[Any] = list((await conn.execute(query)).all())
    for row in rows:
        if row[1] is not None:
            caps.setdefault(int(row[0]), []).append(CapRule(int(row[1]), int(row[2])))
        else:
            allowed.setdefault(int(row[0]), []).append(CallerIdEntry(row[3], bool(row[4])))
    return caps, allowed


async def _starts(
    conn: Conn, opens: list[tuple[LegWrite, int]], caps: dict[int, list[CapRule]]
) -> dict[tuple[int, str], list[datetime]]:
    """When the counted legs of each (client, number) of ``opens`` started, within the client's
    longest window before the earliest open: one index range read per client and batch."""
    c = t.calls
    found: dict[tuple[int, str], list[datetime]] = {}
    for client_id in sorted({client for _, client in opens}):
        mine = [w.record for w, client in opens if client == client_id]
        longest = max(r.window_seconds for r in caps[client_id])
        since = to_ms(min(r.started_at for r in mine) - timedelta(seconds=longest))
        query = sa.select(c.c.to_number, c.c.started_at).where(
            c.c.client_id == client_id,
            c.c.to_number.in_(sorted({r.to_number for r in mine})),
            c.c.started_at > since,
            sa.func.coalesce(c.c.hangup_disposition, "") != NOT_SENT,
        )
        rows: list[Any] = list((await conn.execute(query)).all())
        for number, started_ms in rows:
            found.setdefault((client_id, number), []).append(from_ms(started_ms))  # type: ignore[arg-type]
    return found


class CampaignRuleRepository(Repository):
    """A client's frequency caps and allowed caller ids: read, replace."""

    async def frequency_caps(self, client_id: int) -> list[CapRule]:
        f = t.frequency_caps
        query = sa.select(f.c.max_calls, f.c.window_seconds).where(f.c.client_id == client_id)
        async with self.driver.read() as conn:
            rows = (await conn.execute(query.order_by(f.c.window_seconds))).all()
        return [CapRule(int(r[0]), int(r[1])) for r in rows]

    async def set_frequency_caps(
        self, client_id: int, rules: Sequence[CapRule], now: datetime
    ) -> None:
        """Replace the client's rules (none: no cap)."""
        f = t.frequency_caps
        values = [
            {"client_id": client_id, "max_calls": r.max_calls,
             "window_seconds": r.window_seconds, "created_at": to_ms(now)}
            for r in rules
        ]  # fmt: skip
        async with self.driver.write() as conn:
            await conn.execute(f.delete().where(f.c.client_id == client_id))
            if values:
                await conn.execute(f.insert(), values)

    async def caller_ids(self, client_id: int) -> list[CallerIdEntry]:
        rows = await self.driver.lookup(_CALLER_IDS, {"client_id": client_id})
        return [CallerIdEntry(r[0], bool(r[1])) for r in rows]

    async def set_caller_ids(
        self, client_id: int, entries: Sequence[CallerIdEntry], now: datetime
    ) -> None:
        """Replace the client's allowed caller ids (none: any caller id)."""
        c = t.caller_ids
        unique = {(e.number, e.prefix) for e in entries}
        values: list[dict[str, Any]] = [
            {"client_id": client_id, "number": n, "prefix": p, "created_at": to_ms(now)}
            for n, p in sorted(unique)
        ]
        async with self.driver.write() as conn:
            await conn.execute(c.delete().where(c.c.client_id == client_id))
            if values:
                await conn.execute(c.insert(), values)
