"""Malformed SIP never crashes the user agent: random and mutated datagrams, oversized
headers and bad SDP are dropped or refused, and the agent still completes a call after."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_sip import bounded, request, sip_dialer, sipp_peer

from ringback.domain.model import Outcome
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.message import SipParseError, parse_datagram
from ringback.telephony.sip.transactions import Timers

INVITE = (
    "INVITE sip:5550199@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfuzz{n}\r\n"
    "From: <sip:100@127.0.0.1>;tag=a{n}\r\n"
    "To: <sip:5550199@127.0.0.1>\r\n"
    "Call-ID: fuzz{n}\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:100@127.0.0.1:5999>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{body}"
)
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
OTHERS = [
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1"
    "\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nContact: <sip:c@127.0.0.1>"
    "\r\nContent-Length: 0\r\n\r\n",
    "BYE sip:ringback@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKb\r\n"
    "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n\r\n",
    "CANCEL sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfuzz1\r\n"
    "From: <sip:a@b>;tag=a1\r\nTo: <sip:c@d>\r\nCall-ID: fuzz1\r\nCSeq: 1 CANCEL\r\n\r\n",
    "ACK sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfuzz1\r\n"
    "From: <sip:a@b>;tag=a1\r\nTo: <sip:c@d>;tag=z\r\nCall-ID: fuzz1\r\nCSeq: 1 ACK\r\n\r\n",
    "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKo\r\n"
    "From: <sip:a@b>;tag=a1\r\nTo: <sip:c@d>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\r\n",
]


def invite(n: int, body: str = SDP) -> bytes:
    return INVITE.format(n=n, length=len(body.encode()), body=body).encode()


#: short RFC 3261 timers: a BYE nobody answers gives up after 64 * T1 = 0.32 s
FAST = Timers(t1=0.005, t2=0.04, t4=0.05)
TEMPLATES = [invite(1), *(text.encode() for text in OTHERS)]


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a byte
            buf[min(at, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:  # insert junk
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
        elif op == 2:  # delete a run
            del buf[at : at + rng.randint(1, 20)]
        elif op == 3:  # duplicate a line
            lines = bytes(buf).split(b"\r\n")
            pick = rng.randrange(len(lines))
            lines.insert(pick, lines[pick])
            buf = bytearray(b"\r\n".join(lines))
        else:  # swap in a tricky token
            token = rng.choice([b"\xff\xfe", b":", b";;", b"<>", b"%", b"\r\n", b"=", b'"', b"0"])
            buf[at:at] = token
    return bytes(buf)


mutated = st.builds(
    lambda template, seed: mutate(template, random.Random(seed)),
    st.sampled_from(TEMPLATES),
    st.integers(0, 2**32),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=1500), mutated))
def test_parse_datagram_raises_only_sip_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_datagram(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=600), mutated), min_size=1, max_size=8))
def test_agent_handles_any_datagram_without_an_error(datagrams: list[bytes]) -> None:
    async def feed() -> tuple[int, int]:
        async def pick_up(call: SipCall, called: str, calling: str) -> None:
            await call.answer()

        async with sip_dialer(5060, on_inbound=pick_up, timers=FAST) as dialer:
            for data in datagrams:
                dialer.agent.datagram_received(data, ("127.0.0.1", 5999))
                await asyncio.sleep(0)
            # no pause needed: a handler's error is counted inside datagram_received itself
            return dialer.agent.handler_errors, dialer.agent.malformed

    errors, _ = asyncio.run(asyncio.wait_for(feed(), 30))
    assert errors == 0


@bounded(90)
async def test_a_flood_of_garbage_then_bad_sdp_then_a_real_call_completes(tmp_path: Path) -> None:
    rng = random.Random(6)
    answered: list[str] = []

    async def never_answer(call: SipCall, called: str, calling: str) -> None:
        answered.append(call.call_id)

    with sipp_peer(tmp_path, "uas_busy") as sipp:
        async with sip_dialer(sipp.sip_port, on_inbound=never_answer) as dialer:
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.bind(("127.0.0.1", 0))
            peer.settimeout(5.0)
            target = ("127.0.0.1", dialer.port)
            try:
                for sent in range(1500):
                    peer.sendto(mutate(rng.choice(TEMPLATES), rng), target)
                    if sent % 20 == 0:
                        await asyncio.sleep(0.002)  # let the agent read: no socket overflow
                peer.sendto(bytes(rng.randrange(256) for _ in range(1400)), target)
                huge = b"X-Pad: " + b"a" * 60_000
                peer.sendto(invite(2).replace(b"CSeq:", huge + b"\r\nCSeq:"), target)
                many = b"".join(b"X-%d: y\r\n" % i for i in range(2000))
                peer.sendto(invite(3).replace(b"CSeq:", many + b"CSeq:"), target)
                await asyncio.sleep(0.2)
                # bad SDP is refused with 488, nothing is routed to the IVR hook
                peer.sendto(invite(4, body="v=0\r\nm=audio 1 RTP/AVP 18\r\n"), target)
                replies = await asyncio.to_thread(_replies_for, peer, b"Call-ID: fuzz4")
                # unknown dialog: 481; out-of-dialog OPTIONS: 200
                peer.sendto(TEMPLATES[2], target)
                bye = await asyncio.to_thread(_replies_for, peer, b"Call-ID: c1")
                peer.sendto(TEMPLATES[5], target)
                options = await asyncio.to_thread(_replies_for, peer, b"Call-ID: o1")
            finally:
                peer.close()
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.BUSY
            assert dialer.agent.handler_errors == 0
            assert dialer.agent.malformed > 500
        assert await sipp.wait_async(20) == 0
        assert sipp.errors() == ""
    assert b"SIP/2.0 488 " in replies
    assert b"SIP/2.0 481 " in bye
    assert b"SIP/2.0 200 " in options and b"Allow: INVITE" in options
    assert "fuzz4" not in answered


def _replies_for(sock: socket.socket, marker: bytes) -> bytes:
    """Responses on ``sock`` until a final one carrying ``marker`` arrives."""
    seen = b""
    while True:
        data, _ = sock.recvfrom(65536)
        if marker in data:
            seen += data
            status = data.split(b" ", 2)[1] if data.startswith(b"SIP/2.0 ") else b""
            if status[:1] in (b"2", b"3", b"4", b"5", b"6"):
                return seen


@bounded(30)
@pytest.mark.slow  # waits out real SIP retransmission timers (seconds)
async def test_inbound_200_is_retransmitted_until_the_ack_and_a_repeated_invite_gets_it_again() -> (
    None
):
    async def pick_up(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        await call.wait_ended()

    async with sip_dialer(5060, on_inbound=pick_up) as dialer:
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(0.2)
        target = ("127.0.0.1", dialer.port)
        try:
            peer.sendto(invite(7), target)
            first = await asyncio.to_thread(_collect, peer, 1.9)
            oks = [data for data in first if data.startswith(b"SIP/2.0 200 ")]
            # RFC 3261 §13.3.1.4: 200 at 0 s, again at 0.5 and 1.5 s (T1 doubling)
            assert len(oks) == 3, [data.split(b"\r\n", 1)[0] for data in first]
            assert b"SIP/2.0 100 " in first[0] and any(b"SIP/2.0 180 " in d for d in first)
            peer.sendto(invite(7), target)  # a retransmitted INVITE: the 200 again
            again = await asyncio.to_thread(_collect, peer, 0.3)
            assert [data.split(b"\r\n", 1)[0] for data in again] == [b"SIP/2.0 200 OK"]
            to_line = next(line for line in oks[0].split(b"\r\n") if line.startswith(b"To:"))
            ack = invite(7).split(b"\r\n\r\n", 1)[0].replace(b"INVITE sip:", b"ACK sip:", 1)
            ack = ack.replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK").replace(
                b"branch=z9hG4bKfuzz7", b"branch=z9hG4bKack7"
            )
            ack = re.sub(rb"To: [^\r]*", to_line.replace(b"\\", b"\\\\"), ack)
            ack = re.sub(rb"Content-(Type|Length): [^\r]*\r\n", b"", ack + b"\r\n")
            peer.sendto(ack + b"Content-Length: 0\r\n\r\n", target)
            after = await asyncio.to_thread(_collect, peer, 2.5)
            assert after == []  # the ACK stopped the retransmissions (next was due at 3.5 s)
        finally:
            peer.close()
        [call] = dialer.live_calls()
        assert call.answered


def _collect(sock: socket.socket, seconds: float) -> list[bytes]:
    """Every datagram ``sock`` receives in the next ``seconds``."""
    deadline = time.monotonic() + seconds
    got: list[bytes] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            got.append(sock.recvfrom(65536)[0])
    return got
