"""PostgreSQL plans that must not depend on how many tasks the last ANALYZE saw running: the
statements a worker runs for each batch of results, of progress events and of call legs read
each task by its key. When the
statistics count no running task (after a bulk load, or on a new database), a plain
``status = 'executed'`` test let the planner read the whole partial index of running tasks
(every call in flight) for each batch and hash-join it (docs/performance.md, "Issue 19, eighth
step")."""

from __future__ import annotations

import json

import pytest
from test_store import msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.store.db import Store
from ringback.store.postgres import PostgresClaims, PostgresDriver


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_batch_of_results_reads_its_tasks_by_key_whatever_analyze_counted(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 2000, clock.now())
    claims = store.driver.claims
    assert isinstance(claims, PostgresClaims)
    results = [
        {"id": i, "fence": 1, "expired_before": None, "status": "finished", "run_at": None,
         "tries_used": 1, "caller_tries_used": 0, "attempt": 1, "finish_result": "success",
         "finish_comment": "", "cdr": None, "n_events": 1, "finished_at": 1}
        for i in range(1, 101)
    ]  # fmt: skip
    heads = [{"id": i, "fence": 1, "n": 1} for i in range(1, 101)]
    assert isinstance(store.driver, PostgresDriver)
    opens = [{"task_id": i, "fence": 1, "keys": [], "state": "dialing"} for i in range(1, 101)]
    async with store.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE tasks")  # as autovacuum does: no task running
        await conn.exec_driver_sql("SET enable_seqscan = off")  # a small table: as if large
        plans = {}
        for name, sql, params in (
            ("complete", claims._complete, (json.dumps(results), "[]", "[]", 1, "x")),
            ("progress", claims._progress, (json.dumps(heads), "[]")),
            ("legs", store.driver.legs._write, (json.dumps(opens), False)),
        ):
            rows = await conn.exec_driver_sql("EXPLAIN " + sql, params)
            plans[name] = "\n".join(row[0] for row in rows)
    for name, plan in plans.items():
        assert "tasks_running" not in plan, (name, plan)
        assert "Index Scan using tasks_pkey on tasks t " in plan, (name, plan)
