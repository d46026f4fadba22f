"""A T.38 fax session over UDP: a :class:`~.t38.T38Endpoint` whose IFP packets travel in
UDPTL datagrams (:mod:`.udptl`, with redundancy or parity FEC) on an asyncio datagram socket.

Time: one shared ticker per event loop (the pattern of the RTP media clock) lets 20 ms of fax
time pass on every session each 20 ms of the loop's real time, on absolute deadlines; a late
loop catches up tick by tick (up to half a second), so T.38's own pacing of the data holds.
Real time on purpose: the far end's fax machine runs on its clock, never on ringback's
injected (maybe fake) one. Each IFP packet is sent as many times as T.38 asks (its
``repeats``: indicators go out up to three times), the copies in one datagram with one
sequence number, which the far end drops as duplicates.

Received datagrams are accepted from the remote host only (any port: some peers send from
another port than the one they announce); each IFP packet goes to the endpoint once, in
order, with its UDPTL sequence number (spandsp notes the gaps of packets never recovered).

A session ends when T.30 reaches phase E (after a short linger that sends what is still
queued: the last DCN), after ``max_seconds`` of fax time or on :meth:`T38Session.hang_up`
(both: code 49, the call dropped, with no page counted, unless T.30 was only sending its
final DCN, which counts as done: spandsp's ``t30_terminate``, as for a G.711 fax whose call
ends). Closing the session closes the socket, not the
endpoint (its owner closes it).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import asdict
from typing import Any

from ringback.telephony.fax.endpoint import DEFAULT_MAX_SECONDS, FRAME, RATE
from ringback.telephony.fax.result import FaxResult
from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.fax.udptl import (
    DEFAULT_DEPTH,
    UdptlFecSender,
    UdptlReceiver,
    UdptlSender,
)
from ringback.telephony.pacing import Ticker, existing, ticker

log = logging.getLogger(__name__)

TICK_S = FRAME / RATE  # 20 ms
MAX_CATCH_UP_S = 0.5
T38_TICKER = "t38-clock"
#: ticks a session goes on sending after phase E (whatever T.38 still queued: DCN, repeats)
LINGER_TICKS = 10


def _clock() -> Ticker:
    """The loop's T.38 ticker (:mod:`ringback.telephony.pacing`)."""
    return ticker(T38_TICKER, MAX_CATCH_UP_S)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.session: T38Session | None = None  # set once the session is built

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.session is not None:
            self.session._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("t38: socket error %s", exc)  # ICMP unreachable: the far end may come back


