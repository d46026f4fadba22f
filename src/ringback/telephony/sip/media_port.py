"""What the SIP calls need from the media layer (``media.py`` / ``audio.py``), as protocols.

The default :class:`RtpMedia` loads ringback's own RTP layer; tests and other embedders may pass
anything with the same shape.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any, Protocol


class MediaUnavailable(RuntimeError):
    """The RTP layer could not be loaded or could not open a session."""


class MediaSession(Protocol):
    local_host: str
    local_port: int

    def connect(
        self, remote: tuple[str, int], codec: str, payload_type: int, dtmf_payload_type: int | None
    ) -> None: ...

    async def play_pcm(self, pcm: bytes) -> None: ...

    async def next_digit(self, timeout: float) -> str | None: ...  # noqa: ASYNC109

    def clear_digits(self) -> None: ...

    async def send_dtmf(self, digits: str) -> None: ...

    def bridge(self, other: Any) -> None: ...

    def unbridge(self) -> None: ...

    async def close(self) -> None: ...


class MediaToolkit(Protocol):
    async def open_session(self, host: str, port_range: tuple[int, int]) -> MediaSession: ...

    async def wav_pcm(self, path: Path) -> bytes: ...

    async def speech_pcm(self, text: str, language: str | None, voice: str | None) -> bytes: ...

    async def tone_pcm(self, freq_hz: float, seconds: float) -> bytes: ...


def session_stats(session: MediaSession) -> dict[str, Any]:
    """``session.stats`` (a property or a method) as a plain dict; {} if it has none."""
    stats = getattr(session, "stats", None)
    if callable(stats):
        stats = stats()
    return dict(stats) if isinstance(stats, dict) else {}


class RtpMedia:
    """:class:`MediaToolkit` on ``ringback.telephony.sip.media`` and ``...sip.audio``."""

    def __init__(self) -> None:
        try:
            self._media = importlib.import_module("ringback.telephony.sip.media")
            self._audio = importlib.import_module("ringback.telephony.sip.audio")
        except ImportError as exc:
            raise MediaUnavailable(f"the SIP media layer cannot be loaded: {exc}") from exc

    async def open_session(self, host: str, port_range: tuple[int, int]) -> MediaSession:
        session: MediaSession = await self._media.RtpSession.open(host, port_range)
        return session

    async def wav_pcm(self, path: Path) -> bytes:
        pcm: bytes = await asyncio.to_thread(self._audio.load_wav_pcm8k, path)
        return pcm

    async def speech_pcm(self, text: str, language: str | None, voice: str | None) -> bytes:
        pcm: bytes = await asyncio.to_thread(self._audio.speak_pcm8k, text, language, voice)
        return pcm

    async def tone_pcm(self, freq_hz: float, seconds: float) -> bytes:
        pcm: bytes = await asyncio.to_thread(self._audio.tone_pcm8k, freq_hz, seconds)
        return pcm
