"""Inbound calls over SIP reach the IVR their called number is routed to (``/numbers/``).

sipp calls ringback's SIP port, presses 1 2 # (RFC 4733) and waits for ringback's BYE; the
number's IVR (a storage file) plays, collects the digits and branches on them; the call is kept
in the client's call history with its trace.
"""

from __future__ import annotations

from pathlib import Path

from support_media import require_program
from support_sip import sip_dialer, sipp_peer

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import Settings
from ringback.service.inbound import inbound_handler
from ringback.store.db import open_store

MENU = """<IVR>
  <GetDigits numDigits="5" finishOnKey="#" timeout="5" validDigits="0123456789">
    <Play>beep.wav</Play>
  </GetDigits>
  <Switch expr="Digits">
    <Case val="12"><Set var="choice" val="sales"/></Case>
    <Default><Set var="choice" val="other"/></Default>
  </Switch>
  <Play>beep.wav</Play>
</IVR>"""


def _beep_wav(path: Path) -> None:
    import math
    import struct
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(1600))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


async def test_a_sip_call_to_a_routed_number_runs_its_ivr_and_is_kept_with_the_trace(
    tmp_path: Path,
) -> None:
    require_program("sipp", "sip-tester")
    clock = SystemClock()
    store = await open_store(f"sqlite:///{tmp_path / 'rb.db'}", clock, migrate=True)
    storage = Storage(tmp_path / "storage")
    try:
        client = await store.ensure_client("acme", clock.now())
        storage.write_bytes(client, "menu.xml", MENU.encode())
        _beep_wav(storage.resolve(client, "beep.wav"))
        await store.put_number(
            client, "5550199", answer_url=None, ivr_file="menu.xml", notify_completed=False,
            description="", now=clock.now(),
        )  # fmt: skip
        async with sip_dialer(5060) as dialer:
            dialer.on_inbound = inbound_handler(
                store, storage, dialer, clock, Settings(storage_dir=tmp_path / "storage")
            )
            target = f"127.0.0.1:{dialer.port}"
            with sipp_peer(tmp_path, "uac_call_dtmf", extra=[target, "-s", "5550199"]) as sipp:
                code = await sipp.wait_async(30)
                assert code == 0, sipp.output()
                assert sipp.errors() == ""
        [leg] = await store.calls(client_id=client)
    finally:
        await store.close()
    assert leg.direction == "inbound" and leg.task_id is None
    assert leg.from_number == "4915550100" and leg.to_number == "5550199"
    assert leg.outcome == "answered" and leg.hangup_disposition == "send_bye"
    assert leg.dtmf_received.startswith("12")
    trace = leg.detail["ivr_trace"]
    assert any("GetDigits" in line and "'12'" in line for line in trace), trace
    assert any("Set: choice = 'sales'" in line for line in trace), trace
    assert [p["type"] for p in leg.played].count("play") >= 2, leg.played


async def test_a_sip_call_to_a_number_nobody_routes_is_refused_and_not_kept(
    tmp_path: Path,
) -> None:
    require_program("sipp", "sip-tester")
    clock = SystemClock()
    store = await open_store(f"sqlite:///{tmp_path / 'rb.db'}", clock, migrate=True)
    try:
        await store.ensure_client("acme", clock.now())
        async with sip_dialer(5060) as dialer:
            dialer.on_inbound = inbound_handler(
                store, Storage(tmp_path / "s"), dialer, clock, Settings(storage_dir=tmp_path)
            )
            target = f"127.0.0.1:{dialer.port}"
            with sipp_peer(tmp_path, "uac_call_refused", extra=[target, "-s", "5550000"]) as sipp:
                code = await sipp.wait_async(30)
                assert code == 0, sipp.output()
                assert sipp.errors() == ""
        assert await store.calls() == []
    finally:
        await store.close()
