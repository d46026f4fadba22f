"""RFC 3261 §17 transactions: client INVITE (timers A, B, D), client non-INVITE (timers E, F,
K) and server INVITE (2xx and failure retransmission until the ACK).

Over a reliable transport (TCP, TLS) requests and failure responses are not retransmitted
(timers A, E and G are not used) and timers D, I and K are zero; a 2xx is still retransmitted
until its ACK (RFC 3261 §13.3.1.4: a later hop may be UDP)."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sipmessage import Request, Response

from ringback.telephony.sip.message import REASONS, Addr, top_branch

TxnKey = tuple[str, str]  # (branch, method)


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 timer values (seconds); tests may shorten them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:  # also F, H, J and the 2xx retransmission window
        return 64 * self.t1


class Transport(Protocol):
    timers: Timers

    def send(self, message: Request | Response, dest: Addr) -> None: ...

    def forget_client(self, key: TxnKey) -> None: ...


class _State(enum.Enum):
    CALLING = "calling"  # INVITE: Calling; non-INVITE: Trying
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"  # RFC 6026: a 2xx arrived; its retransmissions still reach the TU
    COMPLETED = "completed"
    TERMINATED = "terminated"


def timeout_response(request: Request) -> Response:
    """The 408 a transaction reports to its user when Timer B or F fires."""
    response = Response(408, REASONS[408])
    response.headers.setlist("Via", list(request.headers.getlist("Via")))
    for name in ("From", "To", "Call-ID", "CSeq"):
        response.headers.set(name, request.headers[name])
    response.headers.set("Content-Length", "0")
    return response


def transport_error_response(request: Request, reason: str) -> Response:
    """The 503 a transaction reports when its connection cannot be opened (RFC 3261
    §8.1.3.1); the reason phrase says why (e.g. a certificate that does not verify)."""
    response = timeout_response(request)
    response.code = 503
    response.phrase = " ".join(reason.split())[:300]
    return response


def ack_for_failure(request: Request, response: Response) -> Request:
    """RFC 3261 §17.1.1.3: the ACK of a non-2xx final response, in the INVITE's transaction."""
    ack = Request("ACK", request.uri)
    ack.headers.set("Via", request.headers.getlist("Via")[0])
    ack.headers.set("Max-Forwards", "70")
    ack.headers.set("From", request.headers["From"])
    ack.headers.set("To", response.headers["To"])
    ack.headers.set("Call-ID", request.call_id)
    ack.headers.set("CSeq", f"{request.cseq.sequence} ACK")
    routes = request.headers.getlist("Route")
    if routes:
        ack.headers.setlist("Route", list(routes))
    ack.headers.set("Content-Length", "0")
    return ack


class _ClientTransaction:
    def __init__(
        self,
        transport: Transport,
        request: Request,
        dest: Addr,
        on_response: Callable[[Response], None],
    ) -> None:
        self.transport = transport
        self.request = request
        self.dest = dest if isinstance(dest, Addr) else Addr(*dest)
        self.key: TxnKey = (top_branch(request), request.method)
        self.state = _State.CALLING
        self._on_response = on_response
        self._loop = asyncio.get_running_loop()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.sent = 0  # times the request went out (1 + retransmissions)

    def _send_request(self) -> None:
        self.sent += 1
        self.transport.send(self.request, self.dest)

    def _set_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(name)
        self._timers[name] = self._loop.call_later(delay, callback)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def terminate(self) -> None:
        if self.state is _State.TERMINATED:
            return
        self.state = _State.TERMINATED
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.transport.forget_client(self.key)

    def _deliver(self, response: Response) -> None:
        self._on_response(response)

    def fail(self, reason: str) -> None:
        """The transport could not deliver the request: end with a 503 saying why. Only
        before any response: once the far end answered it may still reach us on a new
        connection."""
        if self.state is _State.CALLING:
            self.terminate()
            self._deliver(transport_error_response(self.request, reason))


class InviteClientTransaction(_ClientTransaction):
    """Calling → Proceeding → Accepted (2xx) | Completed (3xx-6xx, ACKed) → Terminated."""

    def start(self) -> None:
        timers = self.transport.timers
        self._send_request()
        self._interval = timers.t1
        if not self.dest.reliable:
            self._set_timer("A", self._interval, self._timer_a)
        self._set_timer("B", timers.b, self._timer_b)

    def _timer_a(self) -> None:
        if self.state is not _State.CALLING:
            return
        self._send_request()
        self._interval *= 2
        self._set_timer("A", self._interval, self._timer_a)

    def _timer_b(self) -> None:
        if self.state in (_State.CALLING, _State.PROCEEDING):
            self.terminate()
            self._deliver(timeout_response(self.request))

    def receive(self, response: Response) -> None:
        code = response.code
        state = self.state
        if state is _State.TERMINATED:
            return
        if code < 200:
            if state in (_State.CALLING, _State.PROCEEDING):
                self.state = _State.PROCEEDING
                self._cancel_timer("A")
                self._deliver(response)
        elif code < 300:
            if state in (_State.CALLING, _State.PROCEEDING):
                self.state = _State.ACCEPTED
                self._cancel_timer("A")
                self._cancel_timer("B")
                self._set_timer("M", self.transport.timers.b, self.terminate)
            if self.state is _State.ACCEPTED:
                self._deliver(response)  # the TU ACKs every copy of the 2xx
        else:
            ack = ack_for_failure(self.request, response)
            self.transport.send(ack, self.dest)
            if state in (_State.CALLING, _State.PROCEEDING):
                self.state = _State.COMPLETED
                self._cancel_timer("A")
                self._cancel_timer("B")
                wait = 0.0 if self.dest.reliable else max(32.0, self.transport.timers.b)
                self._set_timer("D", wait, self.terminate)
                self._deliver(response)


