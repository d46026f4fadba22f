"""The store's contract for tasks as the API sees them (read by id, listed, changed, canceled),
with tenant isolation, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from test_store import finished, msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.model import Decision, EventType, NewEvent, TaskKind, TaskStatus
from ringback.domain.rows import Conflict, NotFound
from ringback.store import Completion, Store


async def _acme(store: Store, clock: FakeClock, *, limit: int = 10) -> tuple[int, int]:
    queue_id = await setup_queue(store, clock, limit=limit)
    return await store.find_client("acme"), queue_id


async def _retried(store: Store, clock: FakeClock, client: int, queue_id: int) -> int:
    """A task whose first attempt failed: ``delayed`` until a minute from now."""
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    retry = Decision(
        status=TaskStatus.DELAYED, run_at=clock.now() + timedelta(minutes=1), tries_used=1,
        caller_tries_used=0, attempt=1,
        events=[NewEvent(EventType.TASK_RETRY_SCHEDULED, clock.now(), {"attempt": 1})],
    )  # fmt: skip
    assert await store.complete(
        [Completion(task_id, claimed.fence, retry, retry.events)], clock.now()
    ) == [True]
    return task_id


# --- reading ------------------------------------------------------------------------------------


async def test_get_task_of_another_client_is_not_found(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.get_task(task_id, clock.now(), client_id=other)
    with pytest.raises(NotFound):
        await store.get_task(task_id + 1000, clock.now())
    task = await store.get_task(task_id, clock.now(), client_id=client)
    assert (task.id, task.client_id, task.queue_id, task.attempt) == (task_id, client, queue_id, 0)


async def test_tasks_by_ids_returns_the_known_ones_by_id(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    ids = await store.add_tasks(client, queue_id, [msg_task(clock)] * 3, clock.now())
    found = await store.tasks_by_ids([ids[2], ids[0], ids[2] + 1000], clock.now())
    assert [task.id for task in found] == [ids[0], ids[2]]
    assert found[0] == await store.get_task(ids[0], clock.now())
    assert await store.tasks_by_ids([], clock.now()) == []


async def test_list_tasks_narrows_by_client_queue_status_name_kind_and_time(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    other_queue = await store.create_queue(client, "other", clock.now())
    named = replace(msg_task(clock), name="vip")
    ivr = replace(msg_task(clock), kind=TaskKind.IVR_CALL)
    [a, b] = await store.add_tasks(client, queue_id, [named, ivr], clock.now())
    clock.advance(60)
    [c] = await store.add_tasks(client, other_queue.id, [msg_task(clock)], clock.now())
    assert await store.cancel_task(c, clock.now())

    async def ids(**filters: object) -> list[int]:
        return [t.id for t in await store.list_tasks(clock.now(), **filters)]  # type: ignore[arg-type]

    assert await ids(client_id=client) == [a, b, c]
    assert await ids(queue_id=queue_id) == [a, b]
    assert await ids(client_id=client, status="finished") == [c]
    assert await ids(client_id=client, name="vip") == [a]
    assert await ids(client_id=client, kinds=["ivr_call"]) == [b]
    assert await ids(client_id=client, created_from=clock.now()) == [c]
    assert await ids(client_id=client, created_to=clock.now()) == [a, b]
    assert await ids(client_id=client, finished_from=clock.now()) == [c]
    assert await ids(client_id=client, limit=1, offset=1) == [b]


async def test_tasks_listed_for_another_client_are_none(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    other = await store.ensure_client("other", clock.now())
    assert await store.list_tasks(clock.now(), client_id=other) == []
    assert await store.list_tasks(clock.now(), client_id=other, queue_id=queue_id) == []
    assert await store.page_tasks(clock.now(), client_id=other, status="scheduled") == ([], 0)


# --- changing -----------------------------------------------------------------------------------


async def test_update_task_replaces_the_fields_and_records_an_update_event(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    clock.advance(5)
    new = replace(
        msg_task(clock, delay_s=600, to="0907777000"), name="renamed", max_tries=7,
        timezone="Asia/Tokyo", caller_pause_s=2.0,
    )  # fmt: skip
    task = await store.update_task(task_id, client, new, clock.now())
    assert (task.name, task.max_tries, task.timezone, task.caller_pause_s) == (
        "renamed",
        7,
        "Asia/Tokyo",
        2.0,
    )
    assert task.payload["called_number"] == "0907777000"
    assert (task.status, task.run_at, task.updated_at) == ("scheduled", new.run_at, clock.now())
    assert await store.get_task(task_id, clock.now()) == task
    [*_, event] = await store.events_for_task(task_id)
    assert (event.seq, event.type) == (2, "task.updated")
    assert event.data == {"run_at": new.run_at.isoformat(), "attempts": 0}
    # moved ten minutes ahead: no longer due
    assert (await store.claim("w1", clock.now(), 10, 30)).tasks == []


async def test_update_of_a_retried_task_keeps_it_delayed(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    task_id = await _retried(store, clock, client, queue_id)
    assert (await store.get_task(task_id, clock.now())).status == "delayed"
    task = await store.update_task(task_id, client, msg_task(clock), clock.now())
    assert (task.status, task.attempt, task.run_at) == ("delayed", 1, clock.now())
    assert [t.id for t in (await store.claim("w1", clock.now(), 1, 30)).tasks] == [task_id]


async def test_update_task_of_another_client_is_not_found(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    other = await store.ensure_client("other", clock.now())
    changed = replace(msg_task(clock), name="stolen")
    with pytest.raises(NotFound):
        await store.update_task(task_id, other, changed, clock.now())
    with pytest.raises(NotFound):
        await store.update_task(task_id + 1000, client, changed, clock.now())
    assert (await store.get_task(task_id, clock.now())).name is None
    assert len(await store.events_for_task(task_id)) == 1


async def test_update_of_a_running_or_finished_task_is_a_conflict(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    changed = replace(msg_task(clock), name="late")
    with pytest.raises(Conflict):
        await store.update_task(task_id, client, changed, clock.now())
    done = finished(clock)
    assert await store.complete(
        [Completion(task_id, claimed.fence, done, done.events)], clock.now()
    ) == [True]
    with pytest.raises(Conflict):
        await store.update_task(task_id, client, changed, clock.now())
    task = await store.get_task(task_id, clock.now())
    assert (task.name, task.status) == (None, "finished")


async def test_update_task_to_another_kind_is_a_conflict(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    ivr = replace(msg_task(clock), kind=TaskKind.IVR_CALL)
    with pytest.raises(Conflict):
        await store.update_task(task_id, client, ivr, clock.now())
    assert (await store.get_task(task_id, clock.now())).kind is TaskKind.MSG_CALL


# --- canceling ----------------------------------------------------------------------------------


async def test_cancel_task_of_another_client_is_not_found(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.cancel_task(task_id, clock.now(), client_id=other)
    with pytest.raises(NotFound):
        await store.cancel_task(task_id + 1000, clock.now())
    assert (await store.get_task(task_id, clock.now())).status == "scheduled"
    assert await store.cancel_task(task_id, clock.now(), client_id=client) is True
    task = await store.get_task(task_id, clock.now())
    assert (task.status, task.finish_result, task.finished_at) == (
        "finished",
        "failed",
        clock.now(),
    )


async def test_a_canceled_task_is_never_claimed(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    [gone, kept] = await store.add_tasks(client, queue_id, [msg_task(clock)] * 2, clock.now())
    assert await store.cancel_task(gone, clock.now())
    assert [t.id for t in (await store.claim("w1", clock.now(), 10, 30)).tasks] == [kept]


async def test_cancel_matching_cancels_unfinished_matching_tasks_oldest_first_up_to_limit(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    other_queue = (await store.create_queue(client, "other", clock.now())).id
    promo = replace(msg_task(clock), name="promo")
    ids = await store.add_tasks(client, queue_id, [promo] * 5 + [msg_task(clock)], clock.now())
    [elsewhere] = await store.add_tasks(client, other_queue, [promo], clock.now())
    assert await store.cancel_task(ids[0], clock.now())  # already finished: left as it is
    [running] = (await store.claim("w1", clock.now(), 1, 30)).tasks  # ids[1]: running
    assert running.id == ids[1]
    match = {"client_id": client, "queue_id": queue_id, "name": "promo"}

    assert await store.cancel_matching(clock.now(), limit=2, **match) == ids[1:3]
    assert await store.cancel_matching(clock.now(), limit=10, **match) == ids[3:5]
    assert await store.cancel_matching(clock.now(), limit=10, **match) == []
    statuses = [(await store.get_task(i, clock.now())).status for i in ids]
    assert statuses == ["finished"] * 5 + ["scheduled"]
    assert (await store.get_task(elsewhere, clock.now())).status == "scheduled"
    events = await store.events_for_task(ids[2])
    assert events[-1].type == EventType.TASK_CANCELED.value
    # the running attempt lost its fence: its result is refused
    done = finished(clock)
    refused = [Completion(running.id, running.fence, done, done.events)]
    assert await store.complete(refused, clock.now()) == [False]
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.cancel_matching(clock.now(), limit=10, client_id=other, queue_id=other_queue)
    assert await store.cancel_matching(clock.now(), limit=10, client_id=other) == []
    assert (await store.get_task(elsewhere, clock.now())).status == "scheduled"


# --- adding -------------------------------------------------------------------------------------


async def test_add_no_tasks_stores_nothing(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    assert await store.add_tasks(client, queue_id, [], clock.now()) == []
    assert await store.list_tasks(clock.now(), client_id=client) == []


async def test_add_tasks_to_an_unknown_queue_is_not_found_and_adds_nothing(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    with pytest.raises(NotFound):
        await store.add_tasks(client, queue_id + 1000, [msg_task(clock)], clock.now())
    assert await store.list_tasks(clock.now(), client_id=client) == []


async def test_add_tasks_to_a_deleted_queue_is_not_found(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    await store.delete_queue(queue_id, clock.now())
    with pytest.raises(NotFound):
        await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    assert await store.list_tasks(clock.now(), client_id=client) == []
