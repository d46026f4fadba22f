"""RTP sockets: an even RTP port and the RTCP port above it bound from a configured range,
spread over the range so a port just released is not reused at once, the datagram protocol
that hands packets to their session, and the batched receive of every RTP socket of a loop.

Batched receive (:func:`receive_batched`): asyncio's datagram transport reads each datagram
in a handle of its own with a 256 KiB ``recvfrom`` (an allocation of that size per 172-byte
RTP packet), which cost three times the rest of the packet's path. Instead one ``epoll`` per
event loop holds every RTP socket and is itself the loop's only reader for them: when it is
readable, one pass reads one datagram from each ready socket into a 64 KiB buffer kept for
the purpose and hands a copy of it to the session. The transport stays for sending (it queues
what a full socket buffer refuses) and closing. Where ``select.epoll`` does not exist the
transport reads as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import select
import socket
import weakref
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


# ---------------------------------------------------------------- batched receive

Deliver = Callable[[bytes, tuple[str, int]], None]
_MAX_DATAGRAM = 65536  # the largest UDP payload fits: nothing is ever truncated


class _Batch:
    """The RTP sockets of one event loop behind one ``epoll`` (see the module's docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._epoll = select.epoll()
        self._members: dict[int, tuple[socket.socket, Deliver]] = {}
        self._buffer = bytearray(_MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        loop.add_reader(self._epoll.fileno(), self._ready)

    def add(self, sock: socket.socket, deliver: Deliver) -> None:
        fd = sock.fileno()
        self._members[fd] = (sock, deliver)
        try:
            self._epoll.register(fd, select.EPOLLIN)
        except FileExistsError:  # a closed socket's number, reused
            self._epoll.modify(fd, select.EPOLLIN)

    def discard(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if fd < 0 or self._members.get(fd, (None,))[0] is not sock:
            return
        del self._members[fd]
        with contextlib.suppress(OSError):
            self._epoll.unregister(fd)

    def _ready(self) -> None:
        members = self._members
        buffer = self._buffer
        view = self._view
        for fd, _ in self._epoll.poll(0):
            member = members.get(fd)
            if member is None:
                continue
            sock, deliver = member
            try:
                size, addr = sock.recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:  # as the transport's protocol is told: logged, kept
                log.debug("rtp: socket error %s", exc)
                continue
            try:
                deliver(view[:size].tobytes(), addr)
            except Exception:  # one session's fault must not stop the others' packets
                log.exception("rtp: handling a datagram failed")


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()


def receive_batched(
    transport: asyncio.DatagramTransport, sock: socket.socket, deliver: Deliver
) -> bool:
    """Read ``sock`` (``transport``'s socket) in the running loop's batch from now on,
    handing every datagram to ``deliver``; False (nothing changed) without ``select.epoll``
    or a transport that can pause its reading. Call :func:`stop_receiving` before the socket
    is closed."""
    pause = getattr(transport, "pause_reading", None)
    if not hasattr(select, "epoll") or pause is None:
        return False
    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = _Batch(loop)
    pause()  # the transport's own reader (it still sends, queues and closes)
    batch.add(sock, deliver)
    return True


def stop_receiving(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Take ``sock`` out of ``loop``'s batch (nothing if it is not in it)."""
    batch = _batches.get(loop)
    if batch is not None:
        batch.discard(sock)
