"""Write hello.wav (1 s of a 440 Hz tone, 8 kHz mono 16-bit) into a client's storage folder.

python examples/make_hello_wav.py storage/1/hello.wav
"""

from __future__ import annotations

import math
import struct
import sys
import wave
from pathlib import Path


def write_tone(path: Path, seconds: float = 1.0, hz: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / rate)))
        for n in range(int(rate * seconds))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


if __name__ == "__main__":
    print(write_tone(Path(sys.argv[1] if len(sys.argv) > 1 else "storage/1/hello.wav")))
