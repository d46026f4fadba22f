"""The fax mode of an RTP session (``fax_media.FaxDriver``), tick by tick, without a network:
what it sends each tick and what its fax machine hears."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import numpy.typing as npt
from support_media import HOST, free_udp_ports

from ringback.telephony.fax import g711
from ringback.telephony.sip import media
from ringback.telephony.sip.fax_media import MAX_FILLIN_FRAMES, FaxDriver
from ringback.telephony.sip.jitter import DELAY_FRAMES


class Session:
    """What the driver uses of an RtpSession: the codec, the media clock's RTP time, a send."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.sent: list[tuple[bytes, int, bool]] = []

    def now_ts(self, at: float) -> int:
        return int(at * 8000) & 0xFFFFFFFF

    def send_audio(self, payload: bytes, ts: int, marker: bool) -> None:
        self.sent.append((payload, ts, marker))


class Endpoint:
    """A fax machine that sends a falling ramp (negative samples) and notes what it hears."""

    def __init__(self, done_after: int = 1000) -> None:
        self.heard: list[npt.NDArray[np.int16] | int] = []  # samples, or a fill-in's length
        self.done_after = done_after
        self._n = 0

    @property
    def done(self) -> bool:
        return len(self.heard) >= self.done_after

    def rx(self, samples: npt.NDArray[np.int16]) -> None:
        self.heard.append(samples)

    def rx_fillin(self, n: int) -> None:
        self.heard.append(n)

    def tx(self, n: int = 160) -> npt.NDArray[np.int16]:
        self._n += 1
        return np.full(n, -100 * self._n, dtype=np.int16)


async def test_each_tick_sends_one_frame_in_the_legs_codec_with_continuous_timestamps() -> None:
    session, endpoint = Session("PCMA"), Endpoint()
    driver = FaxDriver(session, endpoint, max_frames=100)  # type: ignore[arg-type]
    for tick in range(5):
        assert driver.tick(1.0 + tick * 0.02 + (0.003 if tick == 3 else 0.0))
    sent = session.sent
    assert [marker for _, _, marker in sent] == [True, False, False, False, False]
    assert [(b[1] - a[1]) & 0xFFFFFFFF for a, b in itertools.pairwise(sent)] == [160] * 4
    for index, (payload, _, _) in enumerate(sent):
        want = np.full(160, -100 * (index + 1), dtype=np.int16)
        assert payload == g711.encode(want, "alaw").tobytes()


async def test_the_fax_machine_hears_only_the_far_end_in_order_after_the_playout_delay() -> None:
    session, endpoint = Session("PCMU"), Endpoint()
    driver = FaxDriver(session, endpoint, max_frames=100)  # type: ignore[arg-type]
    far = [np.full(160, 1000 * (i + 1), dtype=np.int16) for i in range(6)]
    packets = [(7 + i, g711.encode(f, "ulaw").tobytes()) for i, f in enumerate(far)]
    del packets[2]  # lost
    packets[0], packets[1] = packets[1], packets[0]  # reordered
    for seq, payload in packets:
        driver.on_audio("PCMU", payload, seq, 0xABC)
    for tick in range(DELAY_FRAMES + 6):
        driver.tick(tick * 0.02)
    heard = endpoint.heard
    assert heard[:DELAY_FRAMES] == [160] * DELAY_FRAMES  # playout not started: filled in
    played = heard[DELAY_FRAMES:]
    assert played[2] == 160  # the lost frame, filled in
    for index in (0, 1, 3, 4, 5):
        got = played[index]
        assert not isinstance(got, int)
        assert np.array_equal(got, g711.decode(g711.encode(far[index], "ulaw"), "ulaw"))
    # what the driver sent itself (the ramp) never reached its own fax machine
    assert all(isinstance(h, int) or h[0] > 0 for h in heard)


async def test_the_driver_finishes_when_its_fax_machine_is_done_or_time_is_up() -> None:
    done = FaxDriver(Session("PCMU"), Endpoint(done_after=3), max_frames=100)  # type: ignore[arg-type]
    assert [done.tick(t / 50) for t in range(3)] == [True, True, False]
    assert done.finished.done()
    timed_out = FaxDriver(Session("PCMU"), Endpoint(), max_frames=2)  # type: ignore[arg-type]
    assert [timed_out.tick(t / 50) for t in range(2)] == [True, False]
    assert timed_out.finished.done() and not timed_out.tick(1.0)


async def test_faxing_sessions_are_paced_by_the_one_shared_media_clock() -> None:
    first = free_udp_ports(4, even=True)
    sessions = [await media.RtpSession.open(HOST, (first, first + 3)) for _ in range(2)]
    try:
        for one, other in itertools.permutations(sessions):
            one.connect((HOST, other.local_port), "PCMU", 0, None)
        drivers = [FaxDriver(s, Endpoint(done_after=25), max_frames=100) for s in sessions]  # type: ignore[arg-type]
        runs = [asyncio.ensure_future(s.drive(d)) for s, d in zip(sessions, drivers, strict=True)]
        await asyncio.sleep(0)
        assert media._clock().members == set(sessions)  # one ticker drives both
        async with asyncio.timeout(5):
            await asyncio.gather(*runs)
        for session, driver in zip(sessions, drivers, strict=True):
            assert session.stats["packets_sent"] == 25
            assert driver.jitter.stats.played >= 25 - DELAY_FRAMES - 2
    finally:
        for session in sessions:
            await session.close()


async def test_a_far_end_gone_quiet_is_heard_as_silence_after_the_fill_in_limit() -> None:
    session, endpoint = Session("PCMU"), Endpoint()
    driver = FaxDriver(session, endpoint, max_frames=100)  # type: ignore[arg-type]
    driver.on_audio("PCMU", g711.encode(np.full(160, 500, np.int16), "ulaw").tobytes(), 1, 7)
    for tick in range(DELAY_FRAMES + 1 + MAX_FILLIN_FRAMES + 3):
        driver.tick(tick * 0.02)
    after = endpoint.heard[DELAY_FRAMES + 1 :]
    assert after[:MAX_FILLIN_FRAMES] == [160] * MAX_FILLIN_FRAMES  # short gaps: bridged
    quiet = after[MAX_FILLIN_FRAMES:]
    assert len(quiet) == 3
    assert all(not isinstance(h, int) and not h.any() for h in quiet)  # then: silence
