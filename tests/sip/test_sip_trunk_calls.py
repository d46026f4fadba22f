"""SIP trunks with real peers on 127.0.0.1: sipp UASes behind a local authoritative DNS zone
(NAPTR/SRV/A) and behind several trunks of a trunks file; failover, blacklist, Retry-After,
per-trunk limits, selection, and OPTIONS pings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support_dns import local_dns
from support_media import HOST, Sipp, free_udp_ports
from support_sip import bounded, request, scenario

from ringback.clock import SystemClock
from ringback.config import SipSettings
from ringback.domain.model import Outcome
from ringback.telephony.sip.dialer import SipDialer
from ringback.telephony.sip.dns import SipResolver, Target
from ringback.telephony.sip.transactions import Timers
from ringback.telephony.sip.trunk_call import TrunkCall
from ringback.telephony.sip.trunks import load_trunks

pytestmark = pytest.mark.slow

#: Timer B / F of 3.2 s: a dead target is given up on quickly
FAST = Timers(t1=0.05, t2=0.4, t4=0.5)


@contextlib.contextmanager
def sipps(tmp_path: Path, *peers: tuple[str, int]) -> AsyncIterator[list[Sipp]]:  # type: ignore[misc]
    """sipp UASes running (scenario, calls) each; killed by PID on the way out."""
    started: list[Sipp] = []
    try:
        for index, (name, calls) in enumerate(peers):
            sipp = Sipp(
                scenario=scenario(name), workdir=tmp_path / f"{index}-{name}", name=name,
                calls=calls,
            )  # fmt: skip
            started.append(sipp.start(timeout_s=40))
        yield started
    finally:
        for sipp in started:
            sipp.stop()


@contextlib.asynccontextmanager
async def trunk_dialer(
    tmp_path: Path, trunks_toml: str, *, dns: tuple[str, int] | None = None
) -> AsyncIterator[SipDialer]:
    rtp = free_udp_ports(40, even=True)
    path = tmp_path / "trunks.toml"
    path.write_text(trunks_toml)
    base = SipSettings(
        proxy_host="", local_host=HOST, local_port=0, rtp_ports=(rtp, rtp + 39),
        caller_id="4930123456", trunks_file=path,
    )  # fmt: skip
    clock = SystemClock()
    resolver = SipResolver(clock, nameservers=[dns] if dns else [], blacklist_s=30)
    dialer = SipDialer(base, clock, timers=FAST, trunks=load_trunks(path, base), resolver=resolver)
    await dialer.start()
    try:
        yield dialer
    finally:
        await dialer.close()


async def _until(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds (the test's own bound stops a wait that never ends)."""
    while True:
        if condition():
            return
        await asyncio.sleep(0.02)


async def _passed(*peers: Sipp) -> None:
    for sipp in peers:
        assert await sipp.wait_async(30) == 0, sipp.output()
        assert sipp.errors() == ""


async def _answered_and_hung_up(dialer: SipDialer, number: str = "5551234", **kw: object) -> dict:
    req = request(number)
    for key, value in kw.items():
        setattr(req, key, value)
    call = await dialer.originate(req)
    assert await call.wait_answer() is Outcome.ANSWERED, call.record
    await call.hangup()
    record = await call.wait_ended()
    return record.detail


@bounded(120)
async def test_srv_failover_skips_a_silent_and_a_503_target_and_blacklists_them_for_the_next_call(
    tmp_path: Path,
) -> None:
    dead = free_udp_ports()  # nothing listens: Timer B
    with sipps(tmp_path, ("uas_503", 1), ("uas_answer", 2)) as (refusing, answering):
        zone = {
            ("carrier.test.", "NAPTR"): ['10 10 "s" "SIP+D2U" "" _sip._udp.carrier.test.'],
            ("_sip._udp.carrier.test.", "SRV"): [
                f"10 10 {dead} a.carrier.test.",
                f"20 10 {refusing.sip_port} b.carrier.test.",
                f"30 10 {answering.sip_port} c.carrier.test.",
            ],
            **{(f"{h}.carrier.test.", "A"): ["127.0.0.1"] for h in "abc"},
        }
        async with local_dns(zone) as (server, _questions):
            toml = '[trunks.carrier]\nproxy = "carrier.test"\n'
            async with trunk_dialer(tmp_path, toml, dns=server) as dialer:
                first = await _answered_and_hung_up(dialer)
                assert first["target"] == str(Target("127.0.0.1", answering.sip_port))
                reasons = [entry["reason"] for entry in first["failover"]]
                assert reasons == ["408 Request Timeout", "503 Service Unavailable"]  # 408: Timer B
                assert dialer.resolver.blacklisted(Target("127.0.0.1", dead))
                assert dialer.resolver.blacklisted(Target("127.0.0.1", refusing.sip_port))
                second = await _answered_and_hung_up(dialer)  # straight to the live target
                assert "failover" not in second
                assert second["target"] == first["target"]
        await _passed(refusing, answering)


