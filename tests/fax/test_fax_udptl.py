"""UDPTL (T.38 §9.1): the datagram format, redundancy, in-order recovery, garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.telephony.fax.udptl import (
    SEQ_MOD,
    UdptlError,
    UdptlPacket,
    UdptlReceiver,
    UdptlSender,
    decode,
    encode,
)

ifps = st.binary(min_size=1, max_size=300)


def test_a_known_datagram_is_encoded_as_the_spec_spells_it() -> None:
    # seq-number 0x0102 in two octets; primary: length 1, IFP 0x00 (t30-indicator no-signal);
    # error-recovery choice 0 (secondary-ifp-packets) with a count of 2, then each as an open
    # type (length, octets), the most recent first.
    packet = UdptlPacket(0x0102, b"\x00", (b"\x02\x03", b"\x04"))
    want = bytes.fromhex("0102010000020202030104")
    assert encode(packet) == want
    assert decode(want) == packet


def test_lengths_of_128_and_more_take_two_octets_with_the_top_bits_10() -> None:
    datagram = encode(UdptlPacket(7, bytes(200)))
    assert datagram[:4] == bytes.fromhex("000780c8")
    assert datagram[-2:] == b"\x00\x00"
    assert decode(datagram).primary == bytes(200)


def test_an_fec_datagram_is_decoded_for_its_primary() -> None:
    # choice 1 (fec-info): fec-npackets as a 1-octet integer (3), then 1 fec-data entry
    datagram = bytes.fromhex("00050233aa8001030102beef")
    packet = decode(datagram)
    assert (packet.seq, packet.primary, packet.fec) == (5, b"\x33\xaa", True)


@given(
    seq=st.integers(0, SEQ_MOD - 1),
    primary=ifps,
    secondaries=st.lists(ifps, max_size=8).map(tuple),
)
def test_encode_then_decode_gives_the_packet_back(
    seq: int, primary: bytes, secondaries: tuple[bytes, ...]
) -> None:
    packet = UdptlPacket(seq, primary, secondaries)
    assert decode(encode(packet)) == packet


@given(st.binary(max_size=64))
@settings(max_examples=2000)
def test_garbage_never_raises_anything_but_udptl_error(data: bytes) -> None:
    with contextlib.suppress(UdptlError):
        decode(data)
    receiver = UdptlReceiver()
    receiver.receive(data)  # never raises
    assert receiver.stats.datagrams == 1


def test_truncated_and_trailing_datagrams_are_counted_as_malformed() -> None:
    good = encode(UdptlPacket(1, b"\x01\x02", (b"\x03",)))
    receiver = UdptlReceiver()
    for bad in (good[:-1], good + b"\x00", b"", b"\x00\x01\xc1", b"\x00\x01\x01\x00\x40"):
        assert receiver.receive(bad) == []
    assert receiver.stats.malformed == 5
    assert receiver.receive(good) == [(0, b"\x03"), (1, b"\x01\x02")]


@given(
    depth=st.integers(1, 5),
    first=st.integers(0, SEQ_MOD - 1),
    count=st.integers(1, 60),
    data=st.data(),
)
@settings(max_examples=300)
def test_any_loss_with_gaps_no_longer_than_the_depth_recovers_every_packet(
    depth: int, first: int, count: int, data: st.DataObject
) -> None:
    packets = [bytes([i % 256, 0xAA]) for i in range(count)]
    # lost datagrams: runs of at most `depth`, never the last one (nothing follows to repair it)
    lost = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
    lost[-1] = False
    run = 0
    for i, gone in enumerate(lost):
        run = run + 1 if gone else 0
        if run > depth:
            lost[i], run = False, 0
    sender = UdptlSender(depth, first_seq=first)
    receiver = UdptlReceiver()
    got: list[tuple[int, bytes]] = []
    datagrams = [sender.next_datagram(p) for p in packets]
    for datagram, gone in zip(datagrams, lost, strict=True):
        if not gone:
            got += receiver.receive(datagram)
            got += receiver.receive(datagram)  # a repeat: dropped as a duplicate
    # the first datagram that arrives carries the ones before it, as far as its secondaries go
    start = next(i for i, gone in enumerate(lost) if not gone)
    recoverable = max(0, start - min(depth, start))
    want = [((first + i) % SEQ_MOD, p) for i, p in enumerate(packets)][recoverable:]
    assert got == want
    assert receiver.stats.lost == 0
    assert receiver.stats.malformed == 0


def test_sequence_numbers_wrap_from_65535_to_0() -> None:
    sender = UdptlSender(2, first_seq=65534)
    receiver = UdptlReceiver()
    datagrams = [sender.next_datagram(bytes([i])) for i in range(4)]
    assert [decode(d).seq for d in datagrams] == [65534, 65535, 0, 1]
    got = receiver.receive(datagrams[0]) + receiver.receive(datagrams[3])
    assert got == [(65534, b"\x00"), (65535, b"\x01"), (0, b"\x02"), (1, b"\x03")]
    assert receiver.stats.recovered == 2


def test_a_gap_longer_than_the_depth_loses_what_the_secondaries_do_not_reach() -> None:
    sender = UdptlSender(1)
    receiver = UdptlReceiver()
    datagrams = [sender.next_datagram(bytes([i])) for i in range(5)]
    got = receiver.receive(datagrams[0]) + receiver.receive(datagrams[4])
    assert got == [(0, b"\x00"), (3, b"\x03"), (4, b"\x04")]
    assert receiver.stats.lost == 2
    assert receiver.receive(datagrams[2]) == []  # late: given up already
    assert receiver.stats.duplicates == 1


def test_a_sender_refuses_a_depth_out_of_range() -> None:
    with pytest.raises(ValueError, match="depth"):
        UdptlSender(16)


def test_secondaries_that_would_pass_the_far_max_datagram_are_left_out_oldest_first() -> None:
    sender = UdptlSender(3, max_datagram=2 + 11 + 1 + 1 + 11)  # room for one secondary
    datagrams = [sender.next_datagram(bytes(10)) for _ in range(4)]
    assert [len(decode(d).secondaries) for d in datagrams] == [0, 1, 1, 1]
    assert all(len(d) <= sender.max_datagram for d in datagrams)  # type: ignore[operator]


@given(depth=st.integers(1, 4), count=st.integers(2, 40), data=st.data())
@settings(max_examples=200)
def test_datagrams_reordered_within_the_depth_still_deliver_every_packet_in_order(
    depth: int, count: int, data: st.DataObject
) -> None:
    sender = UdptlSender(depth)
    datagrams = [sender.next_datagram(bytes([i])) for i in range(count)]
    # each datagram may arrive up to `depth` places late (the first and last keep their place)
    order = list(range(count))
    for i in range(1, count - 1):
        late = data.draw(st.integers(0, min(depth, count - 2 - i)))
        order.insert(i + late, order.pop(i))
    receiver = UdptlReceiver()
    got = [item for index in order for item in receiver.receive(datagrams[index])]
    assert got == [(i, bytes([i])) for i in range(count)]
    assert receiver.stats.lost == 0
