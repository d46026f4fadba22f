"""The audit log in the store, on SQLite and PostgreSQL alike: entries named for a change are
written by the write transaction that commits it (none when it rolls back or changed nothing),
secrets never stored, read back newest first by client, object, action and time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_store import msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.audit import Actor, AuditEntry
from ringback.store.db import Store
from ringback.store.records import NotFound


async def test_entries_commit_with_the_change_and_not_without_it(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    actor = Actor(client, "api", 7, "jane")
    cancel = AuditEntry("cancelled", "task", str(task_id), {"token": "t0ps3cret"})
    with store.audited(actor, [cancel], clock.now()):
        assert await store.cancel_task(task_id, clock.now(), client_id=client)
    with store.audited(actor, [cancel], clock.now()):  # already finished: nothing changed
        assert not await store.cancel_task(task_id, clock.now(), client_id=client)
    missing = [AuditEntry("cancelled", "task", "999999")]
    with store.audited(actor, missing, clock.now()), pytest.raises(NotFound):  # rolled back
        await store.cancel_task(999_999, clock.now(), client_id=client)
    [row] = await store.list_audit(client)
    assert (row.channel, row.credential_id, row.operator, row.action, row.object_id) == (
        "api", 7, "jane", "cancelled", str(task_id),
    )  # fmt: skip
    assert row.summary == {"token": "[redacted]"}


async def test_entries_read_back_newest_first_by_object_action_time_and_client(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    t0 = clock.now()
    for i in range(5):
        entry = AuditEntry("created" if i % 2 == 0 else "changed", "queue", str(i % 2), {"i": i})
        await store.add_audit(Actor(acme), [entry], t0 + timedelta(seconds=i))
    await store.add_audit(Actor(other), [AuditEntry("deleted", "number", "0501")], t0)
    rows = await store.list_audit(acme)
    assert [r.summary["i"] for r in rows] == [4, 3, 2, 1, 0]
    assert rows[0].channel == "system" and rows[0].credential_id is None
    assert [r.summary["i"] for r in await store.list_audit(acme, action="changed")] == [3, 1]
    by_object = await store.list_audit(acme, object_type="queue", object_id="0")
    assert [r.summary["i"] for r in by_object] == [4, 2, 0]
    window = await store.list_audit(acme, since=t0 + timedelta(seconds=1),
                                    until=t0 + timedelta(seconds=3))  # fmt: skip
    assert [r.summary["i"] for r in window] == [2, 1]
    older = await store.list_audit(acme, before_id=rows[1].id, limit=2)
    assert [r.summary["i"] for r in older] == [2, 1]
    assert [r.object_type for r in await store.list_audit(other)] == ["number"]
