"""RTP media between two real sessions on 127.0.0.1: paced G.711, RFC 4733, bridging, fuzz."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable

import pytest
from support_media import (
    SIPP_SHARE,
    best_correlation,
    chirp,
    dominant_hz,
    read_pcap_udp_payloads,
    require_program,
)

from ringback.telephony.sip.media import RtpSession
from ringback.telephony.sip.rtp_socket import MediaError

HOST = "127.0.0.1"
RANGE = (41000, 41999)
LOOP_TIMEOUT = 20.0


@pytest.fixture
async def sessions() -> AsyncIterator[list[RtpSession]]:
    opened: list[RtpSession] = []
    try:
        yield opened
    finally:
        for session in opened:
            await session.close()


async def pair(
    opened: list[RtpSession], codec_a: str = "PCMU", codec_b: str = "PCMU"
) -> tuple[RtpSession, RtpSession]:
    a = await RtpSession.open(HOST, RANGE)
    opened.append(a)
    b = await RtpSession.open(HOST, RANGE)
    opened.append(b)
    pts = {"PCMU": 0, "PCMA": 8}
    a.connect((HOST, b.local_port), codec_a, pts[codec_a], 101)
    b.connect((HOST, a.local_port), codec_b, pts[codec_b], 101)
    return a, b


class Sniffer(asyncio.DatagramProtocol):
    """A bare UDP socket that keeps every datagram with its arrival time."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((asyncio.get_running_loop().time(), data))


async def sniffer() -> tuple[asyncio.DatagramTransport, Sniffer, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Sniffer, local_addr=(HOST, 0))
    return transport, protocol, transport.get_extra_info("sockname")[1]


