"""UDPTL (ITU-T T.38 §9.1, the ASN.1 of Annex A in aligned PER): the UDP framing of T.38's IFP
packets, with redundancy or parity FEC.

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
secondaries; :class:`UdptlFecSender` carries parity FEC instead (:mod:`.udptl_fec`: span 3,
3 entries). :class:`UdptlReceiver` takes either, even mixed, and turns datagrams back into IFP
packets in order, each once, recovering those lost from the secondaries or the FEC entries of
later datagrams (after a gap in an FEC stream it holds what follows for a while, since the
entries that rebuild a packet may come a few datagrams later). Malformed datagrams are counted
and dropped, never raised out of :meth:`UdptlReceiver.receive` (:func:`decode` raises
:class:`UdptlError`, and only that).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ringback.telephony.fax.udptl_fec import (
    DEFAULT_FEC_ENTRIES,
    DEFAULT_FEC_SPAN,
    MAX_FEC_REACH,
    fec_group,
    rebuild,
    xor_parity,
)

SEQ_MOD = 65536
#: the depth ringback sends by default: 3 earlier packets in every datagram (see docs/fax.md)
DEFAULT_DEPTH = 3
MAX_DEPTH = 15  # more is a waste of bandwidth and refused as a setting
MAX_LENGTH = 16383  # the largest length PER writes without fragmenting
#: a datagram ``gap`` or more packets ahead of the next one expected is a restart, not a loss
RESYNC_GAP = 1000
#: of the secondary packets and FEC entries one datagram may carry, at most this many
MAX_ENTRIES = 32
#: ticks (20 ms) an FEC receiver holds the packets after a gap, for entries to rebuild it
FEC_HOLD_TICKS = 10


class UdptlError(ValueError):
    """A datagram that is not UDPTL (truncated, over-long, trailing bytes, fragmented)."""


@dataclass(frozen=True, slots=True)
class UdptlPacket:
    seq: int
    primary: bytes
    secondaries: tuple[bytes, ...] = ()  # packets seq-1, seq-2, … (the most recent first)
    fec: bool = False  # the error recovery is fec-info (then no secondaries)
    fec_span: int = 0  # fec-npackets: how many packets each entry covers
    fec_data: tuple[bytes, ...] = ()  # the parity entries (udptl_fec.fec_group says of which)


def _length(value: int) -> bytes:
    if value < 0 or value > MAX_LENGTH:
        raise UdptlError(f"a UDPTL length of {value} does not fit one length determinant")
    if value < 128:
        return bytes((value,))
    return bytes((0x80 | (value >> 8), value & 0xFF))


def _open_type(data: bytes) -> bytes:
    return _length(len(data)) + data


def _integer(value: int) -> bytes:
    """An unconstrained INTEGER (PER): a length, then the fewest two's-complement octets."""
    octets = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    return _length(len(octets)) + octets


def encode(packet: UdptlPacket) -> bytes:
    """The datagram of ``packet``: secondaries, or FEC entries when ``packet.fec``."""
    if not 0 <= packet.seq < SEQ_MOD:
        raise UdptlError(f"UDPTL sequence number {packet.seq} is out of 0..65535")
    out = bytearray(packet.seq.to_bytes(2, "big"))
    out += _open_type(packet.primary)
    if packet.fec:
        if packet.secondaries:
            raise UdptlError("a UDPTL datagram carries secondaries or FEC, not both")
        if packet.fec_span < 0:
            raise UdptlError(f"UDPTL fec-npackets {packet.fec_span} is negative")
        out.append(0x80)  # error-recovery: fec-info
        out += _integer(packet.fec_span)
        out += _length(len(packet.fec_data))
        for entry in packet.fec_data:
            out += _open_type(entry)  # OCTET STRING: a length, then the octets
        return bytes(out)
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
        packet = UdptlPacket(seq, primary, secondaries)
    elif choice == 0x80:
        npackets_len = reader.length()
        if not 1 <= npackets_len <= 4:
            raise UdptlError("UDPTL fec-npackets is not a 1 to 4 octet integer")
        span = int.from_bytes(reader.take(npackets_len), "big", signed=True)
        if span < 0:
            raise UdptlError(f"UDPTL fec-npackets {span} is negative")
        entries = tuple(reader.open_type() for _ in range(reader.count()))
        packet = UdptlPacket(seq, primary, fec=True, fec_span=span, fec_data=entries)
    else:
        raise UdptlError(f"UDPTL error-recovery choice octet 0x{choice:02x} is neither 0 nor 1")
    if reader.pos != len(datagram):
        raise UdptlError(f"UDPTL datagram has {len(datagram) - reader.pos} trailing bytes")
    return packet


class UdptlSender:
    """Numbers outgoing IFP packets from 0 and carries the last ``depth`` as secondaries,
    fewer (the oldest left out) where they would make a datagram longer than
    ``max_datagram`` (the far end's ``T38FaxMaxDatagram``)."""

    fec = False

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


