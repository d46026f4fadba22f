"""Client secrets hashed with scrypt (pure functions; CPU-bound: call them off the event loop).

A secret is stored as ``scrypt$n$r$p$salt_hex$hash_hex``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

#: scrypt's cost factor for secrets hashed from now on (2**14: ~50 ms of one core here). Each
#: hash records its own factor and is verified with it, so a change never locks anyone out.
SCRYPT_N = 2**14
_R, _P, _LEN = 8, 1, 32
# verified when the client is unknown, so both answers cost the same work
DUMMY_HASH = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def new_client_key() -> str:
    return "rb_" + secrets.token_urlsafe(12)


#: after a rotation the old signing secret still signs (a second ``v1=``) for this long
SIGNING_OVERLAP = timedelta(hours=24)


def new_signing_secret() -> str:
    """A secret that signs webhooks and IVR requests (a client's, or a subscription's)."""
    return "whsec_" + secrets.token_urlsafe(32)


def current_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign now: ``secret``, and ``previous`` while its overlap lasts."""
    if previous and previous_until is not None and previous_until > now:
        return [secret, previous]
    return [secret]


def hash_secret(secret: str) -> str:
    n, salt = SCRYPT_N, secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${n}${_R}${_P}${salt.hex()}${digest.hex()}"


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
