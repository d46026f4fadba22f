"""The store's contract for reading stored calls (by task, by call, a client's history), on
SQLite and PostgreSQL alike. Calls are written through the store's own methods: an attempt's
completion, and ``save_calls`` for calls no task placed."""

from __future__ import annotations

from datetime import datetime, timedelta

from test_store import finished, msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.model import Leg, Outcome
from ringback.service.history import COUNT_CAP, CallCount, CallHistory
from ringback.store import Completion, Store
from ringback.telephony.base import CallRecord
from support import leg_record


def _inbound(call_uuid: str, leg_uuid: str, at: datetime, leg: Leg = Leg.MAIN) -> CallRecord:
    return CallRecord(
        leg_uuid=leg_uuid, call_uuid=call_uuid, leg=leg, direction="inbound",
        from_number="09011112222", to_number="0505550001", caller_id_name=None, started_at=at,
        ended_at=at + timedelta(seconds=4), outcome=Outcome.ANSWERED, sip_code=200,
    )  # fmt: skip


async def history_calls(store: Store, clock: FakeClock) -> tuple[int, int, list[datetime]]:
    """acme's calls c0…c7 and other's x, one a second from now (``at``): c0 has legs at 0 s
    and 5 s (a callback's A and B), c1–c4 and c6 one leg each, c7 one busy leg; x at 8 s.
    acme's id, other's id and ``at``."""
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    t0 = clock.now()
    at = [t0 + timedelta(seconds=s) for s in range(10)]
    await store.save_calls(acme, [_inbound("c0", "c0-a", at[0]), _inbound("c0", "c0-b", at[5])])
    for k in (1, 2, 3, 4, 6):
        await store.save_calls(acme, [_inbound(f"c{k}", f"c{k}-1", at[k])])
    busy = _inbound("c7", "c7-1", at[7])
    busy.outcome = Outcome.BUSY
    await store.save_calls(acme, [busy])
    await store.save_calls(other, [_inbound("x", "x-1", at[8])])
    return acme, other, at


async def _task_with_calls(
    store: Store, clock: FakeClock, records: list[CallRecord]
) -> tuple[int, int]:
    """A task of acme's queue whose one attempt stored ``records``; acme and the task id."""
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    done = finished(clock)
    completion = Completion(task_id, claimed.fence, done, done.events, records, attempt=1)
    assert await store.complete([completion], clock.now()) == [True]
    return client, task_id


