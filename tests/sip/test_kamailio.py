"""Through a real proxy: ringback → Kamailio (Debian ``kamailio``, record-routing) → sipp.

Kamailio adds a Record-Route to the INVITE; ringback must keep it as the dialog's route set,
so its ACK and BYE go back through Kamailio (sipp sees Kamailio's Via on top of ringback's)
instead of straight to sipp's Contact.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support_kamailio import kamailio
from support_media import HOST, sine, write_wav
from support_sip import request, sip_dialer, sipp_peer

from ringback.domain.model import Outcome

pytestmark = pytest.mark.slow  # runs kamailio


async def test_a_call_through_kamailio_keeps_its_record_route_for_ack_and_bye(
    tmp_path: Path,
) -> None:
    wav = write_wav(tmp_path / "prompt.wav", [sine(440, 0.5, 8000)], 8000, 2)
    with (
        sipp_peer(tmp_path, "uas_answer_record_route") as sipp,
        kamailio(tmp_path, sipp.sip_port) as proxy_port,
    ):
        async with sip_dialer(proxy_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.play(wav)
            await call.hangup()
            record = await call.wait_ended()
        code = await sipp.wait_async(30)
        assert code == 0, sipp.output()
        assert sipp.errors() == ""
    assert record.outcome is Outcome.ANSWERED and record.hangup_disposition == "send_bye"
    assert record.detail["rtp_packets_sent"] >= 20
    # sipp's message log: one block per message, each after a line of dashes
    blocks = sipp.message_file.read_text().split("\n----------")
    for method in ("ACK", "BYE"):
        received = [b for b in blocks if re.search(rf"^{method} sip:", b, flags=re.M)]
        assert received, blocks
        for message in received:  # a retransmitted 200 is ACKed again: every copy
            vias = re.findall(r"^Via: SIP/2.0/UDP ([\d.]+:\d+)", message, flags=re.M)
            assert len(vias) == 2 and vias[0] == f"{HOST}:{proxy_port}", (method, message)
