"""Helpers for the SIP media tests: WAV writing, signal comparison, required programs."""

from __future__ import annotations

import os
import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

REQUIRE_SIPP = os.environ.get("RINGBACK_REQUIRE_SIPP") == "1"


def require_program(name: str, package: str) -> str:
    """The program's path; skip without it, or fail when RINGBACK_REQUIRE_SIPP=1 (as in CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package})"
        if REQUIRE_SIPP:
            pytest.fail(f"{message} (RINGBACK_REQUIRE_SIPP=1)")
        pytest.skip(message)
    return path


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
