"""UDPTL parity FEC (T.38 §9.1 fec-info): the wire format, the span/entries mapping, the XOR
with padding, rebuilding lost packets (their length from the IFP encoding), never inventing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support_fax import fax_document

from ringback.telephony.fax.t38 import T38Endpoint, t38_exchange
from ringback.telephony.fax.udptl import (
    SEQ_MOD,
    UdptlFecSender,
    UdptlPacket,
    UdptlReceiver,
    UdptlSender,
    decode,
    encode,
)
from ringback.telephony.fax.udptl_fec import fec_group, ifp_length, rebuild, xor_parity

# -- IFP packets of T.38 version 0 (Annex A, aligned PER), built here to feed the tests -------


def ifp_indicator(indicator: int) -> bytes:
    return bytes([indicator << 1])  # no data field, t30-indicator, not extended


def ifp_data(data_type: int, fields: list[tuple[int, bytes | None]]) -> bytes:
    """A t30-data packet with ``fields`` (field type, field data or None), version 0 layout:
    a field without data takes half an octet, so the next one shares it."""
    out = bytearray([0xC0 | (data_type << 1), len(fields)])
    half = False
    for field_type, data in fields:
        if half:
            out[-1] |= (0x08 if data is not None else 0) | field_type
            half = False
        elif data is None:
            out.append(field_type << 4)
            half = True
            continue
        else:
            out.append(0x80 | (field_type << 4))
        if data is not None:
            out += (len(data) - 1).to_bytes(2, "big") + data
    return bytes(out)


field_data = st.one_of(st.none(), st.binary(min_size=1, max_size=80))
ifp_packets = st.one_of(
    st.integers(0, 15).map(ifp_indicator),
    st.builds(
        ifp_data,
        st.integers(0, 8),
        st.lists(st.tuples(st.integers(0, 7), field_data), min_size=1, max_size=4),
    ),
)


# -- the wire format -------------------------------------------------------------------------


def test_an_fec_datagram_is_encoded_as_the_per_layout_spells_it() -> None:
    # seq-number 9; primary: length 1, IFP 0x00; error-recovery choice 1 (fec-info: 0x80);
    # fec-npackets an unconstrained INTEGER: length 1, value 3; fec-data: a count of 2, then
    # each OCTET STRING as a length and its octets.
    packet = UdptlPacket(9, b"\x00", fec=True, fec_span=3, fec_data=(b"\x01\x02", b"\x03"))
    want = bytes.fromhex("0009 0100 80 0103 02 020102 0103")
    assert encode(packet) == want
    assert decode(want) == packet


def test_an_fec_span_of_128_takes_two_octets_with_a_leading_zero() -> None:
    packet = UdptlPacket(1, b"\x02", fec=True, fec_span=128, fec_data=())
    assert encode(packet) == bytes.fromhex("0001 0102 80 020080 00")
    assert decode(encode(packet)) == packet


def test_a_negative_fec_span_is_malformed() -> None:
    receiver = UdptlReceiver()
    assert receiver.receive(bytes.fromhex("0001 0102 80 01ff 00")) == []
    assert receiver.stats.malformed == 1


@given(
    seq=st.integers(0, SEQ_MOD - 1),
    primary=ifp_packets,
    span=st.integers(0, 300),
    entries=st.lists(st.binary(max_size=200), max_size=8).map(tuple),
)
def test_an_fec_datagram_round_trips(
    seq: int, primary: bytes, span: int, entries: tuple[bytes, ...]
) -> None:
    packet = UdptlPacket(seq, primary, fec=True, fec_span=span, fec_data=entries)
    assert decode(encode(packet)) == packet


def test_the_sender_winds_up_then_sends_three_entries_over_three_packets_each() -> None:
    sender = UdptlFecSender(3, 3)
    datagrams = [sender.next_datagram(bytes([0x10 + i])) for i in range(10)]
    # packets 0..2: no FEC yet (span 0, no entries)
    assert datagrams[2] == bytes.fromhex("0002 0112 80 0100 00")
    # packet 3: one entry over 0, 1, 2: 10^11^12 = 13
    assert datagrams[3] == bytes.fromhex("0003 0113 80 0103 01 0113")
    # packet 6: two entries, 2 apart: {0, 2, 4} = 10^12^14 = 16, {1, 3, 5} = 11^13^15 = 17
    assert datagrams[6] == bytes.fromhex("0006 0116 80 0103 02 0116 0117")
    # packet 9: three entries, 3 apart: {0,3,6} = 15, {1,4,7} = 12, {2,5,8} = 1f
    assert datagrams[9] == bytes.fromhex("0009 0119 80 0103 03 0115 0112 011f")


def test_entry_m_of_datagram_n_covers_n_plus_m_minus_k_entries() -> None:
    assert fec_group(9, 3, 3, 0) == (0, 3, 6)
    assert fec_group(9, 3, 3, 2) == (2, 5, 8)
    assert fec_group(10, 3, 3, 2) == (3, 6, 9)  # the packet just before is always covered
    assert fec_group(6, 3, 2, 1) == (1, 3, 5)


def test_the_xor_pads_shorter_packets_with_zeros_at_the_end() -> None:
    assert xor_parity([b"\x01\x02\x03", b"\x10", b"\x00\x20"]) == b"\x11\x22\x03"


def test_a_rebuilt_shorter_packet_loses_the_padding_by_its_ifp_length() -> None:
    short = ifp_indicator(0)  # 0x00: no-signal, one octet, all zero
    long = ifp_data(8, [(0, b"\x00\x00"), (2, None)])  # ends in zero octets itself
    parity = xor_parity([short, long, long])
    assert rebuild(parity, [long, long]) == short
    assert rebuild(parity, [short, long]) == long


def test_a_group_with_a_packet_longer_than_its_entry_rebuilds_nothing() -> None:
    assert rebuild(b"\x01", [b"\x01\x02"]) is None


# -- the IFP length ---------------------------------------------------------------------------


@given(packet=ifp_packets, tail=st.integers(0, 20))
def test_an_ifp_packet_s_length_is_read_from_its_encoding_even_when_padded(
    packet: bytes, tail: int
) -> None:
    assert ifp_length(packet + bytes(tail)) == len(packet)


@pytest.mark.parametrize("ecm", [True, False], ids=["ecm", "no-ecm"])
def test_every_packet_spandsp_sends_has_its_own_length_and_survives_fec_loss(
    tmp_path: Path, ecm: bool
) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    seen: list[bytes] = []
    with (
        T38Endpoint(send=document, ecm=ecm) as sender,
        T38Endpoint(receive=tmp_path / "in.tif", ecm=ecm) as receiver,
    ):
        for endpoint in (sender, receiver):
            rx = endpoint.rx_ifp

            def tap(packet: bytes, seq: int, rx: object = rx) -> None:
                seen.append(packet)
                rx(packet, seq)  # type: ignore[operator]

            endpoint.rx_ifp = tap  # type: ignore[method-assign]
        sent, got = t38_exchange(sender, receiver, 300)
    assert (sent.code, got.code) == (0, 0)
    assert len(seen) > 100
    assert all(ifp_length(p) == len(p) and ifp_length(p + bytes(9)) == len(p) for p in seen)
    # the same packets through FEC, every 7th datagram lost (not the last: nothing follows to
    # rebuild it): all come out bit for bit
    dropped = {i for i in range(len(seen) - 1) if i % 7 == 3}
    fec_sender, fec_receiver = UdptlFecSender(), UdptlReceiver()
    out = []
    for i, packet in enumerate(seen):
        datagram = fec_sender.next_datagram(packet)
        if i not in dropped:
            out += fec_receiver.receive(datagram)
    assert out == [(i % SEQ_MOD, p) for i, p in enumerate(seen)]
    assert fec_receiver.stats.fec_recovered == len(dropped)
    assert fec_receiver.stats.lost == 0


# -- the receiver -----------------------------------------------------------------------------


@given(packets=st.lists(ifp_packets, min_size=4, max_size=60), data=st.data())
@settings(max_examples=300)
def test_any_single_lost_packet_of_an_fec_stream_is_rebuilt_bit_for_bit(
    packets: list[bytes], data: st.DataObject
) -> None:
    # not the first (it starts the stream) nor the last (nothing follows to rebuild it);
    # the first entry (over 0, 1, 2) comes with packet 3, so there are at least 4
    dropped = data.draw(st.integers(1, len(packets) - 2))
    first = data.draw(st.integers(0, SEQ_MOD - 1))
    sender, receiver = UdptlFecSender(3, 3, first_seq=first), UdptlReceiver()
    got = []
    for i, packet in enumerate(packets):
        datagram = sender.next_datagram(packet)
        if i != dropped:
            got += receiver.receive(datagram)
    assert got == [((first + i) % SEQ_MOD, p) for i, p in enumerate(packets)]
    assert (receiver.stats.fec_recovered, receiver.stats.lost) == (1, 0)


@given(packets=st.lists(ifp_packets, min_size=12, max_size=80), data=st.data())
@settings(max_examples=200)
def test_losses_more_than_span_times_entries_apart_are_all_rebuilt(
    packets: list[bytes], data: st.DataObject
) -> None:
    gaps = data.draw(st.lists(st.integers(10, 30), min_size=1, max_size=8))
    lost, at = set(), data.draw(st.integers(1, 9))
    for gap in gaps:
        if at < len(packets) - 1:
            lost.add(at)
        at += gap
    sender, receiver = UdptlFecSender(), UdptlReceiver()
    got = []
    for i, packet in enumerate(packets):
        datagram = sender.next_datagram(packet)
        if i not in lost:
            got += receiver.receive(datagram)
    assert got == list(enumerate(packets))
    assert receiver.stats.fec_recovered == len(lost)


@given(
    packets=st.lists(ifp_packets, min_size=4, max_size=60),
    lose=st.lists(st.booleans(), min_size=60, max_size=60),
    ticks=st.lists(st.booleans(), min_size=60, max_size=60),
)
@settings(max_examples=300)
def test_whatever_is_lost_nothing_is_invented_and_every_packet_is_accounted_for(
    packets: list[bytes], lose: list[bool], ticks: list[bool]
) -> None:
    lose[0] = False
    sender, receiver = UdptlFecSender(), UdptlReceiver(hold_ticks=2)
    got = []
    for i, packet in enumerate(packets):
        datagram = sender.next_datagram(packet)
        if not lose[i]:
            got += receiver.receive(datagram)
        if ticks[i]:
            got += receiver.tick()
    while receiver.holding:
        got += receiver.tick()
    seqs = [seq for seq, _ in got]
    assert seqs == sorted(set(seqs))  # in order, each once
    assert all(packets[seq] == data for seq, data in got)  # bit for bit, never made up
    last = max(i for i in range(len(packets)) if not lose[i])
    assert len(got) + receiver.stats.lost == last + 1
    assert receiver.stats.recovered == receiver.stats.fec_recovered


def test_two_losses_in_the_only_entry_that_covers_them_are_not_invented() -> None:
    packets = [ifp_data(8, [(0, bytes([i, 1, 2]))]) for i in range(4)]
    receiver = UdptlReceiver(hold_ticks=1)
    # datagram 3 carries one entry over 0, 1, 2; 1 and 2 never arrive
    parity = xor_parity(packets[:3])
    assert receiver.receive(encode(UdptlPacket(0, packets[0]))) == [(0, packets[0])]
    third = UdptlPacket(3, packets[3], fec=True, fec_span=3, fec_data=(parity,))
    assert receiver.receive(encode(third)) == []  # held: a later entry might rebuild them
    assert receiver.holding == 1
    assert receiver.tick() == [(3, packets[3])]  # given up: 1 and 2 lost, 3 goes out
    assert (receiver.stats.lost, receiver.stats.recovered) == (2, 0)


def test_a_burst_of_three_is_rebuilt_by_the_next_datagram_alone() -> None:
    # an entry's group {b-9, b-6, b-3} travels in datagrams b-2, b-1 and b: datagram 23
    # carries {14,17,20}, {15,18,21} and {16,19,22}
    packets = [ifp_data(8, [(0, bytes([i]) * (1 + i % 5))]) for i in range(30)]
    sender, receiver = UdptlFecSender(), UdptlReceiver()
    got = []
    for i, packet in enumerate(packets):
        datagram = sender.next_datagram(packet)
        if not 20 <= i <= 22:
            got += receiver.receive(datagram)
        if i == 23:
            assert [seq for seq, _ in got] == list(range(24))
    assert got == list(enumerate(packets))
    assert (receiver.stats.fec_recovered, receiver.stats.lost) == (3, 0)


def test_a_burst_of_four_is_held_then_rebuilt_through_a_chain_of_entries() -> None:
    # 20..23 lost: datagram 24 rebuilds 21 and 22, but 20's groups {14,17,20} (datagrams
    # 21..23, lost), {17,20,23} and {20,23,26} all miss 23 too, and 23's last group
    # {23,26,29} comes in datagram 30: then 23, and from it 20. Meanwhile 21.. are held.
    packets = [ifp_data(8, [(0, bytes([i]) * (1 + i % 5))]) for i in range(40)]
    sender, receiver = UdptlFecSender(), UdptlReceiver()
    got = []
    for i, packet in enumerate(packets):
        datagram = sender.next_datagram(packet)
        if not 20 <= i <= 23:
            got += receiver.receive(datagram)
        if i == 29:
            assert [seq for seq, _ in got] == list(range(20))
            assert receiver.holding == 8  # 21, 22, 24..29
    assert got == list(enumerate(packets))
    assert (receiver.stats.fec_recovered, receiver.stats.lost) == (4, 0)


def test_a_redundancy_stream_is_still_given_up_at_once_after_a_gap() -> None:
    sender, receiver = UdptlSender(1), UdptlReceiver()
    datagrams = [sender.next_datagram(bytes([i])) for i in range(5)]
    got = receiver.receive(datagrams[0]) + receiver.receive(datagrams[4])
    assert got == [(0, b"\x00"), (3, b"\x03"), (4, b"\x04")]
    assert receiver.holding == 0


def test_fec_that_would_pass_the_far_max_datagram_is_cut_to_fewer_entries() -> None:
    packet = ifp_data(8, [(0, b"\x55" * 5)])  # 10 octets
    sender = UdptlFecSender(3, 3, max_datagram=2 + 11 + 1 + 2 + 1 + 2 * 11)  # two entries fit
    datagrams = [sender.next_datagram(packet) for _ in range(12)]
    assert [len(decode(d).fec_data) for d in datagrams] == [0, 0, 0, 1, 1, 1] + [2] * 6
    assert all(len(d) <= 2 + 11 + 1 + 2 + 1 + 2 * 11 for d in datagrams)
    receiver = UdptlReceiver()
    got = [item for i, d in enumerate(datagrams) if i != 9 for item in receiver.receive(d)]
    assert got == [(i, packet) for i in range(12)]  # the two entries still rebuild it
