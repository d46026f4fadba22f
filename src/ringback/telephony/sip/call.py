"""One SIP call leg, outbound or inbound: its signalling — INVITE / CANCEL / BYE, its dialog,
re-INVITEs, its state — and the :class:`~ringback.telephony.base.Call` protocol.

Media (RTP, play, speak, DTMF, park) is a :class:`~.call_media.CallMedia` (the media methods,
``call_methods.py``, delegate to it); the outbound INVITE, CANCEL, ACK an ``InviteClient``.

An outbound leg sends its INVITE to the trunk at once and rings in the background; on the ring
timeout it CANCELs (after a provisional response, RFC 3261 §9.1), and a 2xx that races the
CANCEL is ACKed and then BYEd. A 401/407 is answered once with digest credentials (the
transaction has ACKed the challenge before the new INVITE, with a new CSeq, goes out).

A final response is kept raw in ``record.sip_code``, normalised by ``domain.outcomes``."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import Callable
from typing import Any

from sipmessage import Request, Response

from ringback.clock import Clock
from ringback.config import SipSettings
from ringback.domain.model import Outcome
from ringback.domain.outcomes import cause_for_sip, outcome_for_sip
from ringback.telephony.base import CallError, CallRecord
from ringback.telephony.sip.agent import UserAgent
from ringback.telephony.sip.call_media import CallMedia
from ringback.telephony.sip.call_methods import MediaCallMethods
from ringback.telephony.sip.dialog import Dialog
from ringback.telephony.sip.early_dialogs import EarlyDialogs, strict_route
from ringback.telephony.sip.far_update import answer_update, count_491, offer_pending
from ringback.telephony.sip.invite_client import InviteClient
from ringback.telephony.sip.media_port import MediaSession, MediaToolkit
from ringback.telephony.sip.message import ALLOW, SDP, Addr, response_to, tag_of, with_tag
from ringback.telephony.sip.prack import PrackClient, ReliableProvisional
from ringback.telephony.sip.retry_after import note_refusal
from ringback.telephony.sip.sdp import SdpError
from ringback.telephony.sip.session_timer import SessionTimer
from ringback.telephony.sip.t38_switch import T38Switch
from ringback.telephony.sip.transactions import InviteServerTransaction
from ringback.telephony.sip.transport import proxy_uri

log = logging.getLogger("ringback.sip")

#: how long a local hangup waits for the BYE's answer before it moves on (the BYE transaction
#: keeps retransmitting in the background)
BYE_WAIT_S = 4.0
#: the response refusing a ringing inbound call, by hangup cause (480 otherwise)
_INBOUND_REFUSALS = {"USER_BUSY": 486, "CALL_REJECTED": 603, "UNALLOCATED_NUMBER": 404}
#: extensions ringback cannot honour when an inbound INVITE requires them
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({"100rel", "timer"})


class _State(enum.Enum):
    CALLING = "calling"
    RINGING = "ringing"
    UP = "up"
    ENDED = "ended"


class SipCall(MediaCallMethods):
    """A :class:`~ringback.telephony.base.Call` over SIP. Build it with
    :meth:`~ringback.telephony.sip.dialer.SipDialer.originate` (outbound) or receive it in the
    dialer's ``on_inbound`` hook (inbound: call :meth:`answer` to pick up)."""

    def __init__(
        self,
        agent: UserAgent,
        settings: SipSettings,
        clock: Clock,
        media: MediaToolkit,
        record: CallRecord,
        *,
        dialog: Dialog,
        on_end: Callable[[SipCall], None] | None = None,
    ) -> None:
        self._agent = agent
        self._settings = settings
        self._clock = clock
        self._record = record
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        self._state = _State.CALLING
        self._ended: asyncio.Future[None] = self._loop.create_future()
        self._media = CallMedia(media, record, self, self._ended, settings)
        self._dialog = dialog
        self._sdp_session_id = random.randint(1, 2**31)
        self._local_sdp = b""
        self._task: asyncio.Task[None] | None = None
        # outbound
        self._invite: Request | None = None
        self._early = EarlyDialogs(self)  # early media, forked 2xx (docs/sip-dialogs.md)
        self._prack = PrackClient(self)
        self._uac = InviteClient(
            agent,
            settings,
            record,
            on_provisional=self._on_provisional,
            on_422=self._on_422,
            on_forked_2xx=self._early.on_forked_2xx,
        )
        self.session_timer = SessionTimer(self, settings.session_expires, settings.min_se)
        self._reliable: ReliableProvisional | None = None  # inbound 100rel
        self._cancel_reason: str | None = None  # "ring_timeout" | "hangup"
        self._cancel_cause = "ORIGINATOR_CANCEL"
        self._ring_timer: asyncio.TimerHandle | None = None
        # inbound (and re-INVITEs we answered)
        self._server_txn: InviteServerTransaction | None = None
        self._server_source: Addr | None = None
        self._reinvite_txn: InviteServerTransaction | None = None
        self._sent_offer_in_2xx = False
        self._bye_task: asyncio.Task[None] | None = None
        self._answered_event = asyncio.Event()
        record.detail.setdefault("call_id", dialog.call_id)
        self.t38 = T38Switch(self)  # T.38 re-INVITEs, accepted or sent (docs/fax.md)

    # -- state -------------------------------------------------------------------------------

    @property
    def record(self) -> CallRecord:
        return self._record

    @property
    def leg_uuid(self) -> str:
        return self._record.leg_uuid

    @property
    def ended(self) -> bool:
        return self._state is _State.ENDED

    @property
    def answered(self) -> bool:
        return self._state is _State.UP

    @property
    def media(self) -> MediaSession | None:
        return self._media.session

    @property
    def call_id(self) -> str:
        return self._dialog.call_id

    @property
    def _dialog_key(self) -> tuple[str, str]:
        return self._dialog.key

    # -- outbound ----------------------------------------------------------------------------

    def start_outbound(self, ring_timeout_s: float) -> None:
        self._agent.add_dialog(self._dialog_key, self)
        self._task = asyncio.create_task(self._dial(ring_timeout_s))

    async def _dial(self, ring_timeout_s: float) -> None:
        try:
            await self._dial_steps(ring_timeout_s)
        except asyncio.CancelledError:
            self._finish(Outcome.FAILED, None, "SYSTEM_SHUTDOWN", "send_cancel")
            raise
        except Exception as exc:  # never leave a leg hanging on a bug or a network error
            log.exception("outbound SIP call %s failed", self.call_id)
            self._finish(Outcome.FAILED, None, "NORMAL_TEMPORARY_FAILURE", "error", error=str(exc))

    async def _dial_steps(self, ring_timeout_s: float) -> None:
        try:
            await self._media.open(self._settings.local_host, self._settings.rtp_ports)
        except Exception as exc:
            self._finish(
                Outcome.FAILED, None, "NORMAL_TEMPORARY_FAILURE", "error", error=f"media: {exc}"
            )
            return
        self._local_sdp = self._media.local_sdp(self._sdp_session_id)
        hop = proxy_uri(self._settings, self._dialog.remote_target)
        dest = await self._agent.resolve(hop, self._settings.tls_server_name)
        self._ring_timer = self._loop.call_later(max(0.0, ring_timeout_s), self._ring_timeout)
        final = await self._uac.run(self._build_invite, dest)
        if self._ring_timer is not None:
            self._ring_timer.cancel()
        if 200 <= final.code < 300:
            await self._on_answered(final)
        else:
            self._on_refused(final)

    def _build_invite(self, authorization: tuple[str, str] | None) -> Request:
        self._invite = invite = self._dialog.request(
            "INVITE", via_host=self._via_host(), contact=self._agent.contact_uri
        )
        invite.body = self._local_sdp
        headers = invite.headers
        headers.set("Allow", ALLOW)
        headers.set("Supported", "100rel, timer" if self.session_timer.enabled else "100rel")
        self.session_timer.add_to_request(invite)
        headers.set("User-Agent", "ringback")
        if authorization is not None:
            headers.set(*authorization)
        headers.set("Content-Type", SDP)
        headers.set("Content-Length", str(len(self._local_sdp)))
        return invite

    def _via_host(self) -> str:
        return f"{self._agent.external_host or self._agent.host}:{self._agent.port}"

    def _on_422(self, response: Response) -> bool:
        return self.session_timer.on_422(response)

    def _on_provisional(self, response: Response) -> None:
        if self._invite is None or not self._prack.on_provisional(response, self._invite):
            return  # a reliable 18x already taken (or out of order): not processed again
        self._early.on_provisional(response)
        if response.code > 100 and self._record.ringing_at is None:
            self._record.ringing_at = self._clock.now()
            self._state = _State.RINGING

    def _ring_timeout(self) -> None:
        self._request_cancel("ring_timeout")

    def _request_cancel(self, reason: str) -> None:
        if self._state not in (_State.CALLING, _State.RINGING) or self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        self._uac.cancel()

    async def _on_answered(self, response: Response) -> None:
        assert self._invite is not None
        self._dialog.learn_from_2xx(
            tag_of(response.to_address), response.contact, response.record_route, uac=True
        )
        self._record.sip_code = response.code
        ack, dest = await self._dialog_request("ACK", cseq=self._invite.cseq.sequence)
        self._uac.send_ack(ack, dest)
        strict = strict_route(self._dialog.route_set)
        if strict is not None:
            await self._send_bye()
            self._finish(Outcome.FAILED, response.code, "NORMAL_TEMPORARY_FAILURE", "send_bye",
                         error=strict)  # fmt: skip
            return
        if self._cancel_reason is not None:
            await self._send_bye()
            if self._cancel_reason == "ring_timeout":
                outcome, cause = Outcome.NO_ANSWER, "NO_ANSWER"
            else:
                outcome, cause = Outcome.CANCELED, self._cancel_cause
            self._finish(outcome, response.code, cause, "send_bye", answered_while_canceling=True)
            return
        try:
            # a 2xx without SDP keeps the early SDP; either is checked against the SRTP policy
            remote = self._media.parse_remote(response.body or self._early.body or b"")
        except SdpError as exc:
            await self._send_bye()
            self._finish(
                Outcome.FAILED,
                response.code,
                "INCOMPATIBLE_DESTINATION",
                "send_bye",
                error=f"the answer's SDP: {exc}",
            )
            return
        self._early.note_answer()
        self._media.connect(remote)
        if self._record.detail.get("srtp"):  # later answers: only the key the far end chose
            self._local_sdp = self._media.local_sdp(self._sdp_session_id, remote, version=2)
        self._state = _State.UP
        self._record.answered_at = self._clock.now()
        self._record.outcome = Outcome.ANSWERED
        self.session_timer.on_2xx(response)
        self._answered_event.set()

    def _on_refused(self, response: Response) -> None:
        code = response.code
        note_refusal(self._record, response)  # the reason, and Retry-After for the trunks
        timer_b = "no response from the trunk (Timer B)"
        if code == 408 and not self._uac.got_response and self._cancel_reason == "hangup":
            self._finish(Outcome.CANCELED, None, self._cancel_cause, "send_cancel", error=timer_b)
        elif code == 408 and not self._uac.got_response:
            self._finish(Outcome.FAILED, 408, "RECOVERY_ON_TIMER_EXPIRE", "timeout", error=timer_b)
        elif code == 487 and self._cancel_reason == "ring_timeout":
            self._finish(Outcome.NO_ANSWER, 487, "NO_ANSWER", "send_cancel")
        elif code == 487 and self._cancel_reason == "hangup":
            self._finish(Outcome.CANCELED, 487, self._cancel_cause, "send_cancel")
        else:
            self._finish(outcome_for_sip(code), code, cause_for_sip(code), "recv_refuse")

    # -- inbound -----------------------------------------------------------------------------

    def start_inbound(
        self, invite: Request, txn: InviteServerTransaction, source: Addr | None = None
    ) -> None:
        self._invite = invite
        self._server_txn = txn
        self._server_source = source
        txn.on_cancel = self._on_inbound_cancel
        self._dialog.remote_cseq = invite.cseq.sequence
        self._dialog.learn_from_2xx(
            tag_of(invite.from_address), invite.contact, invite.record_route, uac=False
        )
        txn.respond(response_to(invite, 100))

    async def prepare_inbound(self) -> bool:
        """Check the offer, open media, ring; False when the call was refused instead."""
        invite, txn = self._invite, self._server_txn
        assert invite is not None and txn is not None
        unsupported = [ext for ext in invite.require if ext not in SUPPORTED_EXTENSIONS]
        if unsupported:
            response = response_to(invite, 420, to_tag=self._dialog.local_tag)
            response.headers.set("Unsupported", ", ".join(unsupported))
            self._refuse_inbound(response, "extension not supported: " + ", ".join(unsupported))
            return False
        strict = strict_route(self._dialog.route_set)
        too_brief = self.session_timer.check_request(invite)
        if strict is not None or too_brief is not None:
            refusal = too_brief or response_to(invite, 403)
            refusal.headers.set("To", str(with_tag(invite.to_address, self._dialog.local_tag)))
            self._refuse_inbound(refusal, strict or "Session-Expires below our Min-SE")
            return False
        if invite.body:
            try:
                self._media.remote = self._media.parse_remote(invite.body)
            except SdpError as exc:
                self._refuse_inbound(
                    response_to(invite, 488, to_tag=self._dialog.local_tag), str(exc)
                )
                return False
        try:
            await self._media.open(self._settings.local_host, self._settings.rtp_ports)
        except Exception as exc:
            self._refuse_inbound(
                response_to(invite, 503, to_tag=self._dialog.local_tag), f"media: {exc}"
            )
            return False
        if self._state is _State.ENDED:  # CANCELed meanwhile
            return False
        self._agent.add_dialog(self._dialog_key, self)
        ringing = response_to(invite, 180, to_tag=self._dialog.local_tag)
        ringing.headers.set("Contact", f"<{self._agent.contact_uri}>")
        if "100rel" in invite.require and self._server_source is not None:
            self._reliable = ReliableProvisional(self, self._server_source)
            self._reliable.send(ringing)
        else:
            txn.respond(ringing)
        self._state = _State.RINGING
        self._record.ringing_at = self._clock.now()
        return True

    async def answer(self) -> None:
        """Pick up an inbound call (200 OK with our SDP); nothing to do on an outbound one."""
        if self._state is _State.UP:
            return
        if self._state is _State.ENDED:
            raise self._media.ended_error("answer")
        txn, invite = self._server_txn, self._invite
        if txn is None or invite is None or self._media.session is None:
            raise CallError("cannot answer: the call is not answered yet")
        remote = self._media.remote
        if remote is None:
            self._sent_offer_in_2xx = True
        self._local_sdp = self._media.local_sdp(self._sdp_session_id, remote)
        ok = response_to(
            invite, 200, to_tag=self._dialog.local_tag, body=self._local_sdp, content_type=SDP
        )
        ok.headers.set("Contact", f"<{self._agent.contact_uri}>")
        ok.headers.set("Allow", ALLOW)
        self.session_timer.answer(invite, ok)
        if self._reliable is not None:
            self._reliable.stop()
        txn.respond(ok)
        if remote is not None:
            self._media.connect(remote)
        self._state = _State.UP
        self._record.answered_at = self._clock.now()
        self._record.sip_code = 200
        self._record.outcome = Outcome.ANSWERED
        self._answered_event.set()

    def _on_inbound_cancel(self) -> None:
        txn, invite = self._server_txn, self._invite
        if txn is None or invite is None or self._state is _State.ENDED:
            return
        txn.respond(response_to(invite, 487, to_tag=self._dialog.local_tag))
        self._finish(Outcome.CANCELED, 487, "ORIGINATOR_CANCEL", "recv_cancel")

    def _refuse_inbound(self, response: Response, why: str) -> None:
        if self._server_txn is not None:
            self._server_txn.respond(response)
        code = response.code
        self._finish(outcome_for_sip(code), code, cause_for_sip(code), "send_refuse", error=why)

    def _on_no_ack(self) -> None:
        self._loop.create_task(self._hang_up_after_no_ack())

    async def _hang_up_after_no_ack(self) -> None:
        if self._state is _State.UP:
            await self._send_bye()
            self._finish(
                Outcome.ANSWERED,
                200,
                "RECOVERY_ON_TIMER_EXPIRE",
                "send_bye",
                error="the far end never ACKed our 200 OK",
            )

    # -- dialog: what the far end sends us -------------------------------------------------

    def on_ack(self, request: Request) -> None:
        for txn in (self._server_txn, self._reinvite_txn):
            if (
                txn is not None
                and not txn.acked
                and txn.final_sent
                and txn.request.cseq.sequence == request.cseq.sequence
            ):
                txn.ack()
                if self._sent_offer_in_2xx and request.body:
                    self._sent_offer_in_2xx = False
                    if not self._apply_remote_sdp(request.body):  # unusable answer: BYE
                        self._task = self._loop.create_task(self.hangup("INCOMPATIBLE_DESTINATION"))

    def on_stray_2xx(self, response: Response) -> None:
        if tag_of(response.to_address) != self._uac.winner_tag:
            self._early.on_forked_2xx(response, self._uac.winner_tag)
        else:
            self._uac.resend_ack()

    def on_request(self, request: Request, source: Addr) -> None:
        method = request.method
        sequence = request.cseq.sequence
        remote_cseq = self._dialog.remote_cseq
        if remote_cseq is not None and sequence < remote_cseq:
            self._agent.respond(request, source, response_to(request, 500))
            return
        self._dialog.remote_cseq = sequence
        if method == "BYE":
            self._agent.respond(request, source, response_to(request, 200))
            if self._state is _State.UP:
                self._finish(Outcome.ANSWERED, 200, "NORMAL_CLEARING", "recv_bye")
            else:
                self._finish(Outcome.CANCELED, 487, "ORIGINATOR_CANCEL", "recv_bye")
        elif method == "INVITE":
            self._answer_reinvite(request, source)
        elif method == "PRACK" and self._reliable is not None:
            self._reliable.on_prack(request, source)
        elif method == "UPDATE":
            answer_update(self, request, source)  # 491 while our re-INVITE is pending
        elif method in ("OPTIONS", "INFO"):
            if method == "INFO":
                self._media.note_info_dtmf(request.headers.get("Content-Type"), request.body)
            ok = response_to(request, 200)
            ok.headers.set("Allow", ALLOW)
            self._agent.respond(request, source, ok)
        else:
            response = response_to(request, 501)
            response.headers.set("Allow", ALLOW)
            self._agent.respond(request, source, response)

    def _answer_reinvite(self, request: Request, source: Addr) -> None:
        txn = self._agent.server_invite(request, source)
        theirs = self._reinvite_txn is not None and not self._reinvite_txn.acked
        if theirs or offer_pending(self):  # a re-INVITE of theirs, or ours, is under way
            count_491(self, "reinvite_491")
            txn.respond(response_to(request, 491))
            return
        if request.body and not self._apply_remote_sdp(request.body):
            txn.respond(response_to(request, 488))
            return
        self._sent_offer_in_2xx = not request.body
        ok = response_to(request, 200, body=self.t38.answer_body(), content_type=SDP)
        ok.headers.set("Contact", f"<{self._agent.contact_uri}>")
        ok.headers.set("Allow", ALLOW)
        self.session_timer.answer(request, ok)
        self._reinvite_txn = txn
        txn.respond(ok)

    def _apply_remote_sdp(self, body: bytes) -> bool:
        if self.t38.take_offer(body):  # a T.38 offer taken: the audio stays as it is
            return True
        try:
            remote = self._media.parse_remote(body)
        except SdpError as exc:
            self._record.detail.setdefault("sdp_errors", []).append(str(exc))
            return False
        if self._media.session is not None and self._state is _State.UP:
            self._media.connect(remote)
        return True

    # -- requests we send in the dialog ------------------------------------------------------

    async def _dialog_request(
        self, method: str, *, cseq: int | None = None
    ) -> tuple[Request, Addr]:
        contact = None if method == "ACK" else self._agent.contact_uri
        request = self._dialog.request(
            method, via_host=self._via_host(), contact=contact, cseq=cseq
        )
        return request, await self._agent.resolve(self._dialog.next_hop)

    async def _send_bye(self) -> None:
        """BYE, and its answer in ``detail`` (a BYE that cannot be sent is noted there too)."""
        try:
            request, dest = await self._dialog_request("BYE")
        except OSError as exc:
            self._record.detail["bye_error"] = str(exc)
            return
        txn = self._agent.start_request(request, dest)
        with contextlib.suppress(TimeoutError):
            wait = min(BYE_WAIT_S, self._agent.timers.b)
            response = await asyncio.wait_for(asyncio.shield(txn.result), wait)
            self._record.detail["bye_response"] = response.code

    # -- the Call protocol -------------------------------------------------------------------

    async def wait_answer(self) -> Outcome:
        if self._state in (_State.CALLING, _State.RINGING):
            waiter = asyncio.ensure_future(self._answered_event.wait())
            try:
                await asyncio.wait((waiter, self._ended), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        if self._record.answered_at is not None:
            return Outcome.ANSWERED
        return self._record.outcome or Outcome.FAILED

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """BYE when answered, CANCEL while ringing out, a refusal while ringing in."""
        state = self._state
        if state is _State.ENDED:
            return
        if state is _State.UP:
            # in a task of its own: a caller cancelled meanwhile cannot leave the call half
            # hung up, and a concurrent hangup waits for the first one's BYE
            if self._bye_task is None:
                self._bye_task = self._loop.create_task(self._bye_and_end(cause))
            await asyncio.shield(self._bye_task)
            await self.wait_ended()
            return
        if self._server_txn is not None and self._invite is not None:  # inbound, ringing
            code = _INBOUND_REFUSALS.get(cause, 480)
            self._refuse_inbound(
                response_to(self._invite, code, to_tag=self._dialog.local_tag), cause
            )
            return
        self._cancel_cause = "ORIGINATOR_CANCEL" if cause == "NORMAL_CLEARING" else cause
        self._request_cancel("hangup")
        if self._cancel_reason == "hangup" and self._invite is None:
            # nothing sent yet (media still opening): stop the dialing task
            if self._task is not None:
                self._task.cancel()
            self._finish(Outcome.CANCELED, None, self._cancel_cause, "send_cancel")
        await self.wait_ended()

    async def _bye_and_end(self, cause: str) -> None:
        try:
            await self._send_bye()
        finally:
            self._finish(Outcome.ANSWERED, 200, cause, "send_bye")

    async def wait_ended(self) -> CallRecord:
        await asyncio.shield(self._ended)
        await self._media.wait_closed()
        return self._record

    # -- the end -----------------------------------------------------------------------------

    def _finish(
        self,
        outcome: Outcome,
        sip_code: int | None,
        cause: str,
        disposition: str,
        **detail: Any,
    ) -> None:
        if self._state is _State.ENDED and self._ended.done():
            return
        self._state = _State.ENDED
        record = self._record
        record.ended_at = self._clock.now()
        record.outcome = outcome
        if sip_code is not None:
            record.sip_code = sip_code
        record.hangup_cause = cause
        record.hangup_disposition = disposition
        record.detail.update(detail)
        if self._ring_timer is not None:
            self._ring_timer.cancel()
        self.session_timer.stop()
        if self._reliable is not None:
            self._reliable.stop()
        self._agent.remove_dialog(self._dialog_key)
        self._media.close()
        if not self._ended.done():
            self._ended.set_result(None)
        if self._on_end is not None:
            self._on_end(self)
