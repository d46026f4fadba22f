"""The address guard's rules: which URLs ringback may call and which addresses it may reach.

Pure (no I/O): :mod:`ringback.outbound` applies these rules to every request it makes, and the
request schemas apply :func:`check_stored_url` to every URL a client gives for later use.

A URL must be ``http`` or ``https``, carry no credentials and no control characters, and name a
host that IDNA (UTS 46) can encode. Its host is read exactly as the HTTP client reads it:
:class:`yarl.URL`, the URL library under aiohttp, maps Unicode digits, fullwidth forms and
ideographic full stops (``①②⑦.0.0.1``, ``１２７.０.０.１``, ``127。0。0。1``) to ASCII; numeric
IPv4 spellings the system resolver accepts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
``127.1``) are read as :func:`socket.inet_aton` reads them. Unless private destinations are
allowed, an address is refused when it is loopback, private, link-local (with the cloud
metadata addresses), multicast, reserved, unspecified or otherwise not global; an IPv6 address
that embeds an IPv4 address (IPv4-mapped and -compatible, 6to4, NAT64, Teredo) is judged by the
address it embeds.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass

from yarl import URL

from ringback.domain.digits import ascii_digits

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
})  # fmt: skip

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NUMERIC_IPV4_CHARS = frozenset("0123456789abcdefxABCDEFX.")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")  # IDNA output; _ as DNS allows


class BlockedAddress(ValueError):
    """The URL may not be called; the message says why."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL whose form passed: as the HTTP client will send it, and where it points."""

    url: URL  # parsed by yarl exactly as aiohttp parses it
    host: str  # the host aiohttp connects to or resolves (IDNA-encoded, lower case)
    port: int
    address: Address | None  # the host as an IP address, in whatever spelling it was written


def _reject_control_characters(url: str) -> None:
    for char in url:
        if unicodedata.category(char) == "Cc":
            raise BlockedAddress(f"{url!r}: control character U+{ord(char):04X} in the URL")


def check_url(url: str) -> Destination:
    """The :class:`Destination` of ``url`` if its form is acceptable; else :class:`BlockedAddress`.

    Nothing is resolved: a literal address is read, a name is left for the resolver."""
    _reject_control_characters(url)
    try:
        parsed = URL(url)
        host = parsed.raw_host
        port = parsed.port
    except (ValueError, TypeError) as exc:  # UnicodeError (IDNA) is a ValueError
        raise BlockedAddress(f"{url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedAddress(f"{url!r}: only http and https URLs are allowed")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise BlockedAddress(f"{url!r}: credentials in URLs are not allowed")
    if "@" in (parsed.raw_authority or ""):
        raise BlockedAddress(f"{url!r}: credentials in URLs are not allowed")
    if not host or port is None:
        raise BlockedAddress(f"{url!r} has no host")
    address = literal_address(host)
    if address is None and (":" in host or ascii_digits(host.replace(".", ""))):
        # aiohttp takes such a host for an IP address and would hand it to the system as one
        raise BlockedAddress(f"{url!r}: {host} is not a valid IP address")
    if address is None and not _HOST_NAME.fullmatch(host):
        raise BlockedAddress(f"{url!r}: {host!r} is not a valid host name")
    return Destination(parsed, host, port, address)


def check_stored_url(url: str) -> str:
    """``url`` unchanged if ringback could ever call it (for schema validators: the
    :class:`BlockedAddress` it raises otherwise is a ``ValueError``)."""
    check_url(url)
    return url


def check_stored_url_list(urls: str) -> str:
    """:func:`check_stored_url` for a comma-separated fallback list (answer URLs)."""
    for url in urls.split(","):
        check_stored_url(url.strip())
    return urls


def check_literal(url: str, *, allow_private: bool) -> Destination:
    """What can be checked without DNS: the form, and the host if it is an IP address."""
    destination = check_url(url)
    if destination.address is not None and not allow_private:
        check_address(url, destination.host, destination.address)
    return destination


def literal_address(host: str) -> Address | None:
    """``host`` as an IP address when it is one, in any spelling the resolver would accept.

    :mod:`ipaddress` reads the standard forms (and a bracketed IPv6 address); the legacy IPv4
    forms (one to four parts, each decimal, ``0x`` hex or ``0`` octal) are read by
    :func:`socket.inet_aton`, the very routine ``getaddrinfo`` uses for them, so the guard and
    the resolver cannot read one spelling two ways."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    bare = text[:-1] if text.endswith(".") else text
    if not bare or not set(bare) <= _NUMERIC_IPV4_CHARS:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is of a form that carries one:
    IPv4-mapped ``::ffff:0:0/96``, IPv4-compatible ``::/96`` (beyond ``::`` and ``::1``), 6to4
    ``2002::/16``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48`` (RFC 6052: for a /48 prefix
    the address sits in bits 48-63 and 72-87, around the reserved octet), Teredo ``2001::/32``
    (the client address: the last 32 bits inverted)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    value = int(address)
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _NAT64_LOCAL:
        packed = address.packed
        return ipaddress.IPv4Address(packed[6:8] + packed[9:11])
    if address in _IPV4_COMPATIBLE and value > 1:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def why_not_public(address: Address) -> str | None:
    """Why ``address`` may not be reached (``None`` when it is a public address)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            address = ipaddress.IPv6Address(address.compressed.split("%", 1)[0])
        carried = embedded_ipv4(address)
        if carried is not None:
            reason = why_not_public(carried)
            return None if reason is None else f"an IPv6 form of {carried}, {reason}"
    if address in METADATA_ADDRESSES:
        return "the cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "not a public address"
    return None


def check_address(url: str, host: str, address: Address) -> None:
    """:class:`BlockedAddress` when ``address`` (which ``host`` of ``url`` is or resolves to)
    may not be reached."""
    reason = why_not_public(address)
    if reason is None:
        return
    if host.strip("[]") == str(address):
        why = f"{address} is {reason}"
    elif literal_address(host) == address:  # another spelling of the address
        why = f"{host} is {address}, {reason}"
    else:
        why = f"{host} resolves to {address}, {reason}"
    raise BlockedAddress(f"{url!r}: {why}{ALLOW_PRIVATE_HINT}")


#: said with every refusal of an address: what lets a private network in (a test receiver on
#: this machine, a PBX on the LAN) — the operator's setting, off by default
ALLOW_PRIVATE_HINT = (
    "; only public addresses are reached unless the service runs with "
    "RINGBACK_ALLOW_PRIVATE=1 (for local testing or a trusted private network)"
)
