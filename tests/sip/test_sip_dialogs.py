"""Dialog features against strict sipp scenarios on 127.0.0.1 (docs/sip-dialogs.md): reliable
provisional responses (PRACK) both ways, session timers (422, refresh, expiry), early media,
forked 2xx and strict routing refused.

sipp exits 0 only when every message it expected came in order with the headers its
scenario checks; the session timer tests move an injected clock instead of waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from support_media import HOST, free_udp_ports
from support_sip import bounded, request, sipp_peer

from ringback.clock import Clock, FakeClock, SystemClock
from ringback.config import SipSettings
from ringback.domain.model import Outcome
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import InboundHandler, SipDialer

pytestmark = pytest.mark.slow


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (the test's own bound stops a wait that never ends)."""
    while True:
        if condition():
            return
        await asyncio.sleep(0.02)


@asynccontextmanager
async def _dialer(
    port: int, clock: Clock | None = None, on_inbound: InboundHandler | None = None
) -> AsyncIterator[SipDialer]:
    rtp = free_udp_ports(8, even=True)
    settings = SipSettings(
        proxy_host=HOST, proxy_port=port, local_host=HOST, local_port=0,
        rtp_ports=(rtp, rtp + 7), caller_id="4930123456",
    )  # fmt: skip
    dialer = SipDialer(settings, clock or SystemClock(), on_inbound=on_inbound)
    await dialer.start()
    try:
        yield dialer
    finally:
        await dialer.close()


