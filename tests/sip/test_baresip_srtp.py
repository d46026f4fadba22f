"""SRTP against another implementation: Debian's baresip with its ``srtp`` module and
``mediaenc=srtp-mand`` (RTP/SAVP, SDES keys), both ways over UDP signalling. baresip decodes
what ringback sends (its own recording must match the message) and plays a file of its own,
encrypted, which ringback's recording must match."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support_media import (
    HOST,
    best_correlation,
    chirp,
    floats,
    free_udp_ports,
    require_program,
    write_wav,
)
from support_sip import sip_dialer
from test_baresip import CONFIG, START_TIMEOUT_S, Baresip

from ringback.domain.model import Outcome
from ringback.telephony.base import CallRecord, OriginateRequest
from ringback.telephony.sip.audio import load_audio_pcm8k
from ringback.telephony.sip.call import SipCall
from support import stop_process

pytestmark = pytest.mark.slow  # runs baresip

CALL_TIMEOUT_S = 40.0
SUITE_80 = "AES_CM_128_HMAC_SHA1_80"
ANSWER = chirp(1.5, f0=2500.0, f1=400.0)  # what baresip sends: another sweep than ours


def start_baresip(tmp_path: Path, commands: list[str]) -> Baresip:
    """baresip with SRTP mandatory, sending ``ANSWER`` (a falling sweep) from a file."""
    exe = require_program("baresip", "baresip-core")
    config_dir, records = tmp_path / "baresip", tmp_path / "records"
    config_dir.mkdir()
    records.mkdir()
    sip_port = free_udp_ports()
    rtp_low = free_udp_ports(8, even=True)
    config = CONFIG.format(
        host=HOST, sip_port=sip_port, rtp_low=rtp_low, rtp_high=rtp_low + 7, records=records
    )
    wav = write_wav(tmp_path / "baresip.wav", [floats(ANSWER)], 8000, 2)
    config = config.replace("audio_source aubridge,line", f"audio_source aufile,{wav}")
    (config_dir / "config").write_text(
        config + "module aufile.so\nmodule srtp.so\nmodule_app menu.so\n"
    )
    (config_dir / "accounts").write_text(
        f"<sip:bob@{HOST}>;regint=0;answermode=auto;mediaenc=srtp-mand\n"
    )
    log = tmp_path / "baresip.log"
    extra = [arg for command in commands for arg in ("-e", command)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [exe, "-f", str(config_dir), "-t", "120", *extra], stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Baresip(process, sip_port, log, records)


@pytest.fixture
def message_wav(tmp_path: Path) -> tuple[bytes, Path]:
    message = chirp(2.0)
    return message, write_wav(tmp_path / "message.wav", [floats(message)], 8000, 2)


async def _play_and_check(
    call: SipCall, baresip: Baresip, message: bytes, wav: Path
) -> tuple[CallRecord, bytes]:
    session: Any = call.media
    session.start_recording(30.0)
    await call.play(wav)
    await asyncio.sleep(0.5)  # real time: the last frames of baresip's message arrive
    await call.hangup()
    record = await call.wait_ended()
    await asyncio.to_thread(baresip.wait_for, "terminated", 10.0)
    return record, session.recorded_pcm()


def _assert_heard_both_ways(
    record: CallRecord, baresip: Baresip, message: bytes, heard: bytes
) -> None:
    assert record.detail["srtp"] in (SUITE_80, "AES_CM_128_HMAC_SHA1_32")
    rtp = record.detail["rtp"]
    assert rtp["packets_sent"] >= 90 and rtp["packets_received"] > 0
    assert rtp["packets_unauthenticated"] == 0
    [decoded] = list(baresip.records.glob("dump-*-dec.wav"))
    assert best_correlation(message, load_audio_pcm8k(decoded)) >= 0.9  # baresip decrypted
    # and we authenticated and decrypted its message (its first frames may arrive before
    # our recording starts: the silence in front lets the match start before the recording)
    assert best_correlation(ANSWER, bytes(16000) + heard) >= 0.9


async def test_srtp_required_call_to_baresip_srtp_mand_is_heard_both_ways(
    tmp_path: Path, message_wav: tuple[bytes, Path]
) -> None:
    message, wav = message_wav
    baresip = start_baresip(tmp_path, [])
    try:
        await asyncio.to_thread(baresip.wait_for, "baresip is ready", START_TIMEOUT_S)
        async with (
            sip_dialer(baresip.sip_port, srtp="required") as dialer,
            asyncio.timeout(CALL_TIMEOUT_S),
        ):
            call = await dialer.originate(OriginateRequest("bob", "0501234000", call_uuid="s1"))
            assert await call.wait_answer() is Outcome.ANSWERED
            record, heard = await _play_and_check(call, baresip, message, wav)
        _assert_heard_both_ways(record, baresip, message, heard)
    finally:
        stop_process(baresip.process)


async def test_baresip_srtp_mand_call_to_a_required_inbound_handler_is_heard_both_ways(
    tmp_path: Path, message_wav: tuple[bytes, Path]
) -> None:
    message, wav = message_wav
    done: asyncio.Future[tuple[CallRecord, bytes]] = asyncio.get_running_loop().create_future()
    holder: list[Baresip] = []

    async def handler(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        try:
            done.set_result(await _play_and_check(call, holder[0], message, wav))
        except Exception as exc:
            done.set_exception(exc)

    async with sip_dialer(5060, on_inbound=handler, srtp="required") as dialer:
        baresip = start_baresip(tmp_path, [f"/dial sip:5550100@{HOST}:{dialer.port}"])
        holder.append(baresip)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                record, heard = await done
        finally:
            stop_process(baresip.process)
    assert record.outcome is Outcome.ANSWERED
    _assert_heard_both_ways(record, baresip, message, heard)