class UdptlFecSender:
    """Numbers outgoing IFP packets from 0 and carries ``entries`` parity entries over
    ``span`` packets each (:mod:`.udptl_fec`'s mapping). The first ``span × entries`` datagrams
    wind up as spandsp's do: no FEC before ``span`` packets were sent, then
    ``sent // span`` entries, so an entry never covers a packet before the first. Where the
    entries would make a datagram longer than ``max_datagram`` there are fewer (one less at a
    time, each recomputed: the mapping depends on the count)."""

    fec = True

    def __init__(
        self,
        entries: int = DEFAULT_FEC_ENTRIES,
        span: int = DEFAULT_FEC_SPAN,
        *,
        first_seq: int = 0,
        max_datagram: int | None = None,
    ) -> None:
        if not 1 <= entries <= MAX_DEPTH or not 1 <= span <= MAX_DEPTH:
            raise ValueError(f"UDPTL FEC span {span} / entries {entries} out of 1..{MAX_DEPTH}")
        if span * entries > MAX_FEC_REACH:
            raise ValueError(f"UDPTL FEC span × entries is over {MAX_FEC_REACH}")
        self.entries = entries
        self.span = span
        self.depth = entries  # what a session's stats call "redundancy"
        self.max_datagram = max_datagram
        self._seq = first_seq % SEQ_MOD
        self._history: deque[bytes] = deque(maxlen=span * entries)
        self._sent = 0

    def _packet(self, ifp: bytes, span: int, entries: int) -> UdptlPacket:
        history = self._history
        data = tuple(
            # entry m covers the packets k·entries - m back (k = 1..span): 1 back is history[-1]
            xor_parity([history[m - k * entries] for k in range(1, span + 1)])
            for m in range(entries)
        )
        return UdptlPacket(self._seq, ifp, fec=True, fec_span=span, fec_data=data)

    def next_datagram(self, ifp: bytes) -> bytes:
        """The datagram carrying ``ifp`` (numbered next) and the FEC entries before it."""
        span, entries = self.span, self.entries
        if self._sent < span * entries:
            entries = self._sent // span
            span = span if entries else 0
        datagram = encode(self._packet(ifp, span, entries))
        while self.max_datagram is not None and len(datagram) > self.max_datagram and entries:
            entries -= 1
            datagram = encode(self._packet(ifp, span if entries else 0, entries))
        self._seq = (self._seq + 1) % SEQ_MOD
        self._sent += 1
        self._history.append(ifp)
        return datagram


@dataclass(slots=True)
class UdptlStats:
    datagrams: int = 0
    malformed: int = 0
    duplicates: int = 0  # datagrams whose primary was already delivered (or recovered)
    recovered: int = 0  # packets delivered from a later datagram's secondaries or FEC
    fec_recovered: int = 0  # of those, the ones rebuilt from FEC entries
    lost: int = 0  # packets skipped: neither they nor a secondary copy arrived in time
    errors: list[str] = field(default_factory=list)  # the first few malformed reasons