async def test_calls_of_returns_every_leg_of_the_named_calls_in_stored_order(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    now = clock.now()
    await store.save_calls(
        acme,
        [
            _inbound("call-a", "a-1", now),
            _inbound("call-b", "b-1", now),
            _inbound("call-a", "a-2", now, Leg.TRANSFER),
        ],
    )
    legs = await store.calls_of(["call-a"])
    assert [(leg.call_uuid, leg.leg_uuid, leg.leg) for leg in legs] == [
        ("call-a", "a-1", "main"),
        ("call-a", "a-2", "transfer"),
    ]
    assert [leg.leg_uuid for leg in await store.calls_of(["call-b", "call-a"])] == [
        "a-1",
        "b-1",
        "a-2",
    ]
    assert await store.calls_of(["call-z"]) == []
    assert await store.calls_of([]) == []


async def test_calls_for_tasks_gives_each_task_its_legs_and_an_empty_list_without_any(
    store: Store, clock: FakeClock
) -> None:
    main = leg_record(clock, "leg-1", outcome=Outcome.BUSY, sip_code=486, ended_at=clock.now())
    client, task_id = await _task_with_calls(store, clock, [main])
    queue = await store.find_queue(client, "q")
    [quiet] = await store.add_tasks(client, queue.id, [msg_task(clock)], clock.now())
    await store.save_calls(client, [_inbound("call-in", "in-1", clock.now())])
    found = await store.calls_for_tasks([task_id, quiet, quiet + 1000])
    assert set(found) == {task_id, quiet, quiet + 1000}
    [leg] = found[task_id]
    assert (leg.leg_uuid, leg.task_id, leg.task_kind, leg.attempt) == (
        "leg-1",
        task_id,
        "msg_call",
        1,
    )
    assert (leg.outcome, leg.sip_code, leg.queue_id) == ("busy", 486, queue.id)
    assert found[quiet] == [] and found[quiet + 1000] == []
    assert await store.calls_for_tasks([]) == {}


async def test_calls_narrow_by_task_call_and_client_and_stop_at_the_limit(
    store: Store, clock: FakeClock
) -> None:
    client, task_id = await _task_with_calls(store, clock, [leg_record(clock, "leg-1")])
    other = await store.ensure_client("other", clock.now())
    await store.save_calls(client, [_inbound("in-1", "in-1a", clock.now())])
    await store.save_calls(other, [_inbound("in-2", "in-2a", clock.now())])
    assert [c.leg_uuid for c in await store.calls(task_id=task_id)] == ["leg-1"]
    assert [c.leg_uuid for c in await store.calls(call_uuid="in-2")] == ["in-2a"]
    assert [c.leg_uuid for c in await store.calls(client_id=client)] == ["leg-1", "in-1a"]
    assert [c.leg_uuid for c in await store.calls(client_id=other)] == ["in-2a"]
    assert [c.leg_uuid for c in await store.calls(client_id=other, call_uuid="in-1")] == []
    assert [c.leg_uuid for c in await store.calls(limit=2)] == ["leg-1", "in-1a"]
    [inbound] = await store.calls(call_uuid="in-1")
    assert (inbound.task_id, inbound.task_kind, inbound.queue_id) == (None, None, None)


async def test_call_history_groups_legs_by_call_oldest_first_with_the_total(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    t0 = clock.now()
    # stored out of order: the history is by the call's first start
    await store.save_calls(acme, [_inbound("late", "late-1", t0 + timedelta(seconds=20))])
    await store.save_calls(
        acme,
        [
            _inbound("early", "early-1", t0),
            _inbound("early", "early-2", t0 + timedelta(seconds=30), Leg.TRANSFER),
        ],
    )
    await store.save_calls(acme, [_inbound("mid", "mid-1", t0 + timedelta(seconds=10))])
    calls, total = await store.call_history(acme)
    assert total == 3
    assert [[leg.leg_uuid for leg in call] for call in calls] == [
        ["early-1", "early-2"],
        ["mid-1"],
        ["late-1"],
    ]
    page, total = await store.call_history(acme, limit=1, offset=1)
    assert total == 3 and [[leg.leg_uuid for leg in call] for call in page] == [["mid-1"]]
    assert await store.call_history(acme, offset=3) == ([], 3)


async def test_call_history_window_is_start_inclusive_end_exclusive(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    t0 = clock.now()
    for k in range(3):
        at = t0 + timedelta(seconds=10 * k)
        await store.save_calls(acme, [_inbound(f"c{k}", f"c{k}-1", at)])
    start, end = t0 + timedelta(seconds=10), t0 + timedelta(seconds=20)
    calls, total = await store.call_history(acme, start=start, end=end)
    assert total == 1 and [call[0].call_uuid for call in calls] == ["c1"]
    calls, total = await store.call_history(acme, start=start)
    assert total == 2 and [call[0].call_uuid for call in calls] == ["c1", "c2"]
    calls, total = await store.call_history(acme, end=start)
    assert total == 1 and [call[0].call_uuid for call in calls] == ["c0"]


async def test_call_history_of_a_client_shows_none_of_another_clients_calls(
    store: Store, clock: FakeClock
) -> None:
    client, task_id = await _task_with_calls(store, clock, [leg_record(clock, "leg-1")])
    other = await store.ensure_client("other", clock.now())
    assert await store.call_history(other) == ([], 0)
    await store.save_calls(other, [_inbound("theirs", "theirs-1", clock.now())])
    calls, total = await store.call_history(client)
    assert total == 1 and [[leg.task_id for leg in call] for call in calls] == [[task_id]]
    calls, total = await store.call_history(other)
    assert total == 1 and calls[0][0].client_id == other


async def test_save_no_calls_stores_nothing(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    await store.save_calls(acme, [])
    assert await store.calls(client_id=acme) == []


async def test_call_history_newest_first_and_by_outcome(store: Store, clock: FakeClock) -> None:
    """The console's history: newest first, and the calls one of whose legs ended so."""
    acme = await store.ensure_client("acme", clock.now())
    t0 = clock.now()
    for k in range(3):
        await store.save_calls(acme, [_inbound(f"c{k}", f"c{k}-1", t0 + timedelta(seconds=k))])
    busy = _inbound("c3", "c3-1", t0 + timedelta(seconds=3))
    busy.outcome, busy.sip_code = Outcome.BUSY, 486
    await store.save_calls(acme, [busy])
    calls, total = await store.call_history(acme, newest_first=True, limit=2)
    assert total == 4 and [call[0].call_uuid for call in calls] == ["c3", "c2"]
    calls, total = await store.call_history(acme, outcome="answered", newest_first=True)
    assert total == 3 and [call[0].call_uuid for call in calls] == ["c2", "c1", "c0"]
    calls, total = await store.call_history(acme, outcome="busy")
    assert total == 1 and [call[0].call_uuid for call in calls] == ["c3"]


async def test_recent_calls_page_by_key_newest_first_each_call_once(
    store: Store, clock: FakeClock
) -> None:
    """The console's history: pages by key, a call placed by its latest matching leg, never
    shown twice nor skipped when its legs straddle a page's end."""
    acme, other, at = await history_calls(store, clock)
    seen: list[str] = []
    key = None
    while True:
        page, key = await store.recent_calls(acme, before=key, limit=2)
        seen += [call[0].call_uuid for call in page]
        if key is None:
            break
    assert seen == ["c7", "c6", "c0", "c4", "c3", "c2", "c1"]
    [c0] = [
        call for call in (await store.recent_calls(acme, limit=10))[0] if call[0].call_uuid == "c0"
    ]
    assert [leg.leg_uuid for leg in c0] == ["c0-a", "c0-b"]
    page, key = await store.recent_calls(acme, outcome="busy")
    assert [call[0].call_uuid for call in page] == ["c7"] and key is None
    page, key = await store.recent_calls(acme, start=at[2], end=at[5])
    assert [call[0].call_uuid for call in page] == ["c4", "c3", "c2"] and key is None
    page, key = await store.recent_calls(acme, start=at[0], end=at[1])
    assert [call[0].call_uuid for call in page] == ["c0"]  # by its leg inside the window
    assert await store.recent_calls(other, limit=5) == (
        [[leg for leg in await store.calls(call_uuid="x")]],
        None,
    )


async def test_count_calls_counts_each_call_once_as_the_history_lists_them(
    store: Store, clock: FakeClock
) -> None:
    """The console's total: the calls ``recent_calls`` pages through for the same filters (a
    call with two legs counted once, by either leg inside the window), the client's own only."""
    acme, other, at = await history_calls(store, clock)
    for filters, expected in (
        ({}, 7),
        ({"outcome": "busy"}, 1),
        ({"outcome": "no_answer"}, 0),
        ({"start": at[2], "end": at[5]}, 3),
        ({"start": at[0], "end": at[1]}, 1),  # c0 by its leg inside the window
        ({"start": at[4], "end": at[6]}, 2),  # c4 and c0 by its B leg
    ):
        counted = await store.count_calls(acme, max_legs=100, **filters)
        listed, _ = await store.recent_calls(acme, limit=50, **filters)
        assert counted == (expected, True) and len(listed) == expected, filters
    assert await store.count_calls(other, max_legs=100) == (1, True)
    assert await store.count_calls(other + acme + 1000, max_legs=100) == (0, True)


async def test_count_calls_reads_at_most_max_legs_and_then_says_it_is_a_lower_bound(
    store: Store, clock: FakeClock
) -> None:
    """Past ``max_legs`` matching legs the count is of the newest legs' calls, not exact; at
    exactly ``max_legs`` legs it is still exact."""
    acme = await store.ensure_client("acme", clock.now())
    t0 = clock.now()
    for k in range(6):  # c0..c5, one leg each; c5 the newest
        await store.save_calls(acme, [_inbound(f"c{k}", f"c{k}-1", t0 + timedelta(seconds=k))])
    assert await store.count_calls(acme, max_legs=6) == (6, True)
    assert await store.count_calls(acme, max_legs=5) == (6, False)  # 6 legs read: at least 6
    found, exact = await store.count_calls(acme, max_legs=3)
    assert (found, exact) == (4, False) and found <= 6
    # a call of several legs: 4 legs of 2 calls read for max_legs=3, a lower bound still
    await store.save_calls(
        acme, [_inbound("c9", f"c9-{n}", t0 + timedelta(seconds=10 + n)) for n in range(3)]
    )
    assert await store.count_calls(acme, max_legs=3) == (2, False)
    assert await store.count_calls(acme, max_legs=9) == (7, True)
    history = CallHistory(store)
    assert await history.count(acme, start=None, end=None, outcome=None) == CallCount(7, True)


def test_a_capped_count_is_shown_as_at_least_the_cap() -> None:
    assert CallCount(1234, True).shown == "1,234"
    assert CallCount(25_000, True).shown == "25,000"  # exact: shown as it is
    assert CallCount(COUNT_CAP + 1, False).shown == "10,000+"
    assert CallCount(6_500, False).shown == "6,500+"  # at least that many