async def settle(seconds: float = 0.15) -> None:
    await asyncio.sleep(seconds)


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` (packets arrived, a digit decoded): the point a check of what
    did not happen needs to be past, reached rather than waited a while for."""
    async with asyncio.timeout(LOOP_TIMEOUT):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def test_open_binds_an_even_port_inside_the_range(sessions: list[RtpSession]) -> None:
    for _ in range(6):
        s = await RtpSession.open(HOST, (41100, 41119))
        sessions.append(s)
        assert s.local_port % 2 == 0 and 41100 <= s.local_port < 41119
    assert len({s.local_port for s in sessions}) == 6


async def test_an_exhausted_port_range_is_a_clear_error(sessions: list[RtpSession]) -> None:
    sessions.append(await RtpSession.open(HOST, (41200, 41201)))
    with pytest.raises(MediaError, match="no free RTP port pair"):
        await RtpSession.open(HOST, (41200, 41201))
    with pytest.raises(ValueError, match="no even/odd port pair"):
        await RtpSession.open(HOST, (41203, 41203))


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_played_audio_arrives_paced_at_20ms_and_decodes_to_what_was_sent(
    sessions: list[RtpSession], codec: str
) -> None:
    a, b = await pair(sessions, codec, codec)
    b.start_recording()
    sent = chirp(1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(LOOP_TIMEOUT):
        await a.play_pcm(sent)
    elapsed = loop.time() - started
    await settle()
    assert a.stats["packets_sent"] == 50 and b.stats["packets_received"] == 50
    assert b.stats["codecs_received"] == [codec]
    # 50 frames of 20 ms cannot go out faster than real time: the first leaves at once
    assert elapsed >= 0.95 * 49 * 0.020
    assert best_correlation(sent, b.recorded_pcm()) >= 0.99


async def test_packets_carry_rtp_timestamps_160_apart_and_one_marker(
    sessions: list[RtpSession],
) -> None:
    a = await RtpSession.open(HOST, RANGE)
    sessions.append(a)
    transport, sniff, port = await sniffer()
    try:
        a.connect((HOST, port), "PCMA", 8, 101)
        a.record_send_times()
        async with asyncio.timeout(LOOP_TIMEOUT):
            await a.play_pcm(chirp(0.2))
        await settle()
    finally:
        transport.close()
    headers = [struct.unpack_from("!BBHII", p) for _, p in sniff.packets]
    assert len(headers) == 10
    assert all(h[1] & 0x7F == 8 for h in headers)
    assert [h[1] >> 7 for h in headers] == [1] + [0] * 9
    assert {(h2[2] - h1[2]) & 0xFFFF for h1, h2 in itertools.pairwise(headers)} == {1}
    assert {(h2[3] - h1[3]) & 0xFFFFFFFF for h1, h2 in itertools.pairwise(headers)} == {160}
    assert all(len(p) == 12 + 160 for _, p in sniff.packets)
    sent_at = a.send_times
    assert len(sent_at) == 10 and sent_at == sorted(sent_at)


async def test_a_remote_address_of_0_0_0_0_is_hold_and_nothing_is_sent(
    sessions: list[RtpSession],
) -> None:
    a = await RtpSession.open(HOST, RANGE)
    sessions.append(a)
    transport, sniff, port = await sniffer()
    try:
        a.connect(("0.0.0.0", port), "PCMU", 0, 101)  # the far end put the call on hold
        async with asyncio.timeout(LOOP_TIMEOUT):
            await a.play_pcm(chirp(0.1))  # time passes as if played
            # the socket send is synchronous: nothing counted is nothing sent
            assert a.stats["packets_sent"] == 0 and a.stats["on_hold"]
            a.connect((HOST, port), "PCMU", 0, 101)  # resumed
            await a.play_pcm(chirp(0.1))
            await until(lambda: len(sniff.packets) >= 5)
    finally:
        transport.close()
    # a packet sent on hold would have arrived before these five (one socket to one, in order)
    assert len(sniff.packets) == 5


async def test_a_cancelled_playback_stops_sending_and_the_next_one_plays(
    sessions: list[RtpSession],
) -> None:
    a, _b = await pair(sessions)
    other, _ = await pair(sessions)
    task = asyncio.create_task(a.play_pcm(chirp(5.0)))
    await until(lambda: a.stats["packets_sent"] >= 5)  # playing
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped_at = a.stats["packets_sent"]
    async with asyncio.timeout(LOOP_TIMEOUT):
        await other.play_pcm(chirp(0.1))  # five ticks of the shared 20 ms clock went by
    assert a.stats["packets_sent"] == stopped_at < 50  # and the cancelled playback sent none
    async with asyncio.timeout(LOOP_TIMEOUT):
        await a.play_pcm(chirp(0.1))
    assert a.stats["packets_sent"] == stopped_at + 5


async def test_many_sessions_play_at_once_on_the_shared_clock(sessions: list[RtpSession]) -> None:
    pairs = [await pair(sessions) for _ in range(20)]
    for _, b in pairs:
        b.start_recording()
    sent = chirp(0.5)
    async with asyncio.timeout(LOOP_TIMEOUT):
        await asyncio.gather(*(a.play_pcm(sent) for a, _ in pairs))
    await settle()
    for _, b in pairs:
        assert b.stats["packets_received"] == 25
        assert best_correlation(sent, b.recorded_pcm()) >= 0.99


async def test_dtmf_digits_travel_both_ways_one_digit_per_event(
    sessions: list[RtpSession],
) -> None:
    a, b = await pair(sessions)
    async with asyncio.timeout(LOOP_TIMEOUT):
        await a.send_dtmf("12#*")
        got = [await b.next_digit(2.0) for _ in range(4)]
        assert got == ["1", "2", "#", "*"]
        # the three end packets gave one digit each: the next digit is the next key press
        await a.send_dtmf("0")
        assert await b.next_digit(2.0) == "0"
        await b.send_dtmf("90AD")
        assert [await a.next_digit(2.0) for _ in range(4)] == ["9", "0", "A", "D"]
    assert b.stats["dtmf_received"] == "12#*0" and a.stats["dtmf_sent"] == "12#*0"


async def test_clear_digits_forgets_digits_typed_ahead(sessions: list[RtpSession]) -> None:
    a, b = await pair(sessions)
    async with asyncio.timeout(LOOP_TIMEOUT):
        await a.send_dtmf("55")
        await until(lambda: b.stats["dtmf_received"] == "55")  # both typed ahead, unread
        b.clear_digits()
        await a.send_dtmf("7")
        assert await b.next_digit(2.0) == "7"  # not a "5": they were forgotten


async def test_dtmf_without_negotiated_telephone_event_says_not_supported(
    sessions: list[RtpSession],
) -> None:
    a = await RtpSession.open(HOST, RANGE)
    sessions.append(a)
    a.connect((HOST, 9), "PCMU", 0, None)
    with pytest.raises(MediaError, match="not supported"):
        await a.send_dtmf("1")
    with pytest.raises(ValueError, match="not DTMF digits"):
        await a.send_dtmf("1x")


async def test_bad_connect_arguments_and_unconnected_play_are_clear_errors(
    sessions: list[RtpSession],
) -> None:
    a = await RtpSession.open(HOST, RANGE)
    sessions.append(a)
    with pytest.raises(MediaError, match="not connected"):
        await a.play_pcm(chirp(0.1))
    with pytest.raises(ValueError, match="not supported"):
        a.connect((HOST, 4000), "G729", 18, 101)
    with pytest.raises(ValueError, match="payload type"):
        a.connect((HOST, 4000), "PCMU", 300, 101)


async def test_connect_again_switches_the_codec_mid_call(sessions: list[RtpSession]) -> None:
    a, b = await pair(sessions)
    b.start_recording()
    async with asyncio.timeout(LOOP_TIMEOUT):
        await a.play_pcm(chirp(0.2))
        a.connect((HOST, b.local_port), "PCMA", 8, 101)  # as after a re-INVITE
        await a.play_pcm(chirp(0.2))
    await settle()
    assert b.stats["codecs_received"] == ["PCMA", "PCMU"]
    assert b.stats["packets_received"] == 20


async def test_bridge_relays_both_ways_transcoding_pcmu_and_pcma(
    sessions: list[RtpSession],
) -> None:
    # caller_a <-PCMU-> leg_a == bridge == leg_b <-PCMA-> caller_b
    caller_a, leg_a = await pair(sessions, "PCMU", "PCMU")
    caller_b, leg_b = await pair(sessions, "PCMA", "PCMA")
    leg_a.bridge(leg_b)
    caller_a.start_recording()
    caller_b.start_recording()
    to_b, to_a = chirp(1.0, f0=300, f1=1500), chirp(1.0, f0=1500, f1=3000)
    async with asyncio.timeout(LOOP_TIMEOUT):
        await asyncio.gather(caller_a.play_pcm(to_b), caller_b.play_pcm(to_a))
        await caller_a.send_dtmf("4")
        assert await caller_b.next_digit(2.0) == "4"  # RFC 4733 is relayed too
    await settle()
    assert leg_a.stats["packets_received"] >= 50 and leg_b.stats["packets_relayed"] >= 50
    assert leg_b.stats["packets_received"] == 50 and leg_a.stats["packets_relayed"] == 50
    assert caller_b.stats["codecs_received"] == ["PCMA"]
    assert caller_a.stats["codecs_received"] == ["PCMU"]
    assert best_correlation(to_b, caller_b.recorded_pcm()) >= 0.98
    assert best_correlation(to_a, caller_a.recorded_pcm()) >= 0.98
    leg_a.unbridge()
    assert not leg_b.bridged
    before = caller_b.stats["packets_received"]
    received, relayed = leg_a.stats["packets_received"], leg_b.stats["packets_relayed"]
    async with asyncio.timeout(LOOP_TIMEOUT):
        await caller_a.play_pcm(chirp(0.2))
    await until(lambda: leg_a.stats["packets_received"] >= received + 10)  # they reached leg A
    # and none was relayed (a relay is sent as its packet arrives, so none is on its way)
    assert leg_b.stats["packets_relayed"] == relayed
    assert caller_b.stats["packets_received"] == before


def _malformed_datagrams(rng: random.Random) -> list[bytes]:
    header = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234)
    fixed = [
        b"",
        b"\x80",
        header[:11],
        struct.pack("!BBHII", 0x40, 0, 1, 1, 1) + bytes(160),  # RTP version 1
        struct.pack("!BBHII", 0x8F, 0, 1, 1, 1),  # 15 CSRCs announced, none present
        struct.pack("!BBHII", 0x90, 0, 1, 1, 1) + b"\xbe\xde\xff\xff",  # extension past the end
        struct.pack("!BBHII", 0x90, 0, 1, 1, 1) + b"\xbe",  # truncated extension header
        struct.pack("!BBHII", 0xA0, 0, 1, 1, 1) + b"\x00" * 3 + b"\x00",  # padding length 0
        struct.pack("!BBHII", 0xA0, 0, 1, 1, 1) + b"\xff",  # padding longer than the packet
        struct.pack("!BBHII", 0x80, 101, 1, 1, 1) + b"\x01",  # 1-byte telephone-event
        struct.pack("!BBHII", 0x80, 101, 1, 1, 1) + b"\x63\x80\x00\xa0",  # event 99: not DTMF
        struct.pack("!BBHII", 0x80, 200, 0, 0, 0),  # RTCP on the RTP port
        struct.pack("!BBHII", 0x80, 13, 1, 1, 1) + b"\x40",  # comfort noise: ignored
    ]
    fuzz = [rng.randbytes(rng.randrange(0, 300)) for _ in range(400)]
    mutated = []
    for _ in range(400):
        packet = bytearray(header + rng.randbytes(160))
        for _ in range(rng.randrange(1, 6)):
            packet[rng.randrange(len(packet))] = rng.randrange(256)
        mutated.append(bytes(packet[: rng.randrange(len(packet) + 1)]))
    return fixed + fuzz + mutated


async def test_malformed_rtp_datagrams_are_dropped_and_the_call_goes_on(
    sessions: list[RtpSession],
) -> None:
    a, b = await pair(sessions)
    b.start_recording(max_seconds=5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for datagram in _malformed_datagrams(random.Random(4733)):
            raw.sendto(datagram, (HOST, b.local_port))
            raw.sendto(datagram, (HOST, b.local_port + 1))  # and to RTCP
    await settle(0.3)
    assert b.stats["packets_invalid"] > 0
    b.start_recording()
    b.clear_digits()
    sent = chirp(0.5)
    async with asyncio.timeout(LOOP_TIMEOUT):
        await a.play_pcm(sent)
        await a.send_dtmf("3")
        assert await b.next_digit(2.0) == "3"
    await settle()
    assert best_correlation(sent, b.recorded_pcm()) >= 0.99


async def test_recording_keeps_the_timeline_across_a_lost_packet(
    sessions: list[RtpSession],
) -> None:
    b = await RtpSession.open(HOST, RANGE)
    sessions.append(b)
    b.connect((HOST, 9), "PCMU", 0, None)
    b.start_recording()
    tone = bytes([0x10]) * 160
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for seq in (1, 2, 4, 4, 3, 5):  # 3 is late, the second 4 a duplicate
            raw.sendto(
                struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 7) + tone, (HOST, b.local_port)
            )
    await until(lambda: b.stats["packets_received"] == 6)  # all six in, the late and the twin
    assert len(b.recorded_pcm()) == 5 * 320  # 1, 2, silence for 3, 4, 5
    assert dominant_hz(b.recorded_pcm()) == 0.0


async def test_sipps_recorded_rfc4733_digits_decode_one_per_key_press(
    sessions: list[RtpSession],
) -> None:
    require_program("sipp", "sip-tester")
    b = await RtpSession.open(HOST, RANGE)
    sessions.append(b)
    b.connect((HOST, 9), "PCMU", 0, 101)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        # "1" twice: the same recorded packets, timestamps and all, replayed
        # "3" last: the next key press after "*" (no extra digit from the end packets before it)
        for name in ("1", "1", "2", "pound", "star", "3"):
            for packet in read_pcap_udp_payloads(SIPP_SHARE / f"dtmf_2833_{name}.pcap"):
                raw.sendto(packet, (HOST, b.local_port))
            await asyncio.sleep(0.05)
    async with asyncio.timeout(LOOP_TIMEOUT):
        assert [await b.next_digit(2.0) for _ in range(6)] == ["1", "1", "2", "#", "*", "3"]
