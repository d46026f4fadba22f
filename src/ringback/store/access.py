"""The access repository: clients, their credentials and tokens, and idempotency keys.

Who may call the HTTP API and what it answered already; every query but the clients' own is
scoped to one client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ringback.domain.rows import Credential, CredentialRow, TokenOwner  # shared row types
from ringback.store import schema as t
from ringback.store.records import NotFound, from_ms, to_ms
from ringback.store.repository import Repository


@dataclass(slots=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: str


def _id_of(key: str) -> sa.ScalarSelect[Any]:
    return sa.select(t.credentials.c.id).where(t.credentials.c.key == key).scalar_subquery()


def _credential_row(row: Any) -> CredentialRow:
    created = from_ms(row.created_at)
    assert created is not None
    return CredentialRow(
        id=row.id, client_id=row.client_id, client_name=row.name, key=row.key,
        secret_version=row.secret_version, created_at=created,
        rotated_at=from_ms(row.rotated_at), disabled_at=from_ms(row.disabled_at),
    )  # fmt: skip


class AccessRepository(Repository):
    """Clients, credentials, tokens, idempotency keys."""

    # --- clients ----------------------------------------------------------------------------

    async def ensure_client(self, name: str, now: datetime) -> int:
        async with self.driver.write() as conn:
            found = (
                await conn.execute(sa.select(t.clients.c.id).where(t.clients.c.name == name))
            ).scalar()
            if found is not None:
                return int(found)
            result = await conn.execute(
                t.clients.insert()
                .values(name=name, created_at=to_ms(now))
                .returning(t.clients.c.id)
            )
            return int(result.scalar_one())

    async def find_client(self, name: str) -> int:
        async with self.driver.read() as conn:
            found = (
                await conn.execute(sa.select(t.clients.c.id).where(t.clients.c.name == name))
            ).scalar()
        if found is None:
            raise NotFound(f"no client named {name!r}")
        return int(found)

    # --- credentials and tokens -------------------------------------------------------------

    async def add_credential(
        self, client_id: int, key: str, secret_hash: str, now: datetime
    ) -> int:
        """A new credential of the client; its id."""
        c = t.credentials
        async with self.driver.write() as conn:
            return int(
                (
                    await conn.execute(
                        c.insert()
                        .values(
                            client_id=client_id, key=key, secret_hash=secret_hash,
                            created_at=to_ms(now),
                        )
                        .returning(c.c.id)
                    )
                ).scalar_one()
            )  # fmt: skip

    async def find_credential(self, key: str) -> Credential | None:
        c = t.credentials
        async with self.driver.read() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        c.c.id, c.c.client_id, c.c.key, c.c.secret_hash, c.c.secret_version,
                        c.c.disabled_at,
                    ).where(c.c.key == key)
                )
            ).first()  # fmt: skip
        if row is None:
            return None
        return Credential(
            row.id, row.client_id, row.key, row.secret_hash, row.secret_version,
            from_ms(row.disabled_at),
        )  # fmt: skip

    async def list_credentials(self, client_id: int | None = None) -> list[CredentialRow]:
        """Every credential (of one client, if given), by id; no secret hashes."""
        c, cl = t.credentials, t.clients
        query = (
            sa.select(
                c.c.id, c.c.client_id, cl.c.name, c.c.key, c.c.secret_version, c.c.created_at,
                c.c.rotated_at, c.c.disabled_at,
            )
            .join(cl, cl.c.id == c.c.client_id)
            .order_by(c.c.id)
        )  # fmt: skip
        if client_id is not None:
            query = query.where(c.c.client_id == client_id)
        async with self.driver.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_credential_row(row) for row in rows]

    async def set_credential_disabled(self, key: str, disabled_at: datetime | None) -> Credential:
        """Disable (``disabled_at``) or enable (None) a credential; NotFound if no such key.
        Disabling keeps the time of the first disabling."""
        c = t.credentials
        async with self.driver.write() as conn:
            update = c.update().where(c.c.key == key)
            if disabled_at is None:
                update = update.values(disabled_at=None)
            else:
                update = update.values(
                    disabled_at=sa.func.coalesce(c.c.disabled_at, to_ms(disabled_at))
                )
            if (await conn.execute(update)).rowcount == 0:
                raise NotFound(f"no client_id {key!r}")
        found = await self.find_credential(key)
        assert found is not None
        return found

    async def rotate_credential(self, key: str, secret_hash: str, now: datetime) -> Credential:
        """A new secret for the credential; its version goes up by one, so every token issued
        before stops working. NotFound if no such key."""
        c = t.credentials
        async with self.driver.write() as conn:
            updated = await conn.execute(
                c.update()
                .where(c.c.key == key)
                .values(
                    secret_hash=secret_hash, secret_version=c.c.secret_version + 1,
                    rotated_at=to_ms(now),
                )
            )  # fmt: skip
            if updated.rowcount == 0:
                raise NotFound(f"no client_id {key!r}")
            await conn.execute(t.tokens.delete().where(t.tokens.c.credential_id == _id_of(key)))
        found = await self.find_credential(key)
        assert found is not None
        return found

    async def delete_credential(self, key: str) -> None:
        """Delete a credential and its tokens; NotFound if no such key."""
        c = t.credentials
        async with self.driver.write() as conn:
            await conn.execute(t.tokens.delete().where(t.tokens.c.credential_id == _id_of(key)))
            if (await conn.execute(c.delete().where(c.c.key == key))).rowcount == 0:
                raise NotFound(f"no client_id {key!r}")

    async def add_token(
        self,
        token_hash: str,
        credential: Credential,
        expires_at: datetime,
        now: datetime,
    ) -> None:
        """Store a token (hashed) of ``credential`` at its current secret version; tokens that
        expired are dropped at the same time."""
        tk = t.tokens
        async with self.driver.write() as conn:
            await conn.execute(tk.delete().where(tk.c.expires_at < to_ms(now)))
            await conn.execute(
                tk.insert().values(
                    token_hash=token_hash,
                    client_id=credential.client_id,
                    credential_id=credential.id,
                    secret_version=credential.secret_version,
                    expires_at=to_ms(expires_at),
                    created_at=to_ms(now),
                )
            )

    async def token_owner(self, token_hash: str, now: datetime) -> TokenOwner | None:
        """Who a token speaks for, if it is unexpired and its credential still exists, is not
        disabled and has not been given a new secret since: one query (primary keys)."""
        tk, c = t.tokens, t.credentials
        query = (
            sa.select(tk.c.client_id, tk.c.credential_id)
            .join(c, c.c.id == tk.c.credential_id)
            .where(
                tk.c.token_hash == token_hash,
                tk.c.expires_at > to_ms(now),
                c.c.secret_version == tk.c.secret_version,
                c.c.disabled_at.is_(None),
            )
        )
        async with self.driver.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else TokenOwner(int(row.client_id), int(row.credential_id))

    async def delete_token(self, token_hash: str) -> bool:
        """Revoke one token (signing out): whether it existed."""
        tk = t.tokens
        async with self.driver.write() as conn:
            done = await conn.execute(tk.delete().where(tk.c.token_hash == token_hash))
        return bool(done.rowcount)

    async def token_client(self, token_hash: str, now: datetime) -> int | None:
        """The client a valid token belongs to (see :meth:`token_owner`)."""
        owner = await self.token_owner(token_hash, now)
        return None if owner is None else owner.client_id

    # --- idempotency keys -------------------------------------------------------------------

    async def stored_response(self, client_id: int, key: str) -> StoredResponse | None:
        ik = t.idempotency_keys
        async with self.driver.read() as conn:
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
        async with self.driver.write() as conn:
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
