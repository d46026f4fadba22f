"""The sip dialer against sipp on 127.0.0.1, one strict scenario per test (tests/sip/scenarios).

Each test checks ringback's view of the call (outcome, raw SIP code, hangup disposition) and
sipp's: it exits 0 only when every message it expected (ACKs, CANCEL, BYE…) came in the right
order, and its error log stays empty.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from support_media import require_program, sine, write_wav
from support_sip import bounded, request, sip_dialer, sipp_peer

from ringback.domain.model import Outcome
from ringback.telephony.base import CallError, CallRecord
from ringback.telephony.sip.call import SipCall

pytestmark = pytest.mark.slow


@bounded(90)
async def test_answered_call_plays_a_wav_collects_rfc4733_digits_12_and_ends_with_bye(
    tmp_path: Path,
) -> None:
    wav = write_wav(tmp_path / "prompt.wav", [sine(440, 1.0, 16000)], 16000, 2)
    with sipp_peer(tmp_path, "uas_answer_dtmf") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.play(wav)
            digits = await call.collect_digits(max_digits=5, timeout_s=5.0, finish_on_key="#")
            await call.wait(1.0)  # sipp pauses after its last digit before it takes a BYE
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()
    assert digits == "12"
    assert record.dtmf_received == "12"
    assert record.outcome is Outcome.ANSWERED
    assert record.sip_code == 200
    assert record.hangup_disposition == "send_bye"
    assert record.ringing_at is not None and record.answered_at is not None
    assert record.played[0]["type"] == "play" and record.played[0]["seconds"] == 1.0
    assert record.detail["codec"] == "PCMU"
    assert record.detail["rtp_packets_sent"] >= 50  # 1 s of audio, 20 ms per packet
    assert record.detail["rtp_packets_received"] > 0
    assert record.detail["bye_response"] == 200


@bounded(90)
async def test_486_is_busy_keeps_the_raw_code_and_is_acked(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_busy") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.BUSY
            record = await call.wait_ended()
        await sipp.passed()  # sipp fails the call without the ACK
    assert record.sip_code == 486
    assert record.hangup_cause == "USER_BUSY"
    assert record.hangup_disposition == "recv_refuse"
    assert record.answered_at is None


@bounded(90)
async def test_ring_timeout_cancels_and_the_487_is_no_answer(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_noanswer") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request(ring_timeout_s=1.0))
            assert await call.wait_answer() is Outcome.NO_ANSWER
            record = await call.wait_ended()
        await sipp.passed()
    assert record.sip_code == 487
    assert record.hangup_disposition == "send_cancel"
    assert record.ringing_at is not None
    assert record.ended_at is not None
    assert 0.9 <= (record.ended_at - record.started_at).total_seconds() < 5


@bounded(90)
async def test_hangup_while_ringing_cancels_and_is_canceled(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_noanswer") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request(ring_timeout_s=30.0))
            for _ in range(100):
                if call.record.ringing_at is not None:
                    break
                await asyncio.sleep(0.05)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()
    assert record.outcome is Outcome.CANCELED
    assert (record.sip_code, record.hangup_cause) == (487, "ORIGINATOR_CANCEL")


@bounded(90)
async def test_401_challenge_is_acked_then_answered_with_digest_credentials(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_auth") as sipp:
        async with sip_dialer(sipp.sip_port, username="alice", password="s3cret") as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # strict: the 401's ACK before the new INVITE, then 200
    assert record.sip_code == 200
    messages = sipp.message_file.read_text()
    cseqs = [int(n) for n in re.findall(r"CSeq: (\d+) INVITE", messages)]
    assert len(set(cseqs)) == 2 and max(cseqs) == min(cseqs) + 1  # new CSeq for the retry


@bounded(90)
async def test_401_with_wrong_password_ends_rejected_by_the_403(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_auth") as sipp:
        async with sip_dialer(sipp.sip_port, username="alice", password="wrong") as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.REJECTED
            record = await call.wait_ended()
        await sipp.passed()
    assert record.sip_code == 403


@bounded(90)
async def test_503_is_failed_and_acked(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_503") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.FAILED
            record = await call.wait_ended()
        await sipp.passed()
    assert (record.sip_code, record.hangup_cause) == (503, "NORMAL_TEMPORARY_FAILURE")


@bounded(90)
async def test_remote_bye_ends_the_call_and_media_calls_then_fail(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_answer_remote_bye") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            with pytest.raises(CallError, match="far end hung up"):
                await call.wait(10.0)  # the far end hangs up 3 s after answering
            record = await call.wait_ended()
        await sipp.passed()
    assert record.outcome is Outcome.ANSWERED
    assert record.hangup_disposition == "recv_bye"
    assert record.hangup_cause == "NORMAL_CLEARING"


@bounded(90)
async def test_invite_is_retransmitted_on_timer_a_until_a_response(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_retransmit_busy") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.BUSY
        await sipp.passed()
    branches = re.findall(
        r"^INVITE .*?branch=(z9hG4bK\w+)", sipp.message_file.read_text(), flags=re.M | re.S
    )
    # sent at 0, 0.5, 1.5 and 3.5 s: the 486 comes at 3.8 s
    assert len(branches) == 4, branches
    assert len(set(branches)) == 1  # retransmissions, not new transactions


@bounded(90)
async def test_a_sip_fax_nobody_answers_is_dropped_when_its_time_is_up_and_needs_the_call_up(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_answer") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            received = await call.receive_fax(1.0, name="in.tif")  # sipp sends no audio
            assert (received.result.code, received.result.pages, received.tiff) == (49, 0, b"")
            assert received.result.audio_seconds == pytest.approx(1.0, abs=0.03)
            await call.hangup()
            with pytest.raises(CallError):
                await call.send_fax(tmp_path / "fax.tif")
        await sipp.passed()
    [fax] = call.record.played
    assert fax == {
        "type": "fax", "operation": "reception", "file": "in.tif", "pages": 0, "code": 49,
        "text": "The call dropped prematurely", "seconds": received.result.audio_seconds,
        "transport": "g711",
    }  # fmt: skip


@bounded(90)
async def test_inbound_call_from_sipp_is_answered_collects_digits_and_hung_up_by_us(
    tmp_path: Path,
) -> None:
    seen: list[tuple[str, str, str]] = []

    async def ivr(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        digits = await call.collect_digits(max_digits=4, timeout_s=5.0)
        seen.append((called, calling, digits))

    async with sip_dialer(5060, on_inbound=ivr) as dialer:
        target = f"127.0.0.1:{dialer.port}"
        with sipp_peer(tmp_path, "uac_call_dtmf", extra=[target, "-s", "5550199"]) as sipp:
            await sipp.passed()
    assert seen == [("5550199", "4915550100", "12")]


@bounded(90)
async def test_an_inbound_offer_of_video_audio_and_image_is_answered_line_for_line(
    tmp_path: Path,
) -> None:  # sipp checks the answer: m=video 0, m=audio taken, m=image 0, in that order
    answered: list[str] = []

    async def ivr(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        answered.append(called)

    async with sip_dialer(5060, on_inbound=ivr) as dialer:
        target = f"127.0.0.1:{dialer.port}"
        with sipp_peer(tmp_path, "uac_call_video_offer", extra=[target, "-s", "5550199"]) as sipp:
            await sipp.passed()
    assert answered == ["5550199"]


def test_sine_helper_is_audible() -> None:  # guards the WAV the answer test plays
    assert float(np.max(np.abs(sine(440, 0.1, 8000)))) > 0.4


@bounded(90)
async def test_in_dialog_reinvite_update_options_info_are_answered_and_route_is_used(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_in_dialog_requests") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            record = await call.wait_ended()  # sipp hangs up after its requests
        await sipp.passed()  # sipp checks the ACK's Route and the re-INVITE's SDP
    assert record.hangup_disposition == "recv_bye"
    assert record.detail["codec"] == "PCMA"  # the re-INVITE moved the call to PCMA
    assert record.detail["sip_info_dtmf"] == "5"
    messages = sipp.message_file.read_text()
    assert re.search(r"^Route: <sip:127\.0\.0\.1:\d+;lr>", messages, flags=re.M)


@bounded(90)
async def test_a_2xx_racing_the_cancel_is_acked_then_hung_up_with_bye(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_answer_races_cancel") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request(ring_timeout_s=0.5))
            assert await call.wait_answer() is Outcome.NO_ANSWER
            record = await call.wait_ended()
        await sipp.passed()
    assert record.sip_code == 200
    assert record.hangup_disposition == "send_bye"
    assert record.detail["answered_while_canceling"] is True
    assert record.answered_at is None


@bounded(90)
async def test_speak_and_park_send_audio_and_are_recorded(tmp_path: Path) -> None:
    require_program("espeak-ng", "espeak-ng")
    with sipp_peer(tmp_path, "uas_answer") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.speak("Hello", language="en")
            await call.park(1.0)  # a beep, then silence: returns when the time is up
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()
    speak, park = record.played
    assert speak["type"] == "speak" and speak["seconds"] > 0.2
    assert park == {"type": "park", "music": None, "seconds": 1.0}
    spoken_packets = speak["seconds"] * 50
    assert record.detail["rtp_packets_sent"] >= spoken_packets + 45  # + 1 s of park


@bounded(90)
async def test_bridge_relays_media_both_ways_until_one_leg_hangs_up(tmp_path: Path) -> None:
    with (
        sipp_peer(tmp_path, "uas_answer_play") as sipp_a,
        sipp_peer(tmp_path, "uas_answer_remote_bye", extra=["-rtp_echo"]) as sipp_b,
    ):
        async with sip_dialer(sipp_a.sip_port) as trunk_a, sip_dialer(sipp_b.sip_port) as trunk_b:
            a = await trunk_a.originate(request())
            assert await a.wait_answer() is Outcome.ANSWERED
            b = await trunk_b.originate(request("5550111"))
            assert await b.wait_answer() is Outcome.ANSWERED
            await a.bridge(b)  # B hangs up 3 s after answering
            record_a, record_b = await a.wait_ended(), await b.wait_ended()
        await sipp_a.passed()
        await sipp_b.passed()
    assert record_a.bridged_with == record_b.leg_uuid
    assert record_b.bridged_with == record_a.leg_uuid
    assert record_b.hangup_disposition == "recv_bye"
    assert record_a.hangup_disposition == "send_bye"
    assert record_a.bridged_duration_s is not None and record_a.bridged_duration_s > 1.0
    # A plays PCMA into the bridge, B echoes it back: packets flowed on both legs
    assert record_a.detail["rtp_packets_received"] > 50
    assert record_b.detail["rtp_packets_received"] > 50
    assert record_a.detail["rtp"]["packets_relayed"] > 50
    assert record_b.detail["rtp"]["packets_relayed"] > 50


@bounded(90)
async def test_inbound_call_canceled_by_the_caller_gets_487_and_is_canceled(
    tmp_path: Path,
) -> None:
    records: list[CallRecord] = []

    async def ring_forever(call: SipCall, called: str, calling: str) -> None:
        records.append(await call.wait_ended())

    async with sip_dialer(5060, on_inbound=ring_forever) as dialer:
        target = f"127.0.0.1:{dialer.port}"
        with sipp_peer(tmp_path, "uac_call_cancel", extra=[target, "-s", "5550199"]) as sipp:
            await sipp.passed()
    [record] = records
    assert (record.outcome, record.sip_code) == (Outcome.CANCELED, 487)
    assert record.hangup_disposition == "recv_cancel"
    assert record.direction == "inbound" and record.ringing_at is not None


@bounded(90)
async def test_407_proxy_challenge_is_answered_with_proxy_authorization(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_proxy_auth") as sipp:
        async with sip_dialer(sipp.sip_port, username="alice", password="s3cret") as dialer:
            call = await dialer.originate(request())
            outcome = await call.wait_answer()
            await call.hangup()
        await sipp.passed()
    assert outcome is Outcome.ANSWERED
    header = re.search(r"^Proxy-Authorization: Digest (.*)$", sipp.message_file.read_text(), re.M)
    assert header is not None
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header.group(1)))
    ha1 = hashlib.md5(b"alice:sipeval:s3cret").hexdigest()
    ha2 = hashlib.md5(f"INVITE:{fields['uri']}".encode()).hexdigest()
    expected = f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}"
    assert fields["response"] == hashlib.md5(expected.encode()).hexdigest()
    *_, ack_of_2xx = re.findall(r"^ACK sip:.*?\n\n", sipp.message_file.read_text(), re.M | re.S)
    assert "Proxy-Authorization: Digest" in ack_of_2xx  # the INVITE's credentials
