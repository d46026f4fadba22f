"""Audio for SIP calls: audio files of any common format (WAV of any encoding, MP3, FLAC, Ogg)
become s16le mono 8 kHz; TTS; tones."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from support_media import (
    best_correlation,
    dominant_hz,
    require_program,
    rms,
    sine,
    to_s16le,
    write_float_wav,
    write_wav,
)

from ringback.telephony.audio_files import audio_seconds, is_audio
from ringback.telephony.sip.audio import (
    AudioError,
    espeak_voice_for,
    load_audio_pcm8k,
    speak_pcm8k,
    speak_pcm8k_async,
    tone_pcm8k,
)


@pytest.mark.parametrize(
    ("rate", "width", "channels"),
    [(16000, 2, 1), (44100, 2, 2), (8000, 1, 1), (48000, 3, 1), (22050, 4, 2), (11025, 1, 2)],
)
def test_any_pcm_wav_becomes_the_same_8khz_mono_signal(
    tmp_path: Path, rate: int, width: int, channels: int
) -> None:
    tone = sine(440.0, 1.0, rate, level=0.4)
    path = write_wav(tmp_path / "in.wav", [tone] * channels, rate, width)
    pcm = load_audio_pcm8k(path)
    assert abs(len(pcm) - 16000) <= 2  # 1 s of 8 kHz 16-bit samples
    assert dominant_hz(pcm) == pytest.approx(440.0, abs=2.0)
    expected = to_s16le(sine(440.0, 1.0, 8000, level=0.4))
    assert best_correlation(expected[800:-800], pcm) >= 0.99
    assert rms(pcm) == pytest.approx(0.4 / np.sqrt(2), rel=0.05)


def test_stereo_channels_are_averaged_not_just_the_left_one_kept(tmp_path: Path) -> None:
    left = sine(500.0, 0.5, 16000, level=0.5)
    right = np.zeros_like(left)
    pcm = load_audio_pcm8k(write_wav(tmp_path / "lr.wav", [left, right], 16000, 2))
    assert rms(pcm) == pytest.approx(0.25 / np.sqrt(2), rel=0.05)


def test_downsampling_filters_out_what_8khz_cannot_carry_instead_of_aliasing(
    tmp_path: Path,
) -> None:
    # 6 kHz at 16 kHz would fold back to 2 kHz without a low-pass filter.
    path = write_wav(tmp_path / "hi.wav", [sine(6000.0, 1.0, 16000, 0.5)], 16000, 2)
    pcm = load_audio_pcm8k(path)
    assert rms(pcm[400:-400]) < 0.005


def test_a_float_wav_is_played(tmp_path: Path) -> None:
    path = write_float_wav(tmp_path / "float.wav", sine(440.0, 0.2, 8000), 8000)
    assert dominant_hz(load_audio_pcm8k(path)) == pytest.approx(440.0, abs=10.0)


@pytest.mark.parametrize(("fmt", "suffix"), [("MP3", "mp3"), ("FLAC", "flac"), ("OGG", "ogg")])
def test_mp3_flac_and_ogg_files_are_played_like_a_wav(
    tmp_path: Path, fmt: str, suffix: str
) -> None:
    import soundfile

    path = tmp_path / f"tone.{suffix}"
    soundfile.write(str(path), sine(700.0, 1.0, 44100, 0.5), 44100, format=fmt)
    pcm = load_audio_pcm8k(path)
    assert len(pcm) // 2 == pytest.approx(8000, rel=0.1)  # MP3 pads a little
    assert dominant_hz(pcm) == pytest.approx(700.0, abs=10.0)
    assert audio_seconds(path) == pytest.approx(1.0, rel=0.1)


def test_a_file_that_is_no_audio_or_missing_gives_a_clear_error_naming_the_formats(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is a text file, honestly, not a sound at all")
    with pytest.raises(AudioError, match=r"junk\.wav: not an audio file .*WAV, FLAC.*MP3") as bad:
        load_audio_pcm8k(junk)
    assert str(tmp_path) not in str(bad.value)  # the file's name only, never the folders
    with pytest.raises(AudioError, match="does not exist"):
        load_audio_pcm8k(tmp_path / "absent.wav")
    assert not is_audio(junk)


def test_tone_has_the_requested_frequency_and_length() -> None:
    pcm = tone_pcm8k(425.0, 0.5)
    assert len(pcm) == 8000
    assert dominant_hz(pcm) == pytest.approx(425.0, abs=2.0)
    with pytest.raises(ValueError, match="frequency"):
        tone_pcm8k(5000.0, 1.0)
    with pytest.raises(ValueError, match="length"):
        tone_pcm8k(440.0, -1.0)


def test_language_codes_and_voice_names_map_to_espeak_voices() -> None:
    require_program("espeak-ng", "espeak-ng")
    assert espeak_voice_for("en-US", None) == "en-us"
    assert espeak_voice_for("ja-JP", None) == "ja"
    assert espeak_voice_for(None, None) == "ja"  # the Basix default language
    assert espeak_voice_for("en-US", "ja-JP-Wavenet-B") == "ja"  # the voice names its language
    assert espeak_voice_for(None, "nozomi") == "ja+f3"  # a legacy AI-Talk voice, female
    assert espeak_voice_for(None, "seiji") == "ja+m3"


def test_an_unknown_language_falls_back_to_english_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_program("espeak-ng", "espeak-ng")
    with caplog.at_level(logging.WARNING):
        assert espeak_voice_for("xx-YY", None) == "en"
    assert "no voice for 'xx-YY'" in caplog.text


@pytest.mark.parametrize(
    ("text", "language"),
    [("Your appointment is tomorrow.", "en-US"), ("こんにちは、予約の確認です。", "ja-JP")],
)
def test_speech_is_synthesised_as_audible_8khz_audio(text: str, language: str) -> None:
    require_program("espeak-ng", "espeak-ng")
    pcm = speak_pcm8k(text, language, None)
    assert len(pcm) > 0.5 * 16000  # more than half a second of speech
    assert rms(pcm) > 0.02


async def test_speech_can_be_synthesised_without_blocking_the_event_loop() -> None:
    require_program("espeak-ng", "espeak-ng")
    pcm = await speak_pcm8k_async("one two three", "en-US", None)
    assert rms(pcm) > 0.02


def test_text_that_looks_like_an_option_is_spoken_not_obeyed() -> None:
    require_program("espeak-ng", "espeak-ng")
    pcm = speak_pcm8k("--version", "en-US", None)
    assert rms(pcm) > 0.02


def test_empty_text_is_silence_and_huge_text_is_refused() -> None:
    assert speak_pcm8k("   ", "en-US", None) == b""
    with pytest.raises(AudioError, match="longer than"):
        speak_pcm8k("a" * 10_000, "en-US", None)
