"""The ``sip`` dialer: outbound legs through a trunk or proxy, inbound INVITEs to a hook."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

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
from ringback.telephony.sip.dns import DnsError, SipResolver, Target
from ringback.telephony.sip.media_port import MediaToolkit, RtpMedia
from ringback.telephony.sip.message import TRANSPORTS, Addr, new_tag
from ringback.telephony.sip.options_ping import OptionsPinger
from ringback.telephony.sip.registration import Registration, RegistrationSpec, specs_for
from ringback.telephony.sip.transactions import InviteServerTransaction, Timers
from ringback.telephony.sip.transport import TransportConfig
from ringback.telephony.sip.trunk_call import TrunkCall
from ringback.telephony.sip.trunk_select import TrunkPool
from ringback.telephony.sip.trunks import Trunk, trunk_address, trunks_for

log = logging.getLogger("ringback.sip")

#: ``on_inbound(call, called_number, calling_number)``: runs the call (answer, IVR, hangup);
#: the dialer hangs up whatever is still up when it returns
InboundHandler = Callable[[SipCall, str, str], Awaitable[None]]


class SipDialer:
    """A :class:`~ringback.telephony.base.Dialer` that places real calls over SIP (UDP, TCP
    or TLS)."""

    name: str = "sip"

    def __init__(
        self,
        settings: SipSettings,
        clock: Clock,
        *,
        media: MediaToolkit | None = None,
        timers: Timers | None = None,
        on_inbound: InboundHandler | None = None,
        registrations: list[RegistrationSpec] | None = None,
        trunks: list[Trunk] | None = None,
        resolver: SipResolver | None = None,
    ) -> None:
        """``trunks``: where calls go (docs/sip-trunks.md); default the trunks file
        ``settings`` names, else one trunk made of ``settings``."""
        self.settings = settings
        self.clock = clock
        self.media: MediaToolkit = media if media is not None else RtpMedia()
        self.agent = UserAgent(
            settings.local_host,
            settings.local_port,
            timers=timers,
            transport=TransportConfig.from_settings(settings),
        )
        self.agent.external_host = settings.external_address
        self.on_inbound = on_inbound
        self.originated = 0
        self._live: dict[str, SipCall] = {}
        self._inbound_tasks: set[asyncio.Task[None]] = set()
        specs = specs_for(settings) if registrations is None else registrations
        #: the bindings kept with registrars (docs/sip-dialogs.md), started with the dialer
        self.registrations = [Registration(self.agent, spec, clock) for spec in specs]
        self.trunks = trunks if trunks is not None else trunks_for(settings)
        self.pool = TrunkPool(self.trunks, clock)
        self.resolver = resolver or SipResolver(
            clock, nameservers=settings.dns_servers, transports=TRANSPORTS
        )
        self._outbound: set[TrunkCall] = set()
        self.pinger = OptionsPinger(self.agent, self.pool, self.resolver, clock)

    async def start(self) -> SipDialer:
        """Bind the SIP socket; returns the dialer. libsndfile (audio files other than PCM
        WAV) is loaded here, in a thread: loaded by a first Play during calls, its import
        (~0.1 s, holding the interpreter) would stall every call's 20 ms pacing once."""
        self.agent.invite_handler = self._on_invite
        await self.agent.start()
        for registration in self.registrations:
            registration.start()
        await asyncio.to_thread(preload_audio_library)
        self.pinger.start()
        return self

    @property
    def port(self) -> int:
        return self.agent.port

    @property
    def default_caller_id(self) -> str | None:
        """The caller id of a leg that names none (checked against a client's allowed list):
        the default trunk's."""
        return self.pool.default.settings.caller_id

    async def originate(self, request: OriginateRequest) -> SipCall | TrunkCall:
        """Place an outbound leg on the trunks chosen for it; returns at once. With one trunk at
        an address (no NAPTR/SRV, no limits, not paused) it is one SipCall, as it always was;
        otherwise a TrunkCall failing over between trunks and servers (``trunk_call``)."""
        number = request.to_number
        self.target_uri(number, self.pool.default)  # CallError now for what cannot be dialled
        self.originated += 1
        if len(self.trunks) == 1 and self._direct(self.trunks[0]):
            trunk = self.trunks[0]
            self.pool.take(trunk)
            call = self.place(trunk, None, request, self.clock.now())
            call.start_outbound(min(request.ring_timeout_s, trunk.settings.max_ring_timeout_s))
            return call
        selector = _number_of(URI.parse(number)) if number.startswith("sip") else _user(number)
        trunks = self.pool.candidates(selector, request.queue_id)
        started = self.clock.now()
        first = await self._first_trunk(trunks, request, started)
        outbound = TrunkCall(self, request, first, trunks, started, self._outbound.discard)
        self._outbound.add(outbound)
        return outbound

    async def _first_trunk(
        self, trunks: list[Trunk], request: OriginateRequest, started: datetime
    ) -> tuple[Trunk, list[Target]]:
        """The first of ``trunks`` with room whose servers resolve, taken (and removed from
        ``trunks``: the rest are the failover trunks). It waits for room at most the ring
        time; CallError when there is none, so that the leg counts as never placed."""
        ring = min(request.ring_timeout_s, max(t.settings.max_ring_timeout_s for t in trunks))
        failures: list[str] = []
        while trunks:
            left = ring - (self.clock.now() - started).total_seconds()
            trunk = await self.pool.acquire(trunks, max(0.0, left))
            if trunk is None:
                names = ", ".join(t.name for t in trunks)
                raise CallError(
                    f"no trunk had room within the ring time ({names}: at their limits or "
                    "paused by Retry-After)"
                )
            trunks.remove(trunk)
            try:
                return trunk, await self.resolver.targets(*trunk_address(trunk))
            except DnsError as exc:
                self.pool.release(trunk)
                failures.append(f"trunk {trunk.name}: {exc}")
        raise CallError("; ".join(failures))

    def _direct(self, trunk: Trunk) -> bool:
        """Whether a call on ``trunk`` has nothing to fail over to and no limit to wait for."""
        return (
            not trunk.settings.srv
            and trunk.max_concurrent_calls is None
            and trunk.max_calls_per_second is None
            and self.pool.wait_s(trunk) == 0.0
        )

    def place(
        self,
        trunk: Trunk,
        target: Target | None,
        request: OriginateRequest,
        started_at: datetime,
    ) -> SipCall:
        """One try of an outbound leg: a SipCall to ``target`` of ``trunk`` (None: to the
        trunk's proxy as its settings give it), not started yet."""
        base = settings = trunk.settings
        if target is not None:
            changes: dict[str, object] = {
                "proxy_host": target.host, "proxy_port": target.port,
                "domain": base.from_domain,
                # RFC 5922: the certificate names the trunk's domain, not the address DNS gave
                "tls_server_name": base.tls_server_name or _name_of(base.proxy_host),
            }  # fmt: skip
            if "transport" in {f.name for f in dataclasses.fields(base)}:
                changes["transport"] = target.transport
            settings = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        uri = self.target_uri(request.to_number, trunk)
        caller = trunk.caller_id(request.caller_id_number) or "ringback"
        local = Address(
            uri=URI.parse(f"sip:{_user(caller)}@{base.from_domain}"),
            name=request.caller_id_name or "",
        )
        record = outbound_record(request, started_at, trunk.caller_id(request.caller_id_number))
        record.detail["trunk"] = trunk.name
        if target is not None:
            record.detail["target"] = str(target)

        def ended(call: SipCall) -> None:
            self._forget(call)
            self.pool.release(trunk)
            retry_after = call.record.detail.get("retry_after_s")
            if call.record.sip_code in (429, 503) and retry_after is not None:
                self.pool.pause(trunk, float(retry_after))  # Retry-After: the trunk slows down

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
                remote_address=Address(uri=uri),
                remote_target=uri,
            ),
            on_end=ended,
        )
        self._live[call.leg_uuid] = call
        return call

    def target_uri(self, number: str, trunk: Trunk | None = None) -> URI:
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
        settings = (trunk or self.pool.default).settings
        port = "" if settings.proxy_port == 5060 or settings.srv else f":{settings.proxy_port}"
        return URI.parse(f"sip:{user}@{settings.from_domain}{port}")

    def live_calls(self) -> list[SipCall]:
        return [call for call in self._live.values() if not call.ended]

    async def close(self) -> None:
        """Hang up every leg, then close the socket."""
        for task in list(self._inbound_tasks):
            task.cancel()
        await self.pinger.close()
        for outbound in list(self._outbound):
            await outbound.close()
        calls = list(self._live.values())
        if calls:
            await asyncio.gather(
                *(call.hangup("SYSTEM_SHUTDOWN") for call in calls), return_exceptions=True
            )
        await asyncio.gather(
            *(registration.stop() for registration in self.registrations), return_exceptions=True
        )
        self.agent.close()

    def _forget(self, call: SipCall) -> None:
        if self._live.get(call.leg_uuid) is call:  # the tries of one leg share its id
            del self._live[call.leg_uuid]

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
        call.start_inbound(invite, txn, source)
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


def _name_of(host: str) -> str | None:
    """``host`` when it is a name (None for an address)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return None
