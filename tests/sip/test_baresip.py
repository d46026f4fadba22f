"""Another SIP implementation: Debian's baresip answers a ringback call by itself, hears the
message (its own recording of what it decoded matches what was sent) and the RFC 4733 keys."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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

from ringback.domain.model import Outcome
from ringback.telephony.base import OriginateRequest
from ringback.telephony.sip.audio import load_audio_pcm8k
from support import stop_process

pytestmark = pytest.mark.slow  # runs baresip

START_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 30.0

CONFIG = """poll_method epoll
sip_listen {host}:{sip_port}
net_interface {host}
rtp_ports {rtp_low}-{rtp_high}
audio_player aubridge,line
audio_source aubridge,line
audio_alert aubridge,line
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module sndfile.so
module_app account.so
snd_path {records}
"""


@dataclass
class Baresip:
    process: subprocess.Popen[bytes]
    sip_port: int
    log: Path
    records: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"baresip exited: {self.output()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"baresip never said {text!r}: {self.output()[-2000:]}")
            time.sleep(0.05)


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Baresip]:
    exe = require_program("baresip", "baresip-core")
    config_dir, records = tmp_path / "baresip", tmp_path / "records"
    config_dir.mkdir()
    records.mkdir()
    sip_port = free_udp_ports()
    rtp_low = free_udp_ports(8, even=True)
    (config_dir / "config").write_text(
        CONFIG.format(
            host=HOST, sip_port=sip_port, rtp_low=rtp_low, rtp_high=rtp_low + 7, records=records
        )
    )
    (config_dir / "accounts").write_text(f"<sip:bob@{HOST}>;regint=0;answermode=auto\n")
    log = tmp_path / "baresip.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [exe, "-f", str(config_dir), "-t", "120"], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    running = Baresip(process, sip_port, log, records)
    try:
        running.wait_for("baresip is ready", START_TIMEOUT_S)
        yield running
    finally:
        stop_process(process)


async def test_baresip_answers_by_itself_and_hears_the_message_and_the_keys(
    baresip: Baresip, tmp_path: Path
) -> None:
    message = chirp(2.0)
    wav = write_wav(tmp_path / "message.wav", [floats(message)], 8000, 2)
    async with sip_dialer(baresip.sip_port) as dialer, asyncio.timeout(CALL_TIMEOUT_S):
        call = await dialer.originate(OriginateRequest("bob", "0501234000", call_uuid="c1"))
        assert await call.wait_answer() is Outcome.ANSWERED
        await call.play(wav)
        await call.send_dtmf("159#")
        await call.hangup()
        record = await call.wait_ended()
    await asyncio.to_thread(baresip.wait_for, "terminated", 10.0)
    assert record.sip_code == 200 and record.hangup_disposition == "send_bye"
    rtp = record.detail["rtp"]
    assert rtp["packets_sent"] >= 100 and rtp["packets_received"] > 0  # baresip talks back
    [decoded] = list(baresip.records.glob("dump-*-dec.wav"))
    heard = load_audio_pcm8k(decoded)
    assert best_correlation(message, heard) >= 0.9
    events = [line for line in baresip.output().splitlines() if "received event" in line]
    assert "".join(line.split("'")[1] for line in events if "end=0" in line) == "159#"
