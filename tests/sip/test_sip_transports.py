"""SIP over TCP and TLS on 127.0.0.1: the sip dialer against sipp over TCP (``-t t1``, strict
scenarios from tests/sip/scenarios), ringback calling ringback over TLS with test certificates
made by openssl, certificate verification, the RFC 3261 size rule (a large request goes over
TCP), CRLF keep-alives, idle close, and a malformed stream closing only its connection.

Debian's sipp 3.6.1 is built without OpenSSL (``-t l1``: "To use a TLS transport you must
compile SIPp with OpenSSL"), so TLS is tested between two ringback user agents.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from support_kamailio_tls import kamailio_tls
from support_media import Sipp
from support_sip import bounded, request, sip_dialer, sipp_peer

from ringback.domain.model import Outcome
from ringback.telephony.base import CallRecord, OriginateRequest
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer
from support_tls import Pem, make_ca, make_cert

pytestmark = pytest.mark.slow

TCP = ["-t", "t1"]


def _vias(sipp: Sipp) -> set[str]:
    return set(re.findall(r"^Via: SIP/2\.0/(\w+)", sipp.message_file.read_text(), re.M))


# -- sipp over TCP -------------------------------------------------------------------------------


@bounded(90)
async def test_tcp_answered_call_sends_invite_ack_and_bye_over_tcp_with_a_tcp_via(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_answer", extra=TCP) as sipp:
        async with sip_dialer(sipp.sip_port, transport="tcp") as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            record = await call.wait_ended()
            await sipp.passed()  # sipp listens on TCP only: all came over TCP
    assert (record.outcome, record.sip_code, record.detail["bye_response"]) == (
        Outcome.ANSWERED,
        200,
        200,
    )
    assert _vias(sipp) == {"TCP"}


@bounded(90)
async def test_tcp_486_is_busy_and_acked_once_without_retransmissions(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_busy", extra=TCP) as sipp:
        async with sip_dialer(sipp.sip_port, transport="tcp") as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.BUSY
            record = await call.wait_ended()
            await sipp.passed()  # before the dialer closes its connections
    assert (record.sip_code, record.hangup_cause) == (486, "USER_BUSY")
    messages = sipp.message_file.read_text()
    assert len(re.findall(r"^INVITE sip:", messages, re.M)) == 1  # no Timer A over TCP


@bounded(90)
async def test_tcp_401_challenge_is_answered_with_digest_credentials(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_auth", extra=TCP) as sipp:
        async with sip_dialer(
            sipp.sip_port, username="alice", password="s3cret", transport="tcp"
        ) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            record = await call.wait_ended()
            await sipp.passed()  # before the dialer closes its connections
    assert record.sip_code == 200
    assert _vias(sipp) == {"TCP"}


@bounded(90)
async def test_tcp_hangup_while_ringing_sends_cancel_and_ends_canceled(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_noanswer", extra=TCP) as sipp:
        async with sip_dialer(sipp.sip_port, transport="tcp") as dialer:
            call = await dialer.originate(request(ring_timeout_s=30.0))
            for _ in range(500):
                if call.record.ringing_at is not None:
                    break
                await asyncio.sleep(0.02)
            await call.hangup()
            record = await call.wait_ended()
            await sipp.passed()  # before the dialer closes its connections
    assert (record.outcome, record.sip_code) == (Outcome.CANCELED, 487)


@bounded(90)
async def test_inbound_tcp_call_canceled_by_the_caller_is_answered_on_its_connection(
    tmp_path: Path,
) -> None:
    records: list[CallRecord] = []

    async def ring_forever(call: SipCall, called: str, calling: str) -> None:
        records.append(await call.wait_ended())

    async with sip_dialer(5060, on_inbound=ring_forever) as dialer:
        target = f"127.0.0.1:{dialer.port}"  # the SIP port takes TCP connections too
        extra = [target, "-s", "5550199", *TCP]
        with sipp_peer(tmp_path, "uac_call_cancel", extra=extra) as sipp:
            await sipp.passed()  # 180, 200 to the CANCEL, 487: all on sipp's connection
    [record] = records
    assert (record.outcome, record.sip_code) == (Outcome.CANCELED, 487)
    assert record.hangup_disposition == "recv_cancel"


@bounded(90)
async def test_an_invite_larger_than_1300_bytes_goes_over_tcp_on_a_udp_trunk(
    tmp_path: Path,
) -> None:
    big = OriginateRequest(
        to_number="5551234",
        caller_id_number="4930123456",
        caller_id_name="Ringback " + "x" * 1200,
        ring_timeout_s=10.0,
    )
    with sipp_peer(tmp_path, "uas_answer", extra=TCP) as sipp:  # a TCP-only peer
        async with sip_dialer(sipp.sip_port) as dialer:  # transport udp
            call = await dialer.originate(big)
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            record = await call.wait_ended()
            await sipp.passed()  # before the dialer closes its connections
    assert record.outcome is Outcome.ANSWERED
    invite = sipp.message_file.read_text().split("INVITE sip:", 1)[1]
    assert re.search(r"^Via: SIP/2\.0/TCP ", invite, re.M)  # the top Via names TCP


@bounded(90)
async def test_a_large_invite_moved_to_tcp_is_cancelled_over_tcp_too(tmp_path: Path) -> None:
    big = OriginateRequest(
        to_number="5551234",
        caller_id_number="4930123456",
        caller_id_name="Ringback " + "x" * 1200,
        ring_timeout_s=1.0,
    )
    with sipp_peer(tmp_path, "uas_noanswer", extra=TCP) as sipp:  # a TCP-only peer
        async with sip_dialer(sipp.sip_port) as dialer:  # transport udp
            call = await dialer.originate(big)
            assert await call.wait_answer() is Outcome.NO_ANSWER  # CANCEL after 1 s
            record = await call.wait_ended()
            await sipp.passed()
    assert (record.sip_code, record.hangup_disposition) == (487, "send_cancel")
    cancel = sipp.message_file.read_text().split("CANCEL sip:", 1)[1]
    assert re.search(r"^Via: SIP/2\.0/TCP ", cancel, re.M)


# -- ringback to ringback over TLS --------------------------------------------------------------


async def _tls_call(
    tmp_path: Path, server: Pem, ca: Pem, *, verify: bool = True
) -> tuple[CallRecord, list[CallRecord], list[str]]:
    """ringback B takes TLS with ``server``; ringback A calls it trusting ``ca``. Returns A's
    record, B's records and the transports of B's connections during the call."""
    inbound: list[CallRecord] = []
    seen: list[str] = []
    b_dialer: list[SipDialer] = []
    far_ended = asyncio.Event()

    async def answer(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        seen.extend(c.transport_name for c in b_dialer[0].agent.net.connections())
        inbound.append(await call.wait_ended())
        far_ended.set()

    tls_b = {"transport": "tls", "tls_cert": str(server.cert), "tls_key": str(server.key)}
    async with sip_dialer(5061, on_inbound=answer, **tls_b) as b:
        b_dialer.append(b)
        assert b.agent.net.tls_port not in (0, b.port)
        async with sip_dialer(
            b.agent.net.tls_port, transport="tls", tls_ca=str(ca.cert), tls_verify=verify
        ) as a:
            call = await a.originate(request())
            if await call.wait_answer() is Outcome.ANSWERED:
                await call.hangup()
            record = await call.wait_ended()
            if record.outcome is Outcome.ANSWERED:
                await far_ended.wait()
    return record, inbound, seen


@bounded(60)
async def test_ringback_calls_ringback_over_tls_with_a_verified_certificate(
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path)
    server = make_cert(tmp_path, ca, "b")
    record, inbound, seen = await _tls_call(tmp_path, server, ca)
    assert (record.outcome, record.sip_code, record.detail["bye_response"]) == (
        Outcome.ANSWERED,
        200,
        200,
    )
    [far] = inbound
    assert far.direction == "inbound" and far.hangup_disposition == "recv_bye"
    assert seen == ["tls"]  # INVITE, ACK and BYE on one TLS connection


@bounded(60)
async def test_tls_refuses_a_certificate_from_an_untrusted_ca_with_a_clear_error(
    tmp_path: Path,
) -> None:
    trusted = make_ca(tmp_path / "trusted", "trusted CA")
    other = make_ca(tmp_path / "other", "other CA")
    server = make_cert(tmp_path / "other", other, "b")
    record, inbound, _ = await _tls_call(tmp_path, server, trusted)
    assert (record.outcome, record.sip_code) == (Outcome.FAILED, 503)
    assert "certificate verify failed" in record.detail["reason"]
    assert "unable to get local issuer certificate" in record.detail["reason"]
    assert inbound == []


@bounded(60)
async def test_tls_refuses_a_certificate_for_another_host_name(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    server = make_cert(tmp_path, ca, "b", hosts=("sip.example.org",))
    record, inbound, _ = await _tls_call(tmp_path, server, ca)
    assert (record.outcome, record.sip_code) == (Outcome.FAILED, 503)
    assert "certificate verify failed" in record.detail["reason"]
    assert "mismatch" in record.detail["reason"]
    assert inbound == []


@bounded(60)
async def test_tls_verification_turned_off_accepts_an_untrusted_certificate(
    tmp_path: Path,
) -> None:
    trusted = make_ca(tmp_path / "trusted", "trusted CA")
    other = make_ca(tmp_path / "other", "other CA")
    server = make_cert(tmp_path / "other", other, "b")
    record, inbound, _ = await _tls_call(tmp_path, server, trusted, verify=False)
    assert (record.outcome, record.sip_code) == (Outcome.ANSWERED, 200)
    assert len(inbound) == 1


# -- through kamailio over TLS -------------------------------------------------------------------


@bounded(90)
async def test_a_call_over_tls_through_kamailio_keeps_its_record_route_for_ack_and_bye(
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path)
    server = make_cert(tmp_path, ca, "kamailio")
    with (
        sipp_peer(tmp_path, "uas_answer_record_route") as sipp,
        kamailio_tls(tmp_path, sipp.sip_port, server) as tls_port,
    ):
        async with sip_dialer(tls_port, transport="tls", tls_ca=str(ca.cert)) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            connections = [c.transport_name for c in dialer.agent.net.connections()]
            await call.hangup()
            record = await call.wait_ended()
            await sipp.passed()
    assert (record.outcome, record.detail["bye_response"]) == (Outcome.ANSWERED, 200)
    assert connections == ["tls"]
    blocks = sipp.message_file.read_text().split("\n----------")
    for method in ("ACK", "BYE"):
        received = [b for b in blocks if re.search(rf"^{method} sip:", b, flags=re.M)]
        assert received, blocks
        for message in received:  # a retransmitted 200 is ACKed again: every copy
            # kamailio's UDP Via on top of ours, which names TLS: it came through kamailio
            vias = re.findall(r"^Via: SIP/2.0/(\w+) ", message, flags=re.M)
            assert vias == ["UDP", "TLS"], (method, message)


@bounded(90)
async def test_a_client_certificate_is_presented_when_kamailio_requires_one(
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path)
    server = make_cert(tmp_path, ca, "kamailio")
    client = make_cert(tmp_path, ca, "ringback")
    with (
        sipp_peer(tmp_path, "uas_answer_record_route") as sipp,
        kamailio_tls(tmp_path, sipp.sip_port, server, client_ca=ca.cert) as tls_port,
    ):
        async with sip_dialer(
            tls_port,
            transport="tls",
            tls_ca=str(ca.cert),
            tls_cert=str(client.cert),
            tls_key=str(client.key),
        ) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            record = await call.wait_ended()
            await sipp.passed()
    assert (record.outcome, record.detail["bye_response"]) == (Outcome.ANSWERED, 200)


@bounded(90)
async def test_without_the_client_certificate_kamailio_requires_the_call_fails_at_once(
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path)
    server = make_cert(tmp_path, ca, "kamailio")
    with (
        sipp_peer(tmp_path, "uas_answer_record_route") as sipp,
        kamailio_tls(tmp_path, sipp.sip_port, server, client_ca=ca.cert) as tls_port,
    ):
        async with sip_dialer(tls_port, transport="tls", tls_ca=str(ca.cert)) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.FAILED
            record = await call.wait_ended()
    assert record.sip_code == 503
    reason = record.detail["reason"]  # kamailio's TLS alert, not a 32 s Timer B
    assert f"TLS connection to 127.0.0.1:{tls_port} ended" in reason
    assert "certificate required" in reason
