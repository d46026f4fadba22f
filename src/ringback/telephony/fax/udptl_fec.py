"""UDPTL parity FEC (ITU-T T.38 §9.1, ``fec-info``; SDP ``T38FaxUdpEC:t38UDPFEC``): which
packets a parity entry covers, the XOR, the rebuilding of one lost packet, and the length of
an IFP packet (which the XOR does not carry).

The mapping of span and entries to sequence numbers: in the datagram numbered ``n`` whose
``fec-npackets`` (the span) is ``s`` and which carries ``e`` entries, entry ``m`` (0 ≤ m < e)
is the XOR of the ``s`` packets ``n + m - k·e`` for k = 1 … s: entries interleave, the
packets of one entry are ``e`` apart, and all come before ``n`` (its own primary is never
covered). This is the layout of spandsp's UDPTL (``udptl.c``, Steve Underwood; Asterisk's
``main/udptl.c`` is the same code), which Asterisk and FreeSWITCH send and read; ringback's
implementation is its own, written from that description. With s = e = 3 each packet is
covered by three entries (of the datagrams n+1 … n+9): a single loss is rebuilt from the next
datagram, as with redundancy, and a few more losses in a row from later ones.

The XOR pads shorter packets with zero octets to the longest; the entry is as long as the
longest packet it covers. A rebuilt packet therefore comes out as long as its entry, with
zero octets after its real end when it was shorter: :func:`ifp_length` finds that end in the
IFP packet's own encoding (Annex A: an IFP packet is self-delimiting), and the zeros after it
are dropped. A packet that does not parse as IFP is kept whole.
"""

from __future__ import annotations

#: ringback's FEC when it sends FEC: span 3, 3 entries (spandsp's and Asterisk's default,
#: ``udptlfecspan`` / ``udptlfecentries`` = 3)
DEFAULT_FEC_SPAN = 3
DEFAULT_FEC_ENTRIES = 3
#: the furthest back (span × entries) a parity entry may reach and still be used
MAX_FEC_REACH = 64


def fec_group(seq: int, span: int, entries: int, m: int) -> tuple[int, ...]:
    """The sequence numbers (unwrapped: may be below 0 or above 65535) entry ``m`` of the
    datagram numbered ``seq`` covers, the oldest first."""
    if not 0 <= m < entries:
        raise ValueError(f"FEC entry {m} is out of 0..{entries - 1}")
    return tuple(seq + m - k * entries for k in range(span, 0, -1))


def xor_parity(packets: list[bytes] | tuple[bytes, ...]) -> bytes:
    """The XOR of ``packets``, each padded with zero octets to the longest."""
    width = max((len(p) for p in packets), default=0)
    value = 0
    for packet in packets:
        value ^= int.from_bytes(packet, "big") << (8 * (width - len(packet)))
    return value.to_bytes(width, "big")


def rebuild(parity: bytes, others: list[bytes], version: int = 0) -> bytes | None:
    """The one packet missing from a parity entry's group, from the entry and the other
    packets of the group; ``None`` when they cannot be the group of that entry (one longer
    than the entry) or the result is empty."""
    width = len(parity)
    if width == 0 or any(len(p) > width for p in others):
        return None
    value = int.from_bytes(parity, "big")
    for packet in others:
        value ^= int.from_bytes(packet, "big") << (8 * (width - len(packet)))
    data = value.to_bytes(width, "big")
    length = ifp_length(data, version)
    if length is not None and not any(data[length:]):
        return data[:length]
    return data


def ifp_length(data: bytes, version: int = 0) -> int | None:
    """The octets the IFP packet at the start of ``data`` takes, from its aligned-PER encoding
    (T.38 Annex A: ``IFPPacket ::= SEQUENCE { type-of-msg, data-field OPTIONAL }``), or
    ``None`` when ``data`` does not start with a whole one.

    The first octet: bit 8 the data-field's presence, bit 7 the choice (indicator / data),
    bit 6 the enumeration's extension bit (an extended value takes a second octet). The
    data-field: a count (one octet), then per field its field-data's presence bit and field
    type, and the field-data as a 2-octet length (minus 1) and its octets. In version 0 (the
    1998 ASN.1) a field without data takes half an octet, so two pack into one; from version
    2 each field type takes a whole octet (two when extended)."""
    size = len(data)
    if size == 0:
        return None
    first = data[0]
    pos = 2 if first & 0x20 else 1
    if pos > size:
        return None
    if not first & 0x40:  # t30-indicator: never a data field
        return None if first & 0x80 else pos
    if not first & 0x80:
        return pos
    if pos >= size or data[pos] & 0x80:  # the count: one octet (below 128)
        return None
    count = data[pos]
    pos += 1
    half = False
    for _ in range(count):
        if pos >= size:
            return None
        octet = data[pos]
        if version == 0 and half:
            present = bool(octet & 0x08)
            pos += 1
            half = False
        elif version == 0:
            present = bool(octet & 0x80)
            if present:
                pos += 1
            else:
                half = True
        else:
            present = bool(octet & 0x80)
            pos += 2 if octet & 0x40 else 1
        if present:
            if pos + 2 > size:
                return None
            pos += 2 + int.from_bytes(data[pos : pos + 2], "big") + 1
            if pos > size:
                return None
    if half:
        pos += 1
    return pos if pos <= size else None
