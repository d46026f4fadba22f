"""RTP media for SIP calls: G.711 sending paced at 20 ms, RFC 4733 DTMF both ways, recording,
and A↔B bridging that relays media and transcodes PCMU↔PCMA when the legs differ.

One `RtpSession` per call leg. It binds an even UDP port (and the odd RTCP port above it, whose
datagrams are read and dropped) before the SDP offer goes out, and is `connect`ed to the remote
address and codec from the SDP answer (again after a re-INVITE).

Pacing: every session that is playing is driven by one shared 20 ms clock per event loop, so
150 calls cost one timer wake-up per frame, not 150. The clock works on absolute deadlines:
a late wake-up sends the missed frames at once rather than drifting, and RTP timestamps follow
the media clock (wall time since the session opened), so silence between prompts appears as a
timestamp jump as RFC 3550 expects.

The G.711 tables come from aiortp (`PcmuCodec`, `PcmaCodec`), applied a second of a prompt at
a time (:mod:`.rtp_frames`); the RTP header is packed and parsed here, in a few struct calls,
and sent on the socket itself, because this is the per-packet hot path; every session's socket
is read in one batch per loop (:func:`.rtp_socket.receive_batched`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from typing import Any, Protocol

from aiortp.codecs import PcmaCodec, PcmuCodec
from aiortp.codecs.base import Codec

from ringback.telephony.pacing import Ticker, ticker
from ringback.telephony.sip.rtp_frames import (
    DTMF_DIGITS,
    FRAME_SAMPLES,
    EventReceiver,
    Playback,
    Recording,
)
from ringback.telephony.sip.rtp_socket import (
    MediaError,
    Receiver,
    bind_pair,
    receive_batched,
    stop_receiving,
    unspecified,
)
from ringback.telephony.sip.srtp import SrtpContext, SrtpError

log = logging.getLogger(__name__)

RATE = 8000
FRAME_MS = 20
FRAME_S = FRAME_MS / 1000
# A media clock that falls this far behind (a blocked event loop) starts again from now
# instead of sending the whole backlog in one burst.
MAX_CATCH_UP_S = 0.2
DTMF_TONE_MS = 100
DTMF_GAP_MS = 60
DTMF_VOLUME = 10  # -dBm0
MAX_RECORD_S = 3600.0

_RTP_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
_CODECS: dict[str, Codec] = {"PCMU": PcmuCodec(), "PCMA": PcmaCodec()}
_STATIC_PT = {0: "PCMU", 8: "PCMA"}


class FrameDriver(Protocol):
    """Takes over a session's media for a while (a fax, :mod:`.fax_media`): one call of
    :meth:`tick` per 20 ms of the shared media clock, every G.711 payload received."""

    finished: asyncio.Future[None]

    def tick(self, deadline: float) -> bool: ...  # False: finished

    def on_audio(self, codec: str, payload: bytes, seq: int, ssrc: int) -> None: ...

    def stop(self, error: Exception | None = None) -> None: ...


def _clock() -> Ticker:
    """The loop's RTP ticker (:mod:`ringback.telephony.pacing`)."""
    return ticker("rtp-media-clock", MAX_CATCH_UP_S)


# ---------------------------------------------------------------- the session


