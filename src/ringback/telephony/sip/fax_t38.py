"""The fax steps of a SIP call (``SipCall.send_fax`` / ``receive_fax``): which transport
carries the fax, T.38 or G.711 audio (docs/fax.md, "The transport of a SIP fax").

1. ``RINGBACK_SIP_T38=offer``: the step first asks the far end to switch
   (:meth:`~.t38_switch.T38Switch.switch`, a re-INVITE offering ``m=image``). 200 with T.38:
   the fax runs as a :class:`~ringback.telephony.fax.t38_session.T38Session` on the UDPTL
   channel. Refused (488, 415, 606, a timeout …): the fax runs over G.711, and the result
   says why (``FaxResult.fallback``). A call the far end moved to T.38 already (``accept`` or
   ``offer``) goes straight to T.38.
2. On G.711, with ``accept`` or ``offer``, the step also waits for the far end's switch: a
   gateway that hears the fax tones (CNG, CED) re-INVITEs to T.38; once that is answered 200
   the audio T.30 session is stopped (its result dropped) and a fresh one starts on T.38 for
   the time that is left. With ``off`` the far end's re-INVITE gets 488 and the fax stays on
   G.711.

3. A fax that ran on T.38 ends with the call back on audio: if the call is up and still on
   T.38 when the T.38 session ends, the step re-INVITEs to the call's audio
   (:meth:`~.t38_switch.T38Switch.back_to_audio`) before it returns, whichever side switched
   (Asterisk's ``res_fax`` does the same), so a later Play is heard and a second fax step
   switches again. Refused (488 …): the call stays up on T.38 and the next media or fax step
   fails saying why; 408 / 481 / no answer: the call is hung up.

Either way the result is the same kind (``FaxResult``, ``transport`` says which), recorded in
the call record's ``played`` as the G.711 path does, with ``detail["fax_t38"]`` the UDPTL
counters of a T.38 session (``detail["fax_media"]`` those of an audio one). The call ending
under a T.38 fax ends it as spandsp's ``t30_terminate`` decides (code 49, no page counted,
unless this side was only sending its final DCN).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ringback.telephony.base import CallError, CallNotSupported, CallRecord
from ringback.telephony.fax.endpoint import DEFAULT_MAX_SECONDS, FaxEndpoint, T30Session
from ringback.telephony.fax.result import FaxResult, ReceivedFax
from ringback.telephony.fax.spandsp import FaxUnavailable
from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.sip.call_media import CallMedia
from ringback.telephony.sip.fax_media import audio_endpoint, played, run_audio

if TYPE_CHECKING:
    from ringback.telephony.sip.t38_switch import T38Channel, T38Switch


def _t38_endpoint(action: str, **kwargs: object) -> T38Endpoint:
    try:
        return T38Endpoint(**kwargs)  # type: ignore[arg-type]
    except FaxUnavailable as exc:
        raise CallNotSupported(f"{action} is not supported by the sip backend: {exc}") from None


async def _run_t38(
    media: CallMedia,
    record: CallRecord,
    action: str,
    channel: T38Channel,
    endpoint: T38Endpoint,
    max_seconds: float,
) -> FaxResult:
    """``endpoint`` on the call's T.38 channel until phase E, the call's end (code 49 unless
    T.30 says otherwise) or ``max_seconds``."""
    media.up_session(action)
    try:
        session = await channel.open_session(endpoint, max_seconds=max(1.0, max_seconds))
    except RuntimeError as exc:  # the channel closed meanwhile (back to audio, or the end)
        media.up_session(action)  # CallError: the call ended
        raise CallError(f"cannot {action}: {exc}") from None
    try:
        result = await media.until_ended(session.run(), action)
    except CallError:
        result = endpoint.call_ended()  # the call went down under the fax
    finally:
        record.detail.setdefault("fax_t38", []).append(session.stats())
    if channel.closed and not endpoint.done:  # the far end took the call back to audio
        result = endpoint.call_ended()
    return result


async def _fax(
    t38: T38Switch,
    media: CallMedia,
    record: CallRecord,
    action: str,
    make: Callable[[type[T30Session]], T30Session],
    max_seconds: float,
) -> tuple[FaxResult, T30Session]:
    """Run the fax on the transport the call gets (the module's docstring); the result and
    the endpoint that produced it (closed)."""
    media.up_session(action)
    channel = await t38.switch()
    fallback = None
    if channel is None and t38.mode == "offer":
        fallback = str(t38.detail.get("fallback") or t38.detail.get("offer_error") or "refused")
    left = max_seconds
    if channel is None:
        waiter = asyncio.ensure_future(t38.wait_channel()) if t38.mode != "off" else None
        try:
            with make(FaxEndpoint) as audio:
                assert isinstance(audio, FaxEndpoint)
                result = await run_audio(media, record, action, audio, max_seconds,
                                         interrupt=waiter)  # fmt: skip
                if result is None:  # the far end switched to T.38: start again there
                    spent = audio.hang_up().audio_seconds
                    t38.detail["fax_restarted_after_s"] = spent
                    left = max_seconds - spent
                    channel = t38.channel
        finally:
            if waiter is not None:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                    await waiter
        if result is not None:
            return dataclasses.replace(result, fallback=fallback), audio
        if channel is None:  # it went back to audio at once, or the call ended
            media.up_session(action)  # CallError: the call ended
            raise CallError(f"cannot {action}: the call left T.38 as it switched")
    with make(T38Endpoint) as endpoint:
        assert isinstance(endpoint, T38Endpoint)
        result = await _run_t38(media, record, action, channel, endpoint, left)
    await t38.back_to_audio()  # the call up and still on T.38: re-INVITE to audio
    return result, endpoint


async def send_fax(
    t38: T38Switch,
    media: CallMedia,
    record: CallRecord,
    path: Path,
    *,
    header: str = "",
    ident: str = "",
    name: str | None = None,
) -> FaxResult:
    """Send the fax TIFF at ``path`` on the answered call (see ``Call.send_fax``)."""
    local_ident = ident or record.from_number or ""

    def make(kind: type[T30Session]) -> T30Session:
        build = _t38_endpoint if kind is T38Endpoint else audio_endpoint
        return build("SendFax", send=path, local_ident=local_ident, header=header)

    result, _ = await _fax(t38, media, record, "send a fax", make, DEFAULT_MAX_SECONDS)
    played(record, result, name or path.name)
    return result


async def receive_fax(
    t38: T38Switch,
    media: CallMedia,
    record: CallRecord,
    timeout_s: float,
    *,
    ident: str = "",
    name: str | None = None,
) -> ReceivedFax:
    """Receive a fax on the answered call within ``timeout_s`` of fax time
    (``Call.receive_fax``)."""
    if not timeout_s > 0:
        raise ValueError(f"cannot receive a fax within {timeout_s!r} seconds")
    local_ident = ident or record.from_number or ""
    with tempfile.TemporaryDirectory(prefix="ringback-fax-") as tmp:

        def make(kind: type[T30Session]) -> T30Session:
            build = _t38_endpoint if kind is T38Endpoint else audio_endpoint
            incoming = Path(tmp) / f"in-{kind.TRANSPORT}.tif"
            return build("ReceiveFax", receive=incoming, local_ident=local_ident)

        result, endpoint = await _fax(t38, media, record, "receive a fax", make, timeout_s)
        incoming = endpoint.path
        tiff = incoming.read_bytes() if result.ok and incoming.is_file() else b""
    played(record, result, name)
    return ReceivedFax(result, tiff)
