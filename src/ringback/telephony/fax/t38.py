"""A fax machine on T.38: T.30 carried in IFP packets (ITU-T T.38) by libspandsp's
``t38_terminal``, and :func:`t38_exchange`, which runs two of them against each other
in-process.

Only the IFP layer is here. spandsp 0.0.6 has no UDPTL: ringback's own is :mod:`.udptl` (the
UDP framing, with redundancy) and :mod:`.t38_session` (an endpoint on a UDP socket); the SDP and
the re-INVITE are in ``telephony/sip/`` (``sdp_t38``, ``t38_switch``; docs/fax.md).

An endpoint is driven by time: :meth:`T38Endpoint.tick` lets ``n`` samples (8 kHz) pass and
returns the IFP packets to send meanwhile, each with the number of times T.38 asks it to be
sent (indicators are repeated); :meth:`T38Endpoint.rx_ifp` takes a packet from the far end with
its sequence number (duplicates are dropped by spandsp).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ringback.telephony.fax.endpoint import DEFAULT_MAX_SECONDS, FRAME, RATE, T30Session
from ringback.telephony.fax.result import FaxResult
from ringback.telephony.fax.spandsp import ALL_MODEMS, T38_TX_PACKET_HANDLER, Spandsp


class IfpPacket(NamedTuple):
    data: bytes
    repeats: int  # how many times to send it (T.38's repetition of indicators)


class T38Endpoint(T30Session):
    """One side of a fax call over T.38 (see the module's docstring)."""

    TRANSPORT = "t38"

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
        version: int = 0,
        spandsp: Spandsp | None = None,
    ) -> None:
        super().__init__(
            send=send, receive=receive, local_ident=local_ident, header=header, spandsp=spandsp
        )
        self._outbox: list[IfpPacket] = []
        # the C library holds a bare pointer to this: it lives as long as the endpoint
        self._tx_handler = T38_TX_PACKET_HANDLER(self._on_packet)
        sd = self._sd
        self._terminal = sd.t38_terminal_init(
            self.sending if calling is None else calling, self._tx_handler
        )
        self._core = sd.t38_terminal_get_t38_core_state(self._terminal)
        sd.t38_set_t38_version(self._core, version)
        self._configure(sd.t38_terminal_get_t30_state(self._terminal), ecm=ecm, modems=modems)

    def _on_packet(self, _core: Any, _user: Any, buf: Any, length: int, count: int) -> int:
        self._outbox.append(IfpPacket(ctypes.string_at(buf, length), max(1, count)))
        return 0

    def _free(self) -> None:
        self._sd.t38_terminal_free(self._terminal)

    def _state(self) -> int:
        if not self._t30:
            raise RuntimeError("the fax endpoint is closed")
        return self._terminal

    def tick(self, samples: int = FRAME) -> list[IfpPacket]:
        """Let ``samples`` of time pass; the packets to send (including any that answering
        received packets produced since the last tick)."""
        self._sd.t38_terminal_send_timeout(self._state(), samples)
        self._samples += samples
        out, self._outbox = self._outbox, []
        return out

    def rx_ifp(self, packet: bytes, seq_no: int) -> None:
        """Take an IFP packet from the far end (``seq_no``: its UDPTL sequence number)."""
        self._state()
        self._sd.t38_core_rx_ifp_packet(self._core, packet, seq_no)


def t38_exchange(
    sender: T38Endpoint,
    receiver: T38Endpoint,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    *,
    lose: Callable[[int, int], bool] | None = None,
) -> tuple[FaxResult, FaxResult]:
    """Run two T.38 endpoints against each other in 20 ms ticks, every packet delivered at
    once as often as T.38 asks (its ``repeats``), with no real-time pacing; (sender's result,
    receiver's result) once both reached phase E or after ``max_seconds`` (then code 49).

    ``lose(direction, packet_index) -> bool`` drops single transmissions (direction 0: sender
    → receiver; ``packet_index`` counts transmissions, repeats included)."""
    endpoints = (sender, receiver)
    seq = [0, 0]
    sent = [0, 0]
    for _ in range(int(max_seconds * RATE / FRAME)):
        if sender.done and receiver.done:
            break
        for direction, (source, sink) in enumerate((endpoints, endpoints[::-1])):
            for packet in source.tick(FRAME):
                for _copy in range(packet.repeats):
                    index = sent[direction]
                    sent[direction] += 1
                    if lose is None or not lose(direction, index):
                        sink.rx_ifp(packet.data, seq[direction])
                seq[direction] = (seq[direction] + 1) & 0xFFFF
    return sender.hang_up(), receiver.hang_up()
