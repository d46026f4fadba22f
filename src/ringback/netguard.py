"""The address guard for every URL ringback calls out to (webhooks, the IVR's HTTP fetches).

A URL must be ``http`` or ``https``, carry no credentials, and, unless private destinations are
allowed (``RINGBACK_ALLOW_PRIVATE=1``, or its older name ``RINGBACK_WEBHOOK_ALLOW_PRIVATE=1``,
for tests and closed networks), resolve only to public addresses: loopback, private,
link-local (169.254.0.0/16, fe80::/10, with the cloud metadata addresses 169.254.169.254 and
fd00:ec2::254), multicast, reserved and unspecified addresses are refused, whether written
literally or returned by DNS. :class:`GuardedResolver` checks the addresses aiohttp is about to
connect to, so a name that resolves differently the second time cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(ValueError):
    """The URL may not be called; the message says why."""


def check_url(url: str) -> tuple[str, int]:
    """The host and port of ``url`` if its form is acceptable; else :class:`BlockedAddress`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedAddress(f"{url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BlockedAddress(f"{url!r}: only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise BlockedAddress(f"{url!r}: credentials in URLs are not allowed")
    host = parts.hostname
    if not host:
        raise BlockedAddress(f"{url!r} has no host")
    return host, port or (443 if parts.scheme == "https" else 80)


METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
})  # fmt: skip


def why_not_public(address: Address) -> str | None:
    """Why ``address`` is not a public address (``None`` when it is)."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address in METADATA_ADDRESSES:
        return "the cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_loopback:
        return "a loopback address"
    if not is_public(address):
        return "not a public address"
    return None


def is_public(address: Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_literal(url: str, *, allow_private: bool) -> None:
    """What can be checked without DNS: the form, and the host if it is an IP address."""
    host, _ = check_url(url)
    address = literal_address(host)
    if address is not None and not allow_private:
        reason = why_not_public(address)
        if reason is not None:
            raise BlockedAddress(f"{url!r}: {address} is {reason}")


async def resolve_checked(url: str, *, allow_private: bool) -> None:
    """Check ``url`` fully: its form, and every address its host resolves to."""
    host, port = check_url(url)
    if allow_private:
        return
    address = literal_address(host)
    if address is not None:
        addresses = [address]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise BlockedAddress(f"{url!r}: cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for found in addresses:
        reason = why_not_public(found)
        if reason is not None:
            raise BlockedAddress(f"{url!r}: {host} resolves to {found}, {reason}")


class GuardedResolver(ThreadedResolver):
    """An aiohttp resolver that refuses every non-public address a host resolves to (used with
    :func:`check_literal`, since aiohttp does not resolve literal IP addresses)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for result in results:
            found = ipaddress.ip_address(result["host"])
            reason = why_not_public(found)
            if reason is not None:
                raise BlockedAddress(f"{host} resolves to {found}, {reason}")
        return results
