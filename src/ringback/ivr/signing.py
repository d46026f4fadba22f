"""Signed IVR requests: every request ringback sends to an app server for an IVR (answer URL,
Redirect and ``action`` targets, GetJSON, Play of a URL, ``CallStatus`` notifications) carries

    Ringback-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, message)>
    message = f"{t}.{METHOD} {url}\\n".encode() + body

``url`` is the URL exactly as requested (scheme, host, port if any, path and, for a GET, the
query string carrying the form), without a fragment; ``body`` the bytes sent (the form of a
POST, empty for a GET). The secret is the client's signing secret (the one that signs its
webhooks); during a rotation the header carries one ``v1=`` per valid secret, new first.
Same header, same layout as the webhooks' (:mod:`ringback.webhooks.signing`), with the method
and URL in the signed message, so a signature cannot be moved to another URL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from ringback.ivr.fetch import FetchConfig, FetchError, FetchResult, HttpFetcher, Signer
from ringback.webhooks.signing import signature, signature_header, verify

HEADER = "Ringback-Signature"
TOLERANCE_S = 300


def _signed_payload(method: str, url: str, body: bytes) -> bytes:
    """What a webhook signature covers as its body: here the method and URL, then the body."""
    return f"{method} {url}\n".encode() + body


def request_signature(secret: str, timestamp: int, method: str, url: str, body: bytes) -> str:
    return signature(secret, timestamp, _signed_payload(method, url, body))


def request_signature_header(
    secrets: Sequence[str], timestamp: int, method: str, url: str, body: bytes
) -> str:
    """The header value signing the request with every secret in ``secrets`` (at least one)."""
    return signature_header(secrets, timestamp, _signed_payload(method, url, body))


def verify_request(
    header: str,
    method: str,
    url: str,
    body: bytes,
    secret: str,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """True when ``header`` signs this request with ``secret`` and its time is within
    ``tolerance_s`` of ``now``."""
    return verify(header, _signed_payload(method, url, body), secret, now, tolerance_s)


# Real time on purpose (docs/architecture.md: Time): the signature's t= is this host's
# wall-clock time, which the receiving app server compares with its own wall clock; the
# injected clock (a FakeClock in tests, the database's time in a service) is not what it checks.
def signer(secrets: Sequence[str], now: Callable[[], float] = time.time) -> Signer:
    """A :data:`~ringback.ivr.fetch.Signer` for :class:`HttpFetcher` (wall-clock time: the
    receiver compares it with its own clock)."""
    kept = list(secrets)
    if not kept:
        raise ValueError("at least one secret is needed to sign")

    def sign(method: str, url: str, body: bytes) -> Mapping[str, str]:
        return {HEADER: request_signature_header(kept, int(now()), method, url, body)}

    return sign


class SigningFetcher:
    """A :class:`~ringback.ivr.fetch.Fetcher` that signs every request with the secrets of
    one client, looked up (``secrets()``) when a fetch starts. A fetch whose secrets cannot be
    had fails like an unreachable URL: nothing is ever sent unsigned."""

    def __init__(
        self,
        config: FetchConfig,
        secrets: Callable[[], Awaitable[Sequence[str]]],
        *,
        now: Callable[[], float] = time.time,  # wall-clock time on purpose: see signer
    ) -> None:
        self.config = config
        self._secrets = secrets
        self._now = now

    async def fetch(
        self,
        urls: Sequence[str],
        *,
        method: str = "POST",
        form: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        try:
            keys = await self._secrets()
        except Exception as exc:  # the database is away and no secret is known yet
            raise FetchError(
                [f"{url}: not sent: the signing secret cannot be read ({type(exc).__name__})"
                 for url in urls]
            ) from None  # fmt: skip
        fetcher = HttpFetcher(self.config, signer=signer(keys, self._now))
        return await fetcher.fetch(urls, method=method, form=form, max_bytes=max_bytes)
