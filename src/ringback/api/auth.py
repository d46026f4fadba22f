"""Client credentials for the API: secrets hashed with scrypt (:mod:`ringback.domain.credentials`),
bearer tokens issued for them (:class:`ringback.service.ClientService`).

The names here are kept for callers and tests that used them before the client service.
"""

from __future__ import annotations

from datetime import datetime

from ringback.clock import FakeClock
from ringback.domain.credentials import DUMMY_HASH, hash_secret, verify_secret
from ringback.service import TOKEN_LIFETIME_S, ClientService
from ringback.store import Store

__all__ = [
    "DUMMY_HASH",
    "TOKEN_LIFETIME_S",
    "create_credentials",
    "hash_secret",
    "verify_secret",
]


async def create_credentials(store: Store, client_name: str, now: datetime) -> tuple[int, str, str]:
    """A new key and secret for the client named ``client_name`` (created if new).

    Returns (client id, OAuth ``client_id``, ``client_secret``); the secret is shown only now.
    """
    made = await ClientService(store, FakeClock(now)).create_credentials(client_name)
    return made.client_id, made.key, made.secret
