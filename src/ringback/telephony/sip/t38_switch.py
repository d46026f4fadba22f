"""Moving a SIP call from G.711 audio to T.38 fax and back: the re-INVITE with ``m=image``
accepted (the far end's) or sent (ours), per ``RINGBACK_SIP_T38`` (docs/fax.md, "T.38").

- ``off``: nothing here acts; a far end's image-only re-INVITE finds no audio stream and gets
  488, so it stays on G.711 (what every T.38 gateway falls back to).
- ``accept`` (the default): a far end's re-INVITE offering ``m=image … udptl t38`` is
  answered 200 with our image stream on a UDPTL port from ``RINGBACK_SIP_RTP_PORTS``; the call
  is then on T.38 (a running fax step starts again there: :mod:`.fax_t38`).
- ``offer``: as ``accept``, and :meth:`T38Switch.switch` (called when a fax starts) sends a
  re-INVITE offering T.38 with the error correction ``RINGBACK_SIP_T38_EC`` names (redundancy
  by default, FEC, none; the far end's offers are answered with what they name). 200 with a
  T.38 answer: switched. 488, 415, 606 (or any other refusal, a timeout, a 200 that answers
  audio): the call stays on G.711, the fallback.
  491 (glare, RFC 3261 §14.1): tried again after 2.1–4 s if ringback owns the Call-ID (it
  placed the call), after 0–2 s otherwise, at most :data:`GLARE_TRIES` times. While our
  re-INVITE is pending, the far end's gets 491. A 401/407 is answered once with the trunk's
  credentials (:mod:`.dialog_requests`) and the answer to that is taken as the first one
  would have been; a second challenge, or one without credentials set, is a refusal
  (``detail["t38"]["offer_auth"]`` says which).

After a fax step on T.38 the call goes back to audio: :meth:`T38Switch.back_to_audio` (the
step's side re-INVITEs, whoever switched; a refusal leaves the call up with :attr:`stuck`
set, which fails its later media steps; 408/481 hang up). Every SDP ringback sends keeps the
m-lines of its previous one (RFC 3264 §8: a stream left is disabled with port 0).

The hand-off to the fax code is a :class:`T38Channel`: "this call is now on T.38 with the far
end at ``remote.address`` and parameters ``remote.params``; here is the bound UDPTL socket".
:meth:`T38Channel.open_session` turns it into a running :class:`~..fax.t38_session.T38Session`
for a :class:`~..fax.t38.T38Endpoint`. A re-INVITE back to audio (or the call's end) closes
the channel. The call's record keeps what happened in ``detail["t38"]``.

The call (:class:`~.call.SipCall`) hooks in at two places only: ``_apply_remote_sdp`` lets
:meth:`T38Switch.take_offer` have a T.38 offer first, and a re-INVITE is answered with
:attr:`T38Switch.local_sdp` while it is set (and with 491 while :attr:`T38Switch.offering`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sipmessage import Response

from ringback.domain.outcomes import cause_for_sip
from ringback.telephony.fax.endpoint import DEFAULT_MAX_SECONDS
from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.fax.t38_session import T38Session
from ringback.telephony.fax.udptl import DEFAULT_DEPTH
from ringback.telephony.sip.dialog_requests import send_in_dialog, with_sdp
from ringback.telephony.sip.rtp_socket import MediaError, bind_pair
from ringback.telephony.sip.sdp import SdpError
from ringback.telephony.sip.sdp_t38 import (
    FEC,
    NO_EC,
    RemoteImage,
    build_t38_answer,
    build_t38_offer,
    has_t38,
    in_previous_slots,
    offer_params,
    parse_remote_image,
)

if TYPE_CHECKING:
    from ringback.telephony.sip.call import SipCall

#: responses to our re-INVITE that mean "no T.38 here" (any other refusal is taken alike)
REFUSALS = (488, 415, 606)
GLARE_TRIES = 3
#: answers to an in-dialog request that end the dialog (RFC 3261 §12.2.1.2): the re-INVITE
#: back to audio met by one of these is followed by BYE
DIALOG_GONE = (408, 481)
_O_VERSION = re.compile(rb"^o=\S+ \d+ (\d+)", re.M)


@dataclass
class T38Channel:
    """A call on T.38: the bound UDPTL socket and the far end's stream (see the module)."""

    sock: socket.socket
    local: tuple[str, int]
    remote: RemoteImage
    session: T38Session | None = None
    closed: bool = field(default=False)

    @property
    def redundancy(self) -> int:
        """How many earlier packets each datagram carries (0 when no error correction was
        agreed)."""
        return 0 if self.remote.params.udp_ec == NO_EC else DEFAULT_DEPTH

    @property
    def fec(self) -> bool:
        """Whether the agreed error correction is parity FEC (``t38UDPFEC``): then the
        session sends ``redundancy`` FEC entries (span 3) instead of as many secondaries."""
        return self.remote.params.udp_ec == FEC

    async def open_session(
        self, endpoint: T38Endpoint, *, max_seconds: float = DEFAULT_MAX_SECONDS
    ) -> T38Session:
        """A T.38 session for ``endpoint`` on this channel (once; the session owns the socket
        from then on). ``await session.run()`` runs the fax."""
        if self.closed:
            raise RuntimeError("the T.38 channel is closed (the call left T.38 or ended)")
        if self.session is not None:
            raise RuntimeError("the T.38 channel has a session already")
        self.session = await T38Session.open(
            endpoint,
            self.remote.address,
            sock=self.sock,
            depth=self.redundancy,
            fec=self.fec,
            max_seconds=max_seconds,
            max_datagram=self.remote.params.max_datagram,
        )
        return self.session

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.session is not None:
            self.session.close()
        else:
            self.sock.close()


