"""Helpers for the SIP media tests: WAV writing, signal comparison, required programs."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import subprocess
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from aiortp.codecs import PcmaCodec, PcmuCodec

from support import REQUIRE_SIPP as REQUIRE_SIPP  # re-exported for the SIP tests
from support import require_program as require_program
from support import stop_process


def sine(freq_hz: float, seconds: float, rate: int, level: float = 0.5) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * rate)) / rate
    return level * np.sin(2 * np.pi * freq_hz * t)


def chirp(seconds: float, rate: int = 8000, f0: float = 300.0, f1: float = 3000.0) -> bytes:
    """A frequency sweep as s16le: unlike a pure tone, it correlates at one lag only."""
    t = np.arange(round(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return to_s16le(0.5 * np.sin(phase))


def to_s16le(samples: npt.NDArray[np.float64]) -> bytes:
    return np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()


def floats(pcm: bytes) -> npt.NDArray[np.float64]:
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0


def write_wav(
    path: Path, channels_data: list[npt.NDArray[np.float64]], rate: int, width: int
) -> Path:
    """A PCM WAV with one float array per channel, `width` bytes per sample (1-4)."""
    frames = np.stack(channels_data, axis=1).reshape(-1)
    if width == 1:
        raw = np.clip(np.round(frames * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.clip(np.round(frames * (2**23 - 1)), -(2**23), 2**23 - 1).astype("<i4")
        raw = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        scale = 2 ** (8 * width - 1) - 1
        raw = np.clip(np.round(frames * scale), -scale - 1, scale).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels_data))
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)
    return path


def write_float_wav(path: Path, samples: npt.NDArray[np.float64], rate: int) -> Path:
    """An IEEE-float WAV (format tag 3): valid audio, but not PCM."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def best_correlation(sent: bytes, received: bytes) -> float:
    """Peak normalised cross-correlation of `sent` found inside `received` (1.0 = identical)."""
    a = floats(sent)
    b = floats(received)
    if len(a) == 0 or len(b) == 0:
        return 0.0
    n = 1 << (len(a) + len(b)).bit_length()
    spectrum = np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n))
    corr = np.fft.irfft(spectrum, n)[: len(b)]
    lag = int(np.argmax(corr))
    seg = b[lag : lag + len(a)]
    ref = a[: len(seg)]
    denom = float(np.sqrt(np.sum(ref * ref) * np.sum(seg * seg)))
    return float(np.sum(ref * seg) / denom) if denom else 0.0


def dominant_hz(pcm: bytes, rate: int = 8000) -> float:
    x = floats(pcm)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def rms(pcm: bytes) -> float:
    x = floats(pcm)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


# ---------------------------------------------------------------- sipp, ports, pcaps

SIPP_SHARE = Path("/usr/share/sip-tester")
HOST = "127.0.0.1"


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (where outgoing connections get theirs)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_udp_ports(count: int = 1, step: int = 1, even: bool = False) -> int:
    """A base port with `count` ports (base, base+step, …) free for UDP and TCP on 127.0.0.1,
    below the kernel's ephemeral range: a port picked inside it can be handed to another
    test's outgoing connection (a database client's, say) before the process under test
    binds it (seen in CI: a SIP dialer's TCP listener refused, its port in use)."""
    top = _ephemeral_start() - count * step - 2
    low, high = (10000, top) if top > 12000 else (30000, 60000)
    for _ in range(200):
        base = random.randrange(low, high)
        if even:
            base -= base % 2
        sockets: list[socket.socket] = []
        try:
            for i in range(count):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    sockets.append(s)
                    s.bind((HOST, base + i * step))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free UDP ports found")


