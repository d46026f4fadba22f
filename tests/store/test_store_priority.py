"""Priority in the store, on SQLite and PostgreSQL alike: within a queue a claim takes higher
priorities first and each priority first come first served, reading every priority's due range
from the tasks_claim index (the plan says so); a waiting task's priority can change."""

from __future__ import annotations

from dataclasses import replace

from test_store import msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.store import claims as cl
from ringback.store.db import Store


async def test_a_claim_takes_higher_priorities_first_and_fifo_within_a_priority(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, limit=100)
    client = await store.ensure_client("acme", clock.now())
    order = [5, 9, 0, 9, 5, 7]  # priorities, in the order the tasks came due
    tasks = [replace(msg_task(clock, delay_s=-60 + i), priority=p) for i, p in enumerate(order)]
    ids = await store.add_tasks(client, queue_id, tasks, clock.now())
    batches = []
    for _ in range(3):  # two at a time: the two to dial first, then the next two
        batches.append({t.id for t in (await store.claim("w1", clock.now(), 2, 30)).tasks})
    assert batches == [{ids[1], ids[3]}, {ids[5], ids[0]}, {ids[4], ids[2]}]


async def test_a_waiting_tasks_priority_changes_and_a_running_ones_does_not(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, limit=100)
    client = await store.ensure_client("acme", clock.now())
    first, second = await store.add_tasks(
        client, queue_id, [msg_task(clock), msg_task(clock)], clock.now()
    )
    assert await store.set_task_priority(second, 8, clock.now(), client_id=client)
    assert (await store.get_task(second, clock.now())).priority == 8
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert claimed.id == second
    assert not await store.set_task_priority(second, 1, clock.now())
    [*_, updated] = await store.events_for_task(second)
    assert updated.type == "task.started"
    assert (await store.get_task(first, clock.now())).priority == 5


async def test_the_claim_reads_each_priority_from_the_claim_index_without_sorting_the_queue(
    store: Store, clock: FakeClock, backend: str
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    tasks = [replace(msg_task(clock), priority=i % 10) for i in range(200)]
    await store.add_tasks(client, queue_id, tasks, clock.now())
    pick = cl.PICK.format(q=queue_id, now=int(clock.now().timestamp() * 1000), room=50)
    async with store.engine.connect() as conn:
        if backend == "sqlite":
            plan = [row[-1] for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + pick)]
        else:
            await conn.exec_driver_sql("ANALYZE tasks")  # as autovacuum does
            await conn.exec_driver_sql("SET enable_seqscan = off")  # tiny table: as if large
            plan = [row[0] for row in await conn.exec_driver_sql("EXPLAIN " + pick)]
    text = "\n".join(plan)
    assert text.count("tasks_claim") == 10, text  # one index range per priority
    assert "SCAN tasks" not in text and "Seq Scan" not in text, text
