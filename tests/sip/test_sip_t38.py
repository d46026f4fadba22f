"""T.38 in a SIP call against sipp (RINGBACK_SIP_T38): a far end's re-INVITE to T.38 accepted
(and a fax sent over the UDPTL stream it set up) or refused with 488 when off; ringback's own
re-INVITE refused (488: the call stays on audio), answered with the image stream disabled (the
audio is offered again), accepted after a glare (491), or crossed by the far end's re-INVITE
or UPDATE (491), challenged (401: answered once with the trunk's credentials; a second
challenge is a refusal)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support_media import HOST, free_udp_ports
from support_sip import answered_call, bounded, sip_dialer, sipp_peer
from tests.fax.support_fax import bitmaps, fax_document

from ringback.clock import SystemClock
from ringback.config import SipSettings
from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.fax.t38_session import T38Session
from ringback.telephony.sip.dialer import SipDialer

pytestmark = pytest.mark.slow  # runs sipp


@contextlib.asynccontextmanager
async def t38_dialer(proxy_port: int, t38: str) -> AsyncIterator[SipDialer]:
    rtp = free_udp_ports(40, even=True)
    settings = SipSettings(
        proxy_host=HOST,
        proxy_port=proxy_port,
        local_host=HOST,
        local_port=0,
        rtp_ports=(rtp, rtp + 39),
        caller_id="4930123456",
        t38=t38,
    )
    dialer = SipDialer(settings, SystemClock())
    await dialer.start()
    try:
        yield dialer
    finally:
        await dialer.close()


@bounded(120)
async def test_a_far_t38_reinvite_is_answered_with_image_sdp_and_a_fax_goes_through_it(
    tmp_path: Path,
) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind((HOST, 0))
    far_port = far.getsockname()[1]
    extra = ["-key", "t38_port", str(far_port)]
    with sipp_peer(tmp_path, "uas_t38_far_reinvite", timeout_s=90, extra=extra) as sipp:
        async with t38_dialer(sipp.sip_port, "accept") as dialer:
            call = await answered_call(dialer)
            channel = await call.t38.wait_channel()
            assert channel.remote.address == (HOST, far_port)
            params = channel.remote.params  # agreed: none of the far end's fill-bit removal
            assert (params.fill_bit_removal, params.max_buffer, params.max_datagram) == (
                False,
                2000,
                400,
            )
            assert channel.redundancy == 3
            # the far fax machine: a T.38 terminal on the port sipp announced
            far_session = await T38Session.open(
                T38Endpoint(send=document, local_ident="+15550001"), channel.local, sock=far
            )
            ours = await channel.open_session(T38Endpoint(receive=tmp_path / "in.tif"))
            sent, got = await asyncio.gather(far_session.run(), ours.run())
            far_session.close()
            far_session.endpoint.close()
            ours.endpoint.close()
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the 200's m=image
    assert (sent.code, got.code, got.pages) == (0, 0, 1)
    assert got.remote_ident == "+15550001"
    for want, have in zip(bitmaps(document), bitmaps(tmp_path / "in.tif"), strict=True):
        assert np.array_equal(want, have)
    t38 = record.detail["t38"]
    assert t38["mode"] == "accept" and t38["switched"] == "accepted"
    assert t38["left"] == "call ended"
    assert channel.closed
    messages = sipp.message_file.read_text()
    assert "a=T38FaxUdpEC:t38UDPRedundancy" in messages
    assert "a=T38FaxRateManagement:transferredTCF" in messages


@bounded(90)
async def test_a_refused_t38_offer_488_keeps_the_call_on_g711(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_t38_offer_refused") as sipp:
        async with t38_dialer(sipp.sip_port, "offer") as dialer:
            call = await answered_call(dialer)
            assert await call.t38.switch() is None
            assert not call.ended and call.t38.channel is None
            await call.send_dtmf("1")  # audio still flows on the RTP stream
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the offer's m=image
    assert record.detail["t38"]["fallback"] == "488 Not Acceptable Here"
    assert record.hangup_disposition == "send_bye"
    assert record.detail["rtp_packets_sent"] > 0


@bounded(90)
async def test_a_t38_offer_met_by_491_is_sent_again_after_the_wait_and_switches_on_200(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_offer_glare_then_accepted") as sipp:
        async with t38_dialer(sipp.sip_port, "offer") as dialer:
            call = await answered_call(dialer)
            loop = asyncio.get_running_loop()
            started = loop.time()
            channel = await call.t38.switch()
            waited = loop.time() - started
            assert channel is not None and call.t38.channel is channel
            assert channel.remote.address == (HOST, 6004)
            # the answer's lower rate and datagram size are what the session will respect
            assert channel.remote.params.max_bit_rate == 9600
            assert channel.remote.params.max_datagram == 320
            assert await call.t38.switch() is channel  # already on T.38
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()
    t38 = record.detail["t38"]
    assert (t38["switched"], t38["offer_response"], t38["glare_waits"]) == ("offered", 200, 1)
    assert 2.1 <= waited < 10  # ringback placed the call: it owns the Call-ID (2.1-4 s)
    assert channel.closed


@bounded(90)
async def test_with_t38_off_a_far_t38_reinvite_gets_488_and_the_call_stays_on_audio(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_far_reinvite_refused") as sipp:
        async with t38_dialer(sipp.sip_port, "off") as dialer:
            call = await answered_call(dialer)
            answered = asyncio.Event()
            answer_reinvite = call._answer_reinvite

            def noting(*args: Any) -> None:
                answer_reinvite(*args)
                answered.set()

            call._answer_reinvite = noting  # type: ignore[method-assign]
            await answered.wait()  # the far end's re-INVITE came and was answered
            assert call.t38.channel is None and call.t38.local_sdp is None
            assert not call.ended
            assert await call.t38.switch() is None  # off: ringback never offers either
            await call.send_dtmf("2")
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the 488
    assert "t38" not in record.detail
    assert record.detail["sdp_errors"] == ["SDP has no audio stream (m=audio)"]
    assert record.hangup_disposition == "send_bye"


@bounded(90)
async def test_a_far_reinvite_crossing_our_t38_offer_gets_491_and_ours_goes_on(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_offer_crossed") as sipp:
        async with t38_dialer(sipp.sip_port, "offer") as dialer:
            call = await answered_call(dialer)
            channel = await call.t38.switch()
            assert channel is not None and channel.remote.address == (HOST, 6004)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the 491 to its crossing re-INVITE
    assert record.detail["t38"]["switched"] == "offered"
    assert "glare_waits" not in record.detail["t38"]


@pytest.mark.parametrize(
    "scenario", ["uas_t38_offer_crossed_by_update", "uas_t38_offer_crossed_by_audio_update"]
)
@bounded(90)
async def test_a_far_update_offering_t38_or_audio_while_our_t38_reinvite_is_pending_gets_491(
    tmp_path: Path, scenario: str
) -> None:
    with sipp_peer(tmp_path, scenario) as sipp:
        async with t38_dialer(sipp.sip_port, "offer") as dialer:
            call = await answered_call(dialer)
            codec = call.record.detail.get("codec")
            channel = await call.t38.switch()
            assert channel is not None and channel.remote.address == (HOST, 6004)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the 491 to its UPDATE
    assert record.detail["update_491"] == 1
    assert record.detail["t38"]["switched"] == "offered"
    assert "left" not in record.detail["t38"] or record.detail["t38"]["left"] == "call ended"
    assert record.detail.get("codec") == codec  # the refused audio offer was not applied


@bounded(90)
async def test_a_t38_offer_answered_with_the_image_stream_disabled_puts_the_audio_back(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_offer_port0") as sipp:
        async with t38_dialer(sipp.sip_port, "offer") as dialer:
            call = await answered_call(dialer)
            assert await call.t38.switch() is None
            await call.send_dtmf("3")  # audio flows again
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the audio offer and its o= version
    t38 = record.detail["t38"]
    assert t38["fallback"] == "200 without T.38: SDP T.38 stream is disabled (port 0)"
    assert t38["audio_restored"] == 200
    assert record.detail["codec"] == "PCMA"  # the audio answer was applied


@bounded(90)
async def test_a_far_reinvite_back_to_audio_with_image_port_0_leaves_t38(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_t38_far_reinvite_and_back") as sipp:
        async with t38_dialer(sipp.sip_port, "accept") as dialer:
            call = await answered_call(dialer)
            # sipp re-INVITEs to T.38 at once, then back to audio: wait for the second to be
            # handled (the state, not a hook patched in after the answer: that raced the
            # first re-INVITE on a loaded machine)
            async with asyncio.timeout(30):
                while "left" not in call.t38.detail:  # noqa: ASYNC110 (no event marks it)
                    await asyncio.sleep(0.02)
            assert call.t38.detail["switched"] == "accepted"  # on T.38 after the first
            assert call.t38.channel is None and call.t38.local_sdp is None  # off after the second
            await call.send_dtmf("4")
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked both answers' m-lines
    t38 = record.detail["t38"]
    assert (t38["switched"], t38["left"]) == ("accepted", "the far end offered audio")
    assert record.detail["codec"] == "PCMA"


@bounded(90)
async def test_a_t38_offer_challenged_with_401_is_sent_again_once_with_credentials_and_switches(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_offer_auth") as sipp:
        async with sip_dialer(
            sipp.sip_port, username="alice", password="s3cret", t38="offer"
        ) as dialer:
            call = await answered_call(dialer)
            channel = await call.t38.switch()
            assert channel is not None and call.t38.channel is channel
            assert channel.remote.address == (HOST, 6004)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the digest, the Call-ID, the higher CSeq, the ACK
    t38 = record.detail["t38"]
    assert (t38["switched"], t38["offer_response"], t38["offer_auth"]) == (
        "offered",
        200,
        "401 answered",
    )
    assert "fallback" not in t38
    assert record.hangup_disposition == "send_bye"


@bounded(90)
async def test_a_t38_offer_challenged_again_after_our_credentials_stays_on_g711_and_says_why(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_offer_auth_twice") as sipp:
        async with sip_dialer(
            sipp.sip_port, username="alice", password="s3cret", t38="offer"
        ) as dialer:
            call = await answered_call(dialer)
            assert await call.t38.switch() is None
            assert not call.ended and call.t38.channel is None
            await call.send_dtmf("5")  # audio still flows on the RTP stream
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the second re-INVITE and that no third one came
    t38 = record.detail["t38"]
    assert t38["offer_response"] == 401
    assert t38["fallback"] == "401 Unauthorized"
    assert t38["offer_auth"] == "401 again after our credentials"
    assert record.hangup_disposition == "send_bye"
    assert record.detail["rtp_packets_sent"] > 0