@bounded(60)
async def test_reliable_18x_are_pracked_in_order_once_each_and_the_call_answers(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_prack") as sipp:
        async with _dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # RAck 1 then RAck 2; a PRACK for the copy would fail it
    assert record.detail["prack_sent"] == 2


@bounded(60)
async def test_an_inbound_invite_requiring_100rel_gets_a_reliable_180_retransmitted_until_prack(
    tmp_path: Path,
) -> None:
    async def answer_after_prack(call: SipCall, called: str, calling: str) -> None:
        await _until(lambda: bool(call.record.detail.get("prack_received")))
        await call.answer()

    async with _dialer(5060, on_inbound=answer_after_prack) as dialer:
        target = f"{HOST}:{dialer.port}"
        with sipp_peer(tmp_path, "uac_call_100rel", extra=[target, "-s", "5550199"]) as sipp:
            await sipp.passed()  # checks Require/RSeq, the PRACK's 200, Session-Expires
    messages = sipp.message_file.read_text()
    ringing = [block for block in messages.split("\n----------") if "SIP/2.0 180" in block]
    assert len(ringing) >= 2, messages  # sipp PRACKs after 1.2 s: T1 (0.5 s) resent it


@bounded(60)
async def test_a_422_raises_session_expires_and_ringback_refreshes_with_a_reinvite_at_half(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with sipp_peer(tmp_path, "uas_session_timer") as sipp:
        async with _dialer(sipp.sip_port, clock) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            assert call.session_timer.interval == 1900 and call.session_timer.we_refresh
            assert clock.sleepers == 1  # the refresh, due at 950 s
            clock.advance(949)
            await asyncio.sleep(0)
            assert clock.sleepers == 1 and "session_refreshes_sent" not in call.record.detail
            clock.advance(1)
            await _until(lambda: call.record.detail.get("session_refreshes_sent") == 1)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()
    assert record.detail["session_min_se"] == 1900
    assert record.outcome is Outcome.ANSWERED and record.hangup_disposition == "send_bye"


@bounded(60)
async def test_a_far_reinvite_crossing_our_session_refresh_gets_491_and_the_refresh_goes_on(
    tmp_path: Path,
) -> None:
    """RFC 3261 §14.2: a UAS with its own re-INVITE pending refuses an offer with 491."""
    clock = FakeClock()
    with sipp_peer(tmp_path, "uas_session_refresh_crossed") as sipp:
        async with _dialer(sipp.sip_port, clock) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            clock.advance(950)  # the refresh (a re-INVITE), which sipp crosses with its own
            await _until(lambda: call.record.detail.get("session_refreshes_sent") == 1)
            assert not call.session_timer.offering  # answered: offers are taken again
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the 491 to its re-INVITE
    assert record.detail["reinvite_491"] == 1
    assert record.outcome is Outcome.ANSWERED and record.hangup_disposition == "send_bye"


@bounded(60)
async def test_when_the_far_end_refreshes_and_does_not_ringback_byes_before_expiry(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with sipp_peer(tmp_path, "uas_session_expires") as sipp:
        async with _dialer(sipp.sip_port, clock) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            assert call.session_timer.we_refresh is False
            clock.advance(59)  # 90 s minus 30 s (a third of it, under 32 s) is the deadline
            await asyncio.sleep(0)
            assert not call.ended
            clock.advance(1)
            record = await call.wait_ended()
        await sipp.passed()
    assert record.hangup_disposition == "send_bye"
    assert record.hangup_cause == "RECOVERY_ON_TIMER_EXPIRE"
    assert "session expired" in record.detail["error"]


@bounded(60)
async def test_a_183_with_sdp_starts_early_media_before_the_answer(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_early_media") as sipp:
        async with _dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()
    assert record.detail["early_media"] == f"183 {HOST}:{sipp.media_port}"
    assert record.detail["early_rtp_packets_received"] > 0  # the pcap, before the 200
    assert record.answered_at is not None and record.ringing_at is not None


@bounded(60)
async def test_forked_early_dialogs_are_tracked_and_a_second_2xx_is_acked_then_byed(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_forked_2xx") as sipp:
        async with _dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await _until(lambda: call.record.detail.get("forked_bye_response") == 200)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # ACK and BYE to fork B, then the BYE to A
    assert record.detail["early_dialogs"] == 2
    assert record.detail["forked_2xx"] == ["forkB"]
    assert record.outcome is Outcome.ANSWERED


@bounded(60)
async def test_a_strict_record_route_fails_the_call_with_an_error_naming_strict_routing(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_strict_route") as sipp:
        async with _dialer(sipp.sip_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.FAILED
            record = await call.wait_ended()
        await sipp.passed()
    assert "strict routing is not supported" in record.detail["error"]
    assert record.hangup_disposition == "send_bye"


@bounded(60)
async def test_when_the_far_end_allows_update_ringback_refreshes_with_update(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with sipp_peer(tmp_path, "uas_session_timer_update") as sipp:
        async with _dialer(sipp.sip_port, clock) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            clock.advance(45)  # half of 90 s
            await _until(lambda: call.record.detail.get("session_refreshes_sent") == 1)
            assert call.session_timer.we_refresh  # and the next one is scheduled
            await call.hangup()
        await sipp.passed()  # an UPDATE (not a re-INVITE) with Session-Expires


@bounded(60)
async def test_an_inbound_session_expires_below_min_se_gets_422_with_min_se(
    tmp_path: Path,
) -> None:
    async def answer(call: SipCall, called: str, calling: str) -> None:
        await call.answer()

    async with _dialer(5060, on_inbound=answer) as dialer:
        target = f"{HOST}:{dialer.port}"
        extra = [target, "-s", "5550199"]
        with sipp_peer(tmp_path, "uac_call_session_too_brief", extra=extra) as sipp:
            await sipp.passed()
        await _until(lambda: not dialer.live_calls())


@bounded(60)
async def test_an_inbound_invite_through_a_strict_router_is_refused(tmp_path: Path) -> None:
    ended: list[SipCall] = []

    async def answer(call: SipCall, called: str, calling: str) -> None:
        ended.append(call)  # never reached: refused before the handler
        await call.answer()

    async with _dialer(5060, on_inbound=answer) as dialer:
        target = f"{HOST}:{dialer.port}"
        with sipp_peer(tmp_path, "uac_call_strict_route", extra=[target, "-s", "5550199"]) as sipp:
            await sipp.passed()
    assert ended == []


@bounded(60)
async def test_a_refresh_from_the_far_end_is_answered_and_restarts_the_expiry(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with sipp_peer(tmp_path, "uas_session_refreshed_by_peer") as sipp:
        async with _dialer(sipp.sip_port, clock) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            clock.advance(40)  # sipp refreshes 4 s (real time) after its answer: at 40 s
            assert "session_refreshes_received" not in call.record.detail
            await _until(lambda: call.record.detail.get("session_refreshes_received") == 1)
            assert clock.sleepers == 1  # the old deadline gone, the new one set
            clock.advance(59)  # 99 s: past the first deadline (60 s), before the new one
            await asyncio.sleep(0)
            assert clock.sleepers == 1 and not call.ended
            clock.advance(1)  # 100 s: 40 s + 90 s minus 30 s
            record = await call.wait_ended()
        await sipp.passed()  # the UPDATE's 200 carried Session-Expires and Require
    assert record.hangup_cause == "RECOVERY_ON_TIMER_EXPIRE"
