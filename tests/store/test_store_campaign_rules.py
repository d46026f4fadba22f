"""Frequency caps and allowed caller ids in the store, on SQLite and PostgreSQL alike: rules
replaced and read back, and checked in the write of every call leg (a capped leg is refused
with the moment it becomes allowed, a leg with a caller id off the list is refused; neither is
stored), also when two stores (two worker processes) write legs to one number at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from test_store import msg_task

from ringback.clock import FakeClock
from ringback.domain.frequency_caps import CallerIdEntry, CapRule
from ringback.domain.model import LegState
from ringback.store.db import Store
from ringback.store.legs_sql import LegWrite
from support import leg_record

NUMBER = "0901234000"
OpenStore = Callable[[], Awaitable[Store]]  #: the open_shared fixture (tests/store/conftest.py)


async def _claimed(store: Store, clock: FakeClock, n: int, owner: str = "w1") -> list[LegWrite]:
    """``n`` tasks added to two queues and claimed; an open of a leg to NUMBER for each."""
    acme = await store.ensure_client("acme", clock.now())
    first = (await store.ensure_queue(acme, "q1", clock.now(), status="on")).id
    second = (await store.ensure_queue(acme, "q2", clock.now(), status="on")).id
    for i in range(n):
        await store.add_tasks(acme, (first, second)[i % 2], [msg_task(clock)], clock.now())
    claimed = (await store.claim(owner, clock.now(), n, 30)).tasks
    assert len(claimed) == n
    return [
        LegWrite(task.id, task.fence, task.attempt, owner,
                 leg_record(clock, f"leg-{task.id}", NUMBER), LegState.DIALING)
        for task in claimed
    ]  # fmt: skip


async def test_rules_are_replaced_as_a_whole_and_read_back_per_client(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    await store.set_frequency_caps(acme, [CapRule(3, 86400), CapRule(1, 3600)], clock.now())
    await store.set_caller_ids(acme, [CallerIdEntry("+3361", True)], clock.now())
    assert await store.frequency_caps(acme) == [CapRule(1, 3600), CapRule(3, 86400)]
    assert await store.caller_ids(acme) == [CallerIdEntry("+3361", True)]
    assert await store.frequency_caps(other) == [] and await store.caller_ids(other) == []
    await store.set_frequency_caps(acme, [CapRule(2, 60)], clock.now())
    assert await store.frequency_caps(acme) == [CapRule(2, 60)]
    await store.set_caller_ids(acme, [], clock.now())
    assert await store.caller_ids(acme) == []


async def test_a_leg_beyond_the_cap_is_refused_until_the_oldest_counted_call_leaves_the_window(
    store: Store, clock: FakeClock
) -> None:
    opens = await _claimed(store, clock, 4)
    acme = await store.ensure_client("acme", clock.now())
    await store.set_frequency_caps(acme, [CapRule(3, 86400)], clock.now())
    t0 = clock.now()
    for hour, write in enumerate(opens[:3]):
        write.record.started_at = t0 + timedelta(hours=hour)
        assert await store.write_legs([write]) == {write.record.leg_uuid}
    fourth = opens[3]
    fourth.record.started_at = t0 + timedelta(hours=3)
    opened = await store.write_legs([fourth])
    assert opened == set() and opened.capped[fourth.record.leg_uuid].until == t0 + timedelta(
        hours=24
    )
    assert await store.calls(task_id=fourth.task_id) == []  # not stored
    fourth.record.started_at = t0 + timedelta(hours=24)  # the first call left the window
    assert await store.write_legs([fourth]) == {fourth.record.leg_uuid}


async def test_legs_of_one_batch_count_against_each_other(store: Store, clock: FakeClock) -> None:
    opens = await _claimed(store, clock, 3)
    acme = await store.ensure_client("acme", clock.now())
    await store.set_frequency_caps(acme, [CapRule(2, 3600)], clock.now())
    opened = await store.write_legs(opens)
    assert len(opened) == 2 and list(opened.capped) == [opens[2].record.leg_uuid]


async def test_a_leg_whose_caller_id_is_off_the_list_is_refused(
    store: Store, clock: FakeClock
) -> None:
    opens = await _claimed(store, clock, 2)
    acme = await store.ensure_client("acme", clock.now())
    await store.set_caller_ids(acme, [CallerIdEntry("0506868", True)], clock.now())
    opens[1].record.from_number = "0999999999"
    opened = await store.write_legs(opens)
    assert opened == {opens[0].record.leg_uuid}
    refused = opened.refused[opens[1].record.leg_uuid]
    assert refused.reason() == "caller id 0999999999 is not on the client's allowed caller ids"


async def test_two_stores_writing_legs_to_one_number_at_once_place_only_what_the_cap_allows(
    open_shared: OpenStore, clock: FakeClock
) -> None:
    one, two = await open_shared(), await open_shared()
    acme = await one.ensure_client("acme", clock.now())
    await one.set_frequency_caps(acme, [CapRule(1, 3600)], clock.now())
    for round_no in range(5):  # a race lost once could pass by chance: run it a few times
        first = await _claimed(one, clock, 1, owner="w1")
        second = await _claimed(two, clock, 1, owner="w2")
        a, b = await asyncio.gather(one.write_legs(first), two.write_legs(second))
        assert len(a) + len(b) == 1, f"round {round_no}: {a}, {b}"
        assert len(a.capped) + len(b.capped) == 1
        clock.advance(3600)
