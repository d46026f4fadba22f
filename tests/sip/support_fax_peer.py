"""Fax peers for the SIP fax tests: the test's own fax machine on a UDP socket (spandsp via
``FaxEndpoint``, not ringback's RTP session), a UDP relay that reorders or drops packets, and
a storage IVR on an inbound number that receives faxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from support_media import HOST

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import Settings
from ringback.service.inbound import inbound_handler
from ringback.store.db import Store, open_store
from ringback.store.records import CallRow
from ringback.telephony.fax import g711
from ringback.telephony.fax.endpoint import FRAME, FaxEndpoint
from ringback.telephony.fax.result import FaxResult
from ringback.telephony.sip.dialer import SipDialer

_RTP = struct.Struct("!BBHII")
RECEIVE_IVR = b"<IVR><ReceiveFax>in.tif</ReceiveFax></IVR>"
FAX_NUMBER = "5550300"
QUIET_TICKS = 5  # 100 ms without a packet: the far end has stopped sending


class PeerFax(asyncio.DatagramProtocol):
    """A far fax machine: one ``FaxEndpoint`` on a UDP socket of its own, speaking RTP G.711
    (``law``) to whoever sends it RTP first (symmetric RTP). What arrives is fed to the endpoint
    at once in arrival order (a sequence gap becomes ``rx_fillin``, a packet older than the
    last one is dropped); one frame is sent every 20 ms of the event loop's time, and once
    nothing has come in for 100 ms every tick is filled in (the far end went quiet, say after
    its BYE: T.30's timers go on, as on a real line)."""

    def __init__(self, endpoint: FaxEndpoint, law: g711.Law) -> None:
        self.endpoint = endpoint
        self.law = law
        self.pt = 0 if law == "ulaw" else 8
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.received = 0
        self.sent = 0
        self.headers: list[tuple[int, int, bool]] = []  # (seq, timestamp, marker) received
        self._want = 0
        self._enough = asyncio.Event()
        self._quiet = 0  # ticks since the last packet came in
        self._last_seq: int | None = None
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._ssrc = random.getrandbits(32)

    @classmethod
    async def open(cls, endpoint: FaxEndpoint, law: g711.Law) -> PeerFax:
        loop = asyncio.get_running_loop()
        peer = cls(endpoint, law)
        transport, _ = await loop.create_datagram_endpoint(lambda: peer, local_addr=(HOST, 0))
        peer.transport = transport
        peer.port = transport.get_extra_info("sockname")[1]
        return peer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or self.endpoint.done:
            return
        self.remote = self.remote or addr
        _b0, b1, seq, ts, _ssrc = _RTP.unpack_from(data)
        if b1 & 0x7F != self.pt:
            return
        self.headers.append((seq, ts, bool(b1 & 0x80)))
        if self._want and len(self.headers) >= self._want:
            self._enough.set()
        if self._last_seq is not None:
            ahead = (seq - self._last_seq) & 0xFFFF
            if ahead == 0 or ahead >= 0x8000:
                return
            if ahead > 1:
                self.endpoint.rx_fillin(FRAME * (ahead - 1))
        self._last_seq = seq
        self.received += 1
        self._quiet = 0
        self.endpoint.rx(g711.decode(np.frombuffer(data[12:], np.uint8), self.law))

    async def packets(self, count: int) -> None:
        """Until ``count`` RTP packets have come in."""
        self._want = count
        if len(self.headers) < count:
            await self._enough.wait()

    async def run(self, max_seconds: float) -> FaxResult:
        """Send a frame every 20 ms until the endpoint is done or ``max_seconds`` pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        end = deadline + max_seconds
        while not self.endpoint.done and loop.time() < end:
            deadline += FRAME / 8000
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            self._quiet += 1
            if self._quiet > QUIET_TICKS:  # the far end went quiet: T.30's timers go on
                self.endpoint.rx_fillin(FRAME)
            out = g711.encode(self.endpoint.tx(FRAME), self.law).tobytes()
            if self.remote is None or self.transport is None:
                continue
            header = _RTP.pack(0x80, self.pt | (0x80 if self.sent == 0 else 0), self._seq,
                               self._ts, self._ssrc)  # fmt: skip
            self.transport.sendto(header + out, self.remote)
            self._seq = (self._seq + 1) & 0xFFFF
            self._ts = (self._ts + FRAME) & 0xFFFFFFFF
            self.sent += 1
        return self.endpoint.hang_up()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Relay(asyncio.DatagramProtocol):
    """A UDP relay between ringback (learnt from the first packet not from ``far``) and the
    far fax machine at ``far``. Toward ringback it holds back every ``reorder_every``-th packet
    and sends it after the next one (a swap of neighbours: 20 ms of reordering); both ways it
    drops a packet with probability ``loss`` (from a seeded generator)."""

    far: tuple[str, int]
    reorder_every: int = 0
    loss: float = 0.0
    seed: int = 14
    port: int = 0
    forwarded: int = 0
    reordered: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"to_ringback": 0, "to_far": 0})
    _ringback: tuple[str, int] | None = None
    _held: bytes | None = None
    _count: int = 0
    _transport: asyncio.DatagramTransport | None = None
    _random: random.Random = field(default_factory=random.Random)

    async def start(self) -> Relay:
        self._random.seed(self.seed)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(HOST, 0))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        to_ringback = addr == self.far
        if not to_ringback:
            self._ringback = addr
        direction = "to_ringback" if to_ringback else "to_far"
        if self.loss and self._random.random() < self.loss:
            self.dropped[direction] += 1
            return
        if not to_ringback:
            self._transport.sendto(data, self.far)
            self.forwarded += 1
            return
        if self._ringback is None:
            return
        self._count += 1
        if self.reorder_every and self._held is None and self._count % self.reorder_every == 0:
            self._held = data
            return
        self._transport.sendto(data, self._ringback)
        self.forwarded += 1
        if self._held is not None:
            self._transport.sendto(self._held, self._ringback)
            self._held = None
            self.forwarded += 1
            self.reordered += 1

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass
class FaxNumber:
    """An inbound number whose storage IVR receives a fax into ``received_faxes/in.tif``."""

    store: Store
    storage: Storage
    client: int
    clock: SystemClock

    def attach(self, dialer: SipDialer, tmp_path: Path) -> None:
        dialer.on_inbound = inbound_handler(
            self.store, self.storage, dialer, self.clock,
            Settings(storage_dir=tmp_path / "storage"),
        )  # fmt: skip

    @property
    def received_tiff(self) -> Path:
        return self.storage.resolve(self.client, "received_faxes/in.tif")

    @property
    def received_pdf(self) -> Path:
        return self.storage.resolve(self.client, "received_faxes/in.pdf")

    async def stored_leg(self, timeout_s: float = 30.0) -> CallRow:
        """The inbound leg, once the call history has it ended (polled)."""
        async with asyncio.timeout(timeout_s):
            while True:
                legs = [
                    leg
                    for leg in await self.store.calls(client_id=self.client)
                    if leg.direction == "inbound" and leg.ended_at is not None
                ]
                if legs:
                    [leg] = legs
                    return leg
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def fax_number(tmp_path: Path) -> AsyncIterator[FaxNumber]:
    clock = SystemClock()
    store = await open_store(f"sqlite:///{tmp_path / 'rb.db'}", clock, migrate=True)
    storage = Storage(tmp_path / "storage")
    try:
        client = await store.ensure_client("acme", clock.now())
        storage.write_bytes(client, "fax.xml", RECEIVE_IVR)
        await store.put_number(
            client, FAX_NUMBER, answer_url=None, ivr_file="fax.xml", notify_completed=False,
            description="", now=clock.now(),
        )  # fmt: skip
        yield FaxNumber(store, storage, client, clock)
    finally:
        await store.close()
