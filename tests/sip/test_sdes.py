"""The SDES a=crypto parser (RFC 4568), the SRTP policy's offer/answer, SRTP contexts, the
Via received/rport stamp and the SRTP/NAT settings."""

from __future__ import annotations

import base64
import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.config import ConfigError, sip_settings_from_env
from ringback.telephony.sip.nat import stamped_via
from ringback.telephony.sip.sdes import (
    SUITES,
    CryptoAttribute,
    CryptoError,
    new_attribute,
    parse_crypto,
    redact_sdp,
)
from ringback.telephony.sip.sdp import build_sdp, parse_remote_media
from ringback.telephony.sip.srtp import SrtpContext, SrtpError, SrtpNegotiation, SrtpRefused

KEY = bytes(range(30))
INLINE = base64.b64encode(KEY).decode()

keys = st.binary(min_size=30, max_size=30)
tags = st.integers(min_value=0, max_value=999_999_999)
suites = st.sampled_from(SUITES)


@given(tags, suites, keys)
def test_crypto_attribute_written_then_parsed_is_the_same(tag: int, suite: str, key: bytes) -> None:
    attribute = CryptoAttribute(tag, suite, key)
    assert parse_crypto(attribute.line()) == attribute


@given(st.text(max_size=200))
def test_crypto_parser_accepts_or_refuses_with_crypto_error_only(text: str) -> None:
    with contextlib.suppress(CryptoError):
        parse_crypto(text)


@given(keys, st.text(max_size=60))
def test_crypto_parse_errors_never_quote_the_key(key: bytes, tail: str) -> None:
    inline = base64.b64encode(key).decode()
    for value in (
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|{tail}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline} {tail or 'KDR=1'}",
        f"1 F8_128_HMAC_SHA1_80 inline:{inline}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline}x",
    ):
        try:
            parse_crypto(value)
        except CryptoError as exc:
            assert inline not in str(exc)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (f"1 AES_256_CM_HMAC_SHA1_80 inline:{INLINE}", "suite 'AES_256_CM_HMAC_SHA1_80' is not"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|2^20|1:4", "(MKI) are not supported"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE};inline:{INLINE}", "several SRTP master"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE} UNENCRYPTED_SRTP", "'UNENCRYPTED_SRTP'"),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{INLINE}", "must be 'inline:<key>'"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=", "40 characters"),
        (f"x AES_CM_128_HMAC_SHA1_80 inline:{INLINE}", "tag"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}|2^99", "lifetime"),
        ("1 AES_CM_128_HMAC_SHA1_80", "needs a tag"),
    ],
)
def test_unsupported_crypto_suites_and_parameters_are_refused_saying_why(
    value: str, why: str
) -> None:
    with pytest.raises(CryptoError, match=None) as refused:
        parse_crypto(value)
    assert why in str(refused.value)


def test_crypto_lifetime_and_window_hint_are_accepted() -> None:
    attribute = parse_crypto(f"7 AES_CM_128_HMAC_SHA1_32 inline:{INLINE}|2^31 WSH=64")
    assert (attribute.tag, attribute.suite, attribute.key) == (7, SUITES[1], KEY)
    assert attribute.lifetime == 2**31


def test_keys_are_random_and_stay_out_of_repr_and_redacted_sdp() -> None:
    one, two = new_attribute(1, SUITES[0]), new_attribute(1, SUITES[0])
    assert one.key != two.key and len(one.key) == 30
    inline = base64.b64encode(one.key).decode()
    assert inline not in repr(one) and one.key.hex() not in repr(one)
    sdp = build_sdp("127.0.0.1", 4000, session_id=1, version=1, crypto=(one,)).decode()
    assert inline in sdp
    assert inline not in redact_sdp(sdp) and "inline:[redacted]" in redact_sdp(sdp)


def _offer(profile: str, crypto: tuple[CryptoAttribute, ...] = ()) -> bytes:
    return build_sdp("127.0.0.1", 4000, session_id=1, version=1, profile=profile, crypto=crypto)


def test_sdp_parser_keeps_usable_crypto_lines_and_why_the_others_are_refused() -> None:
    good = new_attribute(2, SUITES[1])
    body = _offer("RTP/SAVP", (good,)).replace(
        b"a=ptime", b"a=crypto:1 AES_192_CM_HMAC_SHA1_80 inline:" + INLINE.encode() + b"\r\na=ptime"
    )
    remote = parse_remote_media(body)
    assert remote.profile == "RTP/SAVP" and remote.crypto == (good,)
    assert "AES_192_CM_HMAC_SHA1_80" in remote.crypto_refused[0]


