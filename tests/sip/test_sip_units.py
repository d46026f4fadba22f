"""Digest answers (RFC 2617 / RFC 7616 test vectors), SDP offer/answer, message checks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support_sip import request, sip_dialer

from ringback.telephony.base import CallError
from ringback.telephony.sip.digest import DigestError, answer_challenge
from ringback.telephony.sip.message import SipParseError, new_branch, parse_datagram
from ringback.telephony.sip.sdp import SdpError, build_sdp, parse_remote_media


def _response_of(header: str) -> str:
    found = re.search(r'response="([0-9a-f]+)"', header)
    assert found is not None
    return found.group(1)


def test_md5_digest_with_qop_auth_matches_rfc_2617() -> None:
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = answer_challenge(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa",
        password="Circle Of Life", cnonce="0a4f113b",
    )  # fmt: skip
    assert _response_of(header) == "6629fae49393a05397450978507c4ef1"
    assert "qop=auth," in header and "nc=00000001" in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_md5_and_sha256_digests_match_rfc_7616(algorithm: str, expected: str) -> None:
    challenge = (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    header = answer_challenge(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa",
        password="Circle of Life", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )  # fmt: skip
    assert _response_of(header) == expected
    assert f"algorithm={algorithm}" in header


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        ('Basic realm="x"', "scheme 'Basic' is not supported"),
        ('Digest realm="x", nonce="n", algorithm=SHA-512-256', "is not supported"),
        ('Digest realm="x", nonce="n", qop="auth-int"', "only auth"),
        ('Digest realm="x"', "no nonce"),
    ],
)
def test_digest_challenges_ringback_cannot_answer_say_why(challenge: str, message: str) -> None:
    with pytest.raises(DigestError, match=message):
        answer_challenge(
            challenge, method="INVITE", uri="sip:x", username="u",
            password="p",
        )  # fmt: skip


SIPP_ANSWER = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)


def test_sdp_answer_gives_address_first_common_codec_and_dtmf_type() -> None:
    media = parse_remote_media(SIPP_ANSWER)
    assert (media.host, media.port, media.codec, media.payload_type) == (
        "127.0.0.1", 6000, "PCMU", 0,
    )  # fmt: skip
    assert media.dtmf_payload_type == 101 and not media.on_hold


def test_sdp_takes_the_far_ends_preferred_codec_and_media_level_address() -> None:
    body = (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        b"m=audio 7000 RTP/AVP 18 8 0 96\r\nc=IN IP4 10.0.0.2\r\n"
        b"a=rtpmap:96 telephone-event/8000\r\n"
        b"a=sendonly\r\n"
    )
    media = parse_remote_media(body)
    assert (media.host, media.codec, media.payload_type, media.dtmf_payload_type) == (
        "10.0.0.2", "PCMA", 8, 96,
    )  # fmt: skip
    assert media.on_hold


def test_our_offer_parses_back_to_pcmu_with_telephone_event_101() -> None:
    offer = build_sdp("127.0.0.1", 20000, session_id=7, version=1)
    assert b"m=audio 20000 RTP/AVP 0 8 101\r\n" in offer
    media = parse_remote_media(offer)
    assert (media.port, media.codec, media.dtmf_payload_type) == (20000, "PCMU", 101)


_OTHER_STREAMS = st.lists(
    st.tuples(
        st.sampled_from(["video", "image", "application", "text", "message"]),
        st.sampled_from(["RTP/AVP", "RTP/SAVP", "udptl", "TCP/MSRP", "UDP/BFCP"]),
        st.lists(st.sampled_from(["96", "97", "t38", "*", "0"]), min_size=1, max_size=3),
        st.integers(min_value=0, max_value=65535),
    ),
    max_size=4,
)


@given(before=_OTHER_STREAMS, after=_OTHER_STREAMS, second_audio=st.booleans())
def test_an_answer_has_the_offers_m_lines_in_order_and_refuses_all_but_the_audio_taken(
    before: list[tuple[str, str, list[str], int]],
    after: list[tuple[str, str, list[str], int]],
    second_audio: bool,
) -> None:  # RFC 3264 section 6: as many m= lines as the offer, in its order
    others_after = [*after, ("audio", "RTP/AVP", ["0"], 7002)] if second_audio else after
    lines = ["v=0", "o=- 1 1 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0"]
    offered = []
    for media, proto, formats, port in before:
        lines.append(f"m={media} {port} {proto} {' '.join(formats)}")
        offered.append((media, proto))
    lines += ["m=audio 7000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000"]
    offered.append(("audio", "RTP/AVP"))
    for media, proto, formats, port in others_after:
        lines.append(f"m={media} {port} {proto} {' '.join(formats)}")
        offered.append((media, proto))
    remote = parse_remote_media(("\r\n".join(lines) + "\r\n").encode())
    assert (remote.port, remote.codec) == (7000, "PCMA")
    answer = build_sdp(
        "127.0.0.1", 20000, session_id=1, version=1,
        codecs=((remote.payload_type, remote.codec),),
        dtmf_payload_type=remote.dtmf_payload_type, answering=remote,
    ).decode()  # fmt: skip
    m_lines = [line[2:].split() for line in answer.splitlines() if line.startswith("m=")]
    assert [(m[0], m[2]) for m in m_lines] == offered
    ports = [int(m[1]) for m in m_lines]
    assert ports == [20000 if i == len(before) else 0 for i in range(len(offered))]
    assert all(len(m) >= 4 for m in m_lines)  # SDP wants a format on every m= line
    taken = parse_remote_media(answer.encode())
    assert (taken.port, taken.codec, taken.dtmf_payload_type) == (20000, "PCMA", 101)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"v=0\r\nc=IN IP4 1.2.3.4\r\n", "no audio stream"),
        (b"v=0\r\nm=audio 5000 RTP/AVP 0\r\n", "no connection address"),
        (b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 18 9\r\n", "no codec ringback speaks"),
        (b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n", "is not a port"),
        (b"v=0\r\nc=IN IP4 example.com\r\nm=audio 5000 RTP/AVP 0\r\n", "not an IP address"),
        (b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n", "disabled"),
        (b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP abc\r\n", "payload type"),
    ],
)
def test_bad_sdp_is_an_sdp_error_saying_why(body: bytes, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_remote_media(body)


def test_branches_are_rfc3261_and_random() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(branch.startswith("z9hG4bK") for branch in branches)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n", "end of headers"),
        (b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n", "no Via"),
        (b"HELLO\r\n\r\n", "malformed"),
        (b"SIP/2.0 200 OK\r\n" + b"X: y\r\n" * 300 + b"\r\n", "too many"),
        (b"SIP/2.0 200 OK\r\nX: " + b"y" * 9000 + b"\r\n\r\n", "too long"),
    ],
)
def test_datagrams_that_are_not_usable_sip_are_refused_with_a_reason(
    data: bytes, message: str
) -> None:
    with pytest.raises(SipParseError, match=message):
        parse_datagram(data)


@pytest.mark.parametrize(
    ("number", "message"),
    [("--- ---", "no digits or letters"), ("sip:bad uri@", "not a valid SIP URI")],
)
async def test_originate_refuses_what_cannot_be_dialled_with_a_call_error(
    number: str, message: str
) -> None:
    async with sip_dialer(5060) as dialer:
        with pytest.raises(CallError, match=message):
            await dialer.originate(request(number))
        assert dialer.live_calls() == []


async def test_numbers_are_dialled_at_the_trunk_domain_and_sip_uris_as_they_are() -> None:
    async with sip_dialer(5070) as dialer:
        assert str(dialer.target_uri("+49 30 123-456")) == "sip:+4930123456@127.0.0.1:5070"
        assert str(dialer.target_uri("sip:bob@example.net")) == "sip:bob@example.net"