@bounded(90)
async def test_a_503_with_retry_after_fails_over_to_the_next_trunk_which_takes_calls_until_then(
    tmp_path: Path,
) -> None:
    with sipps(tmp_path, ("uas_503_retry_after", 1), ("uas_answer", 2)) as (busy, backup):
        toml = (
            f'[trunks.first]\nproxy = "{HOST}:{busy.sip_port}"\n'
            f'[trunks.second]\nproxy = "{HOST}:{backup.sip_port}"\n'
        )
        async with trunk_dialer(tmp_path, toml) as dialer:
            first = await _answered_and_hung_up(dialer)
            assert first["trunk"] == "second"
            assert first["failover"] == [
                {"trunk": "first", "target": f"{HOST}:{busy.sip_port};transport=udp",
                 "reason": "503 Service Unavailable"},
            ]  # fmt: skip
            assert dialer.pool.states["first"].paused_until is not None  # Retry-After: 60
            second = await _answered_and_hung_up(dialer)
            assert second["trunk"] == "second" and "failover" not in second
        await _passed(busy, backup)


@bounded(60)
async def test_a_503_after_ringing_is_not_failed_over_so_the_callee_is_never_rung_twice(
    tmp_path: Path,
) -> None:
    unused = free_udp_ports()  # a failover would send its INVITE here
    with sipps(tmp_path, ("uas_ringing_503", 1)) as (rang,):
        toml = (
            f'[trunks.first]\nproxy = "{HOST}:{rang.sip_port}"\n'
            f'[trunks.second]\nproxy = "{HOST}:{unused}"\n'
        )
        async with trunk_dialer(tmp_path, toml) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.FAILED
            record = await call.wait_ended()
            assert (record.sip_code, record.detail["trunk"]) == (503, "first")
            assert record.ringing_at is not None and "failover" not in record.detail
            assert dialer.pool.states["second"].placed == 0
        await _passed(rang)


@bounded(120)
async def test_a_trunks_concurrency_limit_holds_under_simultaneous_calls_which_wait_for_room(
    tmp_path: Path,
) -> None:
    with sipps(tmp_path, ("uas_answer", 4)) as (peer,):
        toml = f'[trunks.small]\nproxy = "{HOST}:{peer.sip_port}"\nmax_concurrent_calls = 2\n'
        async with trunk_dialer(tmp_path, toml) as dialer:
            state = dialer.pool.states["small"]
            placing = [asyncio.ensure_future(dialer.originate(request())) for _ in range(4)]
            await _until(lambda: sum(p.done() for p in placing) >= 2)
            first = [p.result() for p in placing if p.done()]
            assert all(isinstance(call, TrunkCall) for call in first)
            for call in first:
                assert await call.wait_answer() is Outcome.ANSWERED
            assert len(first) == 2 and state.calls == 2 and len(dialer.live_calls()) == 2
            assert sum(p.done() for p in placing) == 2  # the other two wait for room
            for call in first:
                await call.hangup()
            for placed in placing:
                call = await placed
                assert await call.wait_answer() is Outcome.ANSWERED
                assert state.calls <= 2
                await call.hangup()
            assert state.placed == 4 and state.calls == 0
        await _passed(peer)


@bounded(90)
async def test_calls_go_to_the_trunk_of_their_queue_else_of_their_longest_number_prefix(
    tmp_path: Path,
) -> None:
    with sipps(tmp_path, ("uas_answer", 1), ("uas_answer", 1), ("uas_answer", 1)) as peers:
        fr, paris, campaign = peers
        toml = (
            f'[trunks.fr]\nproxy = "{HOST}:{fr.sip_port}"\nprefixes = ["+33"]\n'
            f'[trunks.paris]\nproxy = "{HOST}:{paris.sip_port}"\nprefixes = ["+331"]\n'
            f'[trunks.campaign]\nproxy = "{HOST}:{campaign.sip_port}"\nqueues = [7]\n'
        )
        async with trunk_dialer(tmp_path, toml) as dialer:
            assert (await _answered_and_hung_up(dialer, "+33145678900"))["trunk"] == "paris"
            assert (await _answered_and_hung_up(dialer, "+33245678900"))["trunk"] == "fr"
            detail = await _answered_and_hung_up(dialer, "+33145678900", queue_id=7)
            assert detail["trunk"] == "campaign"
        await _passed(fr, paris, campaign)


@bounded(90)
async def test_options_pings_mark_a_dead_trunk_down_and_a_live_one_up_with_its_latency(
    tmp_path: Path,
) -> None:
    dead = free_udp_ports()
    with sipps(tmp_path, ("uas_options", 1)) as (live,):
        toml = (
            "[defaults]\noptions_interval_s = 60\n"
            f'[trunks.live]\nproxy = "{HOST}:{live.sip_port}"\n'
            f'[trunks.dead]\nproxy = "{HOST}:{dead}"\n'
        )
        async with trunk_dialer(tmp_path, toml) as dialer:
            states = dialer.pool.states
            # the first pings go out at start; the dead one's Timer F is 3.2 s
            await _until(lambda: states["live"].up is not None and states["dead"].up is not None)
            report = {entry["name"]: entry for entry in dialer.pool.report()}
            assert report["live"]["state"] == "up"
            assert isinstance(report["live"]["latency_ms"], float)
            assert report["dead"]["state"] == "down" and report["dead"]["latency_ms"] is None
            assert "no answer" in str(report["dead"]["last_error"])
            # a down trunk is tried after the others
            assert [t.name for t in dialer.pool.candidates("555", None)] == ["live", "dead"]
        await _passed(live)
