"""SRTP (SDES) between two ringback dialers (calls and a G.711 fax) and against a plain peer,
symmetric RTP, received/rport and the external address: real UDP on 127.0.0.1, sipp as the
plain peer."""

from __future__ import annotations

import asyncio
import logging
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from support_fax_peer import FAX_NUMBER, fax_number
from support_media import (
    HOST,
    RtpRecorder,
    Sipp,
    best_correlation,
    chirp,
    floats,
    free_udp_ports,
    uas_answer,
    write_wav,
)
from support_sip import bounded, request, sip_dialer, sipp_peer
from test_sip_fax import assert_same_pages
from tests.fax.support_fax import fax_document

from ringback.domain.model import Outcome
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer
from ringback.telephony.sip.media import RtpSession
from ringback.telephony.sip.sdes import new_attribute
from ringback.telephony.sip.srtp import SrtpContext

SUITE_80 = "AES_CM_128_HMAC_SHA1_80"


async def _answer_and_record(call: SipCall, heard: asyncio.Future[bytes]) -> None:
    """An inbound handler: answer, record until the caller hangs up, hand over the audio."""
    await call.answer()
    session: Any = call.media
    session.start_recording(30.0)
    record = await call.wait_ended()
    heard.set_result(session.recorded_pcm())
    assert record.outcome is Outcome.ANSWERED


@bounded(60)
async def test_srtp_required_call_between_two_ringbacks_carries_the_message_keys_unlogged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    heard: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    records: list[Any] = []

    async def handler(call: SipCall, called: str, calling: str) -> None:
        await _answer_and_record(call, heard)
        records.append(call.record)

    message = chirp(2.0)
    wav = write_wav(tmp_path / "message.wav", [floats(message)], 8000, 2)
    async with (
        sip_dialer(5060, on_inbound=handler, srtp="required") as callee,
        sip_dialer(callee.port, srtp="required") as caller,
    ):
        call = await caller.originate(request())
        assert await call.wait_answer() is Outcome.ANSWERED
        await call.play(wav)
        await call.hangup()
        record = await call.wait_ended()
        pcm = await heard
    assert record.detail["srtp"] == "AES_CM_128_HMAC_SHA1_80"
    assert records[0].detail["srtp"] == "AES_CM_128_HMAC_SHA1_80"
    assert record.detail["rtp"]["srtp"] == "AES_CM_128_HMAC_SHA1_80"
    assert records[0].detail["rtp"]["packets_unauthenticated"] == 0
    assert best_correlation(message, pcm) >= 0.9
    assert "inline:" not in caplog.text  # the keys are in no log line
    assert "inline:" not in f"{record.detail} {records[0].detail}"  # nor in the call records


@bounded(60)
async def test_srtp_required_caller_gets_488_from_a_callee_with_srtp_off() -> None:
    async def handler(call: SipCall, called: str, calling: str) -> None:
        raise AssertionError("the call must be refused before the handler")

    async with (
        sip_dialer(5060, on_inbound=handler) as callee,
        sip_dialer(callee.port, srtp="required") as caller,
    ):
        call = await caller.originate(request())
        assert await call.wait_answer() is Outcome.FAILED
        record = await call.wait_ended()
    assert record.sip_code == 488


@bounded(60)
async def test_srtp_required_callee_refuses_a_plain_offer_with_488() -> None:
    async def handler(call: SipCall, called: str, calling: str) -> None:
        raise AssertionError("the call must be refused before the handler")

    async with (
        sip_dialer(5060, on_inbound=handler, srtp="required") as callee,
        sip_dialer(callee.port) as caller,
    ):
        call = await caller.originate(request())
        await call.wait_answer()
        record = await call.wait_ended()
    assert record.sip_code == 488


@bounded(60)
async def test_srtp_optional_caller_gets_srtp_from_a_keyed_callee_and_rtp_from_a_plain_one(
    tmp_path: Path,
) -> None:
    heard: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handler(call: SipCall, called: str, calling: str) -> None:
        await _answer_and_record(call, heard)

    wav = write_wav(tmp_path / "m.wav", [floats(chirp(0.5))], 8000, 2)
    results = {}
    for callee_policy in ("required", "off"):
        heard = asyncio.get_running_loop().create_future()
        async with (
            sip_dialer(5060, on_inbound=handler, srtp=callee_policy) as callee,
            sip_dialer(callee.port, srtp="optional") as caller,
        ):
            call = await caller.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.play(wav)
            await call.hangup()
            record = await call.wait_ended()
            assert best_correlation(chirp(0.5), await heard) >= 0.9
        results[callee_policy] = record.detail.get("srtp")
    assert results == {"required": "AES_CM_128_HMAC_SHA1_80", "off": None}


