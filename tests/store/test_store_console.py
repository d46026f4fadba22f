"""The store's contract for what the console reads and does beyond the API: counts per queue,
a search by part of the name or by number, and "run now", on SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from test_store import finished, msg_task, setup_queue
from test_store_tasks import _retried

from ringback.clock import FakeClock
from ringback.domain.model import EventType, FinishResult
from ringback.domain.rows import NotFound
from ringback.store import Completion, Store


async def test_queue_counts_count_waiting_tasks_and_todays_results_per_queue(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    other_queue = (await store.create_queue(client, "q2", clock.now(), status="off")).id
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 2, clock.now())
    await store.add_tasks(client, other_queue, [msg_task(clock, delay_s=600)] * 3, clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    done = replace(finished(clock), finish_result=FinishResult.SUCCESS)
    assert await store.complete(
        [Completion(claimed.id, claimed.fence, done, done.events)], clock.now()
    ) == [True]
    counts = await store.queue_counts(client, clock.now() - timedelta(hours=1))
    assert counts == {
        queue_id: {"scheduled": 1, "finished/success": 1},
        other_queue: {"scheduled": 3},
    }
    later = await store.queue_counts(client, clock.now() + timedelta(hours=1))
    assert later[queue_id] == {"scheduled": 1}  # finished before the day asked for
    stranger = await store.ensure_client("stranger", clock.now())
    assert await store.queue_counts(stranger, clock.now() - timedelta(days=1)) == {}


async def test_tasks_are_found_by_part_of_the_name_and_by_number(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    tasks = [
        replace(msg_task(clock, to="33612345678"), name="Spring Promo 50%"),
        replace(msg_task(clock, to="33699999999"), name="spring_reminder"),
        replace(msg_task(clock, to="33612345670"), name=None),
    ]
    ids = await store.add_tasks(client, queue_id, tasks, clock.now())
    found, total = await store.page_tasks(clock.now(), client_id=client, name_contains="SPRING")
    assert (sorted(task.id for task in found), total) == (ids[:2], 2)
    found, total = await store.page_tasks(clock.now(), client_id=client, name_contains="o 50%")
    assert ([task.id for task in found], total) == ([ids[0]], 1)  # % and _ match themselves
    found, total = await store.page_tasks(clock.now(), client_id=client, name_contains="g_r")
    assert ([task.id for task in found], total) == ([ids[1]], 1)
    found, total = await store.page_tasks(clock.now(), client_id=client, number="3361234567")
    assert (sorted(task.id for task in found), total) == ([ids[0], ids[2]], 2)
    other = await store.ensure_client("other", clock.now())
    assert await store.page_tasks(clock.now(), client_id=other, number="336") == ([], 0)


async def test_run_task_now_makes_a_waiting_task_due_with_an_event(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    task_id = await _retried(store, clock, client, queue_id)
    assert (await store.get_task(task_id, clock.now())).run_at > clock.now()
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.run_task_now(task_id, clock.now(), client_id=other)
    assert await store.run_task_now(task_id, clock.now(), client_id=client)
    task = await store.get_task(task_id, clock.now())
    assert task.run_at == clock.now() and task.status == "delayed"
    events = await store.events_for_task(task_id)
    assert events[-1].type == EventType.TASK_UPDATED.value and events[-1].data["run_now"]
    assert await store.cancel_task(task_id, clock.now())
    assert not await store.run_task_now(task_id, clock.now())  # finished: nothing to run


async def test_finished_per_minute_counts_results_and_lateness_of_the_period(
    store: Store, clock: FakeClock
) -> None:
    """The dashboard's query: tasks finished since a time, per minute and result, with how
    late their last attempt was claimed; another client's and older ones are left out."""
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    since = clock.now()
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 3, clock.now())

    async def finish_one(result: FinishResult) -> None:
        [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
        done = replace(finished(clock), finish_result=result)
        completion = Completion(claimed.id, claimed.fence, done, done.events)
        assert await store.complete([completion], clock.now()) == [True]

    clock.set(since + timedelta(seconds=5))
    await finish_one(FinishResult.SUCCESS)
    await finish_one(FinishResult.FAILED)
    clock.set(since + timedelta(seconds=125))
    await finish_one(FinishResult.SUCCESS)
    rows = await store.finished_per_minute(client, since)
    assert sorted(rows, key=lambda r: (r[0], r[1] or "")) == [
        (0, "failed", 1, 1, 5000, 5000),
        (0, "success", 1, 1, 5000, 5000),
        (2, "success", 1, 1, 125_000, 125_000),
    ]
    assert await store.finished_per_minute(client, since + timedelta(minutes=2)) == [
        (0, "success", 1, 1, 125_000, 125_000)
    ]
    stranger = await store.ensure_client("stranger", clock.now())
    assert await store.finished_per_minute(stranger, since) == []
