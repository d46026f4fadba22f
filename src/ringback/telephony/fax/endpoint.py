"""A fax machine on an audio channel: T.30 over the V.21/V.27ter/V.29/V.17 modems of
libspandsp, fed and drained as linear PCM (signed 16-bit, 8 kHz), plus :func:`exchange`, which
runs two endpoints against each other in-process through a G.711 codec.

An endpoint either sends a TIFF (``send=``) or receives one (``receive=``); by default the
sender is the calling party (it sends CNG, the receiver answers with CED and DIS), as in
FreeSWITCH's ``txfax``/``rxfax``. Feed it what the far end sent with :meth:`FaxEndpoint.rx`
(or :meth:`FaxEndpoint.rx_fillin` for audio that was lost), ask it for what to send with
:meth:`FaxEndpoint.tx`; when T.30 reaches phase E it is :attr:`FaxEndpoint.done` and
:attr:`FaxEndpoint.result` says how it went (a failure is a non-zero code, never an
exception). An endpoint is not thread-safe; :meth:`FaxEndpoint.close` frees the C state.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from ringback.telephony.fax import g711
from ringback.telephony.fax.result import CALL_DROPPED, FaxResult
from ringback.telephony.fax.spandsp import ALL_MODEMS, PHASE_E_HANDLER, Spandsp, load

RATE = 8000
FRAME = 160  # samples: 20 ms at 8 kHz
#: longer than any sane fax of a few pages; exchange() gives up after this much audio
DEFAULT_MAX_SECONDS = 600.0
MAX_IDENT = 20  # T30_MAX_IDENT_LEN
MAX_HEADER = 50  # T.30's page header info


class T30Session:
    """What the audio and the T.38 endpoints share: one side of a T.30 session (a file to send
    or one to receive into, station id, header, ECM, modems), its phase E and its result."""

    TRANSPORT = "g711"  # what carries the session (FaxResult.transport)

    def __init__(
        self,
        *,
        send: Path | str | None,
        receive: Path | str | None,
        local_ident: str,
        header: str,
        spandsp: Spandsp | None,
    ) -> None:
        if (send is None) == (receive is None):
            raise ValueError("a fax endpoint either sends a file or receives one")
        self._sd = spandsp or load()
        self.sending = send is not None
        self.path = Path(send if send is not None else receive)  # type: ignore[arg-type]
        self.local_ident = local_ident[:MAX_IDENT]
        self.header = header[:MAX_HEADER]
        self._samples = 0  # the session's time so far, in 8 kHz samples
        self._code: int | None = None
        self._result: FaxResult | None = None
        self._t30 = 0
        self._phase_e: Any = None

    def _configure(self, t30: int, *, ecm: bool, modems: int) -> None:
        self._t30 = t30
        if self.sending:
            self._sd.t30_set_tx_file(t30, str(self.path))
        else:
            self._sd.t30_set_rx_file(t30, str(self.path))
        if self.local_ident:
            self._sd.t30_set_tx_ident(t30, self.local_ident)
        if self.header:
            self._sd.t30_set_tx_page_header_info(t30, self.header)
        self._sd.t30_set_ecm_capability(t30, ecm)
        self._sd.t30_set_supported_modems(t30, modems)
        # the C library holds a bare pointer to this: it lives as long as the endpoint
        self._phase_e = PHASE_E_HANDLER(self._on_phase_e)
        self._sd.t30_set_phase_e_handler(t30, self._phase_e)

    def _on_phase_e(self, _t30: Any, _user: Any, code: int) -> None:
        if self._code is None:  # the first completion is the one that counts
            self._code = code
            self._result = self._make_result(code)

    def _make_result(self, code: int) -> FaxResult:
        stats = self._sd.t30_get_transfer_statistics(self._t30)
        return FaxResult(
            code=code,
            text=self._sd.t30_completion_code_to_str(code),
            sending=self.sending,
            pages=stats.pages_tx if self.sending else stats.pages_rx,
            bit_rate=stats.bit_rate,
            ecm=bool(stats.error_correcting_mode),
            remote_ident=self._sd.t30_get_rx_ident(self._t30),
            local_ident=self._sd.t30_get_tx_ident(self._t30),
            header=self.header,
            audio_seconds=round(self._samples / RATE, 3),
            transport=self.TRANSPORT,
        )

    @property
    def done(self) -> bool:
        """T.30 reached phase E (success or failure)."""
        return self._code is not None

    @property
    def result(self) -> FaxResult | None:
        """The result once :attr:`done`, else None."""
        return self._result

    def hang_up(self) -> FaxResult:
        """The result, ending the session as dropped (code 49) if it has not ended."""
        if self._result is None:
            self._code = CALL_DROPPED
            self._result = self._make_result(CALL_DROPPED)
        return self._result

    def call_ended(self) -> FaxResult:
        """The call went down: T.30 decides how the session ended (spandsp's
        ``t30_terminate``: success if this side was only sending its final DCN, else code 49,
        the call dropped, with no page counted)."""
        if self._result is None and self._t30:
            self._sd.t30_terminate(self._t30)
        result = self.hang_up()
        return result.dropped() if result.code == CALL_DROPPED else result

    def _free(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Free the C state (idempotent), hanging up first; the result stays readable."""
        if self._t30:
            self.hang_up()
            self._free()
            self._t30 = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class FaxEndpoint(T30Session):
    """One side of a fax call over audio (see the module's docstring)."""

    def __init__(
        self,
        *,
        send: Path | str | None = None,
        receive: Path | str | None = None,
        calling: bool | None = None,
        ecm: bool = True,
        modems: int = ALL_MODEMS,
        local_ident: str = "",
        header: str = "",
        spandsp: Spandsp | None = None,
    ) -> None:
        super().__init__(
            send=send, receive=receive, local_ident=local_ident, header=header, spandsp=spandsp
        )
        self._buf = (ctypes.c_int16 * FRAME)()
        self._fax = self._sd.fax_init(self.sending if calling is None else calling)
        self._sd.fax_set_transmit_on_idle(self._fax, True)
        self._configure(self._sd.fax_get_t30_state(self._fax), ecm=ecm, modems=modems)

    def _free(self) -> None:
        self._sd.fax_free(self._fax)

    def _state(self) -> int:
        if not self._t30:
            raise RuntimeError("the fax endpoint is closed")
        return self._fax

    def rx(self, samples: npt.NDArray[np.int16]) -> None:
        """Take audio the far end sent (any length)."""
        fax = self._state()
        data = np.array(samples, dtype=np.int16)  # a writable copy the C side may read
        self._sd.fax_rx(fax, (ctypes.c_int16 * len(data)).from_buffer(data.data), len(data))
        self._samples += len(data)

    def rx_fillin(self, n: int) -> None:
        """``n`` samples of the far end's audio were lost: let the modems fill the gap."""
        self._sd.fax_rx_fillin(self._state(), n)
        self._samples += n

    def tx(self, n: int = FRAME) -> npt.NDArray[np.int16]:
        """The next ``n`` samples to send (silence when T.30 has nothing to say)."""
        fax = self._state()
        out = np.zeros(n, dtype=np.int16)
        done = 0
        while done < n:
            want = min(FRAME, n - done)
            got = self._sd.fax_tx(fax, self._buf, want)
            if got <= 0:
                break
            out[done : done + got] = np.ctypeslib.as_array(self._buf)[:got]
            done += got
        return out


