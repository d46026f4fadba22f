"""T.38 over real UDP for the tests: a lossy relay between two :class:`T38Session` s on
127.0.0.1, and :func:`fax_through_relay`, which sends one document through it."""

from __future__ import annotations

import asyncio
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ringback.telephony.fax.result import FaxResult
from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.fax.t38_session import T38Session


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay, index: int) -> None:
        self.relay = relay
        self.index = index

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.relay._forward(self.index, data, addr)


@dataclass
class LossyRelay:
    """Two UDP ports: what arrives on one goes out of the other to the peer last heard there
    (side 0 faces A, side 1 faces B), each datagram dropped with probability ``loss``
    (seeded, independently per datagram and direction)."""

    loss: float
    seed: int
    transports: list[asyncio.DatagramTransport] = field(default_factory=list)
    peers: list[tuple[str, int] | None] = field(default_factory=lambda: [None, None])
    forwarded: int = 0
    dropped: int = 0

    async def start(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """The relay's two addresses: (the one A sends to, the one B sends to)."""
        self._random = random.Random(self.seed)
        loop = asyncio.get_running_loop()
        for index in (0, 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            transport, _ = await loop.create_datagram_endpoint(
                lambda i=index: _Side(self, i),  # type: ignore[misc]
                sock=sock,
            )
            self.transports.append(cast(asyncio.DatagramTransport, transport))
        a, b = (t.get_extra_info("sockname")[:2] for t in self.transports)
        return (a[0], a[1]), (b[0], b[1])

    def connect(self, a: tuple[str, int], b: tuple[str, int]) -> None:
        self.peers = [a, b]

    def _forward(self, side: int, data: bytes, addr: tuple[str | Any, int]) -> None:
        other = 1 - side
        dest = self.peers[other]
        if dest is None:
            return
        if self._random.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        self.transports[other].sendto(data, dest)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()


@dataclass
class RelayedFax:
    sent: FaxResult
    received: FaxResult
    relay: LossyRelay
    sender_stats: dict[str, Any]
    receiver_stats: dict[str, Any]


async def fax_through_relay(
    document: Path,
    received: Path,
    *,
    loss: float,
    seed: int,
    depth: int = 3,
    fec: bool = False,
    ecm: bool = True,
    max_seconds: float = 120.0,
) -> RelayedFax:
    """One fax from a sending to a receiving T.38 session through a :class:`LossyRelay`
    (both sending ``depth`` secondaries, or with ``fec`` as many FEC entries)."""
    relay = LossyRelay(loss, seed)
    to_a_side, to_b_side = await relay.start()
    sender_endpoint = T38Endpoint(send=document, ecm=ecm, local_ident="+15550001")
    receiver_endpoint = T38Endpoint(receive=received, ecm=ecm, local_ident="+15550002")
    sender = await T38Session.open(
        sender_endpoint, to_a_side, depth=depth, fec=fec, max_seconds=max_seconds
    )
    receiver = await T38Session.open(
        receiver_endpoint, to_b_side, depth=depth, fec=fec, max_seconds=max_seconds
    )
    relay.connect(sender.local_address, receiver.local_address)
    try:
        sent, got = await asyncio.gather(sender.run(), receiver.run())
        return RelayedFax(sent, got, relay, sender.stats(), receiver.stats())
    finally:
        for session in (sender, receiver):
            session.close()
            session.endpoint.close()
        relay.close()
