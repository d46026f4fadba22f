"""Audio files a call plays, in any common format: read through libsndfile (PyPI
``soundfile``, whose wheels carry the library: nothing to install from Debian).

WAV of any encoding (PCM 8/16/24/32-bit, float, µ-law, A-law), FLAC, Ogg Vorbis and Opus, MP3,
AIFF, AU and the other formats libsndfile reads (:data:`FORMATS` names the usual ones in
messages). Python's ``wave`` module reads PCM WAV only (an MP3 failed with "file does not start
with RIFF id"); libsndfile is the library made for this, used by Audacity, Ardour and sox.

The simulator asks only for a file's length (:func:`audio_seconds`, from its header: a PCM WAV
through ``wave``, so a simulator playing WAV files never loads libsndfile — its first load
takes ~0.1 s, a stall of the event loop); the SIP media reads its samples (:func:`read_audio`,
in a thread) and brings them to 8 kHz.
"""

from __future__ import annotations

import time
import wave
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is loaded with the first file read, not by the simulator's import
    import numpy as np
    import numpy.typing as npt

#: the formats named when a file is refused (libsndfile reads more)
FORMATS = "WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF or AU"


class AudioError(ValueError):
    """The audio cannot be used: not an audio file, an unreadable file, TTS failure."""


def _soundfile() -> Any:
    import soundfile  # cffi and the library: loaded by the first audio file read

    return soundfile


def preload_audio_library() -> None:
    """Load libsndfile now (a process about to play audio in real time calls this first)."""
    _soundfile()


def _refused(name: str, exc: Exception) -> AudioError:
    if isinstance(exc, FileNotFoundError):
        return AudioError(f"{name}: file does not exist")
    why = str(exc).replace("\n", " ")
    # libsndfile's messages name the path it was given: keep only what follows it
    why = why.split(": ", 1)[-1] if ": " in why else why
    return AudioError(f"{name}: not an audio file ringback can play ({FORMATS}): {why}")


def read_audio(path: Path | str) -> tuple[npt.NDArray[np.float64], int]:
    """The samples of the file at ``path``, channels averaged to mono, in [-1, 1], and its
    sample rate; AudioError naming the file (never the server's folders) otherwise."""
    name = Path(path).name
    if not Path(path).is_file():  # libsndfile says only "System error"
        raise AudioError(f"{name}: file does not exist")
    sf = _soundfile()
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError, ValueError, TypeError, sf.LibsndfileError) as exc:
        raise _refused(name, exc) from exc
    if rate <= 0:
        raise AudioError(f"{name}: the file gives no sample rate")
    mono: npt.NDArray[np.float64] = data.mean(axis=1)
    return mono, int(rate)


#: how long a length read by :func:`audio_seconds` stands for :func:`known_audio_seconds`
RECHECK_S = 1.0
#: path -> (``time.monotonic()`` when its file was last looked at, its length)
_recent: dict[str, tuple[float, float]] = {}
_RECENT_MAX = 1024


def audio_seconds(path: Path) -> float:
    """The length of the audio file at ``path``, from its header (cached by path, modification
    time and size: the file is looked at, its header read again only when it changed);
    AudioError when it is no audio file."""
    key = str(path)
    try:
        stat = path.stat()
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise AudioError(f"{path.name}: file does not exist") from exc
        raise AudioError(f"{path.name}: {exc.strerror or exc}") from exc
    seconds = _seconds(key, stat.st_mtime_ns, stat.st_size)
    if len(_recent) >= _RECENT_MAX:
        _recent.clear()
    _recent[key] = (time.monotonic(), seconds)
    return seconds


def known_audio_seconds(path: Path) -> float:
    """:func:`audio_seconds`, without looking at the file when it was found playable less than
    :data:`RECHECK_S` ago (a failure is never remembered).

    For a check before a call is placed: a busy worker checks the same message file for every
    call, and its ``stat`` was ~5% of the event loop's time (docs/performance.md, "twelfth
    step"). A file spoiled within that second is found at play time instead, which looks at
    the file itself (:func:`audio_seconds`, or reading its samples)."""
    seen = _recent.get(str(path))
    if seen is not None and time.monotonic() - seen[0] < RECHECK_S:
        return seen[1]
    return audio_seconds(path)


@lru_cache(maxsize=1024)
def _seconds(path: str, mtime_ns: int, size: int) -> float:
    del mtime_ns, size  # part of the cache key only
    try:  # a PCM WAV (the usual case) from its header, without loading libsndfile
        with wave.open(path, "rb") as audio:
            frames, rate = audio.getnframes(), audio.getframerate()
        if rate > 0:
            return frames / rate
    except (wave.Error, EOFError, OSError):
        pass  # another format (or a WAV encoding wave does not read): libsndfile says
    sf = _soundfile()
    try:
        info = sf.info(path)
    except (OSError, RuntimeError, ValueError, sf.LibsndfileError) as exc:
        raise _refused(Path(path).name, exc) from exc
    if info.samplerate <= 0:
        raise AudioError(f"{Path(path).name}: the file gives no sample rate")
    return float(info.frames) / float(info.samplerate)


def is_audio(path: Path) -> bool:
    """Whether ``path`` is an audio file ringback can play (its header is read, not more)."""
    try:
        audio_seconds(path)
    except AudioError:
        return False
    return True
