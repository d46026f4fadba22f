"""A receive jitter buffer for 20 ms RTP frames, played out one frame per media-clock tick.

Frames are keyed by their RTP sequence number (16 bits, wrapping). The consumer calls
:meth:`JitterBuffer.pop` once per tick; it returns the next frame in sequence order, or None
when that frame is missing (lost, not arrived in time, or playout not started yet): the
consumer then bridges the gap (a fax modem's ``rx_fillin``).

* Playout starts :data:`DELAY_FRAMES` ticks after the first packet of a stream arrives, so a
  packet may arrive up to that long after its place in the stream and still be played in order.
* A packet whose slot was already played is *late*: counted and dropped (a copy of a packet
  already played counts as a duplicate, as does a second copy of one still waiting).
* A packet more than :data:`WINDOW_FRAMES` ahead of the playout point, a new SSRC, or
  :data:`RESYNC_LATE` late packets in a row (the far end's clock running behind ours, or a
  long stall) restart the buffer at that packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

#: Playout delay, in 20 ms frames (80 ms). Loopback and LAN jitter is well under 20 ms and
#: public-network jitter typically 20–50 ms; every frame that misses its slot is a hole in a
#: fax modem's signal, while a constant delay costs the fax nothing (T.30's response timers
#: are seconds long), so the buffer errs on the side of delay.
DELAY_FRAMES = 4
#: How far ahead of the playout point a packet may be before the buffer restarts on it
#: (64 frames, 1.28 s: a longer jump is a new stream or a sender that skipped ahead).
WINDOW_FRAMES = 64
#: Late packets in a row after which the buffer restarts on the next one.
RESYNC_LATE = 3
_SEQ_MOD = 0x10000
_HALF = 0x8000
_PLAYED_RING = 128  # how many played sequence numbers are remembered for duplicate detection

F = TypeVar("F")


@dataclass(slots=True)
class JitterStats:
    """What the buffer saw; ``missing`` counts gaps reported while playing out."""

    received: int = 0
    played: int = 0
    missing: int = 0
    late: int = 0
    duplicates: int = 0
    resets: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "played": self.played,
            "missing": self.missing,
            "late": self.late,
            "duplicates": self.duplicates,
            "resets": self.resets,
        }


class JitterBuffer(Generic[F]):
    """Reorders one RTP stream's frames (any type ``F``: payloads, decoded samples) and plays
    them out at a fixed delay (see the module's docstring)."""

    def __init__(self, delay_frames: int = DELAY_FRAMES, window_frames: int = WINDOW_FRAMES):
        if not 0 <= delay_frames < window_frames <= _HALF:
            raise ValueError("need 0 <= delay_frames < window_frames <= 32768")
        self.delay_frames = delay_frames
        self.window_frames = window_frames
        self.stats = JitterStats()
        self._frames: dict[int, F] = {}
        self._ssrc: int | None = None
        self._next: int | None = None  # the sequence number the next pop plays
        self._priming = 0  # pops left before playout starts
        self._playing = False
        self._late_run = 0
        self._played_seq = [-1] * _PLAYED_RING

    @property
    def depth(self) -> int:
        """Frames waiting to be played."""
        return len(self._frames)

    def _restart(self, seq: int, ssrc: int) -> None:
        if self._ssrc is not None:
            self.stats.resets += 1
        self._frames.clear()
        self._ssrc = ssrc
        self._next = seq
        self._priming = self.delay_frames
        self._playing = False
        self._late_run = 0

    def put(self, seq: int, ssrc: int, frame: F) -> None:
        """A packet arrived: sequence number ``seq`` of stream ``ssrc``, its payload ``frame``."""
        self.stats.received += 1
        seq &= 0xFFFF
        if ssrc != self._ssrc or self._next is None:
            self._restart(seq, ssrc)
        assert self._next is not None
        ahead = (seq - self._next) % _SEQ_MOD
        if ahead >= _HALF:  # behind the playout point
            if not self._playing and _SEQ_MOD - ahead < self.window_frames:
                self._next = seq  # playout has not started: begin with the earlier packet
                ahead = 0
            elif self._played_seq[seq % _PLAYED_RING] == seq:
                self.stats.duplicates += 1
                return
            else:
                self.stats.late += 1
                self._late_run += 1
                if self._late_run >= RESYNC_LATE:
                    self._restart(seq, ssrc)
                    self._frames[seq] = frame
                return
        elif ahead >= self.window_frames:
            self._restart(seq, ssrc)
        self._late_run = 0
        if seq in self._frames:
            self.stats.duplicates += 1
            return
        self._frames[seq] = frame

    def pop(self) -> F | None:
        """The frame for this tick, or None (missing: nothing to play, fill the gap)."""
        if self._next is None:
            return None
        if self._priming > 0:
            self._priming -= 1
            return None
        self._playing = True
        seq = self._next
        self._next = (seq + 1) % _SEQ_MOD
        frame = self._frames.pop(seq, None)
        if frame is None:
            self.stats.missing += 1
        else:
            self._played_seq[seq % _PLAYED_RING] = seq
            self.stats.played += 1
        return frame
