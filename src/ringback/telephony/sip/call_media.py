"""The media session of one SIP call leg: what the far end hears and presses.

:class:`CallMedia` owns the leg's RTP session (opened through a
:class:`~ringback.telephony.sip.media_port.MediaToolkit`), its connection to the remote media
from the SDP, and the :class:`~ringback.telephony.base.Call` media actions — play, speak,
wait, park, collect and send DTMF — with what they note in the call record (``played``,
``dtmf_received``, the RTP statistics). Every action stops with a :class:`CallError` when the
call ends under it.

The signalling (INVITE, BYE, CANCEL, re-INVITEs, the call's state) stays in
:mod:`ringback.telephony.sip.call`, which hands this object the leg's state as a
:class:`LegState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ringback.clock import Clock
from ringback.config import SipSettings
from ringback.telephony.base import (
    CallError,
    CallRecord,
    CannotPlay,
    ended_error,
    played_file,
    played_speech,
)
from ringback.telephony.sip.media_port import MediaSession, MediaToolkit, session_stats
from ringback.telephony.sip.sdp import RemoteMedia, SdpError, build_sdp, parse_remote_media
from ringback.telephony.sip.srtp import Keys, SrtpNegotiation, SrtpRefused

log = logging.getLogger("ringback.sip")

T = TypeVar("T")

#: park without a music file: a 425 Hz beep every 4 seconds
PARK_TONE_HZ = 425.0
_SILENCE_3S = bytes(2 * 8000 * 3)


class LegState(Protocol):
    """What the media session needs to know of its call's signalling state."""

    @property
    def answered(self) -> bool: ...

    @property
    def ended(self) -> bool: ...

    @property
    def media_blocked(self) -> str | None:
        """Why the call's media cannot be used while it is up (None: it can)."""
        ...


