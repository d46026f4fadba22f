"""The answering-machine detector's parameters (``amd.py`` runs them), without numpy: the
simulator and the engine name them, and a worker on the simulator never loads numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AnsweredBy = Literal["human", "machine", "unknown"]


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """The detector's parameters; the defaults are Asterisk's ``amd.conf`` defaults."""

    #: nothing said for this long after answer: unknown (Asterisk: initial_silence 2500)
    initial_silence_ms: int = 2500
    #: a greeting with this much voice: machine (Asterisk: greeting 1500)
    greeting_ms: int = 1500
    #: silence this long after a greeting: human (Asterisk: after_greeting_silence 800)
    after_greeting_silence_ms: int = 800
    #: no decision by then: unknown (Asterisk: total_analysis_time 5000)
    total_analysis_ms: int = 5000
    #: voice this long is a word (Asterisk: min_word_length 100)
    min_word_ms: int = 100
    #: silence this long ends a word (Asterisk: between_words_silence 50)
    between_words_silence_ms: int = 50
    #: this many words: machine (Asterisk: maximum_number_of_words 3)
    max_words: int = 3
    #: a frame whose mean absolute sample is below this is silence (Asterisk:
    #: silence_threshold 256, on the same 16-bit scale)
    silence_threshold: int = 256
    #: a word this long: machine (Asterisk: maximum_word_length 5000)
    max_word_ms: int = 5000
    #: voice must also be this many times the quietest frame of the last second
    noise_ratio: float = 3.0
    #: the beep: a tone of this band (Hz) ...
    beep_low_hz: float = 400.0
    beep_high_hz: float = 2100.0
    #: ... lasting at least this long (ms)
    beep_min_ms: int = 100
    #: ... holding at least this share of the frame's energy in its peak
    beep_purity: float = 0.7
