"""T.38 SDP (m=image udptl t38): offers, answers, and what real peers send."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.telephony.sip.sdp import SdpError, build_sdp, parse_remote_media
from ringback.telephony.sip.sdp_t38 import (
    FEC,
    NO_EC,
    REDUNDANCY,
    T38Params,
    build_t38_answer,
    build_t38_offer,
    has_t38,
    in_previous_slots,
    offer_params,
    parse_remote_image,
)


def _sdp(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# An Asterisk re-INVITE to T.38 (chan_sip / res_pjsip_t38 spell it alike).
ASTERISK = _sdp(
    "v=0",
    "o=root 1821 1822 IN IP4 192.0.2.10",
    "s=Asterisk PBX 18.0.0",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "m=image 4390 udptl t38",
    "a=T38FaxVersion:0",
    "a=T38MaxBitRate:14400",
    "a=T38FaxRateManagement:transferredTCF",
    "a=T38FaxMaxDatagram:400",
    "a=T38FaxUdpEC:t38UDPRedundancy",
)
# FreeSWITCH's (mod_sofia): a bare flag, a max buffer.
FREESWITCH = _sdp(
    "v=0",
    "o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7",
    "s=FreeSWITCH",
    "c=IN IP4 198.51.100.7",
    "t=0 0",
    "m=image 16384 udptl t38",
    "a=T38FaxVersion:0",
    "a=T38MaxBitRate:14400",
    "a=T38FaxFillBitRemoval",
    "a=T38FaxRateManagement:transferredTCF",
    "a=T38FaxMaxBuffer:2000",
    "a=T38FaxMaxDatagram:400",
    "a=T38FaxUdpEC:t38UDPRedundancy",
)
# A gateway offering audio and image at once, lower-case names, flags as :0, FEC, UDPTL in
# capitals, the image stream on its own address.
GATEWAY = _sdp(
    "v=0",
    "o=GW-UserAgent 4500 2931 IN IP4 203.0.113.5",
    "s=SIP Call",
    "c=IN IP4 203.0.113.5",
    "t=0 0",
    "m=audio 18000 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "m=image 18002 UDPTL t38",
    "c=IN IP4 203.0.113.6",
    "a=t38faxversion:1",
    "a=t38maxbitrate:9600",
    "a=t38faxfillbitremoval:0",
    "a=t38faxratemanagement:transferredTCF",
    "a=t38faxmaxbuffer:200",
    "a=t38faxmaxdatagram:320",
    "a=t38faxudpec:t38UDPFEC",
)
# sipp-style old spelling: T38FaxMaxRate, no error correction at all.
OLD = _sdp(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=image 6000 udptl t38",
    "a=T38FaxVersion:0",
    "a=T38FaxMaxRate:14400",
    "a=T38FaxRateManagement:localTCF",
)


def test_asterisk_and_freeswitch_t38_offers_are_read() -> None:
    asterisk = parse_remote_image(ASTERISK)
    assert asterisk.address == ("192.0.2.10", 4390)
    assert asterisk.params == T38Params(max_buffer=None, max_datagram=400)
    freeswitch = parse_remote_image(FREESWITCH)
    assert freeswitch.address == ("198.51.100.7", 16384)
    assert freeswitch.params.fill_bit_removal
    assert (freeswitch.params.max_buffer, freeswitch.params.udp_ec) == (2000, REDUNDANCY)


def test_attribute_names_are_case_insensitive_and_flags_may_say_0() -> None:
    image = parse_remote_image(GATEWAY)
    assert image.address == ("203.0.113.6", 18002)  # the image stream's own c=
    assert (image.params.version, image.params.max_bit_rate) == (1, 9600)
    assert not image.params.fill_bit_removal
    assert (image.params.max_buffer, image.params.max_datagram) == (200, 320)
    assert image.params.udp_ec == FEC


def test_the_old_max_rate_name_and_a_missing_error_correction_are_read() -> None:
    image = parse_remote_image(OLD)
    assert image.params.max_bit_rate == 14400
    assert image.params.udp_ec == NO_EC
    assert image.params.rate_management == "localTCF"


def test_an_image_only_answer_accepts_the_stream_with_the_lower_version_and_rate() -> None:
    answer, remote = build_t38_answer(GATEWAY, "192.0.2.1", 30000, session_id=7, version=2)
    text = answer.decode()
    # audio+image offer: both m-lines in order, the audio rejected with port 0
    assert text.index("m=audio 0 RTP/AVP 0 101") < text.index("m=image 30000 udptl t38")
    assert "a=T38FaxVersion:0" in text and "a=T38MaxBitRate:9600" in text
    assert "a=T38FaxUdpEC:t38UDPFEC" in text  # FEC offered: FEC answered
    assert "a=T38FaxRateManagement:transferredTCF" in text
    assert "FillBitRemoval" not in text
    assert remote.address == ("203.0.113.6", 18002)
    assert remote.params.udp_ec == FEC
    with pytest.raises(SdpError, match="no audio"):
        parse_remote_media(_sdp(*[line for line in text.splitlines() if "audio" not in line]))
    # and the answer itself reads back as T.38 at our address
    assert parse_remote_image(answer).address == ("192.0.2.1", 30000)


def test_an_offer_of_redundancy_is_answered_with_redundancy() -> None:
    for offer in (ASTERISK, FREESWITCH):
        answer, remote = build_t38_answer(offer, "127.0.0.1", 30000, session_id=1, version=1)
        assert b"a=T38FaxUdpEC:t38UDPRedundancy\r\n" in answer
        assert remote.params.udp_ec == REDUNDANCY


def test_an_offer_without_error_correction_is_answered_without() -> None:
    answer, remote = build_t38_answer(OLD, "127.0.0.1", 30000, session_id=1, version=1)
    assert b"T38FaxUdpEC" not in answer
    assert remote.params.udp_ec == NO_EC


def test_our_offer_is_image_only_with_every_attribute_peers_expect() -> None:
    offer = build_t38_offer("192.0.2.1", 30000, session_id=5, version=3)
    lines = offer.decode().splitlines()
    assert "m=image 30000 udptl t38" in lines
    assert not any(line.startswith("m=audio") for line in lines)
    for attribute in (
        "a=T38FaxVersion:0",
        "a=T38MaxBitRate:14400",
        "a=T38FaxRateManagement:transferredTCF",
        "a=T38FaxMaxBuffer:2000",
        "a=T38FaxMaxDatagram:400",
        "a=T38FaxUdpEC:t38UDPRedundancy",
    ):
        assert attribute in lines
    assert parse_remote_image(offer).params == T38Params()
    assert has_t38(offer) and not has_t38(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n")
    # back to audio, the image stream disabled beside it: not a T.38 offer
    assert not has_t38(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=image 0 udptl t38\r\n")


@pytest.mark.parametrize(
    ("setting", "attribute", "udp_ec"),
    [
        ("redundancy", "a=T38FaxUdpEC:t38UDPRedundancy", REDUNDANCY),
        ("fec", "a=T38FaxUdpEC:t38UDPFEC", FEC),
        ("none", None, NO_EC),
    ],
)
def test_our_offer_names_the_error_correction_of_the_t38_ec_setting(
    setting: str, attribute: str | None, udp_ec: str
) -> None:
    offer = build_t38_offer(
        "192.0.2.1", 30000, session_id=5, version=3, params=offer_params(setting)
    )
    lines = offer.decode().splitlines()
    ec_lines = [line for line in lines if line.startswith("a=T38FaxUdpEC")]
    assert ec_lines == ([attribute] if attribute else [])
    assert parse_remote_image(offer).params == T38Params(udp_ec=udp_ec)
    # answered by a peer following the offer (as ringback does), the agreed EC is the setting's
    _, agreed = build_t38_answer(offer, "192.0.2.2", 30002, session_id=6, version=1)
    assert agreed.params.udp_ec == udp_ec


def test_an_unknown_t38_ec_setting_is_refused_naming_the_values() -> None:
    with pytest.raises(ValueError, match="use one of redundancy, fec, none"):
        offer_params("parity")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n", "no T.38 stream"),
        (b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=image 0 udptl t38\r\n", "disabled"),
        (b"v=0\r\nm=image 4000 udptl t38\r\n", "no connection address"),
        (b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=image 4000 udptl t38\r\na=T38FaxVersion:x\r\n", "not a"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_unusable_t38_sdp_is_refused_with_why(body: bytes, why: str) -> None:
    with pytest.raises(SdpError, match=why):
        parse_remote_image(body)


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_any_text_either_parses_or_raises_sdp_error(text: str) -> None:
    body = ("v=0\r\nc=IN IP4 192.0.2.1\r\nm=image 4000 udptl t38\r\n" + text).encode()
    with contextlib.suppress(SdpError):
        parse_remote_image(body)


def _m_lines(sdp: bytes) -> list[str]:
    return [line for line in sdp.decode().splitlines() if line.startswith("m=")]


def test_rfc3264_s8_the_offer_back_to_audio_keeps_the_t38_stream_disabled_after_it() -> None:
    t38 = build_t38_offer("192.0.2.1", 30000, session_id=5, version=3)
    audio = build_sdp("192.0.2.1", 20000, session_id=5, version=4, codecs=((8, "PCMA"),))
    offer = in_previous_slots(audio, t38)
    assert _m_lines(offer) == ["m=audio 20000 RTP/AVP 8 101", "m=image 0 udptl t38"]
    assert "o=ringback 5 4 IN IP4 192.0.2.1" in offer.decode()
    remote = parse_remote_media(offer)  # the audio stream with its attributes, in place
    assert (remote.port, remote.codec, remote.dtmf_payload_type) == (20000, "PCMA", 101)
    assert not has_t38(offer)


def test_rfc3264_s8_a_stream_takes_its_earlier_slot_and_the_count_never_shrinks() -> None:
    # our T.38 answer to an audio+image offer: the audio comes back in the first slot
    previous = _sdp("v=0", "m=audio 0 RTP/AVP 0", "m=image 30000 udptl t38", "a=T38FaxVersion:0")
    audio = build_sdp("192.0.2.1", 20000, session_id=5, version=4, codecs=((0, "PCMU"),))
    assert _m_lines(in_previous_slots(audio, previous)) == [
        "m=audio 20000 RTP/AVP 0 101",
        "m=image 0 udptl t38",
    ]
    # a second switch to T.38 after that: the image stream in its slot, the audio disabled
    back = in_previous_slots(audio, previous)
    t38 = build_t38_offer("192.0.2.1", 30002, session_id=5, version=5)
    again = in_previous_slots(t38, back)
    assert _m_lines(again) == ["m=audio 0 RTP/AVP 0 101", "m=image 30002 udptl t38"]
    assert parse_remote_image(again).port == 30002
