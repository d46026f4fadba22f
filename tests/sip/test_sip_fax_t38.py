"""SendFax / ReceiveFax over SIP choosing T.38 (RINGBACK_SIP_T38), against peers: another
ringback's ReceiveFax number (``accept``: it switches; ``off``: 488 and the fax goes over
G.711), a gateway behind sipp that re-INVITEs to T.38 while ringback faxes over G.711 (the
test's own T.38 fax machine on the UDPTL port sipp announces), and a lossy relay on the
UDPTL stream between two ringbacks (with redundancy, and with FEC offered by
``RINGBACK_SIP_T38_EC=fec``).

Documents are one sparse page: ~20 s of real time per test (fax media is paced in real time).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support_fax_peer import FAX_NUMBER, fax_number
from support_kamailio import kamailio
from support_media import HOST
from support_sip import bounded, request, sip_dialer, sipp_peer
from test_sip_fax import HEADER, assert_same_pages
from tests.fax.support_fax import bitmaps, fax_document
from tests.fax.support_t38 import LossyRelay

from ringback.domain.model import Outcome
from ringback.store.records import CallRow
from ringback.telephony.fax.result import FaxResult
from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.fax.t38_session import T38Session
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer
from ringback.telephony.sip.t38_switch import T38Channel

pytestmark = pytest.mark.slow  # real-time fax sessions of ~20 s, sipp


def _played_fax(record_played: list[dict[str, Any]]) -> dict[str, Any]:
    [fax] = [p for p in record_played if p["type"] == "fax"]
    return fax


async def _send(dialer: SipDialer, document: Path) -> tuple[SipCall, FaxResult]:
    call = await dialer.originate(request(FAX_NUMBER))
    assert isinstance(call, SipCall)
    assert await call.wait_answer() is Outcome.ANSWERED
    result = await call.send_fax(document, header=HEADER, ident="4930123456")
    await call.hangup()
    await call.wait_ended()
    return call, result


async def _ringback_to_ringback(
    tmp_path: Path,
    *,
    sender: str,
    receiver: str,
    proxy: bool = False,
    sender_ec: str = "redundancy",
) -> tuple[SipCall, FaxResult, CallRow, Path, Path]:
    """A 1-page fax from one ringback (``RINGBACK_SIP_T38=sender``, its offers' error
    correction ``RINGBACK_SIP_T38_EC=sender_ec``) to another's ReceiveFax number
    (``receiver``), directly or through kamailio (``proxy``)."""
    document = fax_document(tmp_path / "out.tif", pages=1)
    async with fax_number(tmp_path) as number, sip_dialer(5060, t38=receiver) as far:
        number.attach(far, tmp_path)
        with contextlib.ExitStack() as stack:
            port = stack.enter_context(kamailio(tmp_path, far.port)) if proxy else far.port
            async with sip_dialer(port, t38=sender, t38_ec=sender_ec) as near:
                call, result = await _send(near, document)
        leg = await number.stored_leg()
        return call, result, leg, number.received_tiff, document


@bounded(120)
async def test_a_ringback_offering_t38_faxes_over_t38_to_a_ringback_number_that_accepts_it(
    tmp_path: Path,
) -> None:
    call, result, leg, tiff, document = await _ringback_to_ringback(
        tmp_path, sender="offer", receiver="accept"
    )
    assert (result.code, result.pages, result.transport, result.fallback) == (0, 1, "t38", None)
    sent = _played_fax(call.record.played)
    assert (sent["transport"], sent["code"], sent["pages"]) == ("t38", 0, 1)
    assert "t38_fallback" not in sent
    t38 = call.record.detail["t38"]
    assert (t38["mode"], t38["switched"], t38["offer_response"]) == ("offer", "offered", 200)
    assert "fax_media" not in call.record.detail  # no audio fax at all on the offering side
    [udptl] = call.record.detail["fax_t38"]
    assert udptl["redundancy"] == 3 and udptl["ifp_received"] > 0
    # the receiving ringback: ReceiveFax started on G.711, the switch restarted it on T.38
    received = _played_fax(leg.played)
    assert (received["operation"], received["code"], received["pages"]) == ("reception", 0, 1)
    assert received["transport"] == "t38"
    assert leg.fax is not None and leg.fax["transport"] == "t38"
    assert leg.fax["t38_fallback"] is None
    assert leg.detail["t38"]["switched"] == "accepted"
    assert 0 <= leg.detail["t38"]["fax_restarted_after_s"] < 5
    assert_same_pages(tiff, document)
    assert tiff.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


@bounded(120)
async def test_a_t38_offer_refused_by_a_ringback_number_with_t38_off_falls_back_to_g711(
    tmp_path: Path,
) -> None:
    call, result, leg, tiff, document = await _ringback_to_ringback(
        tmp_path, sender="offer", receiver="off"
    )
    assert (result.code, result.pages, result.transport) == (0, 1, "g711")
    assert result.fallback is not None and result.fallback.startswith("488")
    sent = _played_fax(call.record.played)
    assert sent["transport"] == "g711" and sent["t38_fallback"].startswith("488")
    assert call.record.detail["t38"]["offer_response"] == 488
    assert "fax_t38" not in call.record.detail
    received = _played_fax(leg.played)
    assert (received["code"], received["pages"], received["transport"]) == (0, 1, "g711")
    assert leg.fax is not None and leg.fax["transport"] == "g711"
    assert_same_pages(tiff, document)


@bounded(120)
async def test_a_gateway_reinviting_to_t38_mid_g711_fax_gets_the_fax_restarted_over_t38(
    tmp_path: Path,
) -> None:
    """sipp answers with audio and re-INVITEs to T.38 3 s later (a gateway that heard the CNG)
    while ringback (``accept``, the default) sends over G.711; the test's T.38 fax machine,
    on the UDPTL port of sipp's offer, receives the page."""
    document = fax_document(tmp_path / "out.tif", pages=1)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind((HOST, 0))
    extra = ["-key", "t38_port", str(far.getsockname()[1])]
    with sipp_peer(tmp_path, "uas_t38_far_reinvite_mid_fax", timeout_s=90, extra=extra) as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert isinstance(call, SipCall)
            assert await call.wait_answer() is Outcome.ANSWERED
            sending = asyncio.ensure_future(call.send_fax(document, header=HEADER))
            channel = await call.t38.wait_channel()
            assert not sending.done()  # the G.711 fax was running when the switch came
            machine = await T38Session.open(
                T38Endpoint(receive=tmp_path / "in.tif", local_ident="+15550002"),
                channel.local,
                sock=far,
            )
            result, got = await asyncio.gather(sending, machine.run())
            machine.close()
            machine.endpoint.close()
            await call.hangup()
            record = await call.wait_ended()
        code = await sipp.wait_async(30)
        assert code == 0, sipp.output()
    assert (result.code, result.transport, got.code, got.pages) == (0, "t38", 0, 1)
    assert got.remote_ident == "4930123456"
    [audio] = record.detail["fax_media"]  # the G.711 fax that was stopped
    assert 100 <= audio["frames"] < 400  # ~3 s of CNG, not a whole fax
    assert 2 < record.detail["t38"]["fax_restarted_after_s"] < 8
    assert _played_fax(record.played)["transport"] == "t38"
    assert_same_pages(tmp_path / "in.tif", document)


