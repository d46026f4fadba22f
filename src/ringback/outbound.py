"""The one HTTP client for every request ringback makes (IVR fetches, webhooks, anything later).

Each request goes through one address guard (:mod:`ringback.domain.urlguard`):

1. the URL's form is checked and its host read exactly as aiohttp reads it (yarl);
2. the host is resolved **once** (a literal address in any spelling is read, not resolved;
   a client keeps a name's answer for 10 s, as aiohttp's own DNS cache would);
3. every address found is checked (unless ``allow_private``);
4. aiohttp connects to those addresses only: its resolver (``_pinned_resolver``) answers
   with the addresses this request resolved and checked, and resolves nothing itself, so a name
   whose DNS answer changes between the check and the connection (DNS rebinding) cannot reach
   another address. TLS still verifies the certificate against the URL's host name.

:meth:`OutboundClient.post` sends a small POST over kept-alive connections of its own
(:mod:`ringback.http_pool`, for webhook deliveries: a third of aiohttp's CPU a request), through
the same guard: the request is resolved and checked here, and a new connection goes only to the
addresses checked.

Redirects are never followed (a 3xx is the answer). A refused URL raises
:class:`~ringback.domain.urlguard.BlockedAddress`; a name that does not resolve raises
:class:`UnresolvableHost` (an ``OSError``: the name may resolve later).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ringback.domain.urlguard import Address, BlockedAddress, Destination, check_address, check_url
from ringback.http_pool import Answer, HttpPool

if TYPE_CHECKING:  # imported by the first request(): post() (webhooks) never needs it (~9 MiB)
    import aiohttp
    from aiohttp.abc import AbstractResolver

__all__ = ["Answer", "BlockedAddress", "OutboundClient", "ResolvedDestination", "UnresolvableHost"]

K = TypeVar("K")
V = TypeVar("V")

#: ``loop.getaddrinfo``'s shape (tests may pass their own)
GetAddrInfo = Callable[..., Awaitable[list[tuple[Any, ...]]]]


#: URLs whose form passed :func:`check_url` kept per client (webhook deliveries post to the same
#: few URLs again and again), and host names' answers; each forgotten all at once when full
_CHECKED_URLS = 1024
#: how long a host name's addresses are kept per client (aiohttp's default DNS cache time)
DNS_TTL_S = 10.0


def _keep(kept: dict[K, V], key: K, value: V) -> V:
    """``value`` kept under ``key`` in one of a client's bounded caches (emptied when full)."""
    if len(kept) >= _CHECKED_URLS:
        kept.clear()
    kept[key] = value
    return value


class UnresolvableHost(OSError):
    """The host name has no address (now: DNS may answer later)."""


@dataclass(frozen=True, slots=True)
class ResolvedDestination:
    """A URL that passed the guard, with the only addresses it may be connected to."""

    destination: Destination
    addresses: tuple[Address, ...]


#: the destination of the request under way in this task (read by ``_pinned_resolver``'s)
_PINNED: contextvars.ContextVar[ResolvedDestination | None] = contextvars.ContextVar(
    "ringback_outbound_pinned", default=None
)