@bounded(60)
async def test_srtp_required_call_answered_without_crypto_fails_clearly_with_bye(
    tmp_path: Path,
) -> None:
    sipp = Sipp(scenario=uas_answer(), workdir=tmp_path / "plain", name="plain").start()
    try:
        async with sip_dialer(sipp.sip_port, srtp="required") as dialer:
            call = await dialer.originate(request())
            await call.wait_answer()
            record = await call.wait_ended()
        assert await sipp.wait_async() == 0, sipp.output()  # it got our BYE
    finally:
        sipp.stop()
    assert record.outcome is Outcome.FAILED and record.hangup_disposition == "send_bye"
    assert "SRTP is required" in record.detail["error"]
    assert "m=audio" in sipp.message_file.read_text() and "RTP/SAVP" in (
        sipp.message_file.read_text()
    )


@bounded(60)
async def test_symmetric_rtp_sends_media_to_where_the_far_ends_media_comes_from(
    tmp_path: Path,
) -> None:
    advertised, advertised_port = await RtpRecorder.open()  # in the SDP, never sends
    real, real_port = await RtpRecorder.open()  # what the far end really sends from
    sipp = Sipp(
        scenario=uas_answer(media_port=str(advertised_port)), workdir=tmp_path / "s", name="s"
    ).start()
    try:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            session: Any = call.media
            assert real.transport is not None
            for seq in range(3):
                header = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234)
                real.transport.sendto(header + bytes(160), (HOST, session.local_port))
            while session.stats["packets_received"] < 3:  # noqa: ASYNC110 (a counter)
                await asyncio.sleep(0.01)
            await call.play(write_wav(tmp_path / "m.wav", [floats(chirp(0.5))], 8000, 2))
            await call.hangup()
            record = await call.wait_ended()
        await sipp.wait_async()
    finally:
        sipp.stop()
        advertised.close()
        real.close()
    assert record.detail["rtp"]["latched_to"] == f"{HOST}:{real_port}"
    assert len(real.packets) >= 20 and advertised.packets == []


@bounded(60)
async def test_external_address_is_advertised_in_contact_via_and_sdp(tmp_path: Path) -> None:
    sipp = Sipp(scenario=uas_answer(), workdir=tmp_path / "ext", name="ext").start()
    try:
        dialer: SipDialer
        async with sip_dialer(sipp.sip_port, external_address="192.0.2.10") as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            await call.wait_ended()
        assert await sipp.wait_async() == 0, sipp.output()
    finally:
        sipp.stop()
    invite = sipp.message_file.read_text().split("INVITE sip:", 1)[1]
    assert re.search(r"^Contact: <sip:ringback@192\.0\.2\.10:\d+>", invite, flags=re.M)
    assert re.search(r"^Via: SIP/2\.0/UDP 192\.0\.2\.10:\d+;", invite, flags=re.M)
    assert "c=IN IP4 192.0.2.10\n" in invite and " IN IP4 192.0.2.10\ns=ringback" in invite


