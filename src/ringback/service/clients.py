"""Clients and their credentials: create, check, list, disable, enable, delete, rotate;
bearer tokens; each client's signing secret (and a worker's cache of them)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from ringback.clock import Clock
from ringback.domain.credentials import (
    DUMMY_HASH,
    SIGNING_OVERLAP,
    current_secrets,
    hash_secret,
    new_client_key,
    new_client_secret,
    new_signing_secret,
    verify_secret,
)
from ringback.domain.rows import Credential, CredentialRow, NotFound, TokenOwner, WebhookKeyRow
from ringback.store import Store


def token_digest(token: str) -> str:
    """Tokens are stored as this digest only (they are long random strings, not passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_LIFETIME_S = 3600
SIGNING_CACHE_S = 60.0

Verify = Callable[[str, str], Awaitable[bool]]


async def _verify_in_thread(secret: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_secret, secret, stored)


@dataclass(frozen=True, slots=True)
class NewCredentials:
    """Shown once: ``secret`` is stored only hashed."""

    client_id: int  # the client's number (path of the API)
    key: str  # the OAuth client_id
    secret: str
    secret_version: int
    signing_secret: str  # signs every request ringback sends to the client's servers


class ClientService:
    """Clients' credentials: create, check, list, disable, enable, delete, rotate; tokens; the
    client's signing secret. ``verify`` checks a secret against its hash (the API passes one
    that bounds how many run at once)."""

    def __init__(self, store: Store, clock: Clock, verify: Verify | None = None) -> None:
        self.store = store
        self.clock = clock
        self._verify = verify or _verify_in_thread

    def check_secrets_with(self, verify: Verify) -> None:
        """Check secrets with ``verify`` from now on (the API bounds how many run at once)."""
        self._verify = verify

    async def create_credentials(self, client_name: str) -> NewCredentials:
        """A new key and secret for the client named ``client_name`` (created if new)."""
        now = self.clock.now()
        client_id = await self.store.ensure_client(client_name, now)
        key, secret = new_client_key(), new_client_secret()
        hashed = await asyncio.to_thread(hash_secret, secret)
        await self.store.add_credential(client_id, key, hashed, now)
        signing = await self.signing_key(client_id)
        return NewCredentials(client_id, key, secret, 1, signing.secret)

    async def authenticate(self, key: str, secret: str) -> Credential | None:
        """The credential ``key`` names, if ``secret`` is its secret and it is not disabled.
        Unknown keys cost a check against a dummy hash, so the answer time tells nothing."""
        found = await self.store.find_credential(key)
        stored = found.secret_hash if found is not None else DUMMY_HASH
        ok = await self._verify(secret, stored)
        if not ok or found is None or found.disabled_at is not None:
            return None
        return found

    async def issue_token(self, credential: Credential) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + timedelta(seconds=TOKEN_LIFETIME_S)
        await self.store.add_token(token_digest(token), credential, expires, now)
        return token

    async def client_of_token(self, token: str) -> int | None:
        """The client a bearer token was issued to, while it is valid (None: unknown, expired,
        or its credential disabled or rotated)."""
        return await self.store.token_client(token_digest(token), self.clock.now())

    async def revoke_token(self, token: str) -> bool:
        """End a bearer token now (a console sign-out): whether it was known."""
        return await self.store.delete_token(token_digest(token))

    async def owner_of_token(self, token: str) -> TokenOwner | None:
        """The client and credential a valid bearer token speaks for."""
        return await self.store.token_owner(token_digest(token), self.clock.now())

    async def client_id(self, name: str, *, create: bool = True) -> int:
        """The client named ``name`` (made when new, with ``create``; NotFound otherwise)."""
        if create:
            return await self.store.ensure_client(name, self.clock.now())
        try:
            return await self.store.find_client(name)
        except NotFound as exc:
            raise NotFound(
                f"no client named {name!r} yet: add a queue or a task for it first"
            ) from exc

    async def list_credentials(self, client_name: str | None = None) -> list[CredentialRow]:
        client_id = None if client_name is None else await self.store.find_client(client_name)
        return await self.store.list_credentials(client_id)

    async def disable(self, key: str) -> Credential:
        """Refuse the credential's secret and every token it was given, at once."""
        return await self.store.set_credential_disabled(key, self.clock.now())

    async def enable(self, key: str) -> Credential:
        """Accept the credential again (its tokens that have not expired work again)."""
        return await self.store.set_credential_disabled(key, None)

    async def delete(self, key: str) -> None:
        await self.store.delete_credential(key)

    async def rotate_secret(self, key: str) -> NewCredentials:
        """A new secret for ``key`` (tokens issued before stop working) and a new signing secret
        for its client (the old one still signs for 24 hours)."""
        secret = new_client_secret()
        hashed = await asyncio.to_thread(hash_secret, secret)
        now = self.clock.now()
        rotated = await self.store.rotate_credential(key, hashed, now)
        signing = await self.rotate_signing_key(rotated.client_id)
        return NewCredentials(
            rotated.client_id, key, secret, rotated.secret_version, signing.secret
        )

    async def signing_key(self, client_id: int) -> WebhookKeyRow:
        """The client's signing secret (made on first use: clients older than it get one)."""
        return await self.store.webhook_key(client_id, new_signing_secret(), self.clock.now())

    async def rotate_signing_key(self, client_id: int) -> WebhookKeyRow:
        """A new signing secret for the client; the old one still signs for a day."""
        now = self.clock.now()
        return await self.store.rotate_webhook_key(
            client_id, new_signing_secret(), now, now + SIGNING_OVERLAP
        )

    async def signing_secrets(self, client_id: int) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during its overlap."""
        row = await self.signing_key(client_id)
        return current_secrets(
            row.secret, row.previous_secret, row.previous_secret_until, self.clock.now()
        )


@dataclass(slots=True)
class _Cached:
    secrets: list[str]
    at: float


class SigningKeys:
    """Clients' signing secrets for a worker, each read at most once a minute. When the
    database cannot be read the last secrets known keep signing (they stay valid for a day
    after a rotation)."""

    def __init__(
        self,
        clients: ClientService,
        *,
        ttl_s: float = SIGNING_CACHE_S,
        now: Callable[[], float] | None = None,  # default: the clients' clock, in seconds
    ) -> None:
        self._clients = clients
        self._ttl_s = ttl_s
        self._now = now if now is not None else lambda: clients.clock.now().timestamp()
        self._cache: dict[int, _Cached] = {}

    async def secrets(self, client_id: int) -> list[str]:
        cached = self._cache.get(client_id)
        now = self._now()
        if cached is not None and now - cached.at < self._ttl_s:
            return cached.secrets
        try:
            found = await self._clients.signing_secrets(client_id)
        except Exception:  # the database is away: keep signing with what we know
            if cached is None:
                raise
            return cached.secrets
        self._cache[client_id] = _Cached(found, now)
        return found
