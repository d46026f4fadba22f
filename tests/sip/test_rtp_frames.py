"""The RTP session's hot path: prompts encoded a second at a time give the same packets as frame
by frame, and the socket send hands over to the transport's queue when the kernel's is full."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from aiortp.codecs import PcmaCodec, PcmuCodec
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.telephony.sip.media import RtpSession
from ringback.telephony.sip.rtp_frames import (
    CHUNK_FRAMES,
    FRAME_BYTES,
    FRAME_SAMPLES,
    EventReceiver,
    Playback,
)

PCMU, PCMA = PcmuCodec(), PcmaCodec()


def frame_by_frame(pcm: bytes, codecs: list[Any]) -> list[bytes]:
    """The reference: the prompt padded to whole frames, each frame encoded on its own."""
    usable = len(pcm) // 2 * 2
    padded = pcm[:usable] + bytes((-usable) % FRAME_BYTES)
    frames = [padded[i : i + FRAME_BYTES] for i in range(0, len(padded), FRAME_BYTES)]
    return [codec.encode(frame) for codec, frame in zip(codecs, frames, strict=True)]


@settings(max_examples=60, deadline=None)
@given(
    pcm=st.binary(min_size=1, max_size=(2 * CHUNK_FRAMES + 3) * FRAME_BYTES + 1),
    switches=st.lists(st.booleans(), max_size=2 * CHUNK_FRAMES + 4),
)
def test_a_prompt_encoded_in_chunks_is_the_same_bytes_as_frame_by_frame_across_codec_changes(
    pcm: bytes, switches: list[bool]
) -> None:
    playback = Playback(pcm)
    frames = -(-(len(pcm) // 2 * 2) // FRAME_BYTES)
    assert playback.frames_left == frames
    codec: Any = PCMU
    used: list[Any] = []
    got: list[bytes] = []
    for i in range(frames):
        assert not playback.finished
        if i < len(switches) and switches[i]:  # a re-INVITE moved the call to the other codec
            codec = PCMA if codec is PCMU else PCMU
        used.append(codec)
        got.append(playback.next_frame(codec))
    assert playback.finished and playback.frames_left == 0
    assert all(len(frame) == FRAME_SAMPLES for frame in got)
    assert got == frame_by_frame(pcm, used)


def test_an_rfc4733_event_gives_one_digit_however_many_packets_and_end_repeats_carry_it() -> None:
    events = EventReceiver()
    for duration in (160, 320, 480):
        assert events.on_event(struct.pack("!BBH", 5, 10, duration), 1000, 7)
    for _ in range(3):
        assert events.on_event(struct.pack("!BBH", 5, 0x80 | 10, 800), 1000, 7)
    assert events.on_event(struct.pack("!BBH", 11, 10, 160), 2000, 7)  # '#', a new timestamp
    assert not events.on_event(b"\x05\x0a", 3000, 7)  # too short: not an event
    assert events.received == "5#"
    assert [events.digits.get_nowait() for _ in range(events.digits.qsize())] == ["5", "#"]


class FullSocket:
    """A socket whose send buffer is full for its first send."""

    def __init__(self) -> None:
        self.full = True
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if self.full:
            self.full = False
            raise BlockingIOError
        self.sent.append(data)
        return len(data)


class QueueingTransport:
    """asyncio's datagram transport in short: a packet goes on the wire at once when the socket
    is writable and nothing is queued before it, else it waits in the queue until drained."""

    def __init__(self) -> None:
        self.writable = False
        self.queued: list[bytes] = []
        self.wire: list[bytes] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        if self.writable and not self.queued:
            self.wire.append(data)
        else:
            self.queued.append(data)

    def get_write_buffer_size(self) -> int:
        return sum(len(p) for p in self.queued)

    def drain(self) -> None:
        self.writable = True
        self.wire += self.queued
        self.queued = []

    def close(self) -> None:
        pass


async def test_packets_the_socket_cannot_take_queue_in_the_transport_and_later_ones_follow() -> (
    None
):
    sock = FullSocket()
    transport = QueueingTransport()
    session = RtpSession("127.0.0.1", 40000, transport, transport, sock)  # type: ignore[arg-type]
    session.connect(("127.0.0.1", 40002), "PCMU", 0, None)
    for i in range(4):
        session.send_audio(bytes(160), i * 160, False)
    # the first send found the socket full: it and the next ones wait behind it, in order
    assert sock.sent == [] and len(transport.queued) == 4
    transport.drain()  # the socket became writable: the transport sent its queue
    session.send_audio(bytes(160), 4 * 160, False)  # through the transport: straight out
    session.send_audio(bytes(160), 5 * 160, False)  # nothing queued any more: the socket
    assert transport.queued == [] and len(transport.wire) == 5 and len(sock.sent) == 1
    order = [struct.unpack_from("!H", p, 2)[0] for p in transport.wire + sock.sent]
    assert [(s - order[0]) & 0xFFFF for s in order] == list(range(6))
    assert session.stats["packets_sent"] == 6
    await session.close()


async def test_a_session_sends_on_its_own_socket_what_the_far_end_receives() -> None:
    session = await RtpSession.open("127.0.0.1", (41000, 41999))
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.setblocking(False)
    try:
        session.connect(far.getsockname(), "PCMU", 0, None)
        async with asyncio.timeout(10):
            await session.play_pcm(bytes(FRAME_BYTES * 3))
        packets = [far.recvfrom(2048) for _ in range(3)]
    finally:
        far.close()
        await session.close()
    assert {addr[1] for _, addr in packets} == {session.local_port}  # symmetric RTP's port
    assert [len(p) for p, _ in packets] == [12 + FRAME_SAMPLES] * 3


async def test_batched_receive_reads_every_session_and_a_closed_one_no_more() -> None:
    """Every RTP socket of the loop is read through one epoll: each session gets its own
    packets, a closed session's socket leaves the batch, and a new session that reuses its
    file number gets its own packets."""
    opened = [await RtpSession.open("127.0.0.1", (41000, 41999)) for _ in range(5)]
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    try:
        for session in opened:
            session.connect(far.getsockname(), "PCMU", 0, None)
        packet = struct.pack("!BBHII", 0x80, 0, 1, 160, 99) + bytes(160)

        async def deliver(to: list[RtpSession], copies: int) -> None:
            for _ in range(copies):
                for session in to:
                    far.sendto(packet, ("127.0.0.1", session.local_port))
            async with asyncio.timeout(10):
                while any(s.stats["packets_received"] < copies for s in to):  # noqa: ASYNC110
                    await asyncio.sleep(0.005)

        await deliver(opened, 3)  # three queued on each socket: all read, one per pass
        assert [s.stats["packets_received"] for s in opened] == [3] * 5
        await opened[0].close()
        again = await RtpSession.open("127.0.0.1", (41000, 41999))
        again.connect(far.getsockname(), "PCMU", 0, None)
        opened[0] = again
        await deliver([again], 2)
        assert again.stats["packets_received"] == 2
        assert [s.stats["packets_received"] for s in opened[1:]] == [3] * 4
    finally:
        far.close()
        for session in opened:
            await session.close()
