"""Fax over a SIP call's G.711 audio (pass-through): SendFax and ReceiveFax on a
:class:`~ringback.telephony.sip.media.RtpSession`.

While a fax runs, a :class:`FaxDriver` takes over the leg's RTP session (``session.drive``):

* every tick of the **shared** 20 ms media clock (the one that paces all playing sessions of the
  event loop: no timer of its own) it plays one frame out of the receive
  :class:`~ringback.telephony.sip.jitter.JitterBuffer` into the :class:`FaxEndpoint` (``rx``,
  or ``rx_fillin(160)`` for a missing frame, silence once :data:`MAX_FILLIN_FRAMES` are
  missing in a row) and sends one ``tx(160)`` frame, G.711-encoded in the
  leg's negotiated codec (PCMU/PCMA), with continuous RTP timestamps (160 a frame) and the
  marker bit on the first packet;
* every G.711 packet received goes, decoded, into the jitter buffer (not into recording or a
  bridge); the endpoint hears only the far end, never its own signal.

The spandsp calls run in the event loop, inside the tick: measured (docs/fax.md) 0.13–0.22 ms
of CPU per 20 ms tick on the receiving side and about 0.02 ms on the sending side (each fax's
own figure is in the call record's ``detail["fax_media"]``).

:func:`run_audio` runs one endpoint this way until T.30's phase E, the call ends (code 49,
``FaxResult.dropped``), the audio time allowed passes, or the far end moves the call to T.38
(then the fax starts again there: :mod:`.fax_t38`, which holds ``SipCall.send_fax`` /
``receive_fax`` and records the fax in the call record's ``played`` with :func:`played`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from ringback.telephony.base import CallError, CallNotSupported, CallRecord
from ringback.telephony.fax import g711
from ringback.telephony.fax.endpoint import FRAME, RATE, FaxEndpoint
from ringback.telephony.fax.result import FaxResult
from ringback.telephony.fax.spandsp import FaxUnavailable
from ringback.telephony.sip.call_media import CallMedia
from ringback.telephony.sip.jitter import JitterBuffer
from ringback.telephony.sip.media import RtpSession

_LAW: dict[str, g711.Law] = {"PCMU": "ulaw", "PCMA": "alaw"}
#: Missing frames in a row that are filled in (the modems bridge the gap); beyond this (200 ms)
#: the far end has gone quiet and the fax machine hears silence instead: spandsp's fill-in
#: keeps a modem's carrier "up", and a receiver cut off mid-page then waited forever (measured
#: in-process), while silence lets T.30's timers end the session (~20–25 s).
MAX_FILLIN_FRAMES = 10
_SILENCE = np.zeros(FRAME, dtype=np.int16)


class FaxDriver:
    """One fax endpoint on one RTP session, frame by frame (see the module's docstring);
    :attr:`finished` when the endpoint is done, ``max_frames`` have passed, or it is stopped."""

    def __init__(self, session: RtpSession, endpoint: FaxEndpoint, max_frames: int) -> None:
        self._session = session
        self._endpoint = endpoint
        self._law = _LAW[session.codec]
        self._max_frames = max_frames
        self._frames = 0
        self._missing_run = 0
        self._ts: int | None = None
        self.jitter: JitterBuffer[np.ndarray[Any, np.dtype[np.int16]]] = JitterBuffer()
        self.cpu_s = 0.0  # CPU spent in the fax engine (rx, tx and G.711), this thread
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_audio(self, codec: str, payload: bytes, seq: int, ssrc: int) -> None:
        law = _LAW.get(codec)
        if law is not None and payload:
            self.jitter.put(seq, ssrc, g711.decode(np.frombuffer(payload, np.uint8), law))

    def _feed(self) -> None:
        samples = self.jitter.pop()
        if samples is not None:
            self._missing_run = 0
            self._endpoint.rx(samples)
        elif self._missing_run < MAX_FILLIN_FRAMES:
            self._missing_run += 1
            self._endpoint.rx_fillin(FRAME)
        else:
            self._endpoint.rx(_SILENCE)

    def tick(self, deadline: float) -> bool:
        if self.finished.done():
            return False
        started = time.thread_time()  # CPU time, not the clock: a measurement
        self._feed()
        out = g711.encode(self._endpoint.tx(FRAME), self._law).tobytes()
        self.cpu_s += time.thread_time() - started
        first = self._ts is None
        if self._ts is None:
            self._ts = self._session.now_ts(deadline)
        else:
            self._ts = (self._ts + FRAME) & 0xFFFFFFFF
        self._session.send_audio(out, self._ts, first)
        self._frames += 1
        if self._endpoint.done or self._frames >= self._max_frames:
            self.stop()
            return False
        return True

    def drain(self) -> None:
        """The call ended: let the endpoint hear what was received but not yet played out
        (the far end's last signal, e.g. the DCN, can still be in the jitter buffer)."""
        for _ in range(self.jitter.depth + self.jitter.delay_frames):
            if self._endpoint.done:
                return
            self._feed()

    def stop(self, error: Exception | None = None) -> None:
        if not self.finished.done():
            if error is None:
                self.finished.set_result(None)
            else:
                self.finished.set_exception(error)

    def stats(self) -> dict[str, Any]:
        return {
            "frames": self._frames,
            "cpu_ms": round(self.cpu_s * 1000, 1),
            "jitter": self.jitter.stats.as_dict(),
        }


async def run_audio(
    media: CallMedia,
    record: CallRecord,
    action: str,
    endpoint: FaxEndpoint,
    max_seconds: float,
    *,
    interrupt: asyncio.Future[Any] | None = None,
) -> FaxResult | None:
    """Run ``endpoint`` on the call's media; its result (dropped, code 49, if cut short), or
    None when ``interrupt`` completed first (without an error) and stopped the unfinished fax
    (the far end moved the call to T.38: :mod:`.fax_t38`)."""
    session = media.up_session(action)
    if not isinstance(session, RtpSession):
        raise CallNotSupported(f"{action} needs ringback's RTP session (not {type(session)})")
    driver = FaxDriver(session, endpoint, max(1, round(max_seconds * RATE / FRAME)))

    def on_interrupt(_: asyncio.Future[Any]) -> None:
        driver.stop()

    if interrupt is not None:
        interrupt.add_done_callback(on_interrupt)
    try:
        await media.until_ended(session.drive(driver), action)
    except CallError:
        driver.drain()  # the call went down under the fax
    finally:
        driver.stop()
        if interrupt is not None:
            interrupt.remove_done_callback(on_interrupt)
        record.detail.setdefault("fax_media", []).append(driver.stats())
    if (
        interrupt is not None
        and interrupt.done()
        and not interrupt.cancelled()
        and interrupt.exception() is None
        and not endpoint.done
    ):
        return None
    return endpoint.hang_up() if endpoint.done else endpoint.call_ended()


def played(record: CallRecord, result: FaxResult, name: str | None) -> None:
    """The fax in the call record's ``played`` (as the simulator notes it, plus its
    transport and, when T.38 was asked for and not had, why)."""
    entry: dict[str, Any] = {
        "type": "fax", "operation": result.operation, "file": name, "pages": result.pages,
        "code": result.code, "text": result.text, "seconds": result.audio_seconds,
        "transport": result.transport,
    }  # fmt: skip
    if result.fallback is not None:
        entry["t38_fallback"] = result.fallback
    record.played.append(entry)


def audio_endpoint(action: str, **kwargs: Any) -> FaxEndpoint:
    try:
        return FaxEndpoint(**kwargs)
    except FaxUnavailable as exc:
        raise CallNotSupported(f"{action} is not supported by the sip backend: {exc}") from None
