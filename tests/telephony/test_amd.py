"""Answering-machine and beep detection (``ringback.telephony.amd``) on recordings of the
espeak-ng / sox corpus fed directly, and on synthetic audio."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.telephony.amd import (
    FRAME_SAMPLES,
    AmdDetector,
    AmdSettings,
    BeepDetector,
    classify_pcm,
    find_beep,
)
from ringback.telephony.amd_corpus import Recording, human, machine, noise, silence, tools_available
from ringback.telephony.sip.audio import load_audio_pcm8k, silence_pcm8k, tone_pcm8k


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    if not tools_available():
        message = "espeak-ng and sox are needed (Debian packages espeak-ng, sox)"
        if os.environ.get("RINGBACK_REQUIRE_SIPP") == "1":
            pytest.fail(f"{message} (RINGBACK_REQUIRE_SIPP=1)")
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("amd")
    return {"human": human(0, folder), "machine": machine(1, folder),
            "silence": silence(0, folder), "noise": noise(1, folder)}  # fmt: skip


@pytest.mark.parametrize("kind", ["human", "machine", "silence", "noise"])
def test_each_kind_of_recording_is_classified_as_expected_within_the_analysis_time(
    corpus: dict[str, Recording], kind: str
) -> None:
    recording = corpus[kind]
    pcm = load_audio_pcm8k(recording.path)
    decision = classify_pcm(pcm)
    assert decision.answered_by == recording.expected
    assert decision.ms <= AmdSettings().total_analysis_ms


def test_a_voicemail_beep_is_found_where_it_ends_and_speech_alone_has_none(
    corpus: dict[str, Recording],
) -> None:
    beep_ms = find_beep(load_audio_pcm8k(corpus["machine"].path))
    expected = corpus["machine"].beep_end_s * 1000
    assert beep_ms is not None and abs(beep_ms - expected) <= 60
    assert find_beep(load_audio_pcm8k(corpus["human"].path)) is None


def test_a_short_greeting_then_silence_is_human_and_decided_after_the_silence() -> None:
    # 0.4 s of a 300 Hz tone stands for a one-word greeting
    pcm = silence_pcm8k(0.3) + tone_pcm8k(300.0, 0.4, 0.3) + silence_pcm8k(2.0)
    decision = classify_pcm(pcm)
    assert (decision.answered_by, decision.cause) == ("human", "human")
    assert decision.ms == 300 + 400 + 800  # the after-greeting silence (800 ms) decided


def test_a_greeting_longer_than_greeting_ms_is_a_machine() -> None:
    words = b"".join(tone_pcm8k(300.0 + 40 * i, 0.45, 0.3) + silence_pcm8k(0.04)
                     for i in range(6))  # fmt: skip
    decision = classify_pcm(words, AmdSettings(max_words=99))
    assert (decision.answered_by, decision.cause) == ("machine", "long_greeting")


def test_a_tone_shorter_than_beep_min_ms_is_no_beep() -> None:
    assert find_beep(tone_pcm8k(1000.0, 0.06) + silence_pcm8k(0.5)) is None
    assert find_beep(tone_pcm8k(1000.0, 0.3) + silence_pcm8k(0.5)) == 300


@settings(max_examples=40, deadline=None)
@given(levels=st.lists(st.integers(min_value=0, max_value=20000), min_size=1, max_size=400),
       seed=st.integers(min_value=0, max_value=2**16))  # fmt: skip
def test_any_audio_gets_a_decision_no_later_than_the_total_analysis_time(
    levels: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    detector, beeps = AmdDetector(), BeepDetector()
    decision = None
    for ms in range(0, 6000, 20):
        level = levels[(ms // 20) % len(levels)]
        frame = (rng.standard_normal(FRAME_SAMPLES) * level).clip(-32768, 32767)
        frame16 = frame.astype(np.int16)
        beeps.feed(frame16)
        decision = detector.feed(frame16)
        if decision is not None:
            break
    assert decision is not None
    assert decision.ms <= AmdSettings().total_analysis_ms
    assert decision.answered_by in ("human", "machine", "unknown")