async def _ringback_to_ringback_through_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relay: LossyRelay, *, sender_ec: str
) -> tuple[SipCall, FaxResult, CallRow, Path, Path]:
    """:func:`_ringback_to_ringback` (``offer`` to ``accept``) with the UDPTL stream of both
    sides through ``relay``: each side's channel is pointed at the relay when its session
    opens, as a media-relaying SBC rewriting the SDP would (SIP and the short G.711 start go
    direct)."""
    to_receiver, to_sender = await relay.start()
    opened: list[int] = []
    original = T38Channel.open_session

    async def through_relay(self: T38Channel, endpoint: T38Endpoint, **kw: Any) -> T38Session:
        side = 0 if endpoint.sending else 1  # side 0 faces the sender
        relay.peers[side] = self.local
        self.remote = dataclasses.replace(
            self.remote, host=HOST, port=(to_receiver if side == 0 else to_sender)[1]
        )
        opened.append(side)
        return await original(self, endpoint, **kw)

    monkeypatch.setattr(T38Channel, "open_session", through_relay)
    try:
        outcome = await _ringback_to_ringback(
            tmp_path, sender="offer", receiver="accept", sender_ec=sender_ec
        )
    finally:
        relay.close()
    assert sorted(opened) == [0, 1]
    return outcome


def _assert_page_below_the_header(document: Path, tiff: Path) -> None:
    for want, have in zip(bitmaps(document), bitmaps(tiff), strict=True):
        assert np.array_equal(want, have[have.shape[0] - want.shape[0] :])


