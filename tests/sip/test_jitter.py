"""The receive jitter buffer: reordering within its delay, loss reported as gaps, wrap-around."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ringback.telephony.sip.jitter import DELAY_FRAMES, RESYNC_LATE, WINDOW_FRAMES, JitterBuffer

SSRC = 0x1234


def frame(seq: int) -> bytes:
    return seq.to_bytes(2, "big")


def drain(buffer: JitterBuffer[bytes], pops: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(pops):
        got = buffer.pop()
        out.append(None if got is None else int.from_bytes(got, "big"))
    return out


@given(
    start=st.integers(0, 0xFFFF),
    count=st.integers(1, 200),
    data=st.data(),
)
def test_packets_arriving_up_to_the_delay_late_play_in_order_without_gaps(
    start: int, count: int, data: st.DataObject
) -> None:
    # packet i is due at tick i and arrives at tick i + lateness (< the playout delay)
    lateness = data.draw(st.lists(st.integers(0, DELAY_FRAMES - 1), min_size=count, max_size=count))
    arrivals: dict[int, list[int]] = {}
    for i, late in enumerate(lateness):
        arrivals.setdefault(i + late, []).append(i)
    buffer: JitterBuffer[bytes] = JitterBuffer()
    played: list[int | None] = []
    for tick in range(count + 2 * DELAY_FRAMES):
        batch = data.draw(st.permutations(arrivals.get(tick, [])))
        for i in batch:
            buffer.put(start + i, SSRC, frame((start + i) & 0xFFFF))
        played += drain(buffer, 1)
    heard = [p for p in played if p is not None]
    assert heard == [(start + i) & 0xFFFF for i in range(count)]
    first = played.index(heard[0])
    assert played[first : first + count] == heard  # no hole in the middle
    assert buffer.stats.missing == len(played) - first - count
    assert buffer.stats.late == 0 and buffer.stats.resets == 0


@given(
    start=st.integers(0, 0xFFFF),
    order=st.permutations(list(range(WINDOW_FRAMES))),
)
def test_any_permutation_within_the_window_plays_in_sequence_order(
    start: int, order: list[int]
) -> None:
    buffer: JitterBuffer[bytes] = JitterBuffer()
    for i in order:
        buffer.put(start + i, SSRC, frame((start + i) & 0xFFFF))
    played = drain(buffer, DELAY_FRAMES + WINDOW_FRAMES)
    assert played[:DELAY_FRAMES] == [None] * DELAY_FRAMES
    assert played[DELAY_FRAMES:] == [(start + i) & 0xFFFF for i in range(WINDOW_FRAMES)]


@given(
    start=st.integers(0, 0xFFFF),
    count=st.integers(2, 300),
    data=st.data(),
)
def test_lost_packets_are_reported_as_exactly_as_many_missing_frames(
    start: int, count: int, data: st.DataObject
) -> None:
    lost = data.draw(st.sets(st.integers(1, count - 2))) if count > 2 else set()
    buffer: JitterBuffer[bytes] = JitterBuffer()
    played: list[int | None] = []
    for i in range(count):  # one packet per tick, in order
        if i not in lost:
            buffer.put(start + i, SSRC, frame((start + i) & 0xFFFF))
        played += drain(buffer, 1)
    played += drain(buffer, DELAY_FRAMES)
    assert played[:DELAY_FRAMES] == [None] * DELAY_FRAMES
    body = played[DELAY_FRAMES : DELAY_FRAMES + count]
    assert body == [None if i in lost else (start + i) & 0xFFFF for i in range(count)]
    assert buffer.stats.missing == len(lost)
    assert buffer.stats.played == count - len(lost)


def test_sequence_numbers_wrap_around_at_65536() -> None:
    buffer: JitterBuffer[bytes] = JitterBuffer(delay_frames=0)
    for seq in (65534, 65535, 0, 1):
        buffer.put(seq, SSRC, frame(seq))
    assert drain(buffer, 5) == [65534, 65535, 0, 1, None]


def test_a_packet_after_its_slot_is_late_and_dropped_and_a_copy_is_a_duplicate() -> None:
    buffer: JitterBuffer[bytes] = JitterBuffer(delay_frames=1)
    buffer.put(10, SSRC, frame(10))
    buffer.put(12, SSRC, frame(12))
    buffer.put(12, SSRC, frame(12))
    assert drain(buffer, 3) == [None, 10, None]
    buffer.put(11, SSRC, frame(11))  # its slot has passed
    buffer.put(10, SSRC, frame(10))  # played already
    assert drain(buffer, 2) == [12, None]
    assert (buffer.stats.late, buffer.stats.duplicates) == (1, 2)


def test_a_new_ssrc_restarts_the_buffer() -> None:
    buffer: JitterBuffer[bytes] = JitterBuffer(delay_frames=1)
    buffer.put(100, SSRC, frame(100))
    buffer.put(101, SSRC, frame(101))
    assert drain(buffer, 2) == [None, 100]
    buffer.put(7, SSRC + 1, frame(7))
    assert drain(buffer, 3) == [None, 7, None]
    assert buffer.stats.resets == 1


def test_a_jump_beyond_the_window_restarts_the_buffer_on_the_new_packet() -> None:
    buffer: JitterBuffer[bytes] = JitterBuffer(delay_frames=0)
    buffer.put(5, SSRC, frame(5))
    assert drain(buffer, 1) == [5]
    buffer.put(5 + 1 + WINDOW_FRAMES, SSRC, frame(5 + 1 + WINDOW_FRAMES))
    assert drain(buffer, 1) == [5 + 1 + WINDOW_FRAMES]
    assert buffer.stats.resets == 1


def test_a_run_of_late_packets_restarts_playout_on_the_stream_as_it_now_arrives() -> None:
    buffer: JitterBuffer[bytes] = JitterBuffer(delay_frames=0)
    buffer.put(0, SSRC, frame(0))
    drain(buffer, 10)  # the far end stalls: frames 1..9 were missing
    for seq in range(1, 1 + RESYNC_LATE):
        buffer.put(seq, SSRC, frame(seq))
    buffer.put(1 + RESYNC_LATE, SSRC, frame(1 + RESYNC_LATE))
    assert drain(buffer, 2) == [RESYNC_LATE, RESYNC_LATE + 1]
    assert buffer.stats.late == RESYNC_LATE and buffer.stats.resets == 1
