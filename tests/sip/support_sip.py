"""Helpers for the SIP signalling tests: a dialer bound to 127.0.0.1, sipp peers from
``tests/sip/scenarios``, and a WAV to play."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from support_media import HOST, Sipp, free_udp_ports

from ringback.clock import SystemClock
from ringback.config import SipSettings
from ringback.domain.model import Outcome
from ringback.telephony.base import OriginateRequest
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import InboundHandler, SipDialer
from ringback.telephony.sip.transactions import Timers

SCENARIOS = Path(__file__).parent / "scenarios"


def bounded(seconds: float) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Any]]:
    """An async test that fails (TimeoutError) instead of hanging past ``seconds``."""

    def wrap(test: Callable[..., Awaitable[None]]) -> Callable[..., Any]:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            async with asyncio.timeout(seconds):
                await test(*args, **kwargs)

        return run

    return wrap


def scenario(name: str) -> str:
    return (SCENARIOS / f"{name}.xml").read_text()


@contextlib.contextmanager
def sipp_peer(
    tmp_path: Path, name: str, *, timeout_s: float = 40.0, extra: list[str] | None = None
) -> Iterator[Sipp]:
    """sipp running scenario ``name`` on a free port; killed by PID on the way out."""
    sipp = Sipp(scenario=scenario(name), workdir=tmp_path / name, name=name, extra=extra or [])
    try:
        yield sipp.start(timeout_s=timeout_s)
    finally:
        sipp.stop()


@contextlib.asynccontextmanager
async def sip_dialer(
    proxy_port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    on_inbound: InboundHandler | None = None,
    timers: Timers | None = None,
    t38: str = "accept",
    **more: Any,  # other SipSettings fields (srtp, external_address, transport, tls_*, …)
) -> AsyncIterator[SipDialer]:
    rtp = free_udp_ports(40, even=True)
    settings = SipSettings(
        proxy_host=HOST,
        proxy_port=proxy_port,
        username=username,
        password=password,
        local_host=HOST,
        local_port=0,
        rtp_ports=(rtp, rtp + 39),
        caller_id="4930123456",
        t38=t38,
        **more,
    )
    dialer = SipDialer(settings, SystemClock(), on_inbound=on_inbound, timers=timers)
    await dialer.start()
    try:
        yield dialer
    finally:
        await dialer.close()


def request(number: str = "5551234", ring_timeout_s: float = 10.0) -> OriginateRequest:
    return OriginateRequest(
        to_number=number, caller_id_number="4930123456", ring_timeout_s=ring_timeout_s
    )


async def answered_call(dialer: SipDialer) -> SipCall:
    """A call of ``dialer`` to :func:`request`'s number, answered."""
    call = await dialer.originate(request())
    assert isinstance(call, SipCall)
    assert await call.wait_answer() is Outcome.ANSWERED
    return call
