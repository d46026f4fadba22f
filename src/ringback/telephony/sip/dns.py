"""Locating a trunk's SIP servers (RFC 3263): NAPTR, then SRV, then A/AAAA, with dnspython.

:meth:`SipResolver.targets` turns a trunk's host (and the port and transport its URI fixes, if
any) into an ordered list of :class:`Target` (address, port, transport) to try one after the
other:

- an IP address, or a name with an explicit port: that address (A/AAAA of the name), the
  transport the URI names, else UDP (TLS for ``sips:``);
- a name with a transport fixed by the URI: the SRV records of that transport;
- a name alone: its NAPTR records (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``: only those of the
  transports this user agent has), in order and preference; without NAPTR, the SRV records of
  each transport it has; without SRV, A/AAAA on the transport's default port.

SRV records are ordered by priority, and by weighted random choice within one priority
(RFC 2782: :func:`order_srv`). A target that failed (no answer, transport error, 503) is
*blacklisted* for a while: it goes to the end of the lists this resolver returns until then
(still tried when everything else failed). Blacklist expiry reads the injected clock.

Name servers: the system's (``/etc/resolv.conf``; A/AAAA then through the system's resolver
too, so ``/etc/hosts`` names keep working), or those given (``RINGBACK_SIP_DNS_SERVERS``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from ringback.clock import Clock

log = logging.getLogger("ringback.sip")

#: the NAPTR services of SIP (RFC 3263 §4.1) and their transports
NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
#: the SRV owner-name prefixes by transport
SRV_PREFIXES = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
#: one DNS question gets this long (all its servers and retries) before it counts as unanswered
LOOKUP_TIMEOUT_S = 2.0


class DnsError(OSError):
    """No address for a trunk's host (the message says which name and why)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send requests to: an IP address, a port and a transport."""

    host: str
    port: int
    transport: str = "udp"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port};transport={self.transport}"


@dataclass(frozen=True, slots=True)
class Srv:
    """One SRV record."""

    priority: int
    weight: int
    port: int
    target: str


