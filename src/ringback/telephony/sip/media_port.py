"""What the SIP calls need from the media layer (``media.py`` / ``audio.py``), as protocols.

The default :class:`RtpMedia` is ringback's own RTP layer; an embedder may pass anything with
the same shape.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

from ringback.telephony.sip.audio import load_audio_pcm8k, speak_pcm8k, tone_pcm8k
from ringback.telephony.sip.media import RtpSession


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
    """:class:`MediaToolkit` on ringback's RTP layer (:mod:`.media`) and audio (:mod:`.audio`)."""

    async def open_session(self, host: str, port_range: tuple[int, int]) -> MediaSession:
        return await RtpSession.open(host, port_range)

    async def wav_pcm(self, path: Path) -> bytes:
        return await asyncio.to_thread(load_audio_pcm8k, path)

    async def speech_pcm(self, text: str, language: str | None, voice: str | None) -> bytes:
        return await asyncio.to_thread(speak_pcm8k, text, language, voice)

    async def tone_pcm(self, freq_hz: float, seconds: float) -> bytes:
        return await asyncio.to_thread(tone_pcm8k, freq_hz, seconds)