@cache
def _pinned_resolver() -> type[AbstractResolver]:
    """aiohttp's resolver class answering with the addresses the guard checked for the request
    under way, nothing else (made when aiohttp is first needed)."""
    from aiohttp.abc import AbstractResolver, ResolveResult

    class _PinnedResolver(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            pinned = _PINNED.get()
            if pinned is None or pinned.destination.host.rstrip(".") != host.rstrip("."):
                raise BlockedAddress(f"{host} was not resolved by the address guard")
            return [
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=port,
                    family=socket.AF_INET if address.version == 4 else socket.AF_INET6,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
                for address in pinned.addresses
            ]

        async def close(self) -> None:
            return None

    return _PinnedResolver


class OutboundClient:
    """An aiohttp session behind the address guard; use as ``async with OutboundClient(...)``.

    ``limit`` / ``limit_per_host`` bound the connection pool (0: no bound per host);
    ``timeout`` is aiohttp's, for every request (its ``sock_connect`` also bounds the
    connections of :meth:`post`, which keeps the first ``excerpt_bytes`` of each answer);
    ``connect_timeout_s`` bounds connections when no ``timeout`` is given. The session (and
    aiohttp) is made by the first :meth:`request`: a client that only posts (webhooks) never
    loads aiohttp. ``getaddrinfo`` replaces the event loop's (tests)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: aiohttp.ClientTimeout | None = None,
        connect_timeout_s: float | None = None,
        limit: int = 100,
        limit_per_host: int = 0,
        force_close: bool = False,
        headers: Mapping[str, str] | None = None,
        auto_decompress: bool = True,
        getaddrinfo: GetAddrInfo | None = None,
        excerpt_bytes: int = 1024,
        dns_ttl_s: float = DNS_TTL_S,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.allow_private = allow_private
        self._timeout = timeout
        self._connect_timeout_s = timeout.sock_connect if timeout else connect_timeout_s
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._force_close = force_close
        self._headers = dict(headers or {})
        self._auto_decompress = auto_decompress
        self._getaddrinfo = getaddrinfo
        self._session: aiohttp.ClientSession | None = None
        self._pool: HttpPool | None = None
        self._excerpt_bytes = excerpt_bytes
        self._checked: dict[str, Destination] = {}  # URLs whose form passed, as read then
        # (host, port) -> (the addresses it resolved to, when that answer expires)
        self._resolved: dict[tuple[str, int], tuple[tuple[Address, ...], float]] = {}
        self._dns_ttl_s = dns_ttl_s
        self._monotonic = monotonic

    async def __aenter__(self) -> OutboundClient:
        self._pool = HttpPool(
            connect_timeout=self._connect_timeout_s,
            max_idle_per_destination=self._limit_per_host or self._limit,
            keep=self._excerpt_bytes,
        )
        return self

    def _open_session(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            resolver=_pinned_resolver()(),
            use_dns_cache=False,  # every request is resolved by the guard (its _lookup)
            limit=self._limit,
            limit_per_host=self._limit_per_host,
            force_close=self._force_close,
        )
        timeout = self._timeout or aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout_s
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers=self._headers,
            auto_decompress=self._auto_decompress,
            trust_env=False,  # no proxy from the environment: it would connect elsewhere
        )
        return self._session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        if session is not None:
            await session.close()

    async def resolve(self, url: str) -> ResolvedDestination:
        """Check ``url``, resolve its host once and check every address (BlockedAddress or
        UnresolvableHost otherwise)."""
        destination = self._checked.get(url)
        if destination is None:  # check_url is pure: the same URL always reads the same way
            destination = _keep(self._checked, url, check_url(url))
        if destination.address is not None:
            addresses: tuple[Address, ...] = (destination.address,)
        else:
            addresses = await self._lookup(destination.host, destination.port)
        if not self.allow_private:
            for address in addresses:
                check_address(url, destination.host, address)
        return ResolvedDestination(destination, addresses)

    async def _lookup(self, host: str, port: int) -> tuple[Address, ...]:
        """The host's addresses: asked of the resolver at most once per ``dns_ttl_s`` for each
        host and port (aiohttp's own default: 10 s), then kept; a failure is not kept. They
        are checked by :meth:`resolve` each time, and a connection goes only to them."""
        loop = asyncio.get_running_loop()
        now = self._monotonic() if self._monotonic is not None else loop.time()
        key = (host, port)
        kept = self._resolved.get(key)
        if kept is not None and kept[1] > now:
            return kept[0]
        addresses = await self._ask(host, port)
        if self._dns_ttl_s > 0:
            _keep(self._resolved, key, (addresses, now + self._dns_ttl_s))
        return addresses

    async def _ask(self, host: str, port: int) -> tuple[Address, ...]:
        getaddrinfo = self._getaddrinfo or asyncio.get_running_loop().getaddrinfo
        try:
            infos = await getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnresolvableHost(f"cannot resolve {host}: {exc}") from None
        found: dict[Address, None] = {}
        for info in infos:
            found[ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])] = None
        if not found:
            raise UnresolvableHost(f"cannot resolve {host}: no address")
        return tuple(found)

    @contextlib.asynccontextmanager
    async def request(
        self,
        method: str,
        url: str | ResolvedDestination,
        *,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response to one request (redirects not followed), connected only to the
        addresses :meth:`resolve` checked for ``url`` (resolved here unless it is the
        :class:`ResolvedDestination` :meth:`resolve` gave)."""
        if self._pool is None:
            raise RuntimeError("OutboundClient used outside 'async with'")
        session = self._session or self._open_session()
        pinned = url if isinstance(url, ResolvedDestination) else await self.resolve(url)
        token = _PINNED.set(pinned)
        try:
            async with session.request(
                method, pinned.destination.url, params=params, data=data,
                headers=headers, allow_redirects=False,
            ) as response:  # fmt: skip
                yield response
        finally:
            _PINNED.reset(token)

    async def post(
        self, url: str | ResolvedDestination, body: bytes, headers: Mapping[str, str]
    ) -> Answer:
        """POST ``body`` over a kept-alive connection (:mod:`ringback.http_pool`): the status
        and the body's first ``excerpt_bytes``. A new connection goes only to the addresses
        :meth:`resolve` checked for ``url``. ``OSError`` when no connection could be made or it
        broke, ``ValueError`` when the answer is not HTTP."""
        if self._pool is None:
            raise RuntimeError("OutboundClient used outside 'async with'")
        pinned = url if isinstance(url, ResolvedDestination) else await self.resolve(url)
        return await self._pool.post(pinned.destination, pinned.addresses, body, headers)
