"""Inbound calls through a registrar: ringback registers its number with Kamailio (registrar
and record-routing proxy, usrloc in memory), sipp calls that number at Kamailio, Kamailio
sends the INVITE to the registered Contact and the call reaches the number's IVR."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest
from support_kamailio import kamailio_registrar
from support_media import HOST, free_udp_ports
from support_sip import bounded, sipp_peer

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import Settings, SipSettings
from ringback.service.inbound import inbound_handler
from ringback.store.db import open_store
from ringback.telephony.sip.dialer import SipDialer

pytestmark = pytest.mark.slow  # runs kamailio and sipp

IVR = "<IVR><Play>beep.wav</Play></IVR>"


def _beep_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(1600))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


@bounded(90)
async def test_a_call_to_the_registered_aor_through_kamailio_reaches_the_numbers_ivr(
    tmp_path: Path,
) -> None:
    clock = SystemClock()
    store = await open_store(f"sqlite:///{tmp_path / 'rb.db'}", clock, migrate=True)
    storage = Storage(tmp_path / "storage")
    try:
        client = await store.ensure_client("acme", clock.now())
        storage.write_bytes(client, "hello.xml", IVR.encode())
        _beep_wav(storage.resolve(client, "beep.wav"))
        await store.put_number(
            client, "2001", answer_url=None, ivr_file="hello.xml", notify_completed=False,
            description="", now=clock.now(),
        )  # fmt: skip
        with kamailio_registrar(tmp_path) as registrar_port:
            rtp = free_udp_ports(8, even=True)
            settings = SipSettings(
                proxy_host=HOST, proxy_port=registrar_port, local_host=HOST, local_port=0,
                rtp_ports=(rtp, rtp + 7), register=True, register_users=("2001",),
                register_expires=300,
            )  # fmt: skip
            dialer = SipDialer(settings, clock)
            dialer.on_inbound = inbound_handler(
                store, storage, dialer, clock, Settings(storage_dir=tmp_path / "storage")
            )
            await dialer.start()
            try:
                [registration] = dialer.registrations
                while registration.status.registrations < 1:
                    registration.changed.clear()
                    assert registration.status.state != "failed", registration.status
                    await registration.changed.wait()
                assert registration.status.state == "registered"
                assert registration.status.granted_expires == 300
                target = f"{HOST}:{registrar_port}"
                with sipp_peer(
                    tmp_path, "uac_call_via_proxy", extra=[target, "-s", "2001"]
                ) as sipp:
                    code = await sipp.wait_async(30)
                    assert code == 0, sipp.output()
                    assert sipp.errors() == ""
            finally:
                await dialer.close()
        [leg] = await store.calls(client_id=client)
    finally:
        await store.close()
    assert leg.direction == "inbound" and leg.to_number == "2001"
    assert leg.from_number == "4915550100"
    assert leg.outcome == "answered" and leg.hangup_disposition == "send_bye"
    assert [p["type"] for p in leg.played] == ["play"], leg.played
