"""The store's contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ringback.clock import FakeClock
from ringback.domain.model import (
    AttemptResult,
    Decision,
    EventType,
    NewEvent,
    Outcome,
    TaskKind,
    TaskStatus,
)
from ringback.domain.rows import QueueChanges
from ringback.domain.task_rules import NewTask
from ringback.store import schema
from ringback.store.db import Store
from ringback.store.legs_sql import AttemptLegs
from ringback.store.migrations import LATEST_VERSION
from ringback.store.records import ClaimedTask, Completion, Conflict, NotFound, Progress
from support import leg_record


def msg_task(clock: FakeClock, *, delay_s: float = 0, to: str = "0901234000") -> NewTask:
    return NewTask(
        kind=TaskKind.MSG_CALL,
        name=None,
        payload={"calling_number": "0506868000", "called_number": to, "audio_file": "hi.wav"},
        run_at=clock.now() + timedelta(seconds=delay_s),
        max_tries=3,
        backoff={"type": "fixed", "delay": 10_000, "jitter": 0.0},
        max_caller_tries=0,
        caller_pause_s=0,
        timezone=None,
        start_time_utc=None,
    )


async def setup_queue(store: Store, clock: FakeClock, *, limit: int = 10, on: bool = True) -> int:
    client = await store.ensure_client("acme", clock.now())
    queue = await store.create_queue(
        client, "q", clock.now(), status="on" if on else "off", concurrent_task_limit=limit
    )
    return queue.id


def finished(clock: FakeClock) -> Decision:
    return Decision(
        status=TaskStatus.FINISHED,
        run_at=None,
        tries_used=1,
        caller_tries_used=0,
        attempt=1,
        finish_result=None,
        finish_comment="done",
        events=[NewEvent(EventType.TASK_FINISHED, clock.now(), {"result": "success"})],
    )


async def test_migrations_create_every_table_of_the_schema(store: Store) -> None:
    assert await store.schema_version() == LATEST_VERSION
    async with store.engine.connect() as conn:
        for table in schema.metadata.tables.values():
            if store.engine.dialect.name not in table.info.get(
                "dialects", ("sqlite", "postgresql")
            ):
                continue
            names = await conn.run_sync(
                lambda sync, name=table.name: [
                    c["name"] for c in sa.inspect(sync).get_columns(name)
                ]
            )
            assert names == [c.name for c in table.columns], table.name


async def test_migrate_twice_applies_nothing_the_second_time(
    store: Store, clock: FakeClock
) -> None:
    assert await store.migrate(clock.now()) == []


async def test_queue_names_are_unique_per_client(store: Store, clock: FakeClock) -> None:
    await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    with pytest.raises(Conflict):
        await store.create_queue(client, "q", clock.now())
    other = await store.ensure_client("other", clock.now())
    assert (await store.create_queue(other, "q", clock.now())).client_id == other


async def test_new_queue_is_off_by_default(store: Store, clock: FakeClock) -> None:
    client = await store.ensure_client("acme", clock.now())
    assert (await store.create_queue(client, "fresh", clock.now())).status == "off"


async def test_add_tasks_writes_a_created_event_each(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    ids = await store.add_tasks(client, queue_id, [msg_task(clock), msg_task(clock)], clock.now())
    assert len(ids) == 2
    task = await store.get_task(ids[0], store.clock.now())
    assert task.status == "scheduled" and task.kind is TaskKind.MSG_CALL
    events = await store.events_for_task(ids[0])
    assert [(e.seq, e.type) for e in events] == [(1, "task.created")]


async def test_add_tasks_to_another_clients_queue_is_refused(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.add_tasks(other, queue_id, [msg_task(clock)], clock.now())


async def test_claim_takes_due_tasks_oldest_first(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    late = await store.add_tasks(client, queue_id, [msg_task(clock, delay_s=5)], clock.now())
    clock.advance(1)
    early = await store.add_tasks(client, queue_id, [msg_task(clock, delay_s=1)], clock.now())
    future = await store.add_tasks(client, queue_id, [msg_task(clock, delay_s=60)], clock.now())
    clock.advance(10)
    result = await store.claim("w1", clock.now(), 10, 30)
    assert [t.id for t in result.tasks] == [early[0], late[0]]
    assert result.next_due is not None and result.next_due > clock.now()
    assert future[0] not in [t.id for t in result.tasks]
    claimed = result.tasks[0]
    assert (claimed.attempt, claimed.fence, claimed.event_seq) == (1, 1, 2)
    task = await store.get_task(early[0], store.clock.now())
    assert task.status == "executed" and task.lease_owner == "w1"
    events = await store.events_for_task(early[0])
    assert events[-1].type == "task.started" and events[-1].data == {"attempt": 1}


async def test_claim_never_exceeds_the_concurrent_task_limit(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, limit=3)
    client = await store.ensure_client("acme", clock.now())
    await store.add_tasks(client, queue_id, [msg_task(clock) for _ in range(10)], clock.now())
    first = await store.claim("w1", clock.now(), 10, 30)
    second = await store.claim("w2", clock.now(), 10, 30)
    assert len(first.tasks) == 3 and second.tasks == []
    waiting = await store.list_tasks(store.clock.now(), queue_id=queue_id, status="scheduled")
    assert {t.status for t in waiting} == {"delayed_concurrent_task"}
    assert {t.blocked_reason for t in waiting} == {"concurrent_task_limit"}


async def test_switched_off_queue_gives_nothing_and_shows_queue_off(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, on=False)
    client = await store.ensure_client("acme", clock.now())
    ids = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    assert (await store.claim("w1", clock.now(), 10, 30)).tasks == []
    task = await store.get_task(ids[0], store.clock.now())
    assert (task.status, task.blocked_reason) == ("scheduled", "queue_off")
    await store.update_queue(queue_id, QueueChanges(status="on"), clock.now())
    assert [t.id for t in (await store.claim("w1", clock.now(), 10, 30)).tasks] == ids


async def test_complete_with_a_stale_fence_is_refused(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    stale = Completion(task_id, claimed.fence - 1, finished(clock), finished(clock).events)
    good = Completion(task_id, claimed.fence, finished(clock), finished(clock).events)
    assert await store.complete([stale], store.clock.now()) == [False]
    assert (await store.get_task(task_id, store.clock.now())).status == "executed"
    assert await store.complete([good], store.clock.now()) == [True]
    assert await store.complete([good], store.clock.now()) == [False]  # only once
    task = await store.get_task(task_id, store.clock.now())
    assert task.status == "finished" and task.lease_owner is None
    assert [e.type for e in await store.events_for_task(task_id)] == [
        "task.created",
        "task.started",
        "task.finished",
    ]


async def test_reaper_completion_waits_for_the_lease_to_run_out(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    judged: list[tuple[int, int]] = []

    def judge(task: ClaimedTask, legs: AttemptLegs) -> Completion:
        judged.append((task.id, task.fence))
        done = finished(clock)
        return Completion(task.id, task.fence, done, done.events, expired_before=clock.now())

    assert await store.reap(clock.now(), judge) == 0
    clock.advance(20)
    assert await store.heartbeat("w1", clock.now(), 30, [task_id, task_id + 1]) == 1
    clock.advance(20)  # 40 s after the claim, but only 20 s after the heartbeat
    assert await store.reap(clock.now(), judge) == 0
    early = Completion(task_id, claimed.fence, finished(clock), [], expired_before=clock.now())
    assert await store.complete([early], store.clock.now()) == [False]
    assert judged == []
    clock.advance(11)
    assert await store.reap(clock.now(), judge) == 1
    assert judged == [(task_id, claimed.fence)]
    assert (await store.get_task(task_id, store.clock.now())).status == "finished"


async def test_progress_events_are_fenced_and_numbered(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    answered = NewEvent(EventType.CALL_ANSWERED, clock.now(), {"leg": "main"})
    assert await store.record_progress([Progress(task_id, claimed.fence, [answered])]) == [True]
    assert await store.record_progress([Progress(task_id, 99, [answered])]) == [False]
    done = finished(clock)
    assert await store.complete(
        [Completion(task_id, claimed.fence, done, done.events)], store.clock.now()
    ) == [True]
    assert [(e.seq, e.type) for e in await store.events_for_task(task_id)] == [
        (1, "task.created"),
        (2, "task.started"),
        (3, "call.answered"),
        (4, "task.finished"),
    ]


async def test_cancel_finishes_the_task_and_fences_out_the_attempt(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert await store.cancel_task(task_id, clock.now()) is True
    assert await store.cancel_task(task_id, clock.now()) is False
    done = finished(clock)
    assert await store.complete(
        [Completion(task_id, claimed.fence, done, done.events)], store.clock.now()
    ) == [False]
    task = await store.get_task(task_id, store.clock.now())
    assert (task.status, task.finish_result, task.finish_comment) == (
        "finished",
        "failed",
        "canceled",
    )
    assert (await store.events_for_task(task_id))[-1].type == "task.canceled"


async def test_release_gives_the_attempt_back(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    await store.claim("w1", clock.now(), 1, 30)
    assert await store.release("w1", [task_id], clock.now()) == 1
    task = await store.get_task(task_id, store.clock.now())
    assert (task.status, task.attempt, task.lease_owner) == ("scheduled", 0, None)


async def test_rate_limit_spreads_claims_over_time(store: Store, clock: FakeClock) -> None:
    client = await store.ensure_client("acme", clock.now())
    queue = await store.create_queue(
        client, "slow", clock.now(), status="on", concurrent_task_limit=100, max_calls_per_second=2
    )
    await store.add_tasks(client, queue.id, [msg_task(clock) for _ in range(10)], clock.now())
    first = await store.claim("w1", clock.now(), 100, 30)
    assert len(first.tasks) == 2  # a burst of one second's worth
    again = await store.claim("w1", clock.now(), 100, 30)
    assert again.tasks == [] and again.rate_limited_until is not None
    clock.set(again.rate_limited_until)
    assert len((await store.claim("w1", clock.now(), 100, 30)).tasks) == 1
    clock.advance(1)
    assert len((await store.claim("w1", clock.now(), 100, 30)).tasks) == 2


async def test_calling_hours_move_a_due_task_to_the_next_window(
    store: Store, clock: FakeClock
) -> None:
    # FakeClock starts Monday 2026-01-05 12:00 UTC = 21:00 in Tokyo (no DST)
    client = await store.ensure_client("acme", clock.now())
    hours = {
        "timezone": "Asia/Tokyo",
        "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
        ],
    }
    queue = await store.create_queue(client, "tokyo", clock.now(), status="on", calling_hours=hours)
    [task_id] = await store.add_tasks(client, queue.id, [msg_task(clock)], clock.now())
    result = await store.claim("w1", clock.now(), 10, 30)
    assert result.tasks == [] and result.delayed == 1
    task = await store.get_task(task_id, store.clock.now())
    assert task.status == "delayed_interval" and task.blocked_reason == "calling_hours"
    assert task.run_at.isoformat() == "2026-01-06T00:00:00+00:00"  # Tue 09:00 JST
    assert (await store.events_for_task(task_id))[-1].type == "task.delayed"
    clock.set(task.run_at)
    assert [t.id for t in (await store.claim("w1", clock.now(), 10, 30)).tasks] == [task_id]


@pytest.mark.parametrize("change", ["cleared", "widened"])
async def test_tasks_waiting_for_old_calling_hours_are_due_at_once_when_the_hours_change(
    store: Store, clock: FakeClock, change: str
) -> None:
    client = await store.ensure_client("acme", clock.now())
    hours = {
        "timezone": "Asia/Tokyo",
        "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
        ],
    }
    queue = await store.create_queue(client, "tokyo", clock.now(), status="on", calling_hours=hours)
    ids = await store.add_tasks(client, queue.id, [msg_task(clock), msg_task(clock)], clock.now())
    assert (await store.claim("w1", clock.now(), 10, 30)).delayed == 2
    clock.advance(60)
    changes = (
        QueueChanges(clear_calling_hours=True)
        if change == "cleared"
        else QueueChanges(calling_hours={"timezone": "Asia/Tokyo", "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
             "end": "23:59"}]})
    )  # fmt: skip
    await store.update_queue(queue.id, changes, clock.now())
    for task_id in ids:
        task = await store.get_task(task_id, clock.now())
        assert task.status == "scheduled" and task.run_at == clock.now()
        events = await store.events_for_task(task_id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))  # no gap
        assert events[-1].type == "task.updated"
        assert events[-1].data["reason"] == "calling hours changed"
    claimed = (await store.claim("w1", clock.now(), 10, 30)).tasks
    assert sorted(t.id for t in claimed) == sorted(ids)


async def test_call_records_are_stored_with_the_completion(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    start = clock.now()
    record = leg_record(
        clock,
        sip_code=200,
        outcome=Outcome.ANSWERED,
        hangup_cause="NORMAL_CLEARING",
        hangup_disposition="send_bye",
        ringing_at=start + timedelta(seconds=0.1),
        answered_at=start + timedelta(seconds=2),
        ended_at=start + timedelta(seconds=7),
        played=[{"type": "play", "file": "hi.wav", "seconds": 5.0}],
    )
    done = finished(clock)
    completion = Completion(task_id, claimed.fence, done, done.events, [record], cdr="call-1")
    assert await store.complete([completion], store.clock.now()) == [True]
    [call] = await store.calls(task_id=task_id)
    assert (call.duration_ms, call.billsec_ms, call.sip_code) == (7000, 5000, 200)
    assert call.played == [{"type": "play", "file": "hi.wav", "seconds": 5.0}]
    assert (await store.get_task(task_id, store.clock.now())).cdr == "call-1"
    assert AttemptResult  # imported for symmetry with the engine tests


FAX = {
    "operation": "reception", "file": "received_faxes/in.tif", "code": 0, "text": "OK",
    "pages": 2, "bit_rate": 14400, "ecm": True, "remote_ident": "0312345678", "seconds": 24.5,
    "tiff": "received_faxes/in.tif", "pdf": "received_faxes/in.pdf",
}  # fmt: skip


async def test_a_calls_fax_is_stored_with_its_leg_and_a_call_that_did_not_fax_has_none(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    ids = await store.add_tasks(client, queue_id, [msg_task(clock), msg_task(clock)], clock.now())
    claimed = (await store.claim("w1", clock.now(), 2, 30)).tasks
    completions = []
    for number, task in enumerate(claimed):
        record = leg_record(
            clock, sip_code=200, outcome=Outcome.ANSWERED, answered_at=clock.now(),
            ended_at=clock.now() + timedelta(seconds=30), fax=FAX if number == 0 else None,
        )  # fmt: skip
        record.leg_uuid = record.call_uuid = f"fax-{number}"
        done = finished(clock)
        completions.append(Completion(task.id, task.fence, done, done.events, [record]))
    assert await store.complete(completions, store.clock.now()) == [True, True]
    faxes = {}
    for task_id in ids:
        [call] = await store.calls(task_id=task_id)
        faxes[call.leg_uuid] = call.fax
    assert faxes == {"fax-0": FAX, "fax-1": None}


async def test_add_tasks_returns_increasing_ids_in_input_order(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client_id = await store.ensure_client("acme", clock.now())
    first = await store.add_tasks(client_id, queue_id, [msg_task(clock)], clock.now())
    numbers = [f"09012340{n:02d}" for n in range(30)]
    ids = await store.add_tasks(
        client_id, queue_id, [msg_task(clock, to=number) for number in numbers], clock.now()
    )
    assert ids == sorted(ids) and len(set(ids)) == 30 and ids[0] > first[0]
    for task_id, number in zip(ids, numbers, strict=True):
        task = await store.get_task(task_id, store.clock.now())
        assert task.payload["called_number"] == number
        assert [e.type for e in await store.events_for_task(task_id)] == ["task.created"]


async def test_page_totals_are_exact_for_a_whole_queue_and_its_filters(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client_id = await store.ensure_client("acme", clock.now())
    other = await store.create_queue(client_id, "other", clock.now())
    ids = await store.add_tasks(client_id, queue_id, [msg_task(clock)] * 7, clock.now())
    await store.add_tasks(client_id, other.id, [msg_task(clock)] * 3, clock.now())
    assert await store.cancel_task(ids[0], clock.now())
    rows, total = await store.page_tasks(
        store.clock.now(), client_id=client_id, queue_id=queue_id, limit=2, offset=4
    )
    assert total == 7 and [row.id for row in rows] == ids[4:6]
    rows, total = await store.page_tasks(
        store.clock.now(), client_id=client_id, queue_id=queue_id, status="finished", limit=10
    )
    assert total == 1 and [row.id for row in rows] == ids[:1]
    queue = await store.get_queue(queue_id)
    assert (queue.task_count, queue.sched_task_count) == (7, 6)
    stranger = await store.ensure_client("stranger", clock.now())
    assert await store.page_tasks(
        store.clock.now(), client_id=stranger, queue_id=queue_id, limit=10
    ) == ([], 0)
    async with store.engine.connect() as conn:  # the kept counts agree with count(*)
        counted = dict(
            (
                await conn.execute(
                    sa.text("SELECT queue_id, count(*) FROM tasks GROUP BY queue_id")
                )
            ).all()
        )
        kept = dict(  # a queue's total: the sum of its status counts (migration 21)
            (
                await conn.execute(
                    sa.text("SELECT queue_id, sum(n) FROM queue_status_counts GROUP BY queue_id")
                )
            ).all()
        )
    assert kept == counted == {queue_id: 7, other.id: 3}


async def test_pages_near_the_end_are_the_same_pages(store: Store, clock: FakeClock) -> None:
    queue_id = await setup_queue(store, clock)
    client_id = await store.ensure_client("acme", clock.now())
    ids = await store.add_tasks(client_id, queue_id, [msg_task(clock)] * 11, clock.now())
    for offset in range(13):
        for limit in (1, 3, 5, 20):
            rows, total = await store.page_tasks(
                store.clock.now(),
                client_id=client_id,
                queue_id=queue_id,
                limit=limit,
                offset=offset,
            )
            assert total == 11 and [row.id for row in rows] == ids[offset : offset + limit]
            rows, total = await store.page_tasks(
                store.clock.now(), client_id=client_id, queue_id=queue_id, status="scheduled",
                limit=limit, offset=offset,
            )  # fmt: skip
            assert total == 11 and [row.id for row in rows] == ids[offset : offset + limit]


async def add_hooked_tasks(store: Store, clock: FakeClock) -> tuple[int, int, set[int]]:
    """A queue with two tasks some webhook can receive: one naming a seed URL, one with job
    webhooks. Its client, the queue and the two task ids."""
    queue_id = await setup_queue(store, clock)
    client_id = (await store.get_queue(queue_id)).client_id
    seed_url = {**msg_task(clock).payload, "url_after": "https://example.com/after"}
    hooked = [
        replace(msg_task(clock), payload=seed_url),
        replace(msg_task(clock), webhooks=[{"url": "https://example.com/job", "events": ["*"]}]),
    ]
    return client_id, queue_id, set(await store.add_tasks(client_id, queue_id, hooked, clock.now()))


async def test_only_events_some_webhook_target_can_receive_are_left_for_the_dispatcher(
    store: Store, clock: FakeClock
) -> None:
    client_id, queue_id, hooked_ids = await add_hooked_tasks(store, clock)
    plain_id = (await store.add_tasks(client_id, queue_id, [msg_task(clock)], clock.now()))[0]
    waiting = {event.task_id for event in await store.undispatched_events(100)}
    assert hooked_ids <= waiting
    assert plain_id not in waiting  # no target can receive it: written as dispatched
    await store.create_subscription(
        client_id, url="https://example.com/all", events=["*"], secret="s" * 32, active=True,
        description="", now=clock.now(),
    )  # fmt: skip
    later = (await store.add_tasks(client_id, queue_id, [msg_task(clock)], clock.now()))[0]
    assert later in {event.task_id for event in await store.undispatched_events(100)}


async def test_engine_events_no_webhook_target_can_receive_are_written_as_dispatched(
    store: Store, clock: FakeClock
) -> None:
    """Events written by claim, progress and complete: those of a task with a seed URL or job
    webhooks, or of any task once its client has an active subscription, wait for the
    dispatcher on both stores; the others are written as dispatched, on both stores too."""
    client_id, queue_id, hooked_ids = await add_hooked_tasks(store, clock)
    [plain_id] = await store.add_tasks(client_id, queue_id, [msg_task(clock)], clock.now())

    async def run_all() -> None:
        claimed = (await store.claim("w1", clock.now(), 10, 30)).tasks
        answered = NewEvent(EventType.CALL_ANSWERED, clock.now(), {"leg": "main"})
        progress = [Progress(task.id, task.fence, [answered]) for task in claimed]
        assert await store.record_progress(progress) == [True] * len(claimed)
        done = finished(clock)
        completions = [Completion(task.id, task.fence, done, done.events) for task in claimed]
        assert await store.complete(completions, store.clock.now()) == [True] * len(claimed)

    def engine_events(events: list[Any], task_ids: set[int]) -> set[tuple[int, str]]:
        return {(e.task_id, e.type) for e in events if e.task_id in task_ids} - {
            (task_id, "task.created") for task_id in task_ids
        }

    def expected(task_ids: set[int]) -> set[tuple[int, str]]:
        kinds = ("task.started", "call.answered", "task.finished")
        return {(task_id, kind) for task_id in task_ids for kind in kinds}

    await run_all()
    waiting = await store.undispatched_events(1000)
    assert engine_events(waiting, hooked_ids) == expected(hooked_ids)
    assert engine_events(waiting, {plain_id}) == set()

    await store.create_subscription(
        client_id, url="https://example.com/all", events=["*"], secret="s" * 32, active=True,
        description="", now=clock.now(),
    )  # fmt: skip
    [later_id] = await store.add_tasks(client_id, queue_id, [msg_task(clock)], clock.now())
    await run_all()
    waiting = await store.undispatched_events(1000)
    assert engine_events(waiting, {later_id}) == expected({later_id})


async def test_a_creation_window_or_a_name_pages_its_matches_in_id_order_from_either_end(
    store: Store, clock: FakeClock
) -> None:
    """Few matches of a window or a name are sorted rather than walked to: the pages must be
    the same as walking ids would give, from the start and from the end, with exact totals."""
    queue_id = await setup_queue(store, clock)
    client_id = (await store.get_queue(queue_id)).client_id
    chunks: list[tuple[datetime, list[int]]] = []
    for k in range(3):  # three chunks, each created an hour after the other
        created = clock.now() + timedelta(hours=k)
        tasks = [replace(msg_task(clock), name=f"n-{k}") for _ in range(7)]
        chunks.append((created, await store.add_tasks(client_id, queue_id, tasks, created)))
    for k, (created, ids) in enumerate(chunks):
        window = {"created_from": created, "created_to": created + timedelta(minutes=30)}
        for filters in (window, {"name": f"n-{k}"}):
            for offset in range(9):
                for limit in (1, 3, 100):
                    rows, total = await store.page_tasks(
                        store.clock.now(), client_id=client_id, queue_id=queue_id, limit=limit,
                        offset=offset, **filters,  # type: ignore[arg-type]
                    )  # fmt: skip
                    assert total == 7 and [row.id for row in rows] == ids[offset : offset + limit]


async def test_a_status_filters_total_stays_exact_through_intake_claims_completion_and_cancel(
    store: Store, clock: FakeClock
) -> None:
    """On SQLite the total of a one-status list comes from counts kept by triggers
    (migration 8); on both stores it must equal what count(*) finds at every step."""
    queue_id = await setup_queue(store, clock, limit=3)
    client_id = (await store.get_queue(queue_id)).client_id
    ids = await store.add_tasks(client_id, queue_id, [msg_task(clock)] * 6, clock.now())

    async def check() -> None:
        async with store.engine.connect() as conn:
            counted = dict(
                (
                    await conn.execute(
                        sa.text("SELECT status, count(*) FROM tasks WHERE queue_id = :q "
                                "GROUP BY status"),
                        {"q": queue_id},
                    )
                ).all()
            )  # fmt: skip
        for status in ("scheduled", "executed", "delayed", "delayed_interval", "finished"):
            _, total = await store.page_tasks(
                store.clock.now(), client_id=client_id, queue_id=queue_id, status=status, limit=1
            )
            assert total == counted.get(status, 0), (status, total, counted)

    await check()
    claimed = (await store.claim("w1", clock.now(), 10, 30)).tasks
    assert len(claimed) == 3
    await check()
    done = finished(clock)
    await store.complete(
        [Completion(task.id, task.fence, done, done.events) for task in claimed], store.clock.now()
    )
    await check()
    assert await store.cancel_task(ids[-1], clock.now())
    await check()
    await store.delete_queue(queue_id, clock.now(), force=True)
    await check()


async def test_a_payload_naming_url_only_in_values_or_as_null_seed_urls_leaves_no_event_waiting(
    store: Store, clock: FakeClock
) -> None:
    """Whether a task's payload names a seed URL is read from its fields, not its text: an
    audio file called ``url_…`` or seed URL fields set to null leave its engine events
    written as dispatched; a seed URL (even an empty one) leaves them for the dispatcher."""
    queue_id = await setup_queue(store, clock)
    client_id = (await store.get_queue(queue_id)).client_id
    base = msg_task(clock).payload
    quiet = [
        {**base, "audio_file": "url_after.wav"},
        {**base, "url_before": None, "url_success": None},
    ]
    loud = [{**base, "url_success": ""}]
    tasks = [replace(msg_task(clock), payload=p) for p in quiet + loud]
    ids = await store.add_tasks(client_id, queue_id, tasks, clock.now())
    claimed = (await store.claim("w1", clock.now(), 10, 30)).tasks
    done = finished(clock)
    completions = [Completion(task.id, task.fence, done, done.events) for task in claimed]
    assert await store.complete(completions, store.clock.now()) == [True] * len(claimed)
    waiting = {
        (e.task_id, e.type)
        for e in await store.undispatched_events(1000)
        if e.type != "task.created"
    }
    assert {task_id for task_id, _ in waiting} == set(ids[len(quiet) :])
    assert (ids[-1], "task.finished") in waiting
