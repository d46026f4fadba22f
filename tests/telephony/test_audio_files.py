"""An audio file's length: read from its header, looked at again when the file changed; the
check before a call is placed trusts a reading of the last second (``known_audio_seconds``)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from ringback.telephony import audio_files
from ringback.telephony.audio_files import AudioError, audio_seconds, known_audio_seconds
from support import make_wav


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The module's monotonic time, moved by the test."""
    moment = [1000.0]
    monkeypatch.setattr(audio_files, "time", SimpleNamespace(monotonic=lambda: moment[0]))
    return moment


def rewrite(path: Path, seconds: float) -> None:
    """Another length, with a later modification time (as a new upload has)."""
    make_wav(path, seconds=seconds)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_audio_seconds_looks_at_the_file_every_time(tmp_path: Path, now: list[float]) -> None:
    wav = make_wav(tmp_path / "a.wav", seconds=0.5)
    assert audio_seconds(wav) == 0.5
    rewrite(wav, 1.5)
    assert audio_seconds(wav) == 1.5
    wav.unlink()
    with pytest.raises(AudioError, match="file does not exist"):
        audio_seconds(wav)


def test_a_known_length_stands_for_the_recheck_time_then_the_file_is_looked_at_again(
    tmp_path: Path, now: list[float]
) -> None:
    wav = make_wav(tmp_path / "a.wav", seconds=0.5)
    assert known_audio_seconds(wav) == 0.5  # never read: looked at
    rewrite(wav, 1.5)
    now[0] += audio_files.RECHECK_S * 0.9
    assert known_audio_seconds(wav) == 0.5  # read within the recheck time: not looked at
    now[0] += audio_files.RECHECK_S * 0.2
    assert known_audio_seconds(wav) == 1.5
    assert audio_seconds(wav) == 1.5  # a fresh reading renews it
    wav.unlink()
    now[0] += audio_files.RECHECK_S
    with pytest.raises(AudioError, match="file does not exist"):
        known_audio_seconds(wav)


def test_a_file_that_is_no_audio_is_refused_every_time_it_is_checked(
    tmp_path: Path, now: list[float]
) -> None:
    junk = tmp_path / "notes.wav"
    junk.write_text("hello")
    for _ in range(2):  # a failure is never remembered as a length
        with pytest.raises(AudioError):
            known_audio_seconds(junk)
    make_wav(junk, seconds=0.5)
    assert known_audio_seconds(junk) == 0.5