def _bind_udptl(host: str, port_range: tuple[int, int]) -> socket.socket:
    # an RTP-style even/odd pair from the media range, of which UDPTL uses the even port
    sock, spare = bind_pair(host, port_range)
    spare.close()
    return sock


class T38Switch:
    """One call's T.38 state (see the module's docstring)."""

    def __init__(self, call: SipCall) -> None:
        self._call = call
        self.mode = call._settings.t38
        self.channel: T38Channel | None = None
        #: our image SDP while the call is on T.38 (what a re-INVITE is answered with)
        self.local_sdp: bytes | None = None
        self.offering = False  # our re-INVITE is pending
        self._version = 1  # the o= version of our last SDP, one up for every new one
        #: why the call's media cannot be used (the far end refused to go back to audio)
        self.stuck: str | None = None
        self._answer_audio = False  # the far end's offer just took the call back to audio
        self._switched = asyncio.Event()
        self.detail: dict[str, Any] = {"mode": self.mode}
        if self.mode != "off":
            call._record.detail["t38"] = self.detail
        call._ended.add_done_callback(lambda _: self._leave("call ended"))

    # -- the far end's offers ------------------------------------------------------------------

    def take_offer(self, body: bytes) -> bool:
        """An offer (re-INVITE) from the far end: True when it is a T.38 offer we took (then
        answer with :attr:`local_sdp`); False to let the audio rules answer it (an offer
        without T.38 also moves the call back to audio)."""
        if not has_t38(body):
            self._answer_audio = self.channel is not None
            self._leave("the far end offered audio")
            return False
        if self.mode == "off":
            return False
        call = self._call
        channel = self.channel
        try:
            parse_remote_image(body)
            sock = (
                channel.sock
                if channel is not None
                else _bind_udptl(call._settings.local_host, call._settings.rtp_ports)
            )
        except (SdpError, MediaError, OSError, ValueError) as exc:  # unusable, or no free port
            call._record.detail.setdefault("sdp_errors", []).append(f"T.38 offer: {exc}")
            return False
        local = sock.getsockname()[:2]
        self.local_sdp, answered = build_t38_answer(
            body,
            call._settings.external_address or local[0],
            local[1],
            session_id=call._sdp_session_id,
            version=self._next_version(),
        )
        if channel is not None:  # a refresh, or the far end moved: same socket, its new address
            channel.remote = answered
            if channel.session is not None:
                channel.session.remote = answered.address
        else:
            self._enter(T38Channel(sock, (local[0], local[1]), answered), "accepted")
        return True

    # -- our offer ------------------------------------------------------------------------------

    async def switch(self) -> T38Channel | None:
        """Re-INVITE the far end to T.38 (``offer`` mode only): the channel once switched (at
        once if the call is on T.38 already), None when the call stays on G.711."""
        if self.channel is not None:
            return self.channel
        call = self._call
        if self.mode != "offer" or call._ended.done() or not call.answered:
            return None
        try:
            sock = _bind_udptl(call._settings.local_host, call._settings.rtp_ports)
        except (MediaError, OSError, ValueError) as exc:  # no free port
            self.detail["offer_error"] = str(exc)
            return None
        self.offering = True
        try:
            return await self._offer(sock)
        finally:
            self.offering = False
            if self.channel is None or self.channel.sock is not sock:
                sock.close()

    async def _offer(self, sock: socket.socket) -> T38Channel | None:
        call = self._call
        local = sock.getsockname()[:2]
        offer = build_t38_offer(
            call._settings.external_address or local[0],
            local[1],
            session_id=call._sdp_session_id,
            version=self._next_version(),
            params=offer_params(call._settings.t38_ec),
        )
        if b"m=image" in call._local_sdp:  # back on audio after T.38: keep every m-line
            offer = in_previous_slots(offer, call._local_sdp)
        for attempt in range(1, GLARE_TRIES + 1):
            try:
                final = await self._reinvite(offer, "offer")
            except OSError as exc:  # the far end's address does not resolve any more
                self.detail["fallback"] = f"re-INVITE not sent: {exc}"
                return None
            self.detail["offer_response"] = final.code
            if final.code == 491 and attempt < GLARE_TRIES and not call._ended.done():
                # RFC 3261 §14.1: the Call-ID's owner waits 2.1-4 s, the other side 0-2 s
                owner = call._server_txn is None
                ticks = random.randint(210, 400) if owner else random.randint(0, 200)
                self.detail["glare_waits"] = self.detail.get("glare_waits", 0) + 1
                await call._clock.sleep(ticks / 100)
                continue
            break
        if not 200 <= final.code < 300:
            self.detail["fallback"] = f"{final.code} {final.phrase}"
            return None
        try:
            remote = parse_remote_image(final.body)
        except SdpError as exc:  # answered with audio (or nothing usable): stay on G.711
            self.detail["fallback"] = f"200 without T.38: {exc}"
            if not (final.body and call._apply_remote_sdp(final.body)):
                await self._restore_audio(offer)  # e.g. m=image 0: no stream left at all
            return None
        self.local_sdp = offer
        self._enter(T38Channel(sock, (local[0], local[1]), remote), "offered")
        return self.channel

    async def _restore_audio(self, offer: bytes) -> None:
        """Offer our audio again (the answer to T.38 ``offer`` left the call without a stream),
        the image stream kept as ``m=image 0`` (RFC 3264 §8)."""
        call = self._call
        audio = in_previous_slots(
            call._media.audio_sdp(call._sdp_session_id, self._next_version()), offer
        )
        try:
            final = await self._reinvite(audio, "audio_restored")
        except OSError as exc:
            self.detail["audio_restored"] = f"not sent: {exc}"
            return
        restored = 200 <= final.code < 300 and call._apply_remote_sdp(final.body)
        self.detail["audio_restored"] = final.code if restored else f"{final.code}: no audio"
        if restored:
            call._local_sdp = audio

    # -- back to audio after a fax -------------------------------------------------------------

    async def back_to_audio(self) -> None:
        """After a fax step that ran on T.38, with the call still up: re-INVITE to the call's
        audio (docs/fax.md, "Back to audio after a T.38 fax"). The offer: our audio stream as
        negotiated (its codec, the same RTP port), the T.38 stream kept as ``m=image 0``.
        200: the call's RTP carries audio again. 491: tried again after RFC 3261 §14.1's wait
        unless the far end's own re-INVITE took the call back meanwhile. 408, 481 or no
        answer: the dialog is gone (RFC 3261 §12.2.1.2), the call is hung up. Any other
        refusal (488 …) leaves the session as it was (§14.1): the call stays up on T.38 and
        the next media or fax step fails saying why (:attr:`stuck`)."""
        channel = self.channel
        call = self._call
        if channel is None or call._ended.done():
            return
        offer = self._audio_offer()
        self.offering = True
        try:
            for attempt in range(1, GLARE_TRIES + 1):
                sending = asyncio.ensure_future(self._reinvite(offer, "audio_return"))
                await asyncio.wait((sending, call._ended), return_when=asyncio.FIRST_COMPLETED)
                if not sending.done():  # the call ended: its answer no longer matters
                    sending.cancel()
                    return
                try:
                    final = sending.result()
                except OSError as exc:  # the far end's address does not resolve any more
                    self.detail["audio_return"] = f"not sent: {exc}"
                    await call.hangup("NORMAL_TEMPORARY_FAILURE")
                    return
                if final.code != 491 or attempt == GLARE_TRIES or call._ended.done():
                    break
                owner = call._server_txn is None  # RFC 3261 §14.1's wait, as for the offer
                ticks = random.randint(210, 400) if owner else random.randint(0, 200)
                self.detail["audio_return_glare_waits"] = attempt
                self.offering = False  # the far end's re-INVITE is welcome meanwhile
                await call._clock.sleep(ticks / 100)
                self.offering = True
                if self.channel is not channel:  # the far end took it back, or the call ended
                    return
        finally:
            self.offering = False
        await self._audio_answered(final, offer)

    async def _audio_answered(self, final: Response, offer: bytes) -> None:
        call = self._call
        answer = f"{final.code} {final.phrase}"
        if 200 <= final.code < 300:
            self._leave("back to audio (our re-INVITE)")
            if final.body and not has_t38(final.body) and call._apply_remote_sdp(final.body):
                call._local_sdp = offer  # the session's SDP from now on (refreshes, answers)
                self.detail["audio_return"] = final.code
                return
            answer = f"{answer} without a usable audio stream"
        self.detail["audio_return"] = answer
        if final.code in DIALOG_GONE:  # a timeout is a 408 too (Timer B)
            await call.hangup(cause_for_sip(final.code))
            return
        self.stuck = f"the far end refused to go back to audio after T.38 ({answer})"

    def _audio_offer(self) -> bytes:
        """Our audio stream as negotiated, in the m-line slots of our T.38 SDP."""
        call = self._call
        audio = call._media.audio_sdp(call._sdp_session_id, self._next_version())
        return in_previous_slots(audio, self.local_sdp or b"")

    def answer_body(self) -> bytes:
        """Our SDP for the answer to the far end's offer just applied: the T.38 one while on
        T.38; after an offer that took the call back to audio, our audio answering that
        offer's m-lines (a new ``o=`` version, kept as the session's SDP); else the call's."""
        call = self._call
        if self.local_sdp is not None:
            return self.local_sdp
        remote = call._media.remote
        if self._answer_audio and remote is not None:
            version = self._next_version()
            call._local_sdp = call._media.local_sdp(call._sdp_session_id, remote, version)
        self._answer_audio = False
        return call._local_sdp

    def _next_version(self) -> int:
        """The ``o=`` version of our next SDP: one above every one sent in the dialog."""
        found = _O_VERSION.search(self._call._local_sdp)
        self._version = max(self._version, int(found.group(1)) if found else 0) + 1
        return self._version

    async def _reinvite(self, offer: bytes, step: str) -> Response:
        """Send one re-INVITE with ``offer``; its final response. A 401/407 is answered once
        (:mod:`.dialog_requests`); what came of it is noted as ``<step>_auth``."""
        answer = await send_in_dialog(self._call, "INVITE", partial(with_sdp, body=offer))
        if answer.auth is not None:
            self.detail[f"{step}_auth"] = answer.auth
        return answer.final

    # -- the state ------------------------------------------------------------------------------

    def _enter(self, channel: T38Channel, how: str) -> None:
        if self.channel is not None:
            self.channel.close()
        self.channel = channel
        self.detail.update(
            switched=how,
            remote=f"{channel.remote.host}:{channel.remote.port}",
            local_port=channel.local[1],
            redundancy=channel.redundancy,
            error_correction=channel.remote.params.udp_ec or "none",
        )
        self._switched.set()

    def _leave(self, why: str) -> None:
        self.stuck = None
        if self.channel is not None:
            self.channel.close()
            self.channel = None
            self.local_sdp = None
            self.detail["left"] = why
            self._switched.clear()

    async def wait_channel(self) -> T38Channel:
        """The channel, once the call is on T.38 (the far end's re-INVITE was accepted)."""
        while self.channel is None:
            if self._call._ended.done():
                raise RuntimeError("the call ended before it moved to T.38")
            waiter = asyncio.ensure_future(self._switched.wait())
            try:
                await asyncio.wait((waiter, self._call._ended), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        return self.channel
