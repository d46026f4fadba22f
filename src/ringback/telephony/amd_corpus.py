"""A labelled corpus for answering-machine detection, made at run time with espeak-ng and sox.

Recordings (8 kHz mono 16-bit WAV) of four kinds, each with the answer the detector should
give: short **human** greetings ("Hello?") followed by the silence of a person waiting,
**machine** greetings (a voicemail announcement, then a beep of 0.3 to 0.8 s at 440 to
1,400 Hz, then silence), **silence** and line **noise** (white, pink, brown). Voices, speeds
and the silence before the first word vary. Used by ``bench/amd.py`` and the tests; nothing
of it is stored in the repository.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HUMAN_PHRASES = (
    "Hello?", "Yes?", "Hello.", "Hi.", "Yes, who is this?", "Hello, yes?", "Speaking.",
    "Hello, who's calling?", "Hi there.", "Yeah?", "Hello!", "Good morning.",
)  # fmt: skip
MACHINE_GREETINGS = (
    "Hi, you have reached the voicemail of John Smith. I cannot take your call right now, "
    "please leave a message after the tone.",
    "Hello, this is Anna. I am not available at the moment. Leave your name and number and "
    "I will call you back.",
    "The person you are calling is not available. Please record your message after the beep. "
    "When you have finished, hang up.",
    "Thank you for calling Example Shop. Our office is closed. Please leave a message.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m7", "en-029", "en+f2")
SPEEDS = (140, 160, 175, 190)
BEEP_HZ = (1000.0, 440.0, 850.0, 1400.0)
NOISES = ("whitenoise", "pinknoise", "brownnoise")


@dataclass(frozen=True, slots=True)
class Recording:
    name: str
    path: Path
    kind: str  # human | machine | silence | noise
    expected: str  # human | machine | unknown
    beep_end_s: float | None = None  # where the beep ends (machine recordings)


def tools_available() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=60)


def _speech(text: str, voice: str, speed: int, out: Path, lead_s: float, tail_s: float) -> None:
    raw = out.with_suffix(".raw.wav")
    _run("espeak-ng", "-v", voice, "-s", str(speed), "-w", raw, text)
    _run("sox", raw, "-r", "8000", "-c", "1", "-b", "16", out, "pad", f"{lead_s}", f"{tail_s}")
    raw.unlink()


def _seconds(path: Path) -> float:
    out = subprocess.run(
        ["soxi", "-D", str(path)], check=True, capture_output=True, text=True, timeout=30
    )
    return float(out.stdout.strip())


def human(i: int, folder: Path) -> Recording:
    out = folder / f"human-{i:02d}.wav"
    phrase = HUMAN_PHRASES[i % len(HUMAN_PHRASES)]
    voice = VOICES[i % len(VOICES)]
    _speech(phrase, voice, SPEEDS[i % len(SPEEDS)], out, 0.2 + 0.15 * (i % 4), 4.0)
    return Recording(out.stem, out, "human", "human")


def machine(i: int, folder: Path) -> Recording:
    out = folder / f"machine-{i:02d}.wav"
    greeting = folder / f"machine-{i:02d}.greeting.wav"
    text = MACHINE_GREETINGS[i % len(MACHINE_GREETINGS)]
    _speech(text, VOICES[(i + 3) % len(VOICES)], SPEEDS[i % len(SPEEDS)], greeting,
            0.1 + 0.2 * (i % 3), 0.4 + 0.1 * (i % 4))  # fmt: skip
    beep = folder / f"machine-{i:02d}.beep.wav"
    beep_s = 0.3 + 0.1 * (i % 6)
    _run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", beep, "synth", f"{beep_s}",
         "sine", f"{BEEP_HZ[i % len(BEEP_HZ)]}", "vol", "0.4")  # fmt: skip
    tail = folder / f"machine-{i:02d}.tail.wav"
    _run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", tail, "trim", "0", "3.0")
    _run("sox", greeting, beep, tail, out)
    beep_end = _seconds(greeting) + _seconds(beep)
    for part in (greeting, beep, tail):
        part.unlink()
    return Recording(out.stem, out, "machine", "machine", beep_end)


def silence(i: int, folder: Path) -> Recording:
    out = folder / f"silence-{i:02d}.wav"
    _run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", out, "trim", "0", "6.0")
    return Recording(out.stem, out, "silence", "unknown")


def noise(i: int, folder: Path) -> Recording:
    out = folder / f"noise-{i:02d}.wav"
    level = (0.05, 0.15, 0.3)[i % 3]
    _run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", out, "synth", "6.0",
         NOISES[i % len(NOISES)], "vol", f"{level}")  # fmt: skip
    return Recording(out.stem, out, "noise", "unknown")


def make_corpus(
    folder: Path, humans: int = 14, machines: int = 14, silences: int = 6, noises: int = 6
) -> list[Recording]:
    """Write the corpus into ``folder`` (40 recordings by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = [human(i, folder) for i in range(humans)]
    made += [machine(i, folder) for i in range(machines)]
    made += [silence(i, folder) for i in range(silences)]
    made += [noise(i, folder) for i in range(noises)]
    return made