def order_srv(records: Sequence[Srv], rng: random.Random) -> list[Srv]:
    """The records in the order to try them (RFC 2782): lowest priority first; within one
    priority, each next record chosen at random with a chance proportional to its weight
    (records of weight 0 placed first: together they get 1 / (sum of the weights + 1))."""
    ordered: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        group.sort(key=lambda r: r.weight != 0)  # stable: zero weights first, as RFC 2782 says
        while group:
            total = sum(r.weight for r in group)
            # RFC 2782 draws from 0 to the sum inclusive; 0 gives the zero-weight records (at
            # the front) their small chance; without any, 0 would favour the first record
            pick = rng.randint(0 if group[0].weight == 0 else 1, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    ordered.append(group.pop(index))
                    break
    return ordered


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class SipResolver:
    """RFC 3263 lookups and the blacklist of failed targets (shared by every trunk)."""

    def __init__(
        self,
        clock: Clock,
        *,
        nameservers: Sequence[tuple[str, int]] = (),
        blacklist_s: float = 30.0,
        transports: Sequence[str] = ("udp",),
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.blacklist_s = blacklist_s
        self.transports = tuple(transports)
        self.rng = rng or random.Random()
        self._custom = bool(nameservers)
        self._blacklist: dict[Target, datetime] = {}
        self._resolver: dns.asyncresolver.Resolver | None
        try:
            resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        except dns.resolver.NoResolverConfiguration:
            resolver = None  # no system name server: A/AAAA through the system's resolver only
        if resolver is not None:
            if nameservers:
                resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers
                ]
            resolver.lifetime = LOOKUP_TIMEOUT_S
        self._resolver = resolver

    # -- blacklist ----------------------------------------------------------------------------

    def blacklist(self, target: Target, seconds: float | None = None) -> None:
        """``target`` failed: tried last for the next ``seconds`` (default
        :attr:`blacklist_s`)."""
        seconds = self.blacklist_s if seconds is None else seconds
        if seconds > 0:
            self._blacklist[target] = self.clock.now() + timedelta(seconds=seconds)
            log.info("SIP target %s blacklisted for %g s", target, seconds)

    def blacklisted(self, target: Target) -> bool:
        until = self._blacklist.get(target)
        if until is None:
            return False
        if self.clock.now() >= until:
            del self._blacklist[target]
            return False
        return True

    # -- lookups ------------------------------------------------------------------------------

    async def targets(
        self, host: str, port: int | None = None, transport: str | None = None
    ) -> list[Target]:
        """Where to send requests for ``host`` (``port`` / ``transport``: fixed by the URI,
        else None), in order, blacklisted targets last. DnsError when there is none."""
        found = await self._locate(host.strip("[]"), port, transport)
        if not found:
            raise DnsError(f"cannot resolve {host}: no NAPTR, SRV, A or AAAA record")
        unique = list(dict.fromkeys(found))
        return [t for t in unique if not self.blacklisted(t)] + [
            t for t in unique if self.blacklisted(t)
        ]

    async def _locate(self, host: str, port: int | None, transport: str | None) -> list[Target]:
        if is_ip(host) or port is not None:
            chosen = transport or self.transports[0]
            port = port or DEFAULT_PORTS[chosen]
            return [Target(a, port, chosen) for a in await self._addresses(host, port)]
        if transport is not None:
            found = await self._srv_targets(SRV_PREFIXES[transport] + host, transport)
            return found or await self._plain(host, transport)
        for service_name, chosen in await self._naptr(host):
            found = await self._srv_targets(service_name, chosen)
            if found:
                return found
        for chosen in self.transports:
            found = await self._srv_targets(SRV_PREFIXES[chosen] + host, chosen)
            if found:
                return found
        return await self._plain(host, self.transports[0])

    async def _plain(self, host: str, transport: str) -> list[Target]:
        port = DEFAULT_PORTS[transport]
        return [Target(a, port, transport) for a in await self._addresses(host, port)]

    async def _naptr(self, host: str) -> list[tuple[str, str]]:
        """The SRV names NAPTR points to, in order, for the transports this agent has."""
        answer = await self._query(host, "NAPTR")
        usable: list[tuple[int, int, str, str]] = []
        for record in answer:
            service = record.service.decode("ascii", "replace").upper()
            chosen = NAPTR_SERVICES.get(service)
            if chosen in self.transports and record.flags.lower() == b"s":
                usable.append((record.order, record.preference, str(record.replacement), chosen))
        usable.sort(key=lambda item: (item[0], item[1]))
        return [(name, chosen) for _order, _pref, name, chosen in usable]

    async def _srv_targets(self, name: str, transport: str) -> list[Target]:
        answer = await self._query(name, "SRV")
        records = [
            Srv(r.priority, r.weight, r.port, str(r.target).rstrip("."))
            for r in answer
            if str(r.target) != "."  # "." : the service is decidedly not available there
        ]
        targets: list[Target] = []
        for record in order_srv(records, self.rng):
            try:
                addresses = await self._addresses(record.target, record.port)
            except DnsError as exc:
                log.info("SRV %s: %s", name, exc)
                continue
            targets += [Target(a, record.port, transport) for a in addresses]
        return targets

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        """The records of one question; none when the name has none or DNS does not answer
        (a trunk whose DNS is away falls back to the next step of RFC 3263)."""
        if self._resolver is None:
            return []
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.exception.DNSException, OSError) as exc:
            log.debug("DNS %s %s: %s", rdtype, name, exc)
            return []
        return list(answer)

    async def _addresses(self, host: str, port: int) -> list[str]:
        if is_ip(host):
            return [host.strip("[]")]
        if self._custom:  # the configured servers answer for A and AAAA too
            found = [str(r) for kind in ("A", "AAAA") for r in await self._query(host, kind)]
            if not found:
                raise DnsError(f"cannot resolve {host}: no A or AAAA record")
            return found
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_DGRAM
                )
        except TimeoutError:
            raise DnsError(f"cannot resolve {host}: no answer in {LOOKUP_TIMEOUT_S:g} s") from None
        except OSError as exc:
            raise DnsError(f"cannot resolve {host}: {exc}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
