"""Identifiers: random (version 4) UUID strings, made cheaply (one per call leg and attempt)."""

from __future__ import annotations

import os


def new_uuid() -> str:
    """A random RFC 4122 version-4 UUID as its canonical string."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
