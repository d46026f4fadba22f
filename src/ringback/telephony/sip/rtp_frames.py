"""The per-packet pieces of an RTP session that are kept off its hot path.

* :class:`Playback`: a prompt (s16le PCM) played one 20 ms frame per tick, G.711-encoded a
  second at a time (one table lookup per 50 frames instead of one per frame; G.711 encodes
  each sample on its own, so the bytes are the same as frame by frame) and re-encoded from
  the current frame on when the session's codec changes mid-prompt (a re-INVITE).
* :class:`EventReceiver`: RFC 4733 telephone-events received, one digit per key press however
  many packets (and end repeats) carry it.
* :class:`Recording`: the audio received, decoded, in sequence-number order with up to a
  second of lost packets filled with silence.
"""

from __future__ import annotations

import asyncio
import struct

from aiortp.codecs.base import Codec

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_BYTES = FRAME_SAMPLES * 2  # s16le PCM per frame
#: frames encoded at once: one second of audio (8 KiB of G.711 kept per playing session)
CHUNK_FRAMES = 50
DTMF_DIGITS = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")


class Playback:
    """One prompt being played: s16le mono 8 kHz PCM, its last frame padded with silence."""

    __slots__ = ("_chunk", "_chunk_start", "_codec", "_pcm", "_pos")

    def __init__(self, pcm: bytes) -> None:
        usable = len(pcm) // 2 * 2
        padding = (-usable) % FRAME_BYTES
        self._pcm = pcm[:usable] + bytes(padding) if padding or usable != len(pcm) else pcm
        self._pos = 0  # byte offset of the next frame in the PCM
        self._chunk = b""  # the encoded frames from _chunk_start on
        self._chunk_start = 0
        self._codec: Codec | None = None

    @property
    def finished(self) -> bool:
        """Every frame was taken."""
        return self._pos >= len(self._pcm)

    @property
    def frames_left(self) -> int:
        return (len(self._pcm) - self._pos) // FRAME_BYTES

    def next_frame(self, codec: Codec) -> bytes:
        """The next frame encoded with ``codec`` (160 bytes of G.711)."""
        pos = self._pos
        offset = (pos - self._chunk_start) // 2
        if codec is not self._codec or offset >= len(self._chunk):
            end = min(len(self._pcm), pos + CHUNK_FRAMES * FRAME_BYTES)
            self._chunk = codec.encode(self._pcm[pos:end])
            self._chunk_start = pos
            self._codec = codec
            offset = 0
        self._pos = pos + FRAME_BYTES
        return self._chunk[offset : offset + FRAME_SAMPLES]


class EventReceiver:
    """RFC 4733 digits received: queued for :meth:`next_digit` and noted in :attr:`received`."""

    def __init__(self) -> None:
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.received = ""
        self._key: tuple[int, int, int] | None = None
        self._ended = False
        self._duration = 0

    def on_event(self, payload: bytes, ts: int, ssrc: int) -> bool:
        """Take one telephone-event payload; False when it is too short to be one."""
        if len(payload) < 4:
            return False
        event, flags, duration = _EVENT.unpack_from(payload)
        ended = bool(flags & 0x80)
        key = (ssrc, ts, event)
        # The same event again after its end with a shorter duration is a new key press
        # (a sender replaying the same recorded packets), not a retransmission.
        again = key == self._key and self._ended and not ended
        again = again and duration < self._duration
        if key != self._key or again:
            self._key = key
            if event < len(DTMF_DIGITS):
                digit = DTMF_DIGITS[event]
                self.received += digit
                self.digits.put_nowait(digit)
        self._ended = ended
        self._duration = duration
        return True


class Recording:
    """Received audio (s16le) up to ``limit`` bytes: duplicates and packets that arrive after
    a later one are left out, a gap of up to 50 packets (one second) is filled with silence."""

    def __init__(self, limit: int) -> None:
        self.pcm = bytearray()
        self._limit = limit
        self._last: tuple[int, int] | None = None  # (ssrc, seq) of the last recorded

    def add(self, pcm: bytes, seq: int, ssrc: int) -> None:
        rec = self.pcm
        last = self._last
        if last is not None and last[0] == ssrc:
            ahead = (seq - last[1]) & 0xFFFF
            if ahead == 0 or ahead >= 0x8000:
                return  # a duplicate or a packet that arrived after a later one
            if 1 < ahead <= 50:  # up to one second lost: keep the timeline with silence
                rec.extend(bytes(len(pcm) * (ahead - 1)))
        self._last = (ssrc, seq)
        room = self._limit - len(rec)
        if room > 0:
            rec.extend(pcm[:room])