class NonInviteClientTransaction(_ClientTransaction):
    """Trying → Proceeding → Completed → Terminated; ``result`` gets the final response."""

    def __init__(self, transport: Transport, request: Request, dest: Addr) -> None:
        self.result: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        super().__init__(transport, request, dest, self._resolve)

    def _resolve(self, response: Response) -> None:
        if response.code >= 200 and not self.result.done():
            self.result.set_result(response)

    def start(self) -> None:
        timers = self.transport.timers
        self._send_request()
        self._interval = timers.t1
        if not self.dest.reliable:
            self._set_timer("E", self._interval, self._timer_e)
        self._set_timer("F", timers.b, self._timer_f)

    def _timer_e(self) -> None:
        if self.state not in (_State.CALLING, _State.PROCEEDING):
            return
        self._send_request()
        timers = self.transport.timers
        if self.state is _State.PROCEEDING:
            self._interval = timers.t2
        else:
            self._interval = min(self._interval * 2, timers.t2)
        self._set_timer("E", self._interval, self._timer_e)

    def _timer_f(self) -> None:
        if self.state in (_State.CALLING, _State.PROCEEDING):
            self.terminate()
            self._deliver(timeout_response(self.request))

    def receive(self, response: Response) -> None:
        if self.state not in (_State.CALLING, _State.PROCEEDING):
            return  # Completed absorbs retransmitted finals until Timer K
        if response.code < 200:
            self.state = _State.PROCEEDING
            return
        self.state = _State.COMPLETED
        self._cancel_timer("E")
        self._cancel_timer("F")
        self._set_timer(
            "K", 0.0 if self.dest.reliable else self.transport.timers.t4, self.terminate
        )
        self._deliver(response)

    def abandon(self) -> None:
        """Stop retransmitting (the UA is closing)."""
        self.terminate()
        if not self.result.done():
            self.result.set_result(timeout_response(self.request))


class InviteServerTransaction:
    """An INVITE we received: its last response is re-sent for every retransmitted INVITE;
    a 2xx is retransmitted (T1 doubling up to T2) until the dialog's ACK, a failure until
    the transaction's ACK (timers G and H)."""

    def __init__(
        self,
        transport: Transport,
        request: Request,
        source: Addr,
        on_forget: Callable[[InviteServerTransaction], None],
        on_no_ack: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self.request = request
        self.source = source if isinstance(source, Addr) else Addr(*source)
        self.key: TxnKey = (top_branch(request), "INVITE")
        self.last_response: Response | None = None
        self.acked = False
        self.cancelled = False
        self.on_cancel: Callable[[], None] | None = None  # the caller sent CANCEL
        self._on_forget = on_forget
        self._on_no_ack = on_no_ack
        self._loop = asyncio.get_running_loop()
        self._retransmit: asyncio.TimerHandle | None = None
        self._give_up: asyncio.TimerHandle | None = None
        self._done = False

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and self.last_response.code >= 200

    @property
    def refused(self) -> bool:
        """A 3xx-6xx final response was sent (its ACK belongs to this transaction)."""
        return self.last_response is not None and self.last_response.code >= 300

    def respond(self, response: Response) -> None:
        if self.final_sent:
            return
        self.last_response = response
        self.transport.send(response, self.source)
        if response.code >= 200:
            timers = self.transport.timers
            self._interval = timers.t1
            if response.code < 300 or not self.source.reliable:  # no Timer G over TCP/TLS
                self._retransmit = self._loop.call_later(self._interval, self._resend)
            self._give_up = self._loop.call_later(timers.b, self._timer_h)

    def retransmitted(self) -> None:
        """The INVITE came again: send the last response again."""
        if self.last_response is not None:
            self.transport.send(self.last_response, self.source)

    def _resend(self) -> None:
        if self.acked or self._done or self.last_response is None:
            return
        self.transport.send(self.last_response, self.source)
        self._interval = min(self._interval * 2, self.transport.timers.t2)
        self._retransmit = self._loop.call_later(self._interval, self._resend)

    def _timer_h(self) -> None:
        last = self.last_response
        if not self.acked and self._on_no_ack is not None and last is not None and last.code < 300:
            self._on_no_ack()
        self.forget()

    def ack(self) -> None:
        if self.acked:
            return
        self.acked = True
        if self._retransmit is not None:
            self._retransmit.cancel()
        if self.last_response is not None and self.last_response.code >= 300:
            # Timer I: absorb retransmitted ACKs for T4, then go
            if self._give_up is not None:
                self._give_up.cancel()
            wait = 0.0 if self.source.reliable else self.transport.timers.t4
            self._give_up = self._loop.call_later(wait, self.forget)

    def forget(self) -> None:
        if self._done:
            return
        self._done = True
        for handle in (self._retransmit, self._give_up):
            if handle is not None:
                handle.cancel()
        self._on_forget(self)
