"""Reliable provisional responses (RFC 3262, ``100rel``) both ways.

Outbound (:class:`PrackClient`): our INVITE says ``Supported: 100rel``; a 18x with
``Require: 100rel`` and an ``RSeq`` gets a PRACK (with ``RAck: <RSeq> <CSeq> INVITE``) in the
early dialog of its To tag. RSeq numbers are taken in order per early dialog: a copy of one
already PRACKed (a retransmission) and one that skips a number are not PRACKed (the far end
retransmits the missing one).

Inbound (:class:`ReliableProvisional`): when the INVITE requires ``100rel``, our 180 carries
``Require: 100rel`` and an ``RSeq``, and is retransmitted (T1 doubling, up to 64·T1) until
its PRACK comes; the PRACK gets a 200. A final response stops the retransmissions; without
a PRACK in 64·T1 the INVITE is refused with 504.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from typing import TYPE_CHECKING

from sipmessage import Request, Response

from ringback.domain.digits import ascii_digits
from ringback.telephony.sip.dialog import Dialog
from ringback.telephony.sip.message import Addr, response_to, tag_of

if TYPE_CHECKING:
    from ringback.telephony.sip.call import SipCall

log = logging.getLogger("ringback.sip")


def rseq_of(response: Response) -> int | None:
    """The RSeq of a reliable provisional response (RFC 3262 section 7.1), else None."""
    if not 100 < response.code < 200 or "100rel" not in response.require:
        return None
    raw = (response.headers.get("RSeq") or "").strip()
    return int(raw) if ascii_digits(raw) and 0 < int(raw) < 2**31 else None


def early_dialog(main: Dialog, response: Response) -> Dialog:
    """The (early or confirmed) dialog a response to our INVITE makes: its To tag, Contact
    and reversed Record-Route, sharing the INVITE's CSeq space with ``main``."""
    dialog = dataclasses.replace(main, route_set=list(main.route_set))
    dialog.learn_from_2xx(
        tag_of(response.to_address), response.contact, response.record_route, uac=True
    )
    return dialog


class PrackClient:
    """PRACKs for the reliable 18x answering one outbound INVITE."""

    def __init__(self, call: SipCall) -> None:
        self._call = call
        self._last_rseq: dict[str, int] = {}  # per To tag: the last RSeq PRACKed
        self.pracked = 0
        self.ignored = 0  # retransmitted or out-of-order reliable 18x, not PRACKed
        self._tasks: set[asyncio.Task[None]] = set()

    def on_provisional(self, response: Response, invite: Request) -> bool:
        """PRACK ``response`` when it is reliable and next in order; False for a reliable one
        not to process further (a retransmission or one out of order)."""
        rseq = rseq_of(response)
        tag = tag_of(response.to_address)
        if rseq is None or tag is None:
            return True
        last = self._last_rseq.get(tag)
        if last is not None and rseq != last + 1:
            self.ignored += 1
            return False
        self._last_rseq[tag] = rseq
        task = asyncio.get_running_loop().create_task(self._send(response, invite, rseq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _send(self, response: Response, invite: Request, rseq: int) -> None:
        call = self._call
        main = call._dialog
        dialog = early_dialog(main, response)
        prack = dialog.request("PRACK", via_host=call._via_host(), contact=None)
        main.local_cseq = max(main.local_cseq, dialog.local_cseq)
        prack.headers.set("RAck", f"{rseq} {invite.cseq.sequence} INVITE")
        try:
            dest = await call._agent.resolve(dialog.next_hop)
        except OSError as exc:
            call.record.detail["prack_error"] = str(exc)
            return
        self.pracked += 1
        call.record.detail["prack_sent"] = self.pracked
        txn = call._agent.start_request(prack, dest)
        answer = await asyncio.shield(txn.result)
        if answer.code >= 300:
            call.record.detail["prack_response"] = answer.code


class ReliableProvisional:
    """Our reliable 18x to an inbound INVITE that requires ``100rel``."""

    def __init__(self, call: SipCall, source: Addr) -> None:
        self._call = call
        self._source = source
        self._next_rseq = random.randint(1, 2**20)
        self._rseq = 0  # the RSeq of the last reliable 18x sent
        self._pending: Response | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._interval = 0.0
        self._elapsed = 0.0
        self.unacknowledged = False  # the last one was never PRACKed in 64·T1

    def send(self, response: Response) -> None:
        """Send ``response`` (a 18x) reliably through the INVITE's server transaction."""
        self.stop()
        self._rseq, self._next_rseq = self._next_rseq, self._next_rseq + 1
        response.headers.set("Require", "100rel")
        response.headers.set("RSeq", str(self._rseq))
        self._pending = response
        txn = self._call._server_txn
        assert txn is not None
        txn.respond(response)
        self._interval = self._call._agent.timers.t1
        self._elapsed = 0.0
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._retransmit)

    def _retransmit(self) -> None:
        pending, txn = self._pending, self._call._server_txn
        if pending is None or txn is None or txn.final_sent:
            return
        self._elapsed += self._interval
        if self._elapsed >= self._call._agent.timers.b:  # RFC 3262 section 3: reject with a 5xx
            self.unacknowledged = True
            self._pending = None
            call, invite = self._call, self._call._invite
            if invite is not None and not call.ended:
                refusal = response_to(invite, 504, to_tag=call._dialog.local_tag)
                call._refuse_inbound(refusal, "no PRACK for our reliable 18x in 64*T1")
            return
        self._call._agent.send(pending, self._source)
        self._interval *= 2
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._retransmit)

    def on_prack(self, request: Request, source: Addr) -> None:
        """Answer a PRACK: 200 when its RAck names our pending 18x, else 481."""
        call = self._call
        invite = call._invite
        rack = (request.headers.get("RAck") or "").split()
        expected = [str(self._rseq), str(invite.cseq.sequence) if invite else "", "INVITE"]
        if self._pending is None and rack == expected:  # a retransmitted PRACK
            call._agent.respond(request, source, response_to(request, 200))
            return
        if self._pending is None or rack != expected:
            call._agent.respond(request, source, response_to(request, 481))
            return
        self.stop()
        call.record.detail["prack_received"] = True
        call._agent.respond(request, source, response_to(request, 200))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = None
