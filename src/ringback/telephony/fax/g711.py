"""G.711 µ-law and A-law for the fax engine, as numpy lookup tables.

Written here rather than taken from Python's ``audioop`` (deprecated in 3.11, removed in
3.13): the encoders are the classic Sun reference algorithms (``g711.c``) evaluated once for
all 65,536 16-bit samples, the decoders are 256-entry tables; results are identical to
``audioop.lin2ulaw``/``lin2alaw``/``ulaw2lin``/``alaw2lin`` (a test checks every value).
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt

Law = Literal["ulaw", "alaw"]
LAWS: tuple[Law, ...] = ("ulaw", "alaw")

_ULAW_BIAS = 0x84
_ULAW_CLIP14 = 8159
_ULAW_BIAS14 = 0x21
_ULAW_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _ulaw_encode(sample: int) -> int:
    value = sample >> 2  # 14 significant bits
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, _ULAW_CLIP14) + _ULAW_BIAS14
    segment = next((i for i, end in enumerate(_ULAW_SEG_END) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def _ulaw_decode(byte: int) -> int:
    u = ~byte & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -magnitude if u & 0x80 else magnitude


def _alaw_encode(sample: int) -> int:
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((i for i, end in enumerate(_ALAW_SEG_END) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((value >> shift) & 0x0F)) ^ mask


def _alaw_decode(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    if segment == 0:
        t += 8
    else:
        t = (t + 0x108) << (segment - 1)
    return t if a & 0x80 else -t


@cache
def _encode_table(law: Law) -> npt.NDArray[np.uint8]:
    encode = _ulaw_encode if law == "ulaw" else _alaw_encode
    return np.array([encode(s) for s in range(-32768, 32768)], dtype=np.uint8)


@cache
def _decode_table(law: Law) -> npt.NDArray[np.int16]:
    decode = _ulaw_decode if law == "ulaw" else _alaw_decode
    return np.array([decode(b) for b in range(256)], dtype=np.int16)


def encode(samples: npt.NDArray[np.int16], law: Law) -> npt.NDArray[np.uint8]:
    """Linear s16 samples → G.711 bytes."""
    return _encode_table(_check(law))[samples.astype(np.int32) + 32768]


def decode(data: npt.NDArray[np.uint8], law: Law) -> npt.NDArray[np.int16]:
    """G.711 bytes → linear s16 samples."""
    return _decode_table(_check(law))[data]


def _check(law: str) -> Law:
    if law not in LAWS:
        raise ValueError(f"law must be 'ulaw' or 'alaw', not {law!r}")
    return law
