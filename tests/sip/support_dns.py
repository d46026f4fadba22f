"""A small authoritative DNS server on 127.0.0.1 for the trunk tests: dnspython's message API
over UDP, answering from a dict of records; stopped with its transport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

#: (owner name with its trailing dot, record type) -> record texts
Zone = dict[tuple[str, str], list[str]]


class _Server(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.questions: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.questions.append((name, kind))
        texts = self.zone.get((name, kind))
        if texts:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", kind, texts))
        elif not any(owner == name for owner, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def local_dns(zone: Zone) -> AsyncIterator[tuple[tuple[str, int], _Server]]:
    """The server's (address, port) and the server (its ``questions`` asked so far)."""
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: _Server(zone), local_addr=("127.0.0.1", 0)
    )
    try:
        yield ("127.0.0.1", transport.get_extra_info("sockname")[1]), server
    finally:
        transport.close()
