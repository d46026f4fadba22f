"""Expiry in the store, on SQLite and PostgreSQL alike: a claim finishes a due task whose
``expires_at`` passed instead of running it; the sweep finishes waiting ones in bounded,
index-driven batches; a queue's time-to-live gives an expiry to the tasks added to it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from test_store import msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.rows import QueueChanges
from ringback.store.db import Store


async def test_a_claim_finishes_an_expired_due_task_instead_of_running_it(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    soon = clock.now() + timedelta(seconds=30)
    expiring = replace(msg_task(clock, delay_s=60), expires_at=soon)
    lasting = replace(msg_task(clock, delay_s=60), expires_at=soon + timedelta(hours=1))
    old, new = await store.add_tasks(client, queue_id, [expiring, lasting], clock.now())
    clock.advance(61)
    result = await store.claim("w1", clock.now(), 10, 30)
    assert [t.id for t in result.tasks] == [new] and result.delayed == 1
    task = await store.get_task(old, clock.now())
    assert (task.stored_status, task.finish_result, task.finish_comment) == (
        "finished", "failed", "expired",
    )  # fmt: skip
    assert (task.attempt, task.lease_owner, task.finished_at) == (0, None, clock.now())
    [*_, finished] = await store.events_for_task(old)
    assert (finished.type, finished.data) == (
        "task.finished", {"result": "failed", "comment": "expired", "attempts": 0},
    )  # fmt: skip


async def test_the_sweep_finishes_waiting_tasks_whose_expiry_passed_in_bounded_batches(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    at = clock.now() + timedelta(minutes=10)
    far = [replace(msg_task(clock, delay_s=86_400), expires_at=at) for _ in range(5)]
    keep = replace(msg_task(clock, delay_s=86_400), expires_at=at + timedelta(days=2))
    ids = await store.add_tasks(client, queue_id, [*far, keep, msg_task(clock)], clock.now())
    assert await store.expire_tasks(clock.now()) == 0
    clock.advance(601)
    assert await store.expire_tasks(clock.now(), limit=3) == 3
    assert await store.expire_tasks(clock.now(), limit=3) == 2
    assert await store.expire_tasks(clock.now()) == 0
    tasks = [await store.get_task(task_id, clock.now()) for task_id in ids]
    assert [t.finish_comment for t in tasks] == ["expired"] * 5 + [None, None]
    events = await store.events_for_task(ids[0])
    assert [e.type for e in events] == ["task.created", "task.finished"]


async def test_a_queues_time_to_live_gives_its_new_tasks_an_expiry(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    changed = await store.update_queue(queue_id, QueueChanges(task_ttl_seconds=3600), clock.now())
    assert changed.task_ttl_seconds == 3600
    own = replace(msg_task(clock), expires_at=clock.now() + timedelta(minutes=5))
    ttl_task, own_task = await store.add_tasks(
        client, queue_id, [msg_task(clock), own], clock.now()
    )
    assert (await store.get_task(ttl_task, clock.now())).expires_at == clock.now() + timedelta(
        hours=1
    )
    assert (await store.get_task(own_task, clock.now())).expires_at == own.expires_at
    cleared = QueueChanges(clear_task_ttl_seconds=True)
    assert (await store.update_queue(queue_id, cleared, clock.now())).task_ttl_seconds is None
    [plain] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    assert (await store.get_task(plain, clock.now())).expires_at is None