class RtpSession:
    """One leg's RTP stream: send (paced G.711, RFC 4733), receive (digits, recording), relay."""

    def __init__(
        self,
        host: str,
        port: int,
        rtp: asyncio.DatagramTransport,
        rtcp: asyncio.DatagramTransport,
        sock: socket.socket | None = None,
    ) -> None:
        self.local_host = host
        self.local_port = port
        self._rtp = rtp
        self._rtcp = rtcp
        # rtp's socket: sent on directly while the transport has nothing queued (see _send)
        self._sock = sock
        self._tx_queued = False
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._ts_base = random.getrandbits(32)
        self._ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._remote: tuple[str, int] | None = None
        self._codec_name = "PCMU"
        self._codec: Codec = _CODECS["PCMU"]
        self._pt = 0
        self._dtmf_pt: int | None = None
        self._on_hold = False
        self._closed = False
        # SRTP (srtp.py) and symmetric RTP: latch onto the source of the first valid packet
        self._srtp: SrtpContext | None = None
        self.symmetric = True
        self._latched = False
        self._latched_to: tuple[str, int] | None = None
        self._packets_unauthenticated = 0
        # playing
        self._play_lock = asyncio.Lock()
        self._playback: Playback | None = None
        self._play_done: asyncio.Future[None] | None = None
        self._play_marker = False
        self._driver: FrameDriver | None = None
        # receiving
        self._events = EventReceiver()
        self._recording: Recording | None = None
        # bridging
        self._peer: RtpSession | None = None
        self._relay_ssrc: int | None = None
        self._relay_offset = 0
        # counters
        self._packets_sent = 0
        self._bytes_sent = 0
        self._packets_received = 0
        self._bytes_received = 0
        self._packets_relayed = 0
        self._packets_invalid = 0
        self._packets_ignored = 0
        self._dtmf_sent = ""
        self._codecs_received: set[str] = set()
        self._first_packet_at: float | None = None
        self._send_times: list[float] | None = None
        self._last_packet_at: float | None = None

    # ------------------------------------------------------------ life cycle

    @classmethod
    async def open(cls, host: str, port_range: tuple[int, int]) -> RtpSession:
        """Bind an even UDP port from `port_range` (inclusive) on `host` (and RTCP above it)."""
        loop = asyncio.get_running_loop()
        rtp_sock, rtcp_sock = bind_pair(host, port_range)
        port = rtp_sock.getsockname()[1]
        receiver = Receiver(None)
        try:
            rtp, _ = await loop.create_datagram_endpoint(lambda: receiver, sock=rtp_sock)
            rtcp, _ = await loop.create_datagram_endpoint(lambda: Receiver(None), sock=rtcp_sock)
        except BaseException:
            rtp_sock.close()
            rtcp_sock.close()
            raise
        session = cls(host, port, rtp, rtcp, rtp_sock)
        if not receive_batched(rtp, rtp_sock, session._on_datagram):
            receiver.deliver_to(session._on_datagram)
        return session

    def connect(
        self,
        remote: tuple[str, int],
        codec: str,
        payload_type: int,
        dtmf_payload_type: int | None,
    ) -> None:
        """Send to `remote` in `codec` ("PCMU" | "PCMA"); call again after a re-INVITE."""
        name = codec.upper()
        if name not in _CODECS:
            raise ValueError(f"codec {codec!r} is not supported (PCMU and PCMA only)")
        if not 0 <= payload_type <= 127:
            raise ValueError(f"invalid RTP payload type {payload_type}")
        if dtmf_payload_type is not None and not 0 <= dtmf_payload_type <= 127:
            raise ValueError(f"invalid telephone-event payload type {dtmf_payload_type}")
        host, port = remote
        if not 0 < port <= 65535:
            raise ValueError(f"invalid remote RTP port {port}")
        self._remote = (host, port)
        self._latched = False
        # c=0.0.0.0 (RFC 2543 hold): send nothing; the OS would deliver it to this machine
        self._on_hold = unspecified(host)
        self._codec_name = name
        self._codec = _CODECS[name]
        self._pt = payload_type
        self._dtmf_pt = dtmf_payload_type

    def secure(self, context: SrtpContext | None) -> None:
        """Protect what is sent and check what is received with ``context`` (None: plain)."""
        self._srtp = context

    @property
    def connected(self) -> bool:
        return self._remote is not None and not self._closed

    @property
    def codec(self) -> str:
        return self._codec_name

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.unbridge()
        _clock().discard(self)
        self._finish_play()
        if self._driver is not None:
            self._driver.stop()
        if self._sock is not None:
            stop_receiving(self._loop, self._sock)
        self._rtp.close()
        self._rtcp.close()
        await asyncio.sleep(0)  # a yield: lets the transports close

    # ------------------------------------------------------------ sending

    def now_ts(self, at: float | None = None) -> int:
        """The RTP timestamp of the event loop's time ``at`` (now by default)."""
        when = self._loop.time() if at is None else at
        return (self._ts_base + round((when - self._t0) * RATE)) & 0xFFFFFFFF

    def _send(self, pt: int, payload: bytes, ts: int, marker: bool) -> None:
        remote = self._remote
        if remote is None or self._closed or self._on_hold:
            return
        seq = self._seq
        packet = (
            _RTP_HEADER.pack(0x80, (0x80 if marker else 0) | pt, seq, ts & 0xFFFFFFFF, self._ssrc)
            + payload
        )
        self._seq = (seq + 1) & 0xFFFF
        if self._srtp is not None:
            packet = self._srtp.protect(packet)
        sock = self._sock
        # The socket itself, not the transport's sendto (its checks cost as much as the rest
        # of a packet), unless the transport holds packets the kernel could not take yet:
        # then behind them, in order, as the transport does on a full socket buffer.
        if sock is None or self._tx_queued:
            self._transport_send(packet, remote)
        else:
            try:
                sock.sendto(packet, remote)
            except (BlockingIOError, InterruptedError):
                self._transport_send(packet, remote)  # queued, sent once the socket is writable
            except OSError as exc:  # what the transport hands its protocol: logged, kept
                log.debug("rtp: socket error %s", exc)
        if self._send_times is not None:  # real time on purpose: it measures the pacing
            self._send_times.append(time.monotonic())
        self._packets_sent += 1
        self._bytes_sent += len(payload)

    def _transport_send(self, packet: bytes, remote: tuple[str, int]) -> None:
        self._rtp.sendto(packet, remote)
        queued = getattr(self._rtp, "get_write_buffer_size", None)
        self._tx_queued = self._sock is not None and callable(queued) and queued() > 0

    async def play_pcm(self, pcm: bytes) -> None:
        """Send s16le mono 8 kHz PCM as G.711, one packet every 20 ms; return after the last.

        Cancelling stops the playback at the next frame. Plays on one session run one after
        the other. The last frame is padded with silence.
        """
        async with self._play_lock:
            self._require_connected()
            if not pcm:
                return
            self._playback = Playback(pcm)
            self._play_marker = True
            done: asyncio.Future[None] = self._loop.create_future()
            self._play_done = done
            clock = _clock()
            clock.add(self)
            try:
                await done
            finally:
                clock.discard(self)
                self._playback = None
                self._play_done = None

    async def drive(self, driver: FrameDriver) -> None:
        """Hand the media clock's ticks and the G.711 received to ``driver`` (instead of the
        playback, recording and relay paths) until it is finished; plays wait meanwhile."""
        async with self._play_lock:
            self._require_connected()
            self._driver = driver
            clock = _clock()
            clock.add(self)
            try:
                await driver.finished
            finally:
                clock.discard(self)
                self._driver = None

    def send_audio(self, payload: bytes, ts: int, marker: bool) -> None:
        self._send(self._pt, payload, ts, marker)  # in the negotiated codec: a driver's output

    def tick(self, deadline: float) -> bool:
        """Send the next frame of the current playback; False when there is nothing more."""
        if self._driver is not None:
            return self._driver.tick(deadline)
        done = self._play_done
        playback = self._playback
        if done is None or done.done() or playback is None:
            return False
        if self._closed or self._remote is None:
            done.set_result(None)
            return False
        frame = playback.next_frame(self._codec)
        self._send(self._pt, frame, self.now_ts(deadline), self._play_marker)
        self._play_marker = False
        if playback.finished:
            done.set_result(None)
            return False
        return True

    def tick_failed(self, exc: Exception) -> None:
        if self._driver is not None:
            self._driver.stop(exc)
        if self._play_done is not None and not self._play_done.done():
            self._play_done.set_exception(exc)

    def _finish_play(self) -> None:
        if self._play_done is not None and not self._play_done.done():
            self._play_done.set_result(None)

    async def send_dtmf(self, digits: str) -> None:
        """Send `digits` as RFC 4733 telephone-events (100 ms each, 60 ms apart)."""
        bad = [d for d in digits if d.upper() not in DTMF_DIGITS]
        if bad:
            raise ValueError(f"not DTMF digits: {''.join(bad)!r} (allowed: {DTMF_DIGITS})")
        async with self._play_lock:
            self._require_connected()
            if self._dtmf_pt is None:
                raise MediaError(
                    "the remote party did not accept telephone-event: RFC 4733 DTMF is not "
                    "supported on this call"
                )
            for digit in digits.upper():
                await self._send_event(DTMF_DIGITS.index(digit))
                self._dtmf_sent += digit
                await asyncio.sleep(DTMF_GAP_MS / 1000)  # real time: the gap the far end hears

    async def _send_event(self, event: int) -> None:
        assert self._dtmf_pt is not None
        ts = self.now_ts()
        total = DTMF_TONE_MS * RATE // 1000
        duration = FRAME_SAMPLES
        first = True
        while duration < total:
            payload = _EVENT.pack(event, DTMF_VOLUME, duration)
            self._send(self._dtmf_pt, payload, ts, first)
            first = False
            duration += FRAME_SAMPLES
            await asyncio.sleep(FRAME_S)  # real time: an RFC 4733 update every 20 ms of media
        end = _EVENT.pack(event, 0x80 | DTMF_VOLUME, total)
        for _ in range(3):  # the end packet three times (RFC 4733 §2.5.1.4)
            self._send(self._dtmf_pt, end, ts, False)

    def _require_connected(self) -> None:
        if self._closed:
            raise MediaError("the RTP session is closed")
        if self._remote is None:
            raise MediaError("the RTP session is not connected to a remote address yet")

    # ------------------------------------------------------------ receiving

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            if self._srtp is not None:
                try:
                    data = self._srtp.unprotect(data)
                except SrtpError:  # forged, replayed or plain: neither heard nor latched onto
                    self._packets_unauthenticated += 1
                    return
            if not self._latched and self.symmetric and len(data) >= 12 and data[0] >> 6 == 2:
                self._latch(addr)
            self._receive(data)
        except Exception:  # a hostile datagram must never take the call down
            self._packets_invalid += 1
            log.debug("rtp: dropped a datagram from %s", addr, exc_info=True)

    def _receive(self, data: bytes) -> None:
        if self._closed:
            return
        if len(data) < 12:
            self._packets_invalid += 1
            return
        b0, b1, seq, ts, ssrc = _RTP_HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            self._packets_invalid += 1
            return
        pt = b1 & 0x7F
        if 72 <= pt <= 76:  # RTCP multiplexed on the RTP port (RFC 5761): not used
            self._packets_ignored += 1
            return
        start = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension
            if len(data) < start + 4:
                self._packets_invalid += 1
                return
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data)
        if b0 & 0x20:  # padding
            end -= data[-1]
        if start > end or (b0 & 0x20 and data[-1] == 0):
            self._packets_invalid += 1
            return
        payload = data[start:end]
        if self._remote is None:
            self._packets_ignored += 1
            return
        if pt == self._dtmf_pt:
            self._count_received(payload)
            if not self._events.on_event(payload, ts, ssrc):
                self._packets_invalid += 1
            peer = self._peer
            if peer is not None and peer._dtmf_pt is not None:
                peer._relay(peer._dtmf_pt, payload, ts, ssrc, bool(b1 & 0x80))
            return
        name = _STATIC_PT.get(pt) or (self._codec_name if pt == self._pt else None)
        if name is None:
            self._packets_ignored += 1  # comfort noise, codecs we did not offer
            return
        self._count_received(payload)
        self._codecs_received.add(name)
        if self._driver is not None:
            self._driver.on_audio(name, payload, seq, ssrc)
            return
        if self._recording is not None:
            self._recording.add(_CODECS[name].decode(payload), seq, ssrc)
        peer = self._peer
        if peer is not None:
            out = (
                payload
                if name == peer._codec_name
                else peer._codec.encode(_CODECS[name].decode(payload))
            )
            peer._relay(peer._pt, out, ts, ssrc, bool(b1 & 0x80))

    def _latch(self, addr: tuple[str, int]) -> None:
        """Symmetric RTP: send from now on to where the far end's media comes from (a far end
        behind NAT advertises an address it cannot be reached at)."""
        if self._remote is None or self._on_hold or self._closed:
            return
        self._latched = True
        source = (addr[0], addr[1])
        if source != self._remote:
            log.debug("rtp: latched onto %s:%s (SDP said %s)", *source, self._remote)
            self._remote = self._latched_to = source

    def _count_received(self, payload: bytes) -> None:
        now = self._loop.time()
        if self._first_packet_at is None:
            self._first_packet_at = now
        self._last_packet_at = now
        self._packets_received += 1
        self._bytes_received += len(payload)

    async def next_digit(self, timeout: float) -> str | None:  # noqa: ASYNC109 (the interface)
        """The next RFC 4733 digit received (oldest first), or None after `timeout` seconds."""
        digits = self._events.digits
        if not digits.empty():
            return digits.get_nowait()
        if self._closed:
            return None
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                return await digits.get()
        except TimeoutError:
            return None

    def clear_digits(self) -> None:
        digits = self._events.digits
        while not digits.empty():
            digits.get_nowait()

    # ------------------------------------------------------------ recording

    def start_recording(self, max_seconds: float = 600.0) -> None:
        """Keep the received audio (decoded to s16le 8 kHz), up to `max_seconds`."""
        if not 0 < max_seconds <= MAX_RECORD_S:
            raise ValueError(f"recording length must be in (0, {MAX_RECORD_S:.0f}] s")
        self._recording = Recording(int(max_seconds * RATE) * 2)

    def recorded_pcm(self) -> bytes:
        """The audio received since `start_recording`, lost packets filled with silence."""
        return bytes(self._recording.pcm) if self._recording is not None else b""

    def recorded_since(self, start: int) -> bytes:
        """The recorded audio from byte ``start`` on (a reader that follows the recording)."""
        return bytes(self._recording.pcm[start:]) if self._recording is not None else b""

    def stop_recording(self) -> None:
        self._recording = None

    # ------------------------------------------------------------ bridging

    def bridge(self, other: RtpSession) -> None:
        """Relay media both ways between this leg and `other`, transcoding when codecs differ.

        Audio and RFC 4733 events received on one leg are re-sent on the other with that leg's
        SSRC, sequence numbers and timestamps (offset from the source's), as a B2BUA does.
        """
        if other is self:
            raise ValueError("cannot bridge an RTP session with itself")
        if self._closed or other._closed:
            raise MediaError("cannot bridge a closed RTP session")
        self.unbridge()
        other.unbridge()
        self._peer = other
        other._peer = self
        self._relay_ssrc = other._relay_ssrc = None

    def unbridge(self) -> None:
        peer = self._peer
        self._peer = None
        if peer is not None and peer._peer is self:
            peer._peer = None

    @property
    def bridged(self) -> bool:
        return self._peer is not None

    def _relay(self, pt: int, payload: bytes, ts: int, source_ssrc: int, marker: bool) -> None:
        if self._remote is None or self._closed:
            return
        if source_ssrc != self._relay_ssrc:
            # A new source stream: map its timestamps onto this leg's media clock.
            self._relay_ssrc = source_ssrc
            self._relay_offset = (self.now_ts() - ts) & 0xFFFFFFFF
            marker = True
        self._send(pt, payload, (ts + self._relay_offset) & 0xFFFFFFFF, marker)
        self._packets_relayed += 1

    # ------------------------------------------------------------ stats

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "codec": self._codec_name,
            "payload_type": self._pt,
            "dtmf_payload_type": self._dtmf_pt,
            "local": f"{self.local_host}:{self.local_port}",
            "remote": f"{self._remote[0]}:{self._remote[1]}" if self._remote else None,
            "on_hold": self._on_hold,
            "packets_sent": self._packets_sent,
            "bytes_sent": self._bytes_sent,
            "packets_received": self._packets_received,
            "bytes_received": self._bytes_received,
            "packets_relayed": self._packets_relayed,
            "packets_invalid": self._packets_invalid,
            "packets_ignored": self._packets_ignored,
            "srtp": None if self._srtp is None else self._srtp.suite,
            "packets_unauthenticated": self._packets_unauthenticated,
            "latched_to": f"{self._latched_to[0]}:{self._latched_to[1]}"
            if self._latched_to
            else None,
            "codecs_received": sorted(self._codecs_received),
            "dtmf_received": self._events.received,
            "dtmf_sent": self._dtmf_sent,
        }

    def record_send_times(self, enabled: bool = True) -> None:
        """Keep the `time.monotonic()` of every packet sent from now on (pacing measurements:
        the socket send is synchronous, so on a local network this is when it hits the wire)."""
        self._send_times = [] if enabled else None

    @property
    def send_times(self) -> list[float]:
        return list(self._send_times or ())

    def seconds_since_last_packet(self) -> float | None:
        """For RTP-timeout checks: None until the first packet arrives."""
        if self._last_packet_at is None:
            return None
        return self._loop.time() - self._last_packet_at