@bounded(30)
async def test_responses_go_to_the_source_with_received_and_rport_on_the_via() -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    class Peer(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not got.done():
                got.set_result(data)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with sip_dialer(5060) as dialer:
            options = (
                f"OPTIONS sip:ringback@{HOST}:{dialer.port} SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 10.9.9.9:5999;branch=z9hG4bKnat1;rport\r\n"
                "From: <sip:peer@10.9.9.9>;tag=p1\r\nTo: <sip:ringback@127.0.0.1>\r\n"
                "Call-ID: nat-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            transport.sendto(options.encode(), (HOST, dialer.port))
            response = (await got).decode()
    finally:
        transport.close()
    assert response.startswith("SIP/2.0 200")
    via = f"Via: SIP/2.0/UDP 10.9.9.9:5999;branch=z9hG4bKnat1;received={HOST};rport={port}"
    assert via in response


@pytest.mark.slow  # a real-time G.711 fax session of ~15 s
@bounded(90)
async def test_a_g711_fax_between_two_ringbacks_with_srtp_required_arrives_bit_for_bit(
    tmp_path: Path,
) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    async with (
        fax_number(tmp_path) as number,
        sip_dialer(5060, srtp="required") as receiver,
    ):
        number.attach(receiver, tmp_path)
        async with sip_dialer(receiver.port, srtp="required") as sender:
            call = await sender.originate(request(FAX_NUMBER))
            assert isinstance(call, SipCall)
            assert await call.wait_answer() is Outcome.ANSWERED
            result = await call.send_fax(document, header="srtp fax", ident="4930123456")
            assert result.ok, result
            await call.hangup()
            record = await call.wait_ended()
        leg = await number.stored_leg()
    assert record.detail["srtp"] == leg.detail["srtp"] == "AES_CM_128_HMAC_SHA1_80"
    assert record.detail["rtp"]["packets_unauthenticated"] == 0
    assert_same_pages(number.received_tiff, document)


@bounded(60)
async def test_srtp_required_late_offer_answered_without_key_in_the_ack_is_hung_up_with_bye(
    tmp_path: Path,
) -> None:
    ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def handler(call: SipCall, called: str, calling: str) -> None:
        await call.answer()  # no SDP in the INVITE: our 200 is the offer
        ended.set_result(await call.wait_ended())

    async with sip_dialer(5060, on_inbound=handler, srtp="required") as dialer:
        target = f"{HOST}:{dialer.port}"
        with sipp_peer(tmp_path, "uac_late_offer_plain_answer", extra=[target]) as sipp:
            assert await sipp.wait_async(30) == 0, sipp.output()
            assert sipp.errors() == ""
        record = await ended
    assert record.hangup_disposition == "send_bye"
    assert record.hangup_cause == "INCOMPATIBLE_DESTINATION"
    assert "SRTP is required" in record.detail["sdp_errors"][0]


@bounded(30)
async def test_srtp_latches_only_onto_a_source_whose_packets_authenticate() -> None:
    """A stranger's packet (plain, or under another key) neither plays nor moves the media;
    the first authenticated packet from a new address does."""
    ours, theirs = new_attribute(1, SUITE_80).key, new_attribute(1, SUITE_80).key
    low = free_udp_ports(2, even=True)
    session = await RtpSession.open(HOST, (low, low + 1))
    stranger, stranger_port = await RtpRecorder.open()
    peer, peer_port = await RtpRecorder.open()
    try:
        session.secure(SrtpContext(SUITE_80, ours, theirs))
        session.connect((HOST, 9), "PCMU", 0, None)  # the SDP's address: nobody there
        far = SrtpContext(SUITE_80, theirs, ours)  # the far end's side of the keys
        forger = SrtpContext(SUITE_80, new_attribute(1, SUITE_80).key, ours)
        packet = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x4321) + bytes(160)
        assert stranger.transport is not None and peer.transport is not None
        stranger.transport.sendto(packet, (HOST, session.local_port))
        stranger.transport.sendto(forger.protect(packet), (HOST, session.local_port))
        while session.stats["packets_unauthenticated"] < 2:  # noqa: ASYNC110 (a counter)
            await asyncio.sleep(0.01)
        assert session.stats["latched_to"] is None and session.stats["packets_received"] == 0
        peer.transport.sendto(far.protect(packet), (HOST, session.local_port))
        while session.stats["packets_received"] < 1:  # noqa: ASYNC110 (a counter)
            await asyncio.sleep(0.01)
        assert session.stats["latched_to"] == f"{HOST}:{peer_port}"
        await session.play_pcm(bytes(320 * 3))
        while len(peer.packets) < 3:  # noqa: ASYNC110 (a counter)
            await asyncio.sleep(0.01)
        assert far.unprotect(peer.packets[0][1])[12:] == bytes([0xFF]) * 160  # PCMU silence
        assert stranger.packets == [] and stranger_port != peer_port
    finally:
        await session.close()
        stranger.close()
        peer.close()


@bounded(60)
async def test_srtp_answer_to_a_reinvite_keeps_only_the_key_the_far_end_chose(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_srtp_reinvite") as sipp:
        async with sip_dialer(sipp.sip_port, srtp="required") as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            record = await call.wait_ended()  # sipp hangs up after its re-INVITE
        assert await sipp.wait_async(30) == 0, sipp.output()  # its checks of our SDP passed
        assert sipp.errors() == ""
    assert record.hangup_disposition == "recv_bye"
    assert record.detail["srtp"] == "AES_CM_128_HMAC_SHA1_32"
