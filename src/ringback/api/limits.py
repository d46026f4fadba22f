"""Limits of ``/oauth/token`` (and of the other requests that check a client secret).

Two token buckets, in process memory: one per ``client_id`` and one per source address (an
IPv6 address counts by its /64). Each failed attempt spends a token from both; a request finds
both buckets holding at least one token or is refused (429 with ``Retry-After``) before any
secret is checked. An attempt holds its tokens while its secret is checked and gives them back
when it succeeds, so the buckets count failures (and attempts under way).

Secrets are checked by :class:`SecretChecker`: in a thread, at most ``concurrency`` at a time,
and at most ``max_waiting`` more queued (beyond that: 503 ``busy``), so failed logins can
neither stall the event loop nor hold more than that many cores.

The clock is injected (a ``() -> float`` of seconds); tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ringback.config import Settings
from ringback.domain.credentials import verify_secret

MAX_KEYS = 100_000  # buckets kept per limiter; the least recently used go first


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBucket:
    """Per-key buckets of ``burst`` tokens, refilled at ``per_second``."""

    def __init__(
        self,
        burst: int,
        per_second: float,
        now: Callable[[], float],
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be at least 1 and per_second above 0")
        self.burst = burst
        self.per_second = per_second
        self._now = now
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str) -> _Bucket:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.per_second)
            bucket.at = now
            self._buckets.move_to_end(key)
        return bucket

    def wait_s(self, key: str) -> float:
        """0 when ``key`` may try now, else the seconds until it may."""
        bucket = self._bucket(key)
        if bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self.per_second

    def take(self, key: str) -> None:
        self._bucket(key).tokens -= 1

    def give_back(self, key: str) -> None:
        bucket = self._bucket(key)
        bucket.tokens = min(float(self.burst), bucket.tokens + 1)


def address_key(host: str | None) -> str:
    """The key of a source address: IPv4 as is, IPv6 by its /64 (one host often has many)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True, slots=True)
class Refused:
    """Why an attempt may not be made now, and after how many seconds it may."""

    field: str  # "client_id" or "address"
    retry_after_s: int


class LoginLimiter:
    """The per-client_id and per-address buckets of secret checks."""

    def __init__(
        self,
        now: Callable[[], float],
        *,
        per_client_burst: int = 10,
        per_client_per_second: float = 0.2,
        per_address_burst: int = 30,
        per_address_per_second: float = 1.0,
    ) -> None:
        self.by_client = TokenBucket(per_client_burst, per_client_per_second, now)
        self.by_address = TokenBucket(per_address_burst, per_address_per_second, now)

    @classmethod
    def from_settings(cls, settings: Settings, now: Callable[[], float]) -> LoginLimiter:
        return cls(
            now,
            per_client_burst=settings.token_client_burst,
            per_client_per_second=settings.token_client_per_second,
            per_address_burst=settings.token_address_burst,
            per_address_per_second=settings.token_address_per_second,
        )

    def begin(self, client_key: str, address: str) -> Refused | None:
        """Take a token for an attempt from both buckets, or say why not (nothing taken)."""
        for field, bucket, key in (
            ("client_id", self.by_client, client_key),
            ("address", self.by_address, address),
        ):
            wait = bucket.wait_s(key)
            if wait > 0:
                return Refused(field, max(1, math.ceil(wait)))
        self.by_client.take(client_key)
        self.by_address.take(address)
        return None

    def succeeded(self, client_key: str, address: str) -> None:
        """The attempt begun for these keys was right: its tokens go back."""
        self.by_client.give_back(client_key)
        self.by_address.give_back(address)


class Busy(Exception):
    """Too many secret checks are waiting already."""


class SecretChecker:
    """scrypt verification in a thread, ``concurrency`` at a time, ``max_waiting`` queued."""

    def __init__(self, concurrency: int = 2, max_waiting: int = 64) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._slots = asyncio.Semaphore(concurrency)
        self._max_waiting = max_waiting
        self._waiting = 0

    async def verify(self, secret: str, stored: str) -> bool:
        """``verify_secret`` in a thread. A request cancelled meanwhile keeps its slot until
        its thread is done, so no more than ``concurrency`` threads ever hash at once."""
        if self._waiting >= self._max_waiting:
            raise Busy
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        work = asyncio.ensure_future(asyncio.to_thread(verify_secret, secret, stored))
        work.add_done_callback(lambda _: self._slots.release())
        return await asyncio.shield(work)
