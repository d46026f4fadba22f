"""Intake in one round trip: on PostgreSQL an add of tasks (one task, or many) is one statement
sent once (ids, tasks, events, wake-up and the batch's audit entry; no BEGIN, no COMMIT), once
the connection has prepared it; the audit entry is the same on both stores; a missing, foreign
or deleted queue still adds nothing (no task, no event, no sequence number, no wake-up, no
audit entry) and is NotFound, on both stores. Counted at the driver: every
exchange asyncpg has with the server (see ``support_round_trips``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from test_store import msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.audit import Actor, tasks_added
from ringback.domain.rows import NotFound
from ringback.store import Store
from support_round_trips import counting


async def _tasks_and_events(store: Store) -> tuple[int, int]:
    async with store.driver.read() as conn:
        tasks = (await conn.execute(sa.text("SELECT count(*) FROM tasks"))).scalar_one()
        events = (await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one()
    return int(tasks), int(events)


#: round trips to a server: PostgreSQL's only (the store fixture on this backend alone)
@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("size", [1, 3])
async def test_an_add_on_postgresql_is_one_statement_sent_once(
    store: Store, clock: FakeClock, size: int
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    sent = await counting(store)
    await store.add_tasks(client, queue_id, [msg_task(clock)] * size, clock.now())  # prepares
    actor = Actor(client, "api", None, "ops")
    await store.add_tasks(client, queue_id, [msg_task(clock)] * size, clock.now(), actor=actor)
    sent.clear()  # both statements (with and without the audit entry) are prepared
    woken: list[str] = []
    store.on_wake(lambda: woken.append("woke"))
    ids = await store.add_tasks(
        client, queue_id, [msg_task(clock)] * size, clock.now(), actor=actor
    )
    assert len(sent) == 1 and sent[0].startswith("bind_execute: WITH ids AS"), sent
    assert "pg_notify" in sent[0]  # the other processes' wake-up, in the same statement
    assert len(ids) == size and ids == sorted(ids)
    assert woken == ["woke"]
    assert await _tasks_and_events(store) == (3 * size, 3 * size)


async def test_an_add_by_an_actor_writes_the_batchs_audit_entry_with_it(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())  # no actor: none
    assert await store.list_audit(client) == []
    actor = Actor(client, "api", None, "ops")
    ids = await store.add_tasks(client, queue_id, [msg_task(clock)] * 3, clock.now(), actor=actor)
    [row] = await store.list_audit(client)
    expected = tasks_added(queue_id, ids)
    assert (row.action, row.object_type, row.object_id, row.summary) == (
        expected.action,
        expected.object_type,
        expected.object_id,
        expected.summary,
    )
    assert (row.channel, row.credential_id, row.operator) == ("api", None, "ops")
    assert abs((row.occurred_at - clock.now()).total_seconds()) < 0.001  # stored in ms
    with pytest.raises(NotFound):  # nothing added: no entry either
        await store.add_tasks(client, queue_id + 99, [msg_task(clock)], clock.now(), actor=actor)
    assert len(await store.list_audit(client)) == 1


async def test_an_add_keeps_the_input_order_in_its_ids(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    numbers = [f"09000000{i:02d}" for i in range(12)]
    ids = await store.add_tasks(
        client, queue_id, [msg_task(clock, to=n) for n in numbers], clock.now()
    )
    assert ids == sorted(ids) and len(set(ids)) == len(numbers)
    tasks = await store.tasks_by_ids(ids, clock.now())
    assert {task.id: task.payload["called_number"] for task in tasks} == dict(
        zip(ids, numbers, strict=True)
    )


async def _assert_adds_nothing(
    store: Store, clock: FakeClock, client: int, queue_id: int, woken: Callable[[], list[str]]
) -> None:
    before = await _tasks_and_events(store)
    with pytest.raises(NotFound):
        await store.add_tasks(client, queue_id, [msg_task(clock)] * 2, clock.now())
    assert await _tasks_and_events(store) == before
    assert woken() == []


async def test_an_add_to_a_missing_foreign_or_deleted_queue_adds_nothing(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    other = await store.ensure_client("other", clock.now())
    [first] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    woken: list[str] = []
    store.on_wake(lambda: woken.append("woke"))
    await _assert_adds_nothing(store, clock, client, queue_id + 1000, lambda: woken)
    await _assert_adds_nothing(store, clock, other, queue_id, lambda: woken)
    gone = await store.create_queue(client, "gone", clock.now())
    await store.delete_queue(gone.id, clock.now())
    await _assert_adds_nothing(store, clock, client, gone.id, lambda: woken)
    # no number of the tasks' sequence was taken by the adds refused
    [after] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    assert after == first + 1


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_lost_idle_connection_is_not_used_the_next_add_connects_afresh(
    store: Store, clock: FakeClock
) -> None:
    """A single add runs on one of the driver's direct connections (``store/pg_direct.py``);
    one the server closed meanwhile (a restart, an idle timeout) costs no add."""
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    direct = store.driver.direct  # type: ignore[attr-defined]
    opened: list[Any] = []
    direct.on_connect.append(opened.append)
    await direct.close()
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [conn] = opened
    gone = asyncio.Event()
    conn.add_termination_listener(lambda _conn: gone.set())
    async with store.driver.read(one_statement=True) as reader:
        pid = conn.get_server_pid()
        await reader.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    async with asyncio.timeout(10):
        await gone.wait()  # asyncpg has read the server's goodbye
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    assert len(opened) == 2 and not opened[1].is_closed()
    assert await _tasks_and_events(store) == (2, 2)