def exchange(
    sender: FaxEndpoint,
    receiver: FaxEndpoint,
    law: g711.Law = "ulaw",
    max_seconds: float = DEFAULT_MAX_SECONDS,
    *,
    lose: Callable[[int, int], bool] | None = None,
) -> tuple[FaxResult, FaxResult]:
    """Run two endpoints against each other, 20 ms frame by frame, each direction through
    G.711 (``law``) encode and decode, with no real-time pacing; returns (sender's result,
    receiver's result) once both reached phase E, or when ``max_seconds`` of audio have
    passed (then an unfinished side reports code 49, the call dropped).

    ``lose``, when given, is called as ``lose(direction, frame_index) -> bool`` (direction 0:
    sender → receiver, 1: receiver → sender); a lost frame reaches the far end as
    ``rx_fillin``, as a jitter buffer would report a gap."""
    frames = int(max_seconds * RATE / FRAME)
    for index in range(frames):
        if sender.done and receiver.done:
            break
        a_to_b = g711.decode(g711.encode(sender.tx(FRAME), law), law)
        b_to_a = g711.decode(g711.encode(receiver.tx(FRAME), law), law)
        if lose is not None and lose(0, index):
            receiver.rx_fillin(FRAME)
        else:
            receiver.rx(a_to_b)
        if lose is not None and lose(1, index):
            sender.rx_fillin(FRAME)
        else:
            sender.rx(b_to_a)
    return sender.hang_up(), receiver.hang_up()