@dataclass
class Sipp:
    """One sipp process, started from a scenario text, stopped by its PID."""

    scenario: str
    workdir: Path
    name: str = "uas"
    calls: int = 1
    rtp_echo: bool = False
    extra: list[str] = field(default_factory=list)
    sip_port: int = 0
    media_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def error_file(self) -> Path:
        return self.workdir / f"{self.name}.err.log"

    @property
    def message_file(self) -> Path:
        return self.workdir / f"{self.name}.msg.log"

    def start(self, timeout_s: float = 60.0) -> Sipp:
        exe = require_program("sipp", "sip-tester")
        self.workdir.mkdir(parents=True, exist_ok=True)
        scenario = self.workdir / f"{self.name}.xml"
        scenario.write_text(self.scenario)
        self.sip_port = self.sip_port or free_udp_ports()
        self.media_port = self.media_port or free_udp_ports(4, even=True)
        cmd = [
            exe, "-sf", str(scenario), "-i", HOST, "-p", str(self.sip_port),
            "-mi", HOST, "-mp", str(self.media_port), "-m", str(self.calls),
            "-nostdin", "-timeout", f"{timeout_s:.0f}s", "-timeout_error",
            "-trace_err", "-error_file", str(self.error_file),
            "-trace_msg", "-message_file", str(self.message_file),
            *(["-rtp_echo"] if self.rtp_echo else []), *self.extra,
        ]  # fmt: skip
        out = (self.workdir / f"{self.name}.out").open("wb")
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=self.workdir, start_new_session=True,
        )  # fmt: skip
        out.close()
        time.sleep(0.3)  # sipp binds its sockets before it reads the first datagram
        if self.process.poll() is not None:
            raise RuntimeError(f"sipp exited at once: {self.output()}")
        return self

    def output(self) -> str:
        path = self.workdir / f"{self.name}.out"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def errors(self) -> str:
        """What sipp reported as errors, less the events that say nothing about the peer: its
        own watchdog's overload warnings (the machine was busy) and a final response arriving
        after its call ended successfully (a UAS retransmits its final response until the ACK
        reaches it, RFC 3261 17.2.1; on a loaded machine the ACK can take longer than T1)."""
        if not self.error_file.exists():
            return ""
        text = self.error_file.read_text(errors="replace")
        events = re.split(r"(?m)^(?=\d{4}-\d{2}-\d{2}\t)", text)
        kept = [
            event for event in events[1:]
            if "Overload warning: the minor watchdog timer" not in event
            and not re.search(r"Dead call \S+ \(successful\), received 'SIP/2\.0 \d{3} ", event)
        ]  # fmt: skip
        return "".join(kept) if len(events) > 1 else text  # no event it knows: all of it

    async def passed(self, timeout_s: float = 30.0) -> None:
        """sipp ended with its scenario passed (exit 0) and no error it reported."""
        code = await self.wait_async(timeout_s)
        assert code == 0, self.output()
        assert self.errors() == ""

    def wait(self, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    async def wait_async(self, timeout_s: float = 30.0) -> int:
        return await asyncio.to_thread(self.wait, timeout_s)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def read_pcap_udp_payloads(path: Path) -> list[bytes]:
    """The UDP payloads of an Ethernet/IPv4 pcap file (sipp's bundled RTP captures)."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    offset = 24
    payloads = []
    while offset + 16 <= len(data):
        length = struct.unpack_from(order + "I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        ip = frame[14:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        payloads.append(udp[8:])
    return payloads


class RtpRecorder(asyncio.DatagramProtocol):
    """A plain UDP socket standing in for a phone's media port: keeps every RTP packet."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((time.monotonic(), data))

    @classmethod
    async def open(cls, port: int = 0) -> tuple[RtpRecorder, int]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(cls, local_addr=(HOST, port))
        return protocol, transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def audio_pcm(self) -> bytes:
        """The G.711 packets (PCMU or PCMA by payload type) decoded, in sequence order."""
        frames: dict[int, bytes] = {}
        first: int | None = None
        for _, data in self.packets:
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            pt = data[1] & 0x7F
            if pt not in (0, 8):
                continue
            seq = struct.unpack_from("!H", data, 2)[0]
            first = seq if first is None else first
            codec = PcmuCodec() if pt == 0 else PcmaCodec()
            frames[(seq - first) & 0xFFFF] = codec.decode(data[12:])
        return b"".join(frames[k] for k in sorted(frames))


# ---------------------------------------------------------------- sipp UAS scenarios

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <recv request="INVITE" crlf="true">{invite_action}</recv>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 53655765 2353687637 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio {media_port} RTP/AVP {formats} 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv

]]></send>
  <recv request="ACK" crlf="true">{ack_action}</recv>
