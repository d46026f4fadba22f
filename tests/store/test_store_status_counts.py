"""The tasks of each queue and status, kept by triggers (SQLite: one row per queue and status,
migration 8; PostgreSQL: appended changes, migration 20) and read by the status lists, the
console's queue counts and the metrics: they agree with the tasks after every kind of change,
before and after ``compact_status_counts`` folds them, also while adds and other compactions
run at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_store import finished, msg_task, setup_queue
from test_store_tasks import _retried

from ringback.clock import FakeClock
from ringback.domain.model import FinishResult
from ringback.store import Completion, Store

Counts = dict[tuple[int, str], int]


async def _kept(store: Store) -> Counts:
    async with store.driver.read() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT queue_id, status, sum(n) FROM queue_status_counts "
                "GROUP BY queue_id, status HAVING sum(n) <> 0"
            )
        )
        return {(int(q), str(s)): int(n) for q, s, n in rows.all()}


async def _counted(store: Store) -> Counts:
    async with store.driver.read() as conn:
        rows = await conn.execute(
            sa.text("SELECT queue_id, status, count(*) FROM tasks GROUP BY queue_id, status")
        )
        return {(int(q), str(s)): int(n) for q, s, n in rows.all()}


async def _rows_per_key(store: Store) -> int:
    async with store.driver.read() as conn:
        rows = await conn.execute(
            sa.text("SELECT count(*) FROM queue_status_counts GROUP BY queue_id, status")
        )
        return max((int(n) for (n,) in rows.all()), default=0)


async def test_status_counts_follow_adds_claims_retries_results_cancels_and_deletes(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    other = (await store.create_queue(client, "q2", clock.now(), status="off")).id
    await _retried(store, clock, client, queue_id)  # a claim, then delayed
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 3, clock.now())
    [alone] = await store.add_tasks(client, queue_id, [msg_task(clock, delay_s=600)], clock.now())
    await store.add_tasks(client, other, [msg_task(clock, delay_s=60)] * 4, clock.now())
    claimed = (await store.claim("w1", clock.now(), 2, 30)).tasks
    done = replace(finished(clock), finish_result=FinishResult.SUCCESS)
    assert await store.complete(
        [Completion(claimed[0].id, claimed[0].fence, done, done.events)], clock.now()
    ) == [True]
    assert await store.cancel_task(alone, clock.now())
    kept = await _kept(store)
    assert kept == await _counted(store)
    assert kept[(queue_id, "executed")] == 1 and kept[(queue_id, "finished")] == 2
    assert kept[(other, "scheduled")] == 4
    _, total = await store.page_tasks(clock.now(), client_id=client, status="scheduled")
    _, in_queue = await store.page_tasks(
        clock.now(), client_id=client, queue_id=other, status="scheduled"
    )
    assert (total, in_queue) == (kept[(queue_id, "scheduled")] + 4, 4)
    counts = await store.queue_counts(client, clock.now() - timedelta(hours=1))
    assert counts[other] == {"scheduled": 4}
    metrics = {(q, s): n for _, q, s, n in (await store.metrics_counts()).tasks}
    assert metrics[("q2", "scheduled")] == 4 and metrics[("q", "executed")] == 1

    assert await store.delete_queue(other, clock.now(), force=True) == 4
    assert await store.compact_status_counts()
    kept = await _kept(store)
    assert kept == await _counted(store) and (other, "scheduled") not in kept
    assert await _rows_per_key(store) == 1  # folded: one row per queue and status


async def test_status_counts_stay_exact_when_compactions_and_adds_run_at_once(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")

    async def add(n: int) -> None:
        await store.add_tasks(client, queue_id, [msg_task(clock)] * n, clock.now())

    for _ in range(3):
        await asyncio.gather(
            *(add(n) for n in (1, 2, 1, 5)), *(store.compact_status_counts() for _ in range(3))
        )
    assert await _kept(store) == await _counted(store) == {(queue_id, "scheduled"): 27}
    await store.compact_status_counts()
    assert await _rows_per_key(store) == 1


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_migration_20_counts_the_tasks_already_stored(store: Store, clock: FakeClock) -> None:
    """Upgrading a database that holds tasks: its counts start from them (on SQLite the counts
    have been kept since migration 8)."""
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    await _retried(store, clock, client, queue_id)
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 3, clock.now())
    async with store.driver.write() as conn:  # back to version 19
        for statement in (
            "DROP TABLE queue_status_counts",
            "DROP FUNCTION tasks_status_count() CASCADE",
            "DELETE FROM schema_migrations WHERE version = 20",
        ):
            await conn.execute(sa.text(statement))
    assert await store.migrate(clock.now()) == [20]
    assert await _kept(store) == await _counted(store) == {
        (queue_id, "scheduled"): 3, (queue_id, "delayed"): 1,
    }  # fmt: skip


async def test_one_statement_changing_thousands_of_tasks_counts_only_the_changed_ones(
    store: Store, clock: FakeClock
) -> None:
    """A set-based change (a force delete, a bulk cancel) after single-task changes on the same
    connections: the rows it touched without changing their status or queue add nothing, the
    others move, whatever plan an earlier 1-row change left cached."""
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    other = (await store.create_queue(client, "q2", clock.now(), status="off")).id
    added = await store.add_tasks(client, queue_id, [msg_task(clock)] * 3000, clock.now())
    for task_id in added[:5]:  # 1-row changes first
        assert await store.cancel_task(task_id, clock.now())
    async with store.driver.write() as conn:
        await conn.execute(
            sa.text(
                "UPDATE tasks SET queue_id = CASE WHEN id % 3 = 0 THEN :other ELSE queue_id END, "
                "status = CASE WHEN id % 2 = 0 THEN 'delayed' ELSE status END "
                "WHERE queue_id = :queue"
            ),
            {"other": other, "queue": queue_id},
        )
    kept = await _kept(store)
    assert kept == await _counted(store)
    assert sum(kept.values()) == 3000 and len(kept) >= 4
    assert await store.delete_queue(queue_id, clock.now(), force=True) > 0
    assert await store.delete_queue(other, clock.now(), force=True) > 0
    assert await store.compact_status_counts()
    assert await _kept(store) == await _counted(store) == {
        (queue_id, "finished"): 2000, (other, "finished"): 1000,
    }  # fmt: skip


async def test_a_queue_total_is_the_sum_of_its_status_counts_through_moves_and_deletes(
    store: Store, clock: FakeClock
) -> None:
    """Migration 21: no counter of its own (on PostgreSQL a row every add locked until its
    commit); the total each queue shows follows adds, changes of status and of queue, and a
    forced delete, before and after folding."""
    queue_id = await setup_queue(store, clock)
    client = await store.find_client("acme")
    other = (await store.create_queue(client, "q2", clock.now(), status="off")).id
    await _retried(store, clock, client, queue_id)
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 30, clock.now())
    async with store.driver.write() as conn:
        await conn.execute(
            sa.text("UPDATE tasks SET queue_id = :other WHERE id % 4 = 0"), {"other": other}
        )

    async def totals() -> dict[int, int]:
        return {q: (await store.get_queue(q)).task_count for q in (queue_id, other)}

    async def counted() -> dict[int, int]:
        found = {queue_id: 0, other: 0}
        for (q, _), n in (await _counted(store)).items():
            found[q] += n
        return found

    assert await totals() == await counted() and sum((await totals()).values()) == 31
    assert await store.compact_status_counts()
    assert await totals() == await counted()
    assert await store.delete_queue(other, clock.now(), force=True) > 0
    assert (await store.get_queue(queue_id)).task_count == (await counted())[queue_id]
    assert await _kept(store) == await _counted(store)
    async with store.driver.read() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    assert "queue_task_counts" not in tables