class T38Session:
    """One fax machine on T.38 over UDPTL (see the module's docstring). Build it with
    :meth:`open`, then ``await`` :meth:`run`."""

    def __init__(
        self,
        endpoint: T38Endpoint,
        transport: asyncio.DatagramTransport,
        remote: tuple[str, int],
        *,
        depth: int,
        max_seconds: float,
        max_datagram: int | None = None,
        fec: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.remote = remote
        self.depth = depth
        self.fec = fec and depth > 0
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._sender: UdptlSender | UdptlFecSender = (
            UdptlFecSender(depth, max_datagram=max_datagram)
            if self.fec
            else UdptlSender(depth, max_datagram=max_datagram)
        )
        self._receiver = UdptlReceiver()
        self._max_ticks = int(max_seconds / TICK_S)
        self._ticks = 0
        self._linger = 0
        self._finished: asyncio.Future[FaxResult] = self._loop.create_future()
        self.datagrams_sent = 0
        self.ifp_sent = 0
        self.ifp_received = 0
        self.foreign = 0  # datagrams from another host than the far end's

    @classmethod
    async def open(
        cls,
        endpoint: T38Endpoint,
        remote: tuple[str, int],
        *,
        sock: socket.socket | None = None,
        local_host: str = "127.0.0.1",
        depth: int = DEFAULT_DEPTH,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        max_datagram: int | None = None,
        fec: bool = False,
    ) -> T38Session:
        """A session on ``sock`` (a bound UDP socket, which the session then owns), or on a
        new one bound to any free port of ``local_host``, sending to ``remote`` datagrams of
        at most ``max_datagram`` bytes (the far end's ``T38FaxMaxDatagram``) with up to
        ``depth`` redundant packets each, or with ``fec`` up to ``depth`` parity FEC entries
        (span 3) each. Either kind is received, whatever is sent."""
        if sock is None:
            family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((local_host, 0))
            except OSError:
                sock.close()
                raise
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(_Protocol, sock=sock)
        session = cls(
            endpoint,
            transport,
            remote,
            depth=depth,
            max_seconds=max_seconds,
            max_datagram=max_datagram,
            fec=fec,
        )
        protocol.session = session
        return session

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._transport.get_extra_info("sockname")[:2]
        return (host, port)

    @property
    def done(self) -> bool:
        return self._finished.done()

    def stats(self) -> dict[str, Any]:
        """Counters for a call record's detail: datagrams, IFPs, UDPTL recovery."""
        udptl = asdict(self._receiver.stats)
        return {
            "remote": f"{self.remote[0]}:{self.remote[1]}",
            "redundancy": self.depth,
            "error_correction": "fec" if self.fec else "redundancy" if self.depth else "none",
            "datagrams_sent": self.datagrams_sent,
            "ifp_sent": self.ifp_sent,
            "ifp_received": self.ifp_received,
            "foreign": self.foreign,
            **{f"udptl_{key}": value for key, value in udptl.items() if value},
        }

    async def run(self) -> FaxResult:
        """Run the session to its end; the endpoint's result."""
        if not self._finished.done():
            _clock().add(self)
        return await asyncio.shield(self._finished)

    def _on_datagram(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if addr[0] != self.remote[0]:
            self.foreign += 1
            return
        if self._finished.done():
            return
        self._deliver(self._receiver.receive(data))

    def _deliver(self, packets: list[tuple[int, bytes]]) -> None:
        for seq, ifp in packets:
            self.ifp_received += 1
            self.endpoint.rx_ifp(ifp, seq)

    def _send(self, ifp: bytes, repeats: int) -> None:
        datagram = self._sender.next_datagram(ifp)
        self.ifp_sent += 1
        for _ in range(repeats):
            self._transport.sendto(datagram, self.remote)
            self.datagrams_sent += 1

    def tick(self, deadline: float = 0.0) -> bool:
        """One 20 ms step; False once the session is over."""
        if self._finished.done():
            return False
        self._deliver(self._receiver.tick())  # an FEC gap held too long is given up
        for packet in self.endpoint.tick(FRAME):
            self._send(packet.data, packet.repeats)
        self._ticks += 1
        if self.endpoint.done:
            self._linger += 1
            if self._linger >= LINGER_TICKS:
                self._finish()
                return False
        elif self._ticks >= self._max_ticks:
            self._finish()
            return False
        return True

    def _finish(self) -> None:
        if not self._finished.done():
            endpoint = self.endpoint
            # cut short: T.30 decides (success if only the final DCN was still going out)
            self._finished.set_result(
                endpoint.hang_up() if endpoint.done else endpoint.call_ended()
            )
        clock = existing(self._loop, T38_TICKER)
        if clock is not None:
            clock.discard(self)

    def tick_failed(self, exc: BaseException) -> None:
        log.warning("t38: session ended by an error: %s", exc)
        self._finish()

    def hang_up(self) -> FaxResult:
        """End the session now; the result (an unfinished fax: code 49 with no page counted,
        unless T.30 was only sending its final DCN: spandsp's ``t30_terminate``)."""
        self._finish()
        return self._finished.result()

    def close(self) -> None:
        """Hang up and close the socket (idempotent)."""
        self.hang_up()
        self._transport.close()