"""

_WAIT_BYE = """  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <timewait milliseconds="500"/>
</scenario>
"""

_SEND_BYE = """  <send retrans="500"><![CDATA[
BYE [$rc] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From:[$lto]
To:[$rfrom]
[last_Call-ID:]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


_REMEMBER_CONTACT = (
    '<action><ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="rc"/></action>'
)
_REMEMBER_TAGS = (
    '<action><ereg regexp=".*" search_in="hdr" header="From:" assign_to="rfrom"/>'
    '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="lto"/></action>'
)


def _head(name: str, media_port: str, formats: str, sends_bye: bool = False) -> str:
    return _HEAD.format(
        name=name,
        media_port=media_port,
        formats=formats,
        invite_action=_REMEMBER_CONTACT if sends_bye else "",
        ack_action=_REMEMBER_TAGS if sends_bye else "",
    )


def _play(pcap: str) -> str:
    return f'  <nop><action><exec play_pcap_audio="{SIPP_SHARE / pcap}"/></action></nop>\n'


def uas_answer(media_port: str = "[media_port]", formats: str = "0 8") -> str:
    """Answers (media to `media_port`: sipp's own, or a recorder's), waits for the BYE."""
    return _head("answer", media_port, formats) + _WAIT_BYE


def uas_answer_dtmf(digits: list[str], delay_ms: int = 1000) -> str:
    """Answers, plays sipp's recorded RFC 4733 key presses `digits`, waits for the BYE."""
    body = f'  <pause milliseconds="{delay_ms}"/>\n'
    for digit in digits:
        body += _play(f"dtmf_2833_{digit}.pcap") + '  <pause milliseconds="400"/>\n'
    head = _head("answer dtmf", "[media_port]", "0 8")
    return head + body + _WAIT_BYE


def uas_answer_play_then_bye(seconds: float, formats: str = "0 8") -> str:
    """Answers, plays sipp's g711a.pcap (PCMA speech), hangs up after `seconds`."""
    head = _head("answer play bye", "[media_port]", formats, sends_bye=True)
    body = _play("g711a.pcap") + f'  <pause milliseconds="{round(seconds * 1000)}"/>\n'
    return head + body + _SEND_BYE


def uas_callback_pair(b_media_port: int, seconds: float) -> str:
    """Two calls through one sipp (the dialer's single trunk), told apart by the To user.

    `alice` (A) answers PCMU/PCMA, plays sipp's g711a.pcap (PCMA speech) and hangs up after
    `seconds`; `bob` (B) answers PCMA only with its media at `b_media_port` (the test's own
    RTP echo) and waits for the BYE.
    """
    answer_a = _HEAD.format(
        name="callback pair", media_port="[media_port]", formats="0 8",
        invite_action=(
            '<action><ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" '
            'assign_to="rc"/><ereg regexp="sip:bob@" search_in="hdr" header="To:" '
            'check_it="false" assign_to="isb"/></action>'
        ),
        ack_action=_REMEMBER_TAGS,
    ).replace("</recv>", '</recv>\n  <nop test="isb" next="b"/>', 1)  # fmt: skip
    body_a = _play("g711a.pcap") + f'  <pause milliseconds="{round(seconds * 1000)}"/>\n'
    bye_a = _SEND_BYE.replace('<recv response="200"/>', '<recv response="200" next="end"/>')
    bye_a = bye_a.replace("</scenario>\n", "")
    answer_b = _HEAD.split("<send><![CDATA[", 1)[1].format(
        media_port=b_media_port, formats="8", ack_action=""
    )
    wait_b = _WAIT_BYE.replace("</scenario>\n", "")
    return (
        answer_a + body_a + bye_a + '  <label id="b"/>\n  <send><![CDATA[' + answer_b + wait_b
        + '  <label id="end"/>\n</scenario>\n'
    )  # fmt: skip


class RtpEcho(RtpRecorder):
    """A far-end phone that says back everything it hears (to the address it came from)."""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        super().datagram_received(data, addr)
        if self.transport is not None:
            self.transport.sendto(data, addr)
