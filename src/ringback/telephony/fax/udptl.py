"""UDPTL (ITU-T T.38 §9.1, the ASN.1 of Annex A in aligned PER): the UDP framing of T.38's IFP
packets, with redundancy.

One datagram is::

    UDPTLPacket ::= SEQUENCE {
        seq-number          INTEGER (0..65535),                   -- 2 octets, big-endian
        primary-ifp-packet  TYPE-IDENTIFIER.&Type(IFPPacket),     -- open type: length + octets
        error-recovery      CHOICE {                              -- 1 octet: 0x00 | 0x80
            secondary-ifp-packets  SEQUENCE OF primary-ifp-packet,  -- count, then open types
            fec-info               SEQUENCE { fec-npackets INTEGER,
                                              fec-data SEQUENCE OF OCTET STRING } } }

A length (of an open type, of a SEQUENCE OF) is PER's unconstrained length determinant: one
octet below 128, two octets (``10`` and 14 bits) below 16,384; fragmented lengths (16K and
more) are refused, since no IFP packet comes near them. Secondary packets are the ones sent
just before, the most recent first: in the datagram numbered ``n`` the i-th secondary
(counting from 0) is packet ``n - 1 - i``.

:class:`UdptlSender` numbers the IFP packets and carries the last ``depth`` of them as
secondaries; :class:`UdptlReceiver` turns datagrams back into IFP packets in order, each once,
recovering those lost from the secondaries of later datagrams. Malformed datagrams are
counted and dropped, never raised out of :meth:`UdptlReceiver.receive` (:func:`decode` raises
:class:`UdptlError`, and only that). FEC datagrams are decoded (their primary packet is used)
but their FEC data is not used to recover anything: ringback answers an FEC offer with
redundancy (docs/fax.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SEQ_MOD = 65536
#: the depth ringback sends by default: 3 earlier packets in every datagram (see docs/fax.md)
DEFAULT_DEPTH = 3
MAX_DEPTH = 15  # more is a waste of bandwidth and refused as a setting
MAX_LENGTH = 16383  # the largest length PER writes without fragmenting
#: a datagram ``gap`` or more packets ahead of the next one expected is a restart, not a loss
RESYNC_GAP = 1000
#: of the secondary packets and FEC entries one datagram may carry, at most this many
MAX_ENTRIES = 32


class UdptlError(ValueError):
    """A datagram that is not UDPTL (truncated, over-long, trailing bytes, fragmented)."""


@dataclass(frozen=True, slots=True)
class UdptlPacket:
    seq: int
    primary: bytes
    secondaries: tuple[bytes, ...] = ()  # packets seq-1, seq-2, … (the most recent first)
    fec: bool = False  # the error recovery was fec-info (its data is not kept)


def _length(value: int) -> bytes:
    if value < 0 or value > MAX_LENGTH:
        raise UdptlError(f"a UDPTL length of {value} does not fit one length determinant")
    if value < 128:
        return bytes((value,))
    return bytes((0x80 | (value >> 8), value & 0xFF))


def _open_type(data: bytes) -> bytes:
    return _length(len(data)) + data


def encode(packet: UdptlPacket) -> bytes:
    """The datagram of ``packet`` (redundancy; ``fec`` packets cannot be encoded)."""
    if not 0 <= packet.seq < SEQ_MOD:
        raise UdptlError(f"UDPTL sequence number {packet.seq} is out of 0..65535")
    if packet.fec:
        raise UdptlError("ringback does not send UDPTL FEC")
    out = bytearray(packet.seq.to_bytes(2, "big"))
    out += _open_type(packet.primary)
    out.append(0x00)  # error-recovery: secondary-ifp-packets
    out += _length(len(packet.secondaries))
    for secondary in packet.secondaries:
        out += _open_type(secondary)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise UdptlError(f"UDPTL datagram of {len(self.data)} bytes is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def length(self) -> int:
        first = self.take(1)[0]
        if first < 0x80:
            return first
        if first < 0xC0:
            return ((first & 0x3F) << 8) | self.take(1)[0]
        raise UdptlError("UDPTL datagram has a fragmented length (16K or more)")

    def open_type(self) -> bytes:
        return self.take(self.length())

    def count(self) -> int:
        n = self.length()
        if n > MAX_ENTRIES:
            raise UdptlError(f"UDPTL datagram claims {n} error-recovery entries")
        return n


def decode(datagram: bytes) -> UdptlPacket:
    """The packet in ``datagram``; :class:`UdptlError` if it is not a whole UDPTL packet."""
    reader = _Reader(datagram)
    seq = int.from_bytes(reader.take(2), "big")
    primary = reader.open_type()
    choice = reader.take(1)[0]
    if choice == 0x00:
        secondaries = tuple(reader.open_type() for _ in range(reader.count()))
        fec = False
    elif choice == 0x80:
        npackets_len = reader.length()
        if not 1 <= npackets_len <= 4:
            raise UdptlError("UDPTL fec-npackets is not a 1 to 4 octet integer")
        reader.take(npackets_len)
        for _ in range(reader.count()):
            reader.open_type()
        secondaries, fec = (), True
    else:
        raise UdptlError(f"UDPTL error-recovery choice octet 0x{choice:02x} is neither 0 nor 1")
    if reader.pos != len(datagram):
        raise UdptlError(f"UDPTL datagram has {len(datagram) - reader.pos} trailing bytes")
    return UdptlPacket(seq, primary, secondaries, fec)


class UdptlSender:
    """Numbers outgoing IFP packets from 0 and carries the last ``depth`` as secondaries,
    fewer (the oldest left out) where they would make a datagram longer than
    ``max_datagram`` (the far end's ``T38FaxMaxDatagram``)."""

    def __init__(
        self, depth: int = DEFAULT_DEPTH, *, first_seq: int = 0, max_datagram: int | None = None
    ) -> None:
        if not 0 <= depth <= MAX_DEPTH:
            raise ValueError(f"UDPTL redundancy depth {depth} is out of 0..{MAX_DEPTH}")
        self.depth = depth
        self.max_datagram = max_datagram
        self._seq = first_seq % SEQ_MOD
        self._history: deque[bytes] = deque(maxlen=max(1, depth))
        self._sent = 0  # packets numbered so far (secondaries never reach before the first)

    def next_datagram(self, ifp: bytes) -> bytes:
        """The datagram carrying ``ifp`` (numbered next) and the secondaries before it."""
        entries = min(self.depth, self._sent)
        secondaries = tuple(reversed(self._history))[:entries] if entries else ()
        datagram = encode(UdptlPacket(self._seq, ifp, secondaries))
        while self.max_datagram is not None and len(datagram) > self.max_datagram and secondaries:
            secondaries = secondaries[:-1]
            datagram = encode(UdptlPacket(self._seq, ifp, secondaries))
        self._seq = (self._seq + 1) % SEQ_MOD
        self._sent += 1
        if self.depth:
            self._history.append(ifp)
        return datagram


@dataclass(slots=True)
class UdptlStats:
    datagrams: int = 0
    malformed: int = 0
    duplicates: int = 0  # datagrams whose primary was already delivered (or recovered)
    recovered: int = 0  # packets delivered from a later datagram's secondaries
    lost: int = 0  # packets skipped: neither they nor a secondary copy arrived in time
    errors: list[str] = field(default_factory=list)  # the first few malformed reasons


class UdptlReceiver:
    """Datagrams in, IFP packets out in order of sequence number, each once.

    A datagram after a gap fills the gap from its secondaries as far as they reach; what they
    do not reach is lost (T.38 itself copes, as with any missing sequence number). A datagram
    behind the next one expected (a duplicate, a late one) is dropped: what it carried was
    delivered or given up already.
    """

    def __init__(self) -> None:
        self._expected: int | None = None
        self.stats = UdptlStats()

    def receive(self, datagram: bytes) -> list[tuple[int, bytes]]:
        """The IFP packets ``(seq, data)`` this datagram makes deliverable, in order."""
        self.stats.datagrams += 1
        try:
            packet = decode(datagram)
        except UdptlError as exc:
            self.stats.malformed += 1
            if len(self.stats.errors) < 10:
                self.stats.errors.append(str(exc))
            return []
        seq = packet.seq
        if self._expected is None:
            self._expected = (seq - len(packet.secondaries)) % SEQ_MOD
        ahead = (seq - self._expected) % SEQ_MOD
        if ahead >= SEQ_MOD // 2:  # behind: already delivered or given up
            self.stats.duplicates += 1
            return []
        out: list[tuple[int, bytes]] = []
        if ahead >= RESYNC_GAP:
            self.stats.lost += ahead
        else:
            for back in range(ahead, 0, -1):  # the missing ones, oldest first
                missing = (seq - back) % SEQ_MOD
                if back - 1 < len(packet.secondaries):
                    out.append((missing, packet.secondaries[back - 1]))
                    self.stats.recovered += 1
                else:
                    self.stats.lost += 1
        out.append((seq, packet.primary))
        self._expected = (seq + 1) % SEQ_MOD
        return out
