"""The store's contract for clients and queues (create, find, list, change, delete, report),
on SQLite and PostgreSQL alike; every read is one of the store's public methods."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from test_store import finished, msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.frequency_caps import CallerIdEntry
from ringback.domain.rows import Conflict, NotFound, QueueChanges
from ringback.store import Completion, Store

HOURS = {
    "timezone": "Asia/Tokyo",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}],
}


# --- clients ----------------------------------------------------------------------------------


async def test_ensure_client_gives_one_id_per_name(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    assert acme != other
    assert await store.ensure_client("acme", clock.now()) == acme
    assert await store.find_client("acme") == acme
    assert await store.find_client("other") == other


async def test_find_client_of_an_unknown_name_is_not_found(store: Store, clock: FakeClock) -> None:
    await store.ensure_client("acme", clock.now())
    with pytest.raises(NotFound):
        await store.find_client("nobody")


# --- creating and finding queues ---------------------------------------------------------------


async def test_create_queue_stores_every_field_it_is_given(store: Store, clock: FakeClock) -> None:
    client = await store.ensure_client("acme", clock.now())
    queue = await store.create_queue(
        client, "tokyo", clock.now(), comment="day shift", status="on", concurrent_task_limit=4,
        max_calls_per_second=2.5, calling_hours=HOURS, redial_interrupted=True,
    )  # fmt: skip
    assert (queue.client_id, queue.name, queue.comment, queue.status) == (
        client,
        "tokyo",
        "day shift",
        "on",
    )
    assert (queue.concurrent_task_limit, queue.max_calls_per_second) == (4, 2.5)
    assert queue.calling_hours == HOURS and queue.redial_interrupted is True
    assert queue.created_at == queue.updated_at == clock.now() and queue.last_call_at is None
    assert (queue.task_count, queue.sched_task_count, queue.running_count) == (0, 0, 0)
    assert await store.get_queue(queue.id) == queue


async def test_find_queue_finds_by_name_only_within_the_client(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    mine = await store.create_queue(acme, "q", clock.now())
    assert await store.find_queue(acme, "q") == mine
    with pytest.raises(NotFound):
        await store.find_queue(other, "q")
    with pytest.raises(NotFound):
        await store.find_queue(acme, "nope")


async def test_the_intake_view_reads_the_clients_caller_ids_and_named_live_queues_at_once(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    q = await store.create_queue(acme, "q", clock.now(), calling_hours=HOURS)
    r = await store.create_queue(acme, "r", clock.now())
    gone = await store.create_queue(acme, "gone", clock.now())
    await store.create_queue(other, "s", clock.now())
    await store.add_tasks(acme, q.id, [msg_task(clock)], clock.now())
    await store.delete_queue(gone.id, clock.now(), force=True)
    allowed = [CallerIdEntry("0506868", True), CallerIdEntry("0501", False)]
    await store.set_caller_ids(acme, allowed, clock.now())
    await store.set_caller_ids(other, [CallerIdEntry("0777", False)], clock.now())
    view = await store.intake_view(acme, ["q", "r", "gone", "s", "nope"])
    assert view.caller_ids == await store.caller_ids(acme)
    assert {(e.number, e.prefix) for e in view.caller_ids} == {("0506868", True), ("0501", False)}
    assert view.queues == {  # live queues of this client only, the rows alone
        "q": await store.find_queue(acme, "q", counted=False),
        "r": await store.find_queue(acme, "r", counted=False),
    }
    assert view.queues["r"].id == r.id and view.queues["q"].calling_hours == HOURS
    empty = await store.intake_view(other, [])
    assert empty.queues == {} and empty.caller_ids == [CallerIdEntry("0777", False)]
    assert (await store.intake_view(acme, ["s"])).queues == {}


async def test_find_queue_uncounted_reads_the_same_row_with_its_counters_at_zero(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    queue = await store.create_queue(acme, "q", clock.now(), calling_hours=HOURS)
    await store.add_tasks(acme, queue.id, [msg_task(clock), msg_task(clock)], clock.now())
    counted = await store.find_queue(acme, "q")
    assert counted.task_count == 2
    uncounted = await store.find_queue(acme, "q", counted=False)
    zeros = {"task_count": 0, "sched_task_count": 0, "running_count": 0}
    assert uncounted == replace(counted, **zeros)
    assert await store.ensure_queue(acme, "q", clock.now(), counted=False) == uncounted
    with pytest.raises(NotFound):
        await store.find_queue(other, "q", counted=False)
    await store.delete_queue(queue.id, clock.now(), force=True)
    with pytest.raises(NotFound):
        await store.find_queue(acme, "q", counted=False)


async def test_ensure_queue_creates_once_and_then_returns_the_queue_unchanged(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    made = await store.ensure_queue(acme, "default", clock.now(), status="on", comment="first")
    assert (made.status, made.comment) == ("on", "first")
    clock.advance(5)
    again = await store.ensure_queue(acme, "default", clock.now(), status="off", comment="x")
    assert again == made  # the fields only apply when it is created
    assert [q.id for q in await store.list_queues(acme)] == [made.id]
    other = await store.ensure_client("other", clock.now())
    theirs = await store.ensure_queue(other, "default", clock.now())
    assert theirs.id != made.id and theirs.client_id == other


async def test_get_queue_of_another_client_is_not_found(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.get_queue(queue_id, client_id=other)
    with pytest.raises(NotFound):
        await store.get_queue(queue_id + 1000)
    acme = await store.find_client("acme")
    assert (await store.get_queue(queue_id, client_id=acme)).id == queue_id


async def test_queue_counters_follow_its_tasks_and_pending_false_skips_the_waiting_count(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, limit=2)
    client = await store.find_client("acme")
    ids = await store.add_tasks(client, queue_id, [msg_task(clock)] * 5, clock.now())
    [claimed, _] = (await store.claim("w1", clock.now(), 10, 30)).tasks
    done = finished(clock)
    assert await store.complete(
        [Completion(claimed.id, claimed.fence, done, done.events)], clock.now()
    ) == [True]
    assert await store.cancel_task(ids[-1], clock.now())
    queue = await store.get_queue(queue_id)
    assert (queue.task_count, queue.sched_task_count, queue.running_count) == (5, 2, 1)
    assert queue.last_call_at == clock.now()
    quick = await store.get_queue(queue_id, pending=False)
    assert (quick.task_count, quick.sched_task_count, quick.running_count) == (5, 0, 1)


async def test_list_queues_is_by_id_and_narrowed_to_a_client(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    a1 = await store.create_queue(acme, "b", clock.now())
    o1 = await store.create_queue(other, "a", clock.now())
    a2 = await store.create_queue(acme, "a", clock.now())
    assert [q.id for q in await store.list_queues(acme)] == [a1.id, a2.id]
    assert [q.id for q in await store.list_queues(other)] == [o1.id]
    assert [q.id for q in await store.list_queues()] == [a1.id, o1.id, a2.id]


# --- changing queues ----------------------------------------------------------------------------


async def test_update_queue_changes_only_the_fields_given(store: Store, clock: FakeClock) -> None:
    client = await store.ensure_client("acme", clock.now())
    queue = await store.create_queue(
        client, "q", clock.now(), comment="c", max_calls_per_second=3, calling_hours=HOURS
    )
    clock.advance(7)
    changed = await store.update_queue(
        queue.id,
        QueueChanges(name="renamed", concurrent_task_limit=2, redial_interrupted=True),
        clock.now(),
    )
    assert (changed.name, changed.concurrent_task_limit, changed.redial_interrupted) == (
        "renamed",
        2,
        True,
    )
    assert (changed.comment, changed.status, changed.max_calls_per_second) == ("c", "off", 3)
    assert changed.calling_hours == HOURS
    assert changed.updated_at == clock.now() and changed.created_at == queue.created_at
    assert await store.find_queue(client, "renamed") == changed
    with pytest.raises(NotFound):
        await store.find_queue(client, "q")


async def test_update_queue_clears_the_rate_and_calling_hours_only_when_asked(
    store: Store, clock: FakeClock
) -> None:
    client = await store.ensure_client("acme", clock.now())
    queue = await store.create_queue(
        client, "q", clock.now(), max_calls_per_second=3, calling_hours=HOURS
    )
    kept = await store.update_queue(queue.id, QueueChanges(comment="x"), clock.now())
    assert (kept.max_calls_per_second, kept.calling_hours) == (3, HOURS)
    cleared = await store.update_queue(
        queue.id,
        QueueChanges(clear_max_calls_per_second=True, clear_calling_hours=True),
        clock.now(),
    )
    assert (cleared.max_calls_per_second, cleared.calling_hours) == (None, None)
    assert (await store.get_queue(queue.id)).max_calls_per_second is None


async def test_renaming_a_queue_to_a_name_the_client_uses_is_a_conflict(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    first = await store.create_queue(acme, "first", clock.now())
    second = await store.create_queue(acme, "second", clock.now())
    await store.create_queue(other, "third", clock.now())
    with pytest.raises(Conflict):
        await store.update_queue(second.id, QueueChanges(name="first"), clock.now())
    assert (await store.get_queue(second.id)).name == "second"
    # its own name, and a name only another client uses, are free
    assert (await store.update_queue(first.id, QueueChanges(name="first"), clock.now())).name == (
        "first"
    )
    renamed = await store.update_queue(second.id, QueueChanges(name="third"), clock.now())
    assert renamed.name == "third"


async def test_update_queue_of_another_client_is_not_found_and_changes_nothing(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, on=False)
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.update_queue(queue_id, QueueChanges(status="on"), clock.now(), client_id=other)
    with pytest.raises(NotFound):
        await store.update_queue(queue_id + 1000, QueueChanges(status="on"), clock.now())
    assert (await store.get_queue(queue_id)).status == "off"


# --- deleting queues ----------------------------------------------------------------------------


async def test_deleting_a_queue_with_unfinished_tasks_is_a_conflict_unless_forced(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    ids = await store.add_tasks(client, queue_id, [msg_task(clock)] * 3, clock.now())
    assert await store.cancel_task(ids[0], clock.now())
    with pytest.raises(Conflict):
        await store.delete_queue(queue_id, clock.now())
    assert (await store.get_task(ids[1], clock.now())).status == "scheduled"
    assert await store.delete_queue(queue_id, clock.now(), force=True) == 2
    for task_id in ids[1:]:
        task = await store.get_task(task_id, clock.now())
        assert (task.status, task.finish_comment) == ("finished", "canceled: queue deleted")
        assert (await store.events_for_task(task_id))[-1].type == "task.canceled"


async def test_a_forced_delete_cancels_every_unfinished_task_of_the_queue_alone_gap_free(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, limit=1)
    client = await store.find_client("acme")
    ids = await store.add_tasks(client, queue_id, [msg_task(clock)] * 4, clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks  # running: its fence moves
    assert await store.cancel_task(ids[3], clock.now())  # finished before: left as it was
    other = await store.create_queue(client, "other", clock.now(), status="on")
    [kept] = await store.add_tasks(client, other.id, [msg_task(clock)], clock.now())
    before = {i: len(await store.events_for_task(i)) for i in ids}
    assert await store.delete_queue(queue_id, clock.now(), force=True) == 3
    for task_id in ids[:3]:
        task = await store.get_task(task_id, clock.now())
        assert (task.status, task.finish_result) == ("finished", "failed")
        assert task.finish_comment == "canceled: queue deleted"
        events = await store.events_for_task(task_id)
        assert [e.seq for e in events] == list(range(1, before[task_id] + 2))  # one more
        assert events[-1].type == "task.canceled"
    assert len(await store.events_for_task(ids[3])) == before[ids[3]]
    assert (await store.get_task(ids[3], clock.now())).finish_comment == "canceled"
    assert (await store.get_task(kept, clock.now())).status == "scheduled"
    assert claimed.id == ids[0]
    canceled = await store.get_task(claimed.id, clock.now())
    assert canceled.lease_owner is None and canceled.fence > claimed.fence
    done = finished(clock)  # the running attempt's result is refused
    assert await store.complete(
        [Completion(claimed.id, claimed.fence, done, done.events)], clock.now()
    ) == [False]


async def test_a_deleted_queue_shows_nowhere_and_frees_its_name(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    await store.cancel_task(task_id, clock.now())
    assert await store.delete_queue(queue_id, clock.now()) == 0
    with pytest.raises(NotFound):
        await store.get_queue(queue_id)
    with pytest.raises(NotFound):
        await store.find_queue(client, "q")
    assert await store.list_queues(client) == []
    assert (await store.get_task(task_id, clock.now())).status == "finished"  # its history stays
    again = await store.create_queue(client, "q", clock.now())
    assert again.id != queue_id
    with pytest.raises(NotFound):
        await store.delete_queue(queue_id, clock.now())


async def test_delete_queue_of_another_client_is_not_found(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.delete_queue(queue_id, clock.now(), client_id=other)
    acme = await store.find_client("acme")
    assert (await store.find_queue(acme, "q")).id == queue_id


# --- the status report --------------------------------------------------------------------------


async def test_status_report_counts_tasks_by_status_and_finish_result_per_client(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, limit=1)
    acme = await store.find_client("acme")
    ids = await store.add_tasks(acme, queue_id, [msg_task(clock)] * 3, clock.now())
    [later] = await store.add_tasks(acme, queue_id, [msg_task(clock, delay_s=60)], clock.now())
    other = await store.ensure_client("other", clock.now())
    theirs = await store.create_queue(other, "theirs", clock.now(), status="on")
    await store.add_tasks(other, theirs.id, [msg_task(clock, delay_s=-30)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert claimed.id == ids[0]
    assert await store.cancel_task(ids[1], clock.now())

    report = await store.status_report(clock.now(), acme)
    assert report.counts == {"scheduled": 2, "executed": 1, "finished": 1, "finished/failed": 1}
    assert report.in_flight == 1
    assert report.next_due == clock.now()  # ids[2], waiting behind the limit
    assert [q.id for q in report.queues] == [queue_id]

    everyone = await store.status_report(clock.now())
    assert everyone.counts["scheduled"] == 3
    assert everyone.next_due == clock.now() - timedelta(seconds=30)  # the other client's
    assert {q.id for q in everyone.queues} == {queue_id, theirs.id}
    assert later in {t.id for t in await store.list_tasks(clock.now(), queue_id=queue_id)}


async def test_status_report_next_due_ignores_switched_off_queues(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, on=False)
    acme = await store.find_client("acme")
    await store.add_tasks(acme, queue_id, [msg_task(clock)], clock.now())
    report = await store.status_report(clock.now(), acme)
    assert report.next_due is None and report.counts == {"scheduled": 1}
    await store.update_queue(queue_id, QueueChanges(status="on"), clock.now())
    assert (await store.status_report(clock.now(), acme)).next_due == clock.now()


async def test_update_of_a_deleted_queue_is_not_found_and_changes_nothing(
    store: Store, clock: FakeClock
) -> None:
    """A deleted queue is gone for every method: an update of it must not rename it (taking a
    name that ``find_queue`` says is free) nor switch it on."""
    queue_id = await setup_queue(store, clock, on=False)
    client = await store.find_client("acme")
    await store.delete_queue(queue_id, clock.now())
    with pytest.raises(NotFound):
        await store.update_queue(queue_id, QueueChanges(name="fresh", status="on"), clock.now())
    with pytest.raises(NotFound):
        await store.find_queue(client, "fresh")
    assert (await store.create_queue(client, "fresh", clock.now())).name == "fresh"
    assert (await store.ensure_queue(client, "fresh", clock.now())).name == "fresh"


async def test_force_deleting_a_queue_fences_out_its_running_attempts(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert await store.delete_queue(queue_id, clock.now(), force=True, client_id=client) == 1
    done = finished(clock)
    assert await store.complete(
        [Completion(claimed.id, claimed.fence, done, done.events)], clock.now()
    ) == [False]
    assert await store.heartbeat("w1", clock.now(), 30, [claimed.id]) == 0
    task = await store.get_task(claimed.id, clock.now())
    assert (task.status, task.finish_comment, task.lease_owner) == (
        "finished",
        "canceled: queue deleted",
        None,
    )
