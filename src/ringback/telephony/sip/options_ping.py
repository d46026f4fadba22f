"""OPTIONS pings toward each trunk (``options_interval_s`` > 0): its state and latency.

Every interval, an OPTIONS goes to the trunk's first target (RFC 3263 order, blacklisted
targets last). Any final answer but ``503`` marks the trunk *up*, with the round trip as its
latency; no answer (Timer F), a 503, or a host that does not resolve marks it *down* (and
blacklists the target): calls then try the trunk's peers first (``trunk_select``). The state is
this process's (every process pings for itself); metrics and ``GET /sip/trunks`` show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sipmessage import URI, Address

from ringback.clock import Clock
from ringback.telephony.sip.agent import UserAgent
from ringback.telephony.sip.dialog import Dialog
from ringback.telephony.sip.dns import DnsError, SipResolver
from ringback.telephony.sip.message import SDP, Addr, new_call_id, new_tag
from ringback.telephony.sip.trunk_select import TrunkPool
from ringback.telephony.sip.trunks import Trunk, trunk_address

log = logging.getLogger("ringback.sip")


class OptionsPinger:
    """The pings of every trunk that asks for them, each in its own asyncio task."""

    def __init__(
        self, agent: UserAgent, pool: TrunkPool, resolver: SipResolver, clock: Clock
    ) -> None:
        self.agent = agent
        self.pool = pool
        self.resolver = resolver
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for trunk in self.pool.trunks:
            if trunk.settings.options_interval_s > 0:
                self._tasks.append(asyncio.create_task(self._keep_pinging(trunk)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _keep_pinging(self, trunk: Trunk) -> None:
        while True:
            try:
                await self.ping(trunk)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here never ends the pings
                log.exception("OPTIONS ping of trunk %s failed", trunk.name)
            await self.clock.sleep(trunk.settings.options_interval_s)

    async def ping(self, trunk: Trunk) -> bool:
        """One OPTIONS to ``trunk``; its state updated; whether it is up."""
        settings = trunk.settings
        try:
            targets = await self.resolver.targets(*trunk_address(trunk))
        except DnsError as exc:
            return self._mark(trunk, False, None, str(exc))
        target = targets[0]
        port = "" if settings.srv or settings.proxy_port == 5060 else f":{settings.proxy_port}"
        uri = URI.parse(f"sip:{settings.from_domain}{port}")
        dialog = Dialog(
            call_id=new_call_id(),
            local_tag=new_tag(),
            local_address=Address(uri=URI.parse(f"sip:ringback@{settings.from_domain}")),
            remote_address=Address(uri=uri),
            remote_target=uri,
        )
        agent = self.agent
        request = dialog.request(
            "OPTIONS", via_host=f"{agent.host}:{agent.port}", contact=agent.contact_uri
        )
        request.headers.set("Accept", SDP)
        request.headers.set("User-Agent", "ringback")
        started = self.clock.now()
        name = settings.tls_server_name or settings.proxy_host  # RFC 5922: the trunk's domain
        txn = agent.start_request(request, Addr(target.host, target.port, target.transport, name))
        response = await txn.result
        latency = (self.clock.now() - started).total_seconds()
        if response.code in (408, 503):
            self.resolver.blacklist(target, settings.blacklist_s)
            why = "no answer" if response.code == 408 else f"{response.code} {response.phrase}"
            return self._mark(trunk, False, None, f"OPTIONS to {target}: {why}")
        return self._mark(trunk, True, latency, None)

    def _mark(self, trunk: Trunk, up: bool, latency: float | None, error: str | None) -> bool:
        state = self.pool.states[trunk.name]
        if state.up is not up:
            log.info("SIP trunk %s is %s%s", trunk.name, "up" if up else "down",
                     f" ({error})" if error else "")  # fmt: skip
        state.up = up
        state.latency_s = latency
        state.last_error = error
        state.checked_at = self.clock.now()
        return up
