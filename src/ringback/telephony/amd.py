"""Answering-machine detection (AMD) and beep detection on received call audio.

Pure signal processing, no I/O: both detectors are fed the far end's audio after answer as
20 ms frames of signed 16-bit PCM at 8 kHz (160 samples) and say what they found.

:class:`AmdDetector` follows the state machine of Asterisk's ``app_amd`` (``apps/app_amd.c``,
configured by ``amd.conf``) and FreeSWITCH's ``mod_amd``, with the same parameters and
defaults (:class:`AmdSettings`): each frame is voice or silence by its energy; voice that lasts
``min_word_ms`` is a word, silence of ``between_words_silence_ms`` ends it. A callee who says
a short greeting ("Hello?") and then waits (``after_greeting_silence_ms`` of silence) is a
**human**; a greeting that goes on (``greeting_ms`` of voice), has ``max_words`` words, or a
word longer than ``max_word_ms`` is a **machine**. Nothing said for ``initial_silence_ms``, or
no decision within ``total_analysis_ms``, is **unknown**.

Two choices differ from Asterisk, both measured on the corpus of ``bench/amd.py``:

* a frame is voice when its mean absolute sample is above ``silence_threshold`` (Asterisk's
  ``ast_dsp_silence`` test) **and** ``noise_ratio`` times the quietest frame of the last
  second (a noise floor by minimum statistics), so that steady line noise or hiss is silence,
  not a never-ending word;
* a long initial silence is ``unknown`` (Asterisk says ``MACHINE`` there): a silent line is as
  often a person waiting as a machine.

:class:`BeepDetector` finds the voicemail beep: a sustained narrow-band tone between
``beep_low_hz`` and ``beep_high_hz`` (most of a frame's energy in one spectral peak, at the
same frequency) for at least ``beep_min_ms``; the beep is over at its first frame that is not
that tone. Its cost is one 160-point real FFT per 20 ms frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ringback.telephony import amd_settings as _settings

RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 160

AnsweredBy = _settings.AnsweredBy
AmdSettings = _settings.AmdSettings


@dataclass(frozen=True, slots=True)
class AmdDecision:
    """What the detector decided, when (ms of audio after answer) and why: ``cause`` names
    the rule as Asterisk's ``AMDCAUSE`` does (``human``, ``initial_silence``,
    ``long_greeting``, ``max_words``, ``max_word_length``, ``too_long``)."""

    answered_by: AnsweredBy
    cause: str
    ms: int
    words: int
    voice_ms: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_level(frame: npt.NDArray[np.int16]) -> float:
    """The mean absolute sample of a frame (Asterisk's silence measure)."""
    return float(np.abs(frame.astype(np.int32)).mean()) if frame.size else 0.0


class AmdDetector:
    """Feed it 20 ms frames with :meth:`feed` until it returns a decision."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        self.decision: AmdDecision | None = None
        self._ms = 0
        self._voice_ms = 0
        self._run_voice_ms = 0  # consecutive voice
        self._run_silence_ms = 0  # consecutive silence
        self._words = 0
        self._in_word = False
        self._in_greeting = False
        self._levels: deque[float] = deque(maxlen=1000 // FRAME_MS)

    def is_voice(self, level: float) -> bool:
        """Whether a frame of this level is voice (above the threshold and the noise floor)."""
        floor = min(self._levels) if self._levels else level
        self._levels.append(level)
        s = self.settings
        return level > s.silence_threshold and level > s.noise_ratio * floor

    def feed(self, frame: npt.NDArray[np.int16]) -> AmdDecision | None:
        """One frame (any length; its duration counts); the decision once there is one."""
        if self.decision is not None:
            return self.decision
        s = self.settings
        length = max(1, round(frame.size * 1000 / RATE))
        self._ms += length
        if self.is_voice(frame_level(frame)):
            self._on_voice(length)
        else:
            self._on_silence(length)
        if self.decision is None and self._ms >= s.total_analysis_ms:
            self._decide("unknown", "too_long")
        return self.decision

    def _on_silence(self, length: int) -> None:
        s = self.settings
        self._run_silence_ms += length
        if self._run_silence_ms >= s.between_words_silence_ms:
            self._in_word = False
            self._run_voice_ms = 0
        if not self._in_greeting and self._run_silence_ms >= s.initial_silence_ms:
            self._decide("unknown", "initial_silence")
        elif self._in_greeting and self._run_silence_ms >= s.after_greeting_silence_ms:
            self._decide("human", "human")

    def _on_voice(self, length: int) -> None:
        s = self.settings
        self._run_voice_ms += length
        self._voice_ms += length
        if self._run_voice_ms >= s.min_word_ms:
            self._run_silence_ms = 0
            if not self._in_word:
                self._in_word = True
                self._words += 1
            self._in_greeting = True
        if self._run_voice_ms >= s.max_word_ms:
            self._decide("machine", "max_word_length")
        elif self._words >= s.max_words:
            self._decide("machine", "max_words")
        elif self._in_greeting and self._voice_ms >= s.greeting_ms:
            self._decide("machine", "long_greeting")

    def _decide(self, answered_by: AnsweredBy, cause: str) -> None:
        self.decision = AmdDecision(answered_by, cause, self._ms, self._words, self._voice_ms)


class BeepDetector:
    """Feed it 20 ms frames; :meth:`feed` returns the ms (from the first frame fed) at which a
    beep ended, once one did."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        self.ended_ms: int | None = None
        self.frequency_hz: float | None = None
        self._ms = 0
        self._tone_ms = 0
        self._tone_bin = -1

    def feed(self, frame: npt.NDArray[np.int16]) -> int | None:
        if self.ended_ms is not None:
            return self.ended_ms
        s = self.settings
        length = max(1, round(frame.size * 1000 / RATE))
        self._ms += length
        peak = self._tone_peak(frame)
        same = peak is not None and self._tone_bin >= 0 and abs(peak - self._tone_bin) <= 1
        if peak is not None and (same or self._tone_ms == 0):
            if self._tone_ms == 0:
                self._tone_bin = peak
            self._tone_ms += length
            return None
        if self._tone_ms >= s.beep_min_ms:
            self.ended_ms = self._ms - length
            self.frequency_hz = self._tone_bin * RATE / _FFT_SIZE
            return self.ended_ms
        self._tone_ms = 0 if peak is None else length
        self._tone_bin = -1 if peak is None else peak
        return None

    def _tone_peak(self, frame: npt.NDArray[np.int16]) -> int | None:
        """The frame's spectral peak bin when the frame is a loud enough pure tone in band."""
        s = self.settings
        if frame.size < FRAME_SAMPLES // 2 or frame_level(frame) <= s.silence_threshold:
            return None
        spectrum = np.abs(np.fft.rfft(frame.astype(np.float64) * _window(frame.size), _FFT_SIZE))
        power = spectrum * spectrum
        total = float(power.sum())
        if total <= 0.0:
            return None
        peak = int(np.argmax(power))
        if not s.beep_low_hz <= peak * RATE / _FFT_SIZE <= s.beep_high_hz:
            return None
        near = float(power[max(0, peak - 2) : peak + 3].sum())
        return peak if near >= s.beep_purity * total else None


_FFT_SIZE = 256  # 31.25 Hz bins


def _window(size: int) -> npt.NDArray[np.float64]:
    if size == FRAME_SAMPLES:
        return _HANN
    return np.hanning(size)


_HANN = np.hanning(FRAME_SAMPLES)


def pcm_frames(pcm: bytes) -> list[npt.NDArray[np.int16]]:
    """s16le PCM as whole 20 ms frames (a last partial frame is dropped)."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    whole = samples.size // FRAME_SAMPLES
    return [samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(whole)]


def classify_pcm(pcm: bytes, settings: AmdSettings | None = None) -> AmdDecision:
    """The decision on a whole recording (s16le, 8 kHz); unknown/too_long if it ends first."""
    detector = AmdDetector(settings)
    for frame in pcm_frames(pcm):
        if detector.feed(frame) is not None:
            break
    if detector.decision is None:
        detector._decide("unknown", "too_long")
    assert detector.decision is not None
    return detector.decision


def find_beep(pcm: bytes, settings: AmdSettings | None = None) -> int | None:
    """The ms at which the first beep of a recording (s16le, 8 kHz) ends; None: no beep."""
    detector = BeepDetector(settings)
    for frame in pcm_frames(pcm):
        if detector.feed(frame) is not None:
            return detector.ended_ms
    return None