@pytest.mark.parametrize(
    ("policy", "profile", "crypto", "outcome"),
    [
        ("off", "RTP/AVP", True, "plain"),
        ("off", "RTP/SAVP", True, "refused"),
        ("optional", "RTP/AVP", False, "plain"),
        ("optional", "RTP/AVP", True, "srtp"),
        ("optional", "RTP/SAVP", False, "refused"),
        ("required", "RTP/AVP", False, "refused"),
        ("required", "RTP/AVP", True, "srtp"),
        ("required", "RTP/SAVP", True, "srtp"),
    ],
)
def test_inbound_offer_gets_srtp_plain_rtp_or_refusal_by_policy(
    policy: str, profile: str, crypto: bool, outcome: str
) -> None:
    offered = (new_attribute(5, SUITES[1]),) if crypto else ()
    negotiation = SrtpNegotiation(policy)
    try:
        keys = negotiation.take_offer(profile, offered, ())
    except SrtpRefused:
        assert outcome == "refused"
        return
    assert outcome == ("srtp" if keys else "plain")
    if keys is not None:
        answer_profile, [ours] = negotiation.answer_profile(profile)
        assert answer_profile == profile and (ours.tag, ours.suite) == (5, SUITES[1])
        assert ours.key != offered[0].key


def test_offer_by_policy_and_answers_matching_or_not() -> None:
    assert SrtpNegotiation("off").offer() == ("RTP/AVP", ())
    optional = SrtpNegotiation("optional")
    profile, offered = optional.offer()
    assert profile == "RTP/AVP" and [a.suite for a in offered] == list(SUITES)
    assert optional.take_answer("RTP/AVP", (), ()) is None  # a plain answer: plain RTP
    required = SrtpNegotiation("required")
    profile, offered = required.offer()
    assert profile == "RTP/SAVP"
    wrong_tag = CryptoAttribute(9, offered[0].suite, KEY)
    with pytest.raises(SrtpRefused, match="SRTP is required"):
        required.take_answer("RTP/SAVP", (wrong_tag,), ())
    keys = required.take_answer("RTP/SAVP", (CryptoAttribute(2, SUITES[1], KEY),), ())
    assert keys is not None and keys.local == offered[1]


@given(st.binary(min_size=0, max_size=200))
def test_srtp_round_trip_and_tampered_or_plain_packets_are_refused(payload: bytes) -> None:
    a_key, b_key = new_attribute(1, SUITES[0]).key, new_attribute(1, SUITES[0]).key
    alice, bob = SrtpContext(SUITES[0], a_key, b_key), SrtpContext(SUITES[0], b_key, a_key)
    packet = struct.pack("!BBHII", 0x80, 0, 1, 160, 42) + payload
    protected = alice.protect(packet)
    assert len(protected) == len(packet) + 10
    tampered = protected[:-1] + bytes([protected[-1] ^ 1])
    with pytest.raises(SrtpError):
        bob.unprotect(tampered)
    assert bob.unprotect(protected) == packet
    with pytest.raises(SrtpError):  # a replay
        bob.unprotect(protected)


@pytest.mark.parametrize(
    ("via", "source", "stamped"),
    [
        ("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;rport", ("203.0.113.9", 41000),
         "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;received=203.0.113.9;rport=41000"),
        ("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa", ("203.0.113.9", 41000),
         "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;received=203.0.113.9"),
        ("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa", ("127.0.0.1", 5060),
         "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa"),
        ("SIP/2.0/UDP [::1]:5060;rport;branch=z9hG4bKa", ("::1", 5070),
         "SIP/2.0/UDP [::1]:5060;branch=z9hG4bKa;received=::1;rport=5070"),
    ],
)  # fmt: skip
def test_received_and_rport_tell_the_sender_where_its_request_came_from(
    via: str, source: tuple[str, int], stamped: str
) -> None:
    assert stamped_via(via, source) == stamped


def test_srtp_and_external_address_settings_are_read_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RINGBACK_SIP_PROXY", "127.0.0.1:5080")
    assert sip_settings_from_env().srtp == "off"
    assert sip_settings_from_env().external_address is None
    monkeypatch.setenv("RINGBACK_SIP_SRTP", "Required")
    monkeypatch.setenv("RINGBACK_SIP_EXTERNAL_ADDRESS", "198.51.100.7")
    settings = sip_settings_from_env()
    assert (settings.srtp, settings.external_address) == ("required", "198.51.100.7")
    monkeypatch.setenv("RINGBACK_SIP_SRTP", "dtls")
    with pytest.raises(ConfigError, match="RINGBACK_SIP_SRTP='dtls'"):
        sip_settings_from_env()
    monkeypatch.setenv("RINGBACK_SIP_SRTP", "optional")
    monkeypatch.setenv("RINGBACK_SIP_EXTERNAL_ADDRESS", "pbx.example.com")
    with pytest.raises(ConfigError, match="is not an IP address"):
        sip_settings_from_env()


def test_crypto_lifetime_in_superscript_digits_is_a_crypto_error() -> None:
    key = base64.b64encode(bytes(30)).decode()
    for lifetime in ("²", "2^²", "①"):
        with pytest.raises(CryptoError):
            parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{key}|{lifetime}")
