"""Client credentials: secrets hashed with scrypt, bearer tokens issued for them.

A secret is stored as ``scrypt$n$r$p$salt_hex$hash_hex``; a token only as
:func:`ringback.api.deps.token_digest` of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from ringback.api.deps import token_digest
from ringback.store.db import Store

TOKEN_LIFETIME_S = 3600
_N, _R, _P, _LEN = 2**14, 8, 1, 32
# verified when the client is unknown, so both answers take the same time
_DUMMY_HASH = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(hash_hex)
        digest = hashlib.scrypt(
            secret.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=256 * 1024 * 1024,
        )  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


async def create_credentials(store: Store, client_name: str, now: datetime) -> tuple[int, str, str]:
    """A new key and secret for the client named ``client_name`` (created if new).

    Returns (client id, OAuth ``client_id``, ``client_secret``); the secret is shown only now.
    """
    client_id = await store.ensure_client(client_name, now)
    key = "rb_" + secrets.token_urlsafe(12)
    secret = secrets.token_urlsafe(32)
    await store.add_credential(client_id, key, await asyncio.to_thread(hash_secret, secret), now)
    return client_id, key, secret


async def authenticate(store: Store, key: str, secret: str) -> int | None:
    """The client id these credentials belong to, or None."""
    found = await store.find_credential(key)
    stored = found.secret_hash if found is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_secret, secret, stored)
    return found.client_id if ok and found is not None else None


async def issue_token(store: Store, client_id: int, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=TOKEN_LIFETIME_S)
    await store.add_token(token_digest(token), client_id, expires, now)
    return token
