"""RTP sockets: an even RTP port and the RTCP port above it bound from a configured range,
spread over the range so a port just released is not reused at once, and the datagram
protocol that hands packets to their session."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Callable
from typing import cast

log = logging.getLogger(__name__)


class MediaError(RuntimeError):
    """The session cannot do what was asked (not connected, closed, no free port)."""


def unspecified(host: str) -> bool:
    """Whether ``host`` is 0.0.0.0 or :: (bound to every address; not one to advertise)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


# ---------------------------------------------------------------- ports

_port_cursor: dict[tuple[int, int], int] = {}


def bind_pair(host: str, port_range: tuple[int, int]) -> tuple[socket.socket, socket.socket]:
    """Bind an even RTP port and the RTCP port above it, both inside `port_range` (inclusive).

    A per-range cursor spreads successive calls over the range, so a port just released is not
    reused at once (late packets of the old call would land in the new one).
    """
    low, high = port_range
    if not (0 < low <= high <= 65535):
        raise ValueError(f"invalid RTP port range {port_range}")
    first = low + (low % 2)
    pairs = (high - first + 1) // 2
    if pairs < 1:
        raise ValueError(f"RTP port range {port_range} holds no even/odd port pair")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    start = _port_cursor.get(port_range, random.randrange(pairs))
    for i in range(pairs):
        index = (start + i) % pairs
        port = first + 2 * index
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        rtcp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, port))
            rtcp.bind((host, port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        _port_cursor[port_range] = (index + 1) % pairs
        rtp.setblocking(False)
        rtcp.setblocking(False)
        return rtp, rtcp
    raise MediaError(f"no free RTP port pair in {low}-{high} on {host}")


class Receiver(asyncio.DatagramProtocol):
    """Hands each datagram of an RTP (or RTCP) socket to ``on_datagram`` (None: drops it)."""

    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None] | None) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (CPython's selector transport is not a DatagramTransport subclass: no isinstance)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def deliver_to(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        """Hand every datagram to ``on_datagram`` from now on, called by the transport itself
        (no frame of this class in between: a call's RTP is 50 datagrams a second)."""
        self._on_datagram = on_datagram
        self.datagram_received = on_datagram  # type: ignore[method-assign, assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._on_datagram is not None:
            self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that has gone: nothing to do, keep the socket.
        log.debug("rtp: socket error %s", exc)
