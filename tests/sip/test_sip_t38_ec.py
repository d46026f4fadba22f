"""The error correction of T.38 against sipp: ringback's own offers name what
``RINGBACK_SIP_T38_EC`` says (``fec`` here: ``T38FaxUdpEC:t38UDPFEC``), and a far end's offer
is answered with the error correction it names, whatever that setting (docs/fax.md, "T.38")."""

from __future__ import annotations

from pathlib import Path

import pytest
from support_media import HOST
from support_sip import answered_call, bounded, sip_dialer, sipp_peer

pytestmark = pytest.mark.slow  # runs sipp


@bounded(90)
async def test_with_t38_ec_fec_our_t38_offer_names_t38udpfec_and_an_fec_answer_makes_an_fec_channel(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_offer_fec") as sipp:
        async with sip_dialer(sipp.sip_port, t38="offer", t38_ec="fec") as dialer:
            call = await answered_call(dialer)
            channel = await call.t38.switch()
            assert channel is not None and channel.remote.address == (HOST, 6004)
            assert channel.fec and channel.redundancy == 3  # 3 FEC entries, no secondaries
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the offer's T38FaxUdpEC:t38UDPFEC
    t38 = record.detail["t38"]
    assert (t38["switched"], t38["error_correction"]) == ("offered", "t38UDPFEC")
    assert "a=T38FaxUdpEC:t38UDPRedundancy" not in sipp.message_file.read_text()


@bounded(90)
async def test_a_far_t38_offer_of_fec_is_answered_with_fec_whatever_our_own_offers_name(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_far_reinvite_fec") as sipp:
        async with sip_dialer(sipp.sip_port, t38="accept", t38_ec="none") as dialer:
            call = await answered_call(dialer)
            channel = await call.t38.wait_channel()
            assert channel.remote.address == (HOST, 6012)
            assert channel.fec and channel.redundancy == 3
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the 200's m=image and T38FaxUdpEC:t38UDPFEC
    t38 = record.detail["t38"]
    assert (t38["switched"], t38["error_correction"]) == ("accepted", "t38UDPFEC")
