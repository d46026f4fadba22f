"""Audio for SIP calls: everything becomes signed 16-bit little-endian mono PCM at 8 kHz.

- `load_audio_pcm8k`: an audio file of any common format (WAV of any encoding, FLAC, Ogg, MP3,
  AIFF: :mod:`ringback.telephony.audio_files`), any rate and channel count → s16le mono 8 kHz,
  channels averaged and the rate converted by a windowed-sinc low-pass resampler (no aliasing
  when a 44.1/48 kHz file is brought down to telephone band).
- `speak_pcm8k`: text-to-speech through the espeak-ng program, language codes such as `ja-JP`
  or Google voice names such as `en-US-Standard-C` mapped onto espeak-ng voices.
- `tone_pcm8k`: a sine tone (park/hold tones, tests).

These are blocking (file I/O, a subprocess, CPU); in the event loop call the `_async` variants
or wrap them in `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ringback.telephony.audio_files import AudioError, read_audio

log = logging.getLogger(__name__)

RATE = 8000
SAMPLE_WIDTH = 2
ESPEAK = "espeak-ng"
TTS_TIMEOUT_S = 30.0
MAX_TTS_CHARS = 5000
# Kaiser-windowed sinc: zero crossings kept on each side of the output instant (at the lower
# of the two rates) and the window's beta (about 80 dB stop-band attenuation).
_SINC_ZERO_CROSSINGS = 16
_KAISER_BETA = 8.6
_ROLL_OFF = 0.95  # pass band up to 95 % of the output Nyquist frequency
_CHUNK = 4096  # output samples computed per vectorised block


# ---------------------------------------------------------------- audio files


def load_audio_pcm8k(path: Path) -> bytes:
    """Read an audio file (any format of :mod:`~ringback.telephony.audio_files`, any rate and
    channel count) as s16le mono 8 kHz; AudioError naming the file otherwise."""
    mono, rate = read_audio(path)
    return floats_to_s16le(resample(mono, rate, RATE))


def floats_to_s16le(samples: npt.NDArray[np.float64]) -> bytes:
    clipped = np.clip(np.round(samples * 32767.0), -32768, 32767)
    return clipped.astype("<i2").tobytes()


def s16le_to_floats(pcm: bytes) -> npt.NDArray[np.float64]:
    usable = len(pcm) // 2 * 2
    return np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float64) / 32768.0


def resample(
    samples: npt.NDArray[np.float64], rate_in: int, rate_out: int
) -> npt.NDArray[np.float64]:
    """Band-limited resampling with a Kaiser-windowed sinc kernel (polyphase).

    Output sample k sits at input position k * rate_in / rate_out. With that ratio reduced to
    p/q there are only q distinct fractional positions, so the q kernels are computed once.
    The cut-off is the lower of the two Nyquist frequencies (times a small roll-off): going
    down from 44.1/48 kHz filters out what 8 kHz cannot carry instead of folding it back.
    """
    if rate_in == rate_out or len(samples) == 0:
        return samples.astype(np.float64)
    g = math.gcd(rate_in, rate_out)
    p, q = rate_in // g, rate_out // g
    cutoff = min(1.0, rate_out / rate_in) * _ROLL_OFF  # of the input Nyquist frequency
    half = math.ceil(_SINC_ZERO_CROSSINGS / cutoff)
    offsets = np.arange(-half + 1, half + 1)
    # kernels[j] weighs input samples base+offsets for an output at base + j/q
    dist = offsets[None, :] - (np.arange(q) / q)[:, None]
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (dist / half) ** 2, 0.0, 1.0)))
    kernels = cutoff * np.sinc(cutoff * dist) * window / np.i0(_KAISER_BETA)
    n_out = len(samples) * q // p
    padded = np.concatenate([np.zeros(half), samples, np.zeros(half + 1)])
    out = np.empty(n_out)
    for start in range(0, n_out, _CHUNK):
        k = np.arange(start, min(n_out, start + _CHUNK), dtype=np.int64)
        base, phase = np.divmod(k * p, q)
        idx = base[:, None] + offsets[None, :] + half
        out[start : start + len(k)] = np.einsum("ij,ij->i", padded[idx], kernels[phase])
    return out


# ---------------------------------------------------------------- tones


def tone_pcm8k(freq_hz: float, seconds: float, level: float = 0.5) -> bytes:
    """A sine tone at `level` of full scale, s16le mono 8 kHz."""
    if not 0.0 < freq_hz < RATE / 2:
        raise ValueError(f"tone frequency must be between 0 and {RATE // 2} Hz, got {freq_hz}")
    if not 0.0 <= seconds <= 3600.0:
        raise ValueError(f"tone length must be between 0 and 3600 s, got {seconds}")
    if not 0.0 < level <= 1.0:
        raise ValueError(f"tone level must be in (0, 1], got {level}")
    t = np.arange(round(seconds * RATE)) / RATE
    return floats_to_s16le(level * np.sin(2.0 * np.pi * freq_hz * t))


def silence_pcm8k(seconds: float) -> bytes:
    return bytes(2 * round(max(0.0, seconds) * RATE))


# ---------------------------------------------------------------- TTS

# Legacy Basix (AI-Talk) voice names: Japanese, female or male.
_LEGACY_VOICES = {
    **dict.fromkeys(["nozomi", "sumire", "kaho", "maki", "nanako", "araki", "anzu"], ("ja", "f")),
    **dict.fromkeys(["seiji", "osamu", "hiroshi", "koutaro"], ("ja", "m")),
    **dict.fromkeys(["kal", "awb", "awb_time", "kal16", "rms", "slt"], ("en", "")),
}
DEFAULT_LANGUAGE = "ja-JP"  # the Basix default for <Speak>
FALLBACK_VOICE = "en"


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


@lru_cache(maxsize=1)
def espeak_voices() -> frozenset[str]:
    """Language codes espeak-ng knows (`en-us`, `ja`, …), lower case."""
    exe = _espeak_exe()
    result = subprocess.run(
        [exe, "--voices"], capture_output=True, text=True, timeout=TTS_TIMEOUT_S, check=False
    )
    codes: set[str] = set()
    for line in result.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            codes.add(parts[1].lower())
    return frozenset(codes)


def espeak_voice_for(language: str | None, voice: str | None) -> str:
    """The espeak-ng `-v` argument for a Basix language/voice pair.

    `voice` wins when given (Google names like `ja-JP-Wavenet-B` carry their language, legacy
    AI-Talk names map to Japanese); then `language` (`en-US` → `en-us`, else its primary tag
    `ja-JP` → `ja`); unknown languages fall back to English with a warning in the log.
    """
    known = espeak_voices()
    variant = ""
    wanted = language or DEFAULT_LANGUAGE
    if voice:
        legacy = _LEGACY_VOICES.get(voice.lower())
        if legacy is not None:
            wanted, variant = legacy
        else:
            parts = voice.split("-")
            if len(parts) >= 2:
                wanted = f"{parts[0]}-{parts[1]}"
            else:
                log.warning("speak: unknown voice %r, using language %s", voice, wanted)
    code = _match_language(wanted, known)
    if code is None:
        log.warning(
            "speak: espeak-ng has no voice for %r; falling back to %s", wanted, FALLBACK_VOICE
        )
        code = FALLBACK_VOICE
    return f"{code}+{variant}3" if variant else code


def _match_language(tag: str, known: frozenset[str]) -> str | None:
    tag = tag.strip().lower().replace("_", "-")
    if tag in known:
        return tag
    primary = tag.split("-")[0]
    if primary in known:
        return primary
    return None


def speak_pcm8k(text: str, language: str | None = None, voice: str | None = None) -> bytes:
    """Synthesize `text` with espeak-ng → s16le mono 8 kHz (blocking)."""
    if len(text) > MAX_TTS_CHARS:
        raise AudioError(f"speak: text longer than {MAX_TTS_CHARS} characters")
    if not text.strip():
        return b""
    args = _espeak_args(language, voice)
    with tempfile.TemporaryDirectory(prefix="ringback-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        try:
            result = subprocess.run(
                [*args, "-w", str(out)],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=TTS_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AudioError(f"speak: espeak-ng took longer than {TTS_TIMEOUT_S:.0f} s") from exc
        return _tts_result(result.returncode, result.stderr, out)


async def speak_pcm8k_async(
    text: str, language: str | None = None, voice: str | None = None
) -> bytes:
    """`speak_pcm8k` without blocking the event loop (the synthesis runs in a thread)."""
    return await asyncio.to_thread(speak_pcm8k, text, language, voice)


def _espeak_args(language: str | None, voice: str | None) -> list[str]:
    exe = _espeak_exe()
    # --stdin: the text never reaches the command line, so it cannot be read as an option.
    return [exe, "-v", espeak_voice_for(language, voice), "-b", "1", "--stdin"]


def _tts_result(returncode: int, stderr: bytes, out: Path) -> bytes:
    if returncode != 0 or not out.exists():
        detail = stderr.decode("utf-8", "replace").strip()[:300]
        raise AudioError(f"speak: espeak-ng failed (exit {returncode}): {detail}")
    return load_audio_pcm8k(out)


def _espeak_exe() -> str:
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise AudioError("speak: espeak-ng is not installed (Debian package espeak-ng)")
    return exe