class UdptlReceiver:
    """Datagrams in, IFP packets out in order of sequence number, each once.

    Redundancy: a datagram after a gap fills the gap from its secondaries as far as they reach;
    what they do not reach is lost at once (T.38 itself copes, as with any missing sequence
    number). FEC: every packet delivered or rebuilt is kept for a while (the last
    :data:`~.udptl_fec.MAX_FEC_REACH`), and each parity entry that arrives rebuilds the one
    packet missing from its group, if only one is (an entry whose group misses two or more
    waits: another entry may rebuild one of them, and then it does the other). After a gap in
    an FEC stream the packets that follow are held (not delivered) until the gap is rebuilt or
    arrives late, or can no longer be (2 × span × entries datagrams past it arrived), or
    ``hold_ticks`` calls of :meth:`tick` passed: then it is lost. A datagram behind the next
    one expected (a duplicate, a late one) is dropped: what it carried was delivered or given
    up already. ``version`` is T.38's, for the length of rebuilt packets (:mod:`.udptl_fec`).
    """

    def __init__(self, *, version: int = 0, hold_ticks: int = FEC_HOLD_TICKS) -> None:
        self.stats = UdptlStats()
        self.version = version
        self.hold_ticks = hold_ticks
        # sequence numbers are unwrapped here (…, 65535, 65536, …): output is modulo 65536
        self._next: int | None = None  # the next to deliver
        self._top = 0  # one past the highest received
        self._known: dict[int, bytes] = {}  # received or rebuilt, delivered or not
        self._parity: list[tuple[tuple[int, ...], bytes]] = []  # entries still of use
        self._reach = 0  # span × entries of the last FEC datagram (0: redundancy)
        self._held_ticks = 0

    @property
    def holding(self) -> int:
        """How many packets wait behind a gap (0 unless FEC)."""
        if self._next is None:
            return 0
        return sum(1 for seq in range(self._next, self._top) if seq in self._known)

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
        if self._next is None:
            self._next = self._top = packet.seq - len(packet.secondaries)
        ahead = (packet.seq - self._next) % SEQ_MOD
        if ahead >= SEQ_MOD // 2:  # behind: already delivered or given up
            self.stats.duplicates += 1
            return []
        out: list[tuple[int, bytes]] = []
        seq = self._next + ahead
        if ahead >= RESYNC_GAP:  # a restart: what was held goes, the rest is lost
            out += self._give_up(self._top)
            self.stats.lost += seq - self._next
            self._next = self._top = seq
            self._known.clear()
            self._parity.clear()
        elif seq in self._known:
            self.stats.duplicates += 1
            return []
        self._known[seq] = packet.primary
        self._top = max(self._top, seq + 1)
        for back, secondary in enumerate(packet.secondaries, start=1):
            self._learn(seq - back, secondary, fec=False)
        if packet.fec:
            self._take_parity(seq, packet)
        else:
            self._reach = 0
        out += self._deliver()
        if self._next < self._top and not self._worth_holding():
            out += self._give_up(self._top)
        self._forget()
        return out

    def tick(self) -> list[tuple[int, bytes]]:
        """20 ms passed: a gap held for ``hold_ticks`` is given up; what that frees, in order."""
        if self._next is None or self._next >= self._top:
            self._held_ticks = 0
            return []
        self._held_ticks += 1
        if self._held_ticks < self.hold_ticks:
            return []
        next_known = min(s for s in range(self._next, self._top) if s in self._known)
        out = self._give_up(next_known)
        self._forget()
        return out

    def _learn(self, seq: int, data: bytes, *, fec: bool) -> None:
        assert self._next is not None
        if seq in self._known or seq < self._top - MAX_FEC_REACH:
            return
        self._known[seq] = data
        if seq >= self._next:  # it will be delivered: recovered (else only of use to FEC)
            self.stats.recovered += 1
            if fec:
                self.stats.fec_recovered += 1

    def _take_parity(self, seq: int, packet: UdptlPacket) -> None:
        span, entries = packet.fec_span, len(packet.fec_data)
        if not span * entries:  # a sender winding up (no entries yet): hold as for the default
            self._reach = self._reach or DEFAULT_FEC_SPAN * DEFAULT_FEC_ENTRIES
            return
        self._reach = span * entries if span * entries <= MAX_FEC_REACH else 0
        if not self._reach:
            return
        for m, parity in enumerate(packet.fec_data):
            self._parity.append((fec_group(seq, span, entries, m), parity))
        changed = True
        while changed:  # one rebuilt packet may complete another entry's group
            changed = False
            still: list[tuple[tuple[int, ...], bytes]] = []
            for group, parity in self._parity:
                missing = [s for s in group if s not in self._known]
                if len(missing) == 1:
                    others = [self._known[s] for s in group if s != missing[0]]
                    data = rebuild(parity, others, self.version)
                    if data is not None:
                        self._learn(missing[0], data, fec=True)
                        changed = True
                elif missing:
                    still.append((group, parity))
            self._parity = still

    def _worth_holding(self) -> bool:
        """Whether a later datagram may still rebuild the packet at the head of the gap: its
        own entries come up to span × entries datagrams after it, and a packet they rebuild
        may complete an older entry's group (a burst of 4 with 3 × 3 comes back 10 later)."""
        assert self._next is not None
        return self._reach > 0 and self._top - 1 < self._next + 2 * self._reach

    def _deliver(self) -> list[tuple[int, bytes]]:
        assert self._next is not None
        out = []
        while self._next < self._top and self._next in self._known:
            out.append((self._next % SEQ_MOD, self._known[self._next]))
            self._next += 1
            self._held_ticks = 0
        return out

    def _give_up(self, until: int) -> list[tuple[int, bytes]]:
        """Every packet missing before ``until`` is lost; the ones after them go out."""
        assert self._next is not None
        out: list[tuple[int, bytes]] = []
        while self._next < until:
            if self._next in self._known:
                out.append((self._next % SEQ_MOD, self._known[self._next]))
            else:
                self.stats.lost += 1
            self._next += 1
        self._held_ticks = 0
        return out + self._deliver()

    def _forget(self) -> None:
        """Keep what later entries may need: the last MAX_FEC_REACH packets, live entries."""
        floor = self._top - MAX_FEC_REACH
        if len(self._known) > 2 * MAX_FEC_REACH:
            self._known = {s: d for s, d in self._known.items() if s >= floor}
        if self._parity and self._parity[0][0][0] < floor:
            self._parity = [(g, p) for g, p in self._parity if g[0] >= floor]