class CallMedia:
    """The media of one :class:`~ringback.telephony.sip.call.SipCall`: its RTP session and
    the media actions of the Call protocol. ``ended`` is the call's end, set by signalling."""

    def __init__(
        self,
        toolkit: MediaToolkit,
        record: CallRecord,
        leg: LegState,
        ended: asyncio.Future[None],
        settings: SipSettings | None = None,
    ) -> None:
        self._toolkit = toolkit
        self._srtp = SrtpNegotiation(settings.srtp if settings else "off")
        self._keys: Keys | None = None  # the SRTP keys the session uses
        self._external = settings.external_address if settings else None
        self._symmetric = settings.symmetric_rtp if settings else True
        self._record = record
        self._leg = leg
        self._ended = ended
        self.session: MediaSession | None = None
        self.remote: RemoteMedia | None = None
        self._closed: asyncio.Task[None] | None = None

    # -- the session -------------------------------------------------------------------------

    async def open(self, host: str, port_range: tuple[int, int]) -> MediaSession:
        self.session = await self._toolkit.open_session(host, port_range)
        if hasattr(self.session, "symmetric"):
            self.session.symmetric = self._symmetric
        return self.session

    def local_sdp(
        self, session_id: int, answering: RemoteMedia | None = None, version: int = 1
    ) -> bytes:
        """Our SDP: an offer, or the answer to ``answering`` (its codec and DTMF type; its other
        streams refused, RFC 3264); c=/o= carry the configured external address when there is
        one (NAT)."""
        session = self.session
        assert session is not None
        host = self._external or session.local_host
        if answering is None:
            profile, crypto = self._srtp.offer()
            return build_sdp(
                host,
                session.local_port,
                session_id=session_id,
                version=version,
                profile=profile,
                crypto=crypto,
            )
        profile, crypto = self._srtp.answer_profile(answering.profile)
        codecs: tuple[tuple[int, str], ...] = ((answering.payload_type, answering.codec),)
        return build_sdp(
            host,
            session.local_port,
            session_id=session_id,
            version=version,
            codecs=codecs,
            dtmf_payload_type=answering.dtmf_payload_type,
            profile=profile,
            crypto=crypto,
            answering=answering,
        )

    def audio_sdp(self, session_id: int, version: int) -> bytes:
        """Our audio stream as negotiated, alone: the far end's codec and DTMF type, the same
        RTP port, our SRTP key if any (the offer back to audio after T.38)."""
        if self.remote is None:
            return self.local_sdp(session_id, version=version)
        alone = dataclasses.replace(self.remote, streams=(), audio_index=0)
        return self.local_sdp(session_id, alone, version)

    def parse_remote(self, body: bytes) -> RemoteMedia:
        """The far end's SDP (an answer to our offer, or an offer) checked against the trunk's
        SRTP policy; :class:`SdpError` says why it is refused."""
        remote = parse_remote_media(body)
        args = (remote.profile, remote.crypto, remote.crypto_refused)
        try:
            if self._srtp.awaiting_answer:
                self._srtp.take_answer(*args)
            else:
                self._srtp.take_offer(*args)
        except SrtpRefused as exc:
            raise SdpError(str(exc)) from None
        return remote

    def connect(self, remote: RemoteMedia) -> None:
        self.remote = remote
        if self.session is None:
            return
        keys = self._srtp.keys
        if keys is not None and keys != self._keys:
            secure = getattr(self.session, "secure", None)
            if secure is None:
                raise SdpError("SRTP is not supported by this media session")
            secure(keys.context())
            self._keys = keys
            self._record.detail["srtp"] = keys.local.suite
        self.session.connect(
            remote.address, remote.codec, remote.payload_type, remote.dtmf_payload_type
        )
        self._record.detail["codec"] = remote.codec
        self._record.detail["remote_rtp"] = f"{remote.host}:{remote.port}"

    def close(self) -> None:
        """Note the RTP statistics in the record and close the session in the background."""
        session = self.session
        if session is None:
            return
        stats = session_stats(session)
        record = self._record
        record.detail["rtp"] = stats
        for key in ("packets_sent", "packets_received"):
            if key in stats:
                record.detail[f"rtp_{key}"] = stats[key]
        self._closed = self._ended.get_loop().create_task(_close_quietly(session))

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await asyncio.shield(self._closed)

    def up_session(self, action: str) -> MediaSession:
        if self._leg.ended:
            raise self.ended_error(action)
        if not self._leg.answered or self.session is None:
            raise CallError(f"cannot {action}: the call is not answered")
        blocked = self._leg.media_blocked
        if blocked is not None:
            raise CallError(f"cannot {action}: {blocked}")
        return self.session

    def ended_error(self, action: str) -> CallError:
        return ended_error(self._record, action)

    def bridge(self, other: CallMedia, clock: Clock) -> None:
        """Relay media between this answered leg and ``other`` (see :meth:`unbridge`)."""
        mine = self.up_session("bridge")
        theirs = other.up_session("bridge")
        if self._record.bridged_with is not None or other._record.bridged_with is not None:
            raise CallError("cannot bridge: a leg is already bridged")
        mine.bridge(theirs)
        now = clock.now()
        for leg, peer in ((self, other), (other, self)):
            leg._record.bridged_at = now
            leg._record.bridged_with = peer._record.leg_uuid

    def unbridge(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.unbridge()

    def note_info_dtmf(self, content_type: str | None, body: bytes) -> None:
        """Keys sent in a SIP INFO ``application/dtmf-relay`` body, noted in the record."""
        kind = (content_type or "").lower()
        if kind.startswith("application/dtmf-relay"):
            for line in body.decode("utf-8", "replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip().lower() == "signal" and value.strip():
                    self._record.detail.setdefault("sip_info_dtmf", "")
                    self._record.detail["sip_info_dtmf"] += value.strip()[:1]

    async def until_ended(self, work: Coroutine[Any, Any, T], action: str) -> T:
        """Run ``work``; CallError (and ``work`` cancelled) if the call ends first."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        try:
            await asyncio.wait((task, self._ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled() or not task.done():
            raise self.ended_error(action)
        return task.result()

    async def _play_pcm(self, pcm: bytes, loop: int, action: str) -> None:
        session = self.up_session(action)

        async def play_all() -> None:
            for _ in range(loop):
                await session.play_pcm(pcm)

        await self.until_ended(play_all(), action)

    # -- the media actions of the Call protocol ----------------------------------------------

    async def play(self, path: Path, *, loop: int = 1, name: str | None = None) -> None:
        _check_loop(loop)
        self.up_session("play")
        try:
            pcm = await self._toolkit.wav_pcm(Path(path))
        except (OSError, ValueError, EOFError) as exc:
            raise CannotPlay(path, str(exc)) from exc
        seconds = len(pcm) / 16000 * loop
        self._record.played.append(played_file(path, name, loop, seconds))
        await self._play_pcm(pcm, loop, "play")

    async def speak(
        self, text: str, *, language: str | None = None, voice: str | None = None, loop: int = 1
    ) -> None:
        _check_loop(loop)
        self.up_session("speak")
        try:
            pcm = await self._toolkit.speech_pcm(text, language, voice)
        except (OSError, ValueError, RuntimeError) as exc:
            raise CallError(f"cannot speak: {exc}") from exc
        self._record.played.append(
            played_speech(text, language, voice, loop, len(pcm) / 16000 * loop)
        )
        await self._play_pcm(pcm, loop, "speak")

    async def wait(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"cannot wait {seconds!r} seconds")
        self.up_session("wait")
        # real time on purpose: the party on this live call hears the silence as it passes
        await self.until_ended(asyncio.sleep(seconds), "wait")

    async def collect_digits(
        self, *, max_digits: int, timeout_s: float, finish_on_key: str = "#"
    ) -> str:
        """Digits the far end presses (RFC 4733), until ``finish_on_key`` (not returned),
        ``max_digits``, or ``timeout_s`` without a key (the wait restarts after each key)."""
        if max_digits < 1:
            raise ValueError(f"max_digits must be at least 1, not {max_digits}")
        if not timeout_s >= 0:
            raise ValueError(f"timeout_s must be >= 0, not {timeout_s!r}")
        session = self.up_session("collect digits")
        digits = ""
        try:
            while len(digits) < max_digits:
                key = await self.until_ended(session.next_digit(timeout_s), "collect digits")
                if key is None:
                    break
                if finish_on_key and key == finish_on_key:
                    break
                digits += key
        finally:
            self._record.dtmf_received += digits
        return digits

    async def send_dtmf(self, digits: str) -> None:
        session = self.up_session("send DTMF")
        self._record.played.append({"type": "dtmf_sent", "digits": digits})
        await self.until_ended(session.send_dtmf(digits), "send DTMF")

    async def park(self, timeout_s: float, music: Path | None = None) -> None:
        """Hold the caller for ``timeout_s`` with ``music`` looped (or a beep every 4 s)."""
        if not timeout_s >= 0:
            raise ValueError(f"timeout_s must be >= 0, not {timeout_s!r}")
        session = self.up_session("park")
        if music is not None:
            try:
                pcm = await self._toolkit.wav_pcm(Path(music))
            except (OSError, ValueError, EOFError) as exc:
                raise CallError(f"cannot park with {music}: {exc}") from exc
        else:
            pcm = await self._toolkit.tone_pcm(PARK_TONE_HZ, 1.0) + _SILENCE_3S
        self._record.played.append(
            {"type": "park", "music": None if music is None else str(music), "seconds": timeout_s}
        )

        async def hold() -> None:
            while True:
                await session.play_pcm(pcm)

        with contextlib.suppress(TimeoutError):
            await self.until_ended(asyncio.wait_for(hold(), timeout_s), "park")


async def _close_quietly(session: MediaSession) -> None:
    try:
        await session.close()
    except Exception:
        log.exception("closing an RTP session failed")


def _check_loop(loop: int) -> None:
    if loop < 1:
        raise ValueError(f"loop must be at least 1, not {loop}")
