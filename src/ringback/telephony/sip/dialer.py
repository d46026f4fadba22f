"""The ``sip`` dialer: outbound legs through a trunk or proxy, inbound INVITEs to a hook."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sipmessage import URI, Address, Request

from ringback.clock import Clock
from ringback.config import SipSettings
from ringback.domain.model import Leg
from ringback.ids import new_uuid
from ringback.telephony.audio_files import preload_audio_library
from ringback.telephony.base import CallError, CallRecord, OriginateRequest, outbound_record
from ringback.telephony.sip.agent import UserAgent
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialog import Dialog
from ringback.telephony.sip.media_port import MediaToolkit, RtpMedia
from ringback.telephony.sip.message import Addr, new_tag
from ringback.telephony.sip.transactions import InviteServerTransaction, Timers

log = logging.getLogger("ringback.sip")

#: ``on_inbound(call, called_number, calling_number)``: runs the call (answer, IVR, hangup);
#: the dialer hangs up whatever is still up when it returns
InboundHandler = Callable[[SipCall, str, str], Awaitable[None]]


class SipDialer:
    """A :class:`~ringback.telephony.base.Dialer` that places real calls over SIP/UDP."""

    name: str = "sip"

    def __init__(
        self,
        settings: SipSettings,
        clock: Clock,
        *,
        media: MediaToolkit | None = None,
        timers: Timers | None = None,
        on_inbound: InboundHandler | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.media: MediaToolkit = media if media is not None else RtpMedia()
        self.agent = UserAgent(settings.local_host, settings.local_port, timers=timers)
        self.on_inbound = on_inbound
        self.originated = 0
        self._live: dict[str, SipCall] = {}
        self._inbound_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> SipDialer:
        """Bind the SIP socket; returns the dialer. libsndfile (audio files other than PCM
        WAV) is loaded here, in a thread: loaded by a first Play during calls, its import
        (~0.1 s, holding the interpreter) would stall every call's 20 ms pacing once."""
        self.agent.invite_handler = self._on_invite
        await self.agent.start()
        await asyncio.to_thread(preload_audio_library)
        return self

    @property
    def port(self) -> int:
        return self.agent.port

    @property
    def default_caller_id(self) -> str | None:
        """The caller id of a leg that names none (checked against a client's allowed list)."""
        return self.settings.caller_id

    async def originate(self, request: OriginateRequest) -> SipCall:
        settings = self.settings
        target = self.target_uri(request.to_number)
        caller = request.caller_id_number or settings.caller_id or "ringback"
        local = Address(
            uri=URI.parse(f"sip:{_user(caller)}@{settings.from_domain}"),
            name=request.caller_id_name or "",
        )
        remote = Address(uri=target)
        record = outbound_record(request, self.clock.now(), settings.caller_id)
        call = SipCall(
            self.agent,
            settings,
            self.clock,
            self.media,
            record,
            dialog=Dialog(
                call_id=record.leg_uuid,  # the stored leg names its SIP dialog
                local_tag=new_tag(),
                local_address=local,
                remote_address=remote,
                remote_target=target,
            ),
            on_end=self._forget,
        )
        self._live[call.leg_uuid] = call
        self.originated += 1
        ring = min(request.ring_timeout_s, settings.max_ring_timeout_s)
        call.start_outbound(ring)
        return call

    def target_uri(self, number: str) -> URI:
        """``sip:`` URIs are dialled as they are; a number goes to the trunk's domain.
        CallError (as the engine expects from ``originate``) for what cannot be dialled."""
        if number.startswith(("sip:", "sips:")):
            try:
                return URI.parse(number)
            except ValueError as exc:
                raise CallError(f"cannot dial {number!r}: not a valid SIP URI") from exc
        user = _user(number)
        if not user:
            raise CallError(f"cannot dial {number!r}: no digits or letters to dial")
        settings = self.settings
        port = "" if settings.proxy_port == 5060 else f":{settings.proxy_port}"
        return URI.parse(f"sip:{user}@{settings.from_domain}{port}")

    def live_calls(self) -> list[SipCall]:
        return [call for call in self._live.values() if not call.ended]

    async def close(self) -> None:
        """Hang up every leg, then close the socket."""
        for task in list(self._inbound_tasks):
            task.cancel()
        calls = list(self._live.values())
        if calls:
            await asyncio.gather(
                *(call.hangup("SYSTEM_SHUTDOWN") for call in calls), return_exceptions=True
            )
        self.agent.close()

    def _forget(self, call: SipCall) -> None:
        self._live.pop(call.leg_uuid, None)

    # -- inbound -----------------------------------------------------------------------------

    def _on_invite(self, invite: Request, source: Addr, txn: InviteServerTransaction) -> None:
        called = _number_of(invite.uri)
        calling = _number_of(invite.from_address.uri)
        record = CallRecord(
            leg_uuid=new_uuid(),
            call_uuid=new_uuid(),
            leg=Leg.MAIN,
            direction="inbound",
            from_number=calling,
            to_number=called,
            caller_id_name=invite.from_address.name or None,
            started_at=self.clock.now(),
        )
        call = SipCall(
            self.agent,
            self.settings,
            self.clock,
            self.media,
            record,
            dialog=Dialog(
                call_id=invite.call_id,
                local_tag=new_tag(),
                local_address=Address(uri=invite.to_address.uri, name=invite.to_address.name),
                remote_address=Address(uri=invite.from_address.uri, name=invite.from_address.name),
                remote_target=invite.from_address.uri,
            ),
            on_end=self._forget,
        )
        self._live[call.leg_uuid] = call
        call.start_inbound(invite, txn)
        task = asyncio.create_task(self._run_inbound(call, called, calling))
        self._inbound_tasks.add(task)
        task.add_done_callback(self._inbound_tasks.discard)

    async def _run_inbound(self, call: SipCall, called: str, calling: str) -> None:
        try:
            if not await call.prepare_inbound():
                return
            if self.on_inbound is None:
                await call.hangup("NO_ROUTE_DESTINATION")
                return
            await self.on_inbound(call, called, calling)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the inbound call handler failed for %s", called)
            call.record.detail["error"] = f"inbound handler: {exc}"
        finally:
            if not call.ended:
                await call.hangup()


def _user(number: str) -> str:
    """The user part for a number: spaces and visual separators dropped."""
    return "".join(ch for ch in number if ch.isalnum() or ch in "+*#")


def _number_of(uri: URI) -> str:
    return uri.user or uri.host