@bounded(150)
async def test_a_t38_fax_between_two_ringbacks_through_a_relay_losing_1_percent_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UDPTL stream of both sides goes through a relay that drops 1% of the datagrams
    each way (seeded); redundancy 3 recovers the losses."""
    relay = LossyRelay(0.01, seed=3)
    call, result, leg, tiff, document = await _ringback_to_ringback_through_relay(
        tmp_path, monkeypatch, relay, sender_ec="redundancy"
    )
    assert relay.dropped > 0 and relay.forwarded > 300  # a sparse page: ~360 datagrams
    assert (result.code, result.transport) == (0, "t38")
    assert _played_fax(leg.played)["transport"] == "t38"
    [sender_udptl] = call.record.detail["fax_t38"]
    [receiver_udptl] = leg.detail["fax_t38"]
    recovered = sender_udptl.get("udptl_recovered", 0) + receiver_udptl.get("udptl_recovered", 0)
    assert recovered > 0  # losses happened and the secondaries filled them
    _assert_page_below_the_header(document, tiff)


@bounded(150)
async def test_a_t38_fax_offered_with_fec_between_two_ringbacks_through_a_lossy_relay_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender's offer names FEC (``RINGBACK_SIP_T38_EC=fec``), the receiver (at its
    default, ``redundancy``) answers with what was offered: both sides send FEC entries
    through the relay dropping 1% each way, and the entries rebuild what it drops."""
    relay = LossyRelay(0.01, seed=3)
    call, result, leg, tiff, document = await _ringback_to_ringback_through_relay(
        tmp_path, monkeypatch, relay, sender_ec="fec"
    )
    assert relay.dropped > 0 and relay.forwarded > 300
    assert (result.code, result.pages, result.transport) == (0, 1, "t38")
    received = _played_fax(leg.played)
    assert (received["code"], received["pages"], received["transport"]) == (0, 1, "t38")
    # FEC agreed on both sides of the SDP, and sent by both sessions
    for side in (call.record.detail, leg.detail):
        assert side["t38"]["error_correction"] == "t38UDPFEC"
        [udptl] = side["fax_t38"]
        assert udptl["error_correction"] == "fec"
    assert call.record.detail["t38"]["switched"] == "offered"
    assert leg.detail["t38"]["switched"] == "accepted"
    stats = [call.record.detail["fax_t38"][0], leg.detail["fax_t38"][0]]
    assert sum(s.get("udptl_fec_recovered", 0) for s in stats) > 0
    assert all(s.get("udptl_recovered", 0) == s.get("udptl_fec_recovered", 0) for s in stats)
    _assert_page_below_the_header(document, tiff)


@bounded(150)
async def test_a_t38_fax_between_two_ringbacks_through_kamailio_arrives_bit_for_bit(
    tmp_path: Path,
) -> None:
    """The re-INVITE to T.38 and its 200 go through the proxy (in the dialog's route set)."""
    call, result, leg, tiff, document = await _ringback_to_ringback(
        tmp_path, sender="offer", receiver="accept", proxy=True
    )
    assert (result.code, result.transport) == (0, "t38")
    assert call.record.detail["t38"]["offer_response"] == 200
    assert _played_fax(leg.played)["transport"] == "t38"
    assert_same_pages(tiff, document)


@bounded(120)
async def test_hanging_up_during_a_t38_fax_ends_it_as_dropped_with_code_49(tmp_path: Path) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    async with fax_number(tmp_path) as number, sip_dialer(5060) as far:
        number.attach(far, tmp_path)
        async with sip_dialer(far.port, t38="offer") as near:
            call = await near.originate(request(FAX_NUMBER))
            assert isinstance(call, SipCall)
            assert await call.wait_answer() is Outcome.ANSWERED
            sending = asyncio.ensure_future(call.send_fax(document))
            await call.t38.wait_channel()  # switched: the T.38 session starts at once
            await asyncio.sleep(4)  # into the training or the page
            await call.hangup()
            result = await sending
        leg = await number.stored_leg()
    assert (result.code, result.pages, result.transport) == (49, 0, "t38")
    sent = _played_fax(call.record.played)
    assert (sent["code"], sent["pages"], sent["transport"]) == (49, 0, "t38")
    assert 2 < float(sent["seconds"]) < 10
    received = _played_fax(leg.played)
    assert received["code"] != 0 and received["pages"] == 0 and received["transport"] == "t38"


@bounded(120)
async def test_a_receivefax_number_offering_t38_moves_an_accepting_ringbacks_sendfax_to_t38(
    tmp_path: Path,
) -> None:
    """The other way round: ReceiveFax asks (``offer``) as soon as it starts; SendFax
    (``accept``) finds the call on T.38 already, or restarts there if it had begun on G.711."""
    call, result, leg, tiff, document = await _ringback_to_ringback(
        tmp_path, sender="accept", receiver="offer"
    )
    assert (result.code, result.pages, result.transport) == (0, 1, "t38")
    assert call.record.detail["t38"]["switched"] == "accepted"
    assert call.record.detail["t38"].get("fax_restarted_after_s", 0) < 5
    assert leg.detail["t38"]["switched"] == "offered"
    assert leg.fax is not None and leg.fax["transport"] == "t38"
    assert_same_pages(tiff, document)
