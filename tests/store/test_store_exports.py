"""Exports' keyset reads on SQLite and PostgreSQL alike: tasks a chunk at a time by id with the
task list's filters, calls a chunk at a time by their first matching leg, each call once even
when its legs straddle a chunk's end, never another client's."""

from __future__ import annotations

from dataclasses import replace

from test_store import msg_task, setup_queue
from test_store_calls import history_calls

from ringback.clock import FakeClock
from ringback.store.db import Store


async def test_tasks_after_walks_every_matching_task_by_id_a_chunk_at_a_time(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    tasks = [replace(msg_task(clock), name="even" if i % 2 == 0 else "odd") for i in range(25)]
    ids = await store.add_tasks(client, queue_id, tasks, clock.now())
    await store.cancel_task(ids[3], clock.now(), client_id=client)
    seen: list[int] = []
    after = 0
    while chunk := await store.tasks_after(
        clock.now(), after, limit=4, client_id=client, queue_id=queue_id, name="even"
    ):
        assert len(chunk) <= 4
        seen += [row.id for row in chunk]
        after = chunk[-1].id
    assert seen == ids[0::2]
    finished = await store.tasks_after(
        clock.now(), 0, limit=100, client_id=client, queue_id=queue_id, status="finished"
    )
    assert [(row.id, row.finish_comment) for row in finished] == [(ids[3], "canceled")]


async def test_tasks_after_gives_nothing_of_a_queue_the_client_does_not_own(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    other = await store.ensure_client("other", clock.now())
    mine = await store.tasks_after(clock.now(), 0, limit=10, client_id=other, queue_id=queue_id)
    assert mine == []
    assert await store.tasks_after(clock.now(), 0, limit=10, client_id=other) == []


async def test_calls_after_gives_each_call_once_oldest_first_by_key_with_the_window(
    store: Store, clock: FakeClock
) -> None:
    acme, other, at = await history_calls(store, clock)  # c0 placed by its first leg (0 s)
    seen: list[str] = []
    key = None
    while True:
        calls, key = await store.calls_after(acme, key, limit=2)
        seen += [call[0].call_uuid for call in calls]
        if key is None or len(calls) < 2:
            break
    assert seen == ["c0", "c1", "c2", "c3", "c4", "c6", "c7"]
    [c0, *_] = (await store.calls_after(acme, None, limit=1))[0]
    assert [leg.leg_uuid for leg in c0] == ["c0-a", "c0-b"]
    calls, _ = await store.calls_after(acme, None, limit=10, start=at[2], end=at[6])
    assert [call[0].call_uuid for call in calls] == ["c2", "c3", "c4", "c0"]  # c0 by its 5 s leg
    calls, _ = await store.calls_after(acme, None, limit=10, outcome="busy")
    assert [call[0].call_uuid for call in calls] == ["c7"]
    assert await store.calls_after(other, (int(at[8].timestamp() * 1000), 10**9), limit=5) == (
        [],
        None,
    )
