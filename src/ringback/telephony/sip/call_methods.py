"""The :class:`~ringback.telephony.base.Call` methods of a SIP leg that only use its media (play,
speak, digits, park, fax): a base class of :class:`~ringback.telephony.sip.call.SipCall`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from ringback.clock import Clock
from ringback.telephony.base import Call, CallError, CallRecord
from ringback.telephony.fax.result import FaxResult, ReceivedFax
from ringback.telephony.sip import fax_t38
from ringback.telephony.sip.call_media import CallMedia

if TYPE_CHECKING:
    from ringback.telephony.sip.t38_switch import T38Switch


class MediaCallMethods:
    _media: CallMedia
    _record: CallRecord
    _clock: Clock
    _ended: asyncio.Future[None]
    t38: T38Switch

    if TYPE_CHECKING:  # SipCall's

        async def hangup(self, cause: str = "NORMAL_CLEARING") -> None: ...

    @property
    def media_blocked(self) -> str | None:
        """Why the answered call's media cannot be used (:attr:`.T38Switch.stuck`), or None."""
        return self.t38.stuck

    async def bridge(self, other: Call) -> None:
        """Relay media between two answered legs until either hangs up; then hang up both."""
        if not isinstance(other, MediaCallMethods):
            raise CallError("the sip backend can only bridge two sip calls")
        if other is self:
            raise CallError("cannot bridge a call with itself")
        self._media.bridge(other._media, self._clock)
        try:
            await asyncio.wait((self._ended, other._ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._media.unbridge()
            for leg in (self, other):
                await leg.hangup()

    async def play(self, path: Path, *, loop: int = 1, name: str | None = None) -> None:
        await self._media.play(path, loop=loop, name=name)

    async def speak(
        self, text: str, *, language: str | None = None, voice: str | None = None, loop: int = 1
    ) -> None:
        await self._media.speak(text, language=language, voice=voice, loop=loop)

    async def wait(self, seconds: float) -> None:
        await self._media.wait(seconds)

    async def collect_digits(
        self, *, max_digits: int, timeout_s: float, finish_on_key: str = "#"
    ) -> str:
        """Digits the far end presses (RFC 4733): see :meth:`CallMedia.collect_digits`."""
        return await self._media.collect_digits(
            max_digits=max_digits, timeout_s=timeout_s, finish_on_key=finish_on_key
        )

    async def send_dtmf(self, digits: str) -> None:
        await self._media.send_dtmf(digits)

    async def park(self, timeout_s: float, music: Path | None = None) -> None:
        """Hold the caller for ``timeout_s`` with ``music`` looped (or a beep every 4 s)."""
        await self._media.park(timeout_s, music)

    async def send_fax(
        self, path: Path, *, header: str = "", ident: str = "", name: str | None = None
    ) -> FaxResult:
        """A fax over T.38 or the call's G.711 audio: see :mod:`.fax_t38`."""
        return await fax_t38.send_fax(
            self.t38, self._media, self._record, path, header=header, ident=ident, name=name
        )

    async def receive_fax(
        self, timeout_s: float, *, ident: str = "", name: str | None = None
    ) -> ReceivedFax:
        return await fax_t38.receive_fax(
            self.t38, self._media, self._record, timeout_s, ident=ident, name=name
        )
