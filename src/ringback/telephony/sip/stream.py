"""SIP over a byte stream (TCP, TLS): messages framed by Content-Length (RFC 3261 §18.3) and
the RFC 5626 CRLF keep-alive (a double CRLF ping is answered with a single CRLF pong).

A stream that cannot be framed (no Content-Length, a header block or body too large, garbage)
raises :class:`StreamError`; the connection that carried it is closed, never the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ringback.telephony.sip.message import MAX_DATAGRAM, MAX_HEADER_LINE, MAX_HEADER_LINES

log = logging.getLogger("ringback.sip")

PING = b"\r\n\r\n"
PONG = b"\r\n"
#: the largest header block a stream may carry before its blank line
MAX_HEAD = MAX_HEADER_LINES * 200
#: the largest body a stream message may announce
MAX_BODY = MAX_DATAGRAM


class StreamError(ValueError):
    """Bytes on a stream that are not framed SIP: the connection is closed."""


class KeepAlive:
    """A keep-alive on the stream: ``ping`` (double CRLF, to be answered) or ``pong``."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeepAlive) and other.kind == self.kind

    def __repr__(self) -> str:
        return f"KeepAlive({self.kind!r})"


class StreamFramer:
    """Cuts a byte stream into whole SIP messages and keep-alives, whatever the chunking."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that are not a whole message yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        self._buffer += data
        out: list[bytes | KeepAlive] = []
        buffer = self._buffer
        while buffer:
            if buffer.startswith(PING):
                del buffer[:4]
                out.append(KeepAlive("ping"))
                continue
            if buffer.startswith(PONG):
                if len(buffer) == 3 and buffer[2:3] == b"\r":
                    break  # maybe the start of a ping: wait for its last byte
                del buffer[:2]
                out.append(KeepAlive("pong"))
                continue
            if buffer == b"\r":
                break
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise StreamError(f"no end of headers in {len(buffer)} bytes")
                break
            if end > MAX_HEAD:
                raise StreamError(f"a header block of {end} bytes is too large")
            length = _content_length(bytes(buffer[:end]))
            total = end + 4 + length
            if len(buffer) < total:
                break
            out.append(bytes(buffer[:total]))
            del buffer[:total]
        return out


def _content_length(head: bytes) -> int:
    lines = head.split(b"\r\n")
    if not lines[0] or lines[0][:1].isspace():
        raise StreamError("a stream message starts with a blank or folded line")
    if len(lines) > MAX_HEADER_LINES or any(len(line) > MAX_HEADER_LINE for line in lines):
        raise StreamError("too many or too long header lines")
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        if name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit():  # bytes.isdigit() is ASCII 0-9 only
                raise StreamError(f"Content-Length {text[:20]!r} is not a number")
            length = int(text)
            if length > MAX_BODY:
                raise StreamError(f"a body of {length} bytes is too large")
            return length
    raise StreamError("a message on a stream needs a Content-Length header")


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection carrying SIP; owned by the agent's transport table."""

    def __init__(
        self,
        transport_name: str,
        on_message: Callable[[StreamConnection, bytes], None],
        on_lost: Callable[[StreamConnection], None],
        on_malformed: Callable[[StreamConnection, str], None],
        *,
        outbound: bool,
    ) -> None:
        self.transport_name = transport_name
        self.outbound = outbound
        self.peer: tuple[str, int] = ("", 0)
        self.closed = False
        self.closed_by_us = False
        self.lost_reason = ""  # why the connection ended, when it was not our doing
        self.last_message = asyncio.get_running_loop().time()
        self.pings_sent = 0
        self.pongs_received = 0
        self._on_message = on_message
        self._on_lost = on_lost
        self._on_malformed = on_malformed
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer: Any = transport.get_extra_info("peername")
        if peer:
            self.peer = (str(peer[0]), int(peer[1]))

    def data_received(self, data: bytes) -> None:
        try:
            items = self._framer.feed(data)
        except StreamError as exc:
            self._on_malformed(self, str(exc))
            self.close()
            return
        for item in items:
            if isinstance(item, KeepAlive):
                if item.kind == "ping":
                    self.write(PONG)
                else:
                    self.pongs_received += 1
                continue
            self.last_message = asyncio.get_running_loop().time()
            self._on_message(self, item)
            if self.closed:
                return

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed_by_us:
            self.lost_reason = str(exc) if exc is not None else "closed by the far end"
        self.closed = True
        self._on_lost(self)

    def write(self, data: bytes) -> bool:
        if self._transport is None or self.closed or self._transport.is_closing():
            return False
        self._transport.write(data)
        return True

    def send_message(self, data: bytes) -> bool:
        self.last_message = asyncio.get_running_loop().time()
        return self.write(data)

    def ping(self) -> None:
        if self.write(PING):
            self.pings_sent += 1

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = self.closed_by_us = True
            self._transport.close()
