"""Queries of the HTTP API: credentials and tokens, idempotency keys, call history.

A mixin of :class:`ringback.store.db.Store`; every query here is scoped to one client.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ringback.store import schema as t
from ringback.store.records import CallRow, to_ms

if TYPE_CHECKING:
    from ringback.store.db import Conn


@dataclass(slots=True)
class Credential:
    client_id: int
    key: str
    secret_hash: str


@dataclass(slots=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: str


class AccessMixin:
    """Needs ``_write`` and ``_read`` from the Store it is mixed into."""

    if TYPE_CHECKING:

        def _write(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[Conn]: ...

        def _read(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

        async def calls_of(self, call_uuids: Sequence[str]) -> list[CallRow]: ...

    # --- credentials and tokens -------------------------------------------------------------

    async def add_credential(
        self, client_id: int, key: str, secret_hash: str, now: datetime
    ) -> None:
        async with self._write() as conn:
            await conn.execute(
                t.credentials.insert().values(
                    client_id=client_id, key=key, secret_hash=secret_hash, created_at=to_ms(now)
                )
            )

    async def find_credential(self, key: str) -> Credential | None:
        c = t.credentials
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(c.c.client_id, c.c.key, c.c.secret_hash).where(c.c.key == key)
                )
            ).first()
        return None if row is None else Credential(row.client_id, row.key, row.secret_hash)

    async def add_token(
        self, token_hash: str, client_id: int, expires_at: datetime, now: datetime
    ) -> None:
        """Store a token (hashed); tokens that expired are dropped at the same time."""
        tk = t.tokens
        async with self._write() as conn:
            await conn.execute(tk.delete().where(tk.c.expires_at < to_ms(now)))
            await conn.execute(
                tk.insert().values(
                    token_hash=token_hash,
                    client_id=client_id,
                    expires_at=to_ms(expires_at),
                    created_at=to_ms(now),
                )
            )

    async def token_client(self, token_hash: str, now: datetime) -> int | None:
        """The client a valid, unexpired token belongs to."""
        tk = t.tokens
        async with self._read() as conn:
            client_id = (
                await conn.execute(
                    sa.select(tk.c.client_id).where(
                        tk.c.token_hash == token_hash, tk.c.expires_at > to_ms(now)
                    )
                )
            ).scalar()
        return None if client_id is None else int(client_id)

    # --- idempotency keys -------------------------------------------------------------------

    async def stored_response(self, client_id: int, key: str) -> StoredResponse | None:
        ik = t.idempotency_keys
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(ik.c.request_hash, ik.c.status_code, ik.c.body).where(
                        ik.c.client_id == client_id, ik.c.key == key
                    )
                )
            ).first()
        return None if row is None else StoredResponse(row.request_hash, row.status_code, row.body)

    async def store_response(
        self,
        client_id: int,
        key: str,
        request_hash: str,
        status_code: int,
        body: str,
        now: datetime,
    ) -> StoredResponse:
        """Keep the first response given for ``key``; returns the one kept."""
        ik = t.idempotency_keys
        async with self._write() as conn:
            row = (
                await conn.execute(
                    sa.select(ik.c.request_hash, ik.c.status_code, ik.c.body).where(
                        ik.c.client_id == client_id, ik.c.key == key
                    )
                )
            ).first()
            if row is not None:
                return StoredResponse(row.request_hash, row.status_code, row.body)
            await conn.execute(
                ik.insert().values(
                    client_id=client_id,
                    key=key,
                    request_hash=request_hash,
                    status_code=status_code,
                    body=body,
                    created_at=to_ms(now),
                )
            )
        return StoredResponse(request_hash, status_code, body)

    # --- call history -----------------------------------------------------------------------

    async def call_history(
        self,
        client_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[list[CallRow]], int]:
        """Calls (legs grouped by call uuid) that started in [start, end), oldest first, and
        how many there are in all."""
        c = t.calls
        where: list[Any] = [c.c.client_id == client_id]
        if start is not None:
            where.append(c.c.started_at >= to_ms(start))
        if end is not None:
            where.append(c.c.started_at < to_ms(end))
        first = sa.func.min(c.c.started_at).label("first")
        groups = sa.select(c.c.call_uuid, first).where(*where).group_by(c.c.call_uuid)
        async with self._read() as conn:
            total = (
                await conn.execute(sa.select(sa.func.count()).select_from(groups.subquery()))
            ).scalar_one()
            uuids = (
                (
                    await conn.execute(
                        groups.order_by(first, c.c.call_uuid).limit(limit).offset(offset)
                    )
                )
                .scalars()
                .all()
            )
        legs = await self.calls_of(list(uuids))
        by_uuid: dict[str, list[CallRow]] = {uuid: [] for uuid in uuids}
        for leg in legs:
            by_uuid[leg.call_uuid].append(leg)
        return list(by_uuid.values()), int(total)
