"""``Ringback-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>``.

During a secret rotation the header carries one ``v1=`` per valid secret (new first); a
receiver accepts the request if any of them matches a secret it knows. Pure functions.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Sequence

from ringback.domain.digits import ascii_digits

SCHEME = "v1"


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> hmac.HMAC:
    """The HMAC-SHA256 state keyed by ``secret``, before any message (copied for each one)."""
    return hmac.new(secret.encode(), None, hashlib.sha256)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 of ``f"{timestamp}." + body`` keyed by ``secret``."""
    mac = _keyed(secret).copy()
    mac.update(b"%d." % timestamp)
    mac.update(body)
    return mac.hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value for ``body`` signed with every secret in ``secrets`` (at least one)."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    parts = [f"t={timestamp}"]
    parts += [f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int | None, list[str]]:
    """The timestamp and the ``v1`` signatures of a header (unknown parts are ignored)."""
    timestamp: int | None = None
    found: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and ascii_digits(value):
            timestamp = int(value)
        elif key == SCHEME and value:
            found.append(value)
    return timestamp, found


def verify(header: str, body: bytes, secret: str, now: float, tolerance_s: float = 300) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its time is within tolerance."""
    timestamp, found = parse_header(header)
    if timestamp is None or abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in found)
