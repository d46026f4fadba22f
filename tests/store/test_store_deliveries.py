"""The store's contract for webhook deliveries: fan-out of events (``store_deliveries``), leases
and fences (``claim_deliveries`` / ``finish_deliveries``), and the API's view (page, get,
redeliver), on SQLite and PostgreSQL alike. Events come from the store's own writes: a task
added (``task.created``) and changed (``task.updated``) while its client has a subscription."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from test_store import msg_task

from ringback.clock import FakeClock
from ringback.domain.rows import (
    ClaimedDelivery,
    Conflict,
    DeliveryResult,
    EventRow,
    NewDelivery,
    NotFound,
    SubscriptionRow,
)
from ringback.store import Store

SECRET = "s" * 32


async def _subscribed(
    store: Store, clock: FakeClock, name: str = "acme"
) -> tuple[int, int, SubscriptionRow]:
    """A client with a switched-on queue and an active subscription to every event."""
    client = await store.ensure_client(name, clock.now())
    queue = await store.create_queue(client, "q", clock.now(), status="on")
    sub = await store.create_subscription(
        client, url=f"https://{name}.example/hook", events=["*"], secret=SECRET, active=True,
        description="", now=clock.now(),
    )  # fmt: skip
    return client, queue.id, sub


async def _task_events(store: Store, clock: FakeClock, client: int, queue_id: int) -> int:
    """A task with two events waiting for the dispatcher (created, updated); its id."""
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    await store.update_task(task_id, client, msg_task(clock, delay_s=60), clock.now())
    return task_id


def _to_sub(event: EventRow, sub: SubscriptionRow) -> NewDelivery:
    return NewDelivery(
        event_id=event.id, client_id=event.client_id, task_id=event.task_id, seq=event.seq,
        event_type=event.type, target_kind="subscription", target_key=f"subscription {sub.id}",
        subscription_id=sub.id, url=sub.url, body=json.dumps({"type": event.type}),
    )  # fmt: skip


def _to_seed_url(event: EventRow, url: str = "https://seed.example/after") -> NewDelivery:
    return NewDelivery(
        event_id=event.id, client_id=event.client_id, task_id=event.task_id, seq=event.seq,
        event_type=event.type, target_kind="url_after", target_key=f"url_after {url}",
        subscription_id=None, url=url, body=json.dumps({"type": event.type}),
    )  # fmt: skip


def _result(claimed: ClaimedDelivery, status: str, **fields: object) -> DeliveryResult:
    values: dict[str, object] = {
        "next_attempt_at_ms": None, "status_code": 200, "error": None, "excerpt": "ok", **fields,
    }  # fmt: skip
    return DeliveryResult(claimed.id, claimed.fence, status, **values)  # type: ignore[arg-type]


async def _fanned_out(store: Store, clock: FakeClock) -> tuple[int, int, SubscriptionRow]:
    """acme's task with its two events stored as deliveries to its subscription."""
    client, queue_id, sub = await _subscribed(store, clock)
    task_id = await _task_events(store, clock, client, queue_id)
    events = await store.undispatched_events(100)
    assert [(e.task_id, e.seq) for e in events] == [(task_id, 1), (task_id, 2)]
    stored = await store.store_deliveries(
        [_to_sub(e, sub) for e in events], [e.id for e in events], {}, clock.now()
    )
    assert stored == 2
    return client, task_id, sub


# --- fan-out ------------------------------------------------------------------------------------


async def test_store_deliveries_marks_events_dispatched_and_stores_each_target_once(
    store: Store, clock: FakeClock
) -> None:
    client, task_id, sub = await _fanned_out(store, clock)
    assert await store.undispatched_events(100) == []
    rows, total = await store.page_deliveries(client)
    assert total == 2 and [(d.seq, d.status, d.attempts) for d in rows] == [
        (1, "pending", 0),
        (2, "pending", 0),
    ]
    assert {(d.task_id, d.subscription_id, d.target_kind) for d in rows} == {
        (task_id, sub.id, "subscription")
    }
    # a second dispatcher storing the same (event, target) adds nothing
    events = [await store.get_delivery(d.id, client) for d in rows]
    again = [
        NewDelivery(
            event_id=d.event_id, client_id=client, task_id=task_id, seq=d.seq,
            event_type=d.event_type, target_kind="subscription",
            target_key=f"subscription {sub.id}", subscription_id=sub.id, url=sub.url, body="{}",
        )
        for d, _ in events
    ]  # fmt: skip
    await store.store_deliveries(again, [], {}, clock.now())
    assert (await store.page_deliveries(client))[1] == 2


async def test_store_deliveries_makes_signing_keys_only_for_clients_without_one(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    kept = await store.webhook_key(acme, "k" * 32, clock.now())
    await store.store_deliveries([], [], {acme: "x" * 32, other: "o" * 32}, clock.now())
    assert await store.webhook_key(acme, "y" * 32, clock.now()) == kept
    assert (await store.webhook_key(other, "y" * 32, clock.now())).secret == "o" * 32


async def test_undispatched_events_are_oldest_first_up_to_the_limit(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id, _ = await _subscribed(store, clock)
    first = await _task_events(store, clock, client, queue_id)
    second = await _task_events(store, clock, client, queue_id)
    events = await store.undispatched_events(3)
    assert [(e.task_id, e.seq, e.type) for e in events] == [
        (first, 1, "task.created"),
        (first, 2, "task.updated"),
        (second, 1, "task.created"),
    ]
    assert events[0].client_id == client and events[0].queue_id == queue_id
    await store.store_deliveries([], [events[0].id], {}, clock.now())
    left = await store.undispatched_events(3)
    assert [(e.task_id, e.seq) for e in left] == [(first, 2), (second, 1), (second, 2)]


# --- claiming and finishing ---------------------------------------------------------------------


async def test_claim_deliveries_takes_a_tasks_next_event_only_after_the_one_before(
    store: Store, clock: FakeClock
) -> None:
    client, _, sub = await _fanned_out(store, clock)
    [first] = await store.claim_deliveries("d1", clock.now(), 10, 30)
    assert (first.event_type, first.subscription_id, first.client_id) == (
        "task.created",
        sub.id,
        client,
    )
    assert (first.url, first.attempts, first.secrets) == (sub.url, 0, [SECRET])
    assert json.loads(first.body) == {"type": "task.created"}
    assert await store.claim_deliveries("d2", clock.now(), 10, 30) == []  # leased; seq 2 waits
    await store.finish_deliveries([_result(first, "delivered")], clock.now())
    [second] = await store.claim_deliveries("d2", clock.now(), 10, 30)
    assert second.event_type == "task.updated"
    delivered, _ = await store.get_delivery(first.id, client)
    assert (delivered.status, delivered.attempts, delivered.delivered_at) == (
        "delivered",
        1,
        clock.now(),
    )
    assert (delivered.last_status_code, delivered.response_excerpt) == (200, "ok")


async def test_a_delivery_whose_lease_ran_out_is_claimed_again_and_the_old_fence_is_refused(
    store: Store, clock: FakeClock
) -> None:
    client, _, _ = await _fanned_out(store, clock)
    [lost] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    clock.advance(31)
    [again] = await store.claim_deliveries("d2", clock.now(), 1, 30)
    assert again.id == lost.id and again.fence > lost.fence
    await store.finish_deliveries([_result(lost, "delivered")], clock.now())
    assert (await store.get_delivery(lost.id, client))[0].status == "pending"
    await store.finish_deliveries([_result(again, "delivered")], clock.now())
    assert (await store.get_delivery(lost.id, client))[0].status == "delivered"


async def test_one_batch_of_outcomes_records_each_as_its_own_and_skips_a_stale_fence(
    store: Store, clock: FakeClock
) -> None:
    """Outcomes are stored a batch at a time (one statement on PostgreSQL): delivered, retried
    later, dead, and one whose lease another dispatcher took since, each as it is."""
    client, queue_id, sub = await _subscribed(store, clock)
    for _ in range(4):  # four tasks: each one's first event may be claimed at once
        await _task_events(store, clock, client, queue_id)
    events = await store.undispatched_events(100)
    await store.store_deliveries(
        [_to_sub(e, sub) for e in events], [e.id for e in events], {}, clock.now()
    )
    ok, retried, dead = await store.claim_deliveries("d1", clock.now(), 3, 300)
    [stale] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    clock.advance(31)  # the last lease ran out: another dispatcher takes it
    [taken] = await store.claim_deliveries("d2", clock.now(), 4, 30)
    clock.advance(1)
    retry_at = clock.now() + timedelta(seconds=60)
    await store.finish_deliveries(
        [
            _result(ok, "delivered", excerpt="fine"),
            _result(retried, "pending", next_attempt_at_ms=int(retry_at.timestamp() * 1000),
                    status_code=503, error="HTTP 503", excerpt="busy"),
            _result(dead, "dead", status_code=None, error="timeout", excerpt=None),
            _result(stale, "delivered"),
        ],
        clock.now(),
    )  # fmt: skip
    rows = {c.id: (await store.get_delivery(c.id, client))[0] for c in (ok, retried, dead, stale)}
    got = {
        i: (r.status, r.attempts, r.last_status_code, r.last_error, r.response_excerpt)
        for i, r in rows.items()
    }
    assert got == {
        ok.id: ("delivered", 1, 200, None, "fine"),
        retried.id: ("pending", 1, 503, "HTTP 503", "busy"),
        dead.id: ("dead", 1, None, "timeout", None),
        stale.id: ("pending", 0, None, None, None),
    }
    assert rows[ok.id].delivered_at == clock.now() and rows[ok.id].dead_at is None
    assert rows[dead.id].dead_at == clock.now() and rows[dead.id].delivered_at is None
    assert rows[retried.id].next_attempt_at == retry_at
    assert taken.id == stale.id and taken.fence > stale.fence


async def test_a_failed_try_waits_until_its_next_attempt_time(
    store: Store, clock: FakeClock
) -> None:
    client, _, _ = await _fanned_out(store, clock)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    retry_at = clock.now() + timedelta(seconds=60)
    failed = _result(
        claimed,
        "pending",
        next_attempt_at_ms=int(retry_at.timestamp() * 1000),
        status_code=503,
        error="503",
    )
    await store.finish_deliveries([failed], clock.now())
    row, _ = await store.get_delivery(claimed.id, client)
    assert (row.status, row.attempts, row.next_attempt_at, row.last_error) == (
        "pending",
        1,
        retry_at,
        "503",
    )
    clock.advance(59)
    assert await store.claim_deliveries("d1", clock.now(), 10, 30) == []
    clock.advance(1)
    [retried] = await store.claim_deliveries("d1", clock.now(), 10, 30)
    assert (retried.id, retried.attempts) == (claimed.id, 1)


async def test_a_dead_delivery_answered_gone_disables_its_subscription(
    store: Store, clock: FakeClock
) -> None:
    client, _, sub = await _fanned_out(store, clock)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    gone = _result(claimed, "dead", status_code=410, disable_subscription="receiver answered 410")
    await store.finish_deliveries([gone], clock.now())
    row, _ = await store.get_delivery(claimed.id, client)
    assert (row.status, row.dead_at) == ("dead", clock.now())
    disabled = await store.get_subscription(sub.id, client)
    assert (disabled.active, disabled.disabled_reason) == (False, "receiver answered 410")
    assert await store.claim_deliveries("d1", clock.now(), 10, 30) == []  # inactive: held
    enabled = await store.update_subscription(sub.id, client, {"active": True}, clock.now())
    assert (enabled.active, enabled.disabled_reason) == (True, None)
    [held] = await store.claim_deliveries("d1", clock.now(), 10, 30)
    assert held.event_type == "task.updated"


async def test_a_seed_url_delivery_is_signed_with_the_clients_key_and_its_overlap(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id, _ = await _subscribed(store, clock)
    await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [event] = await store.undispatched_events(10)
    await store.store_deliveries([_to_seed_url(event)], [event.id], {client: "k" * 32}, clock.now())
    until = clock.now() + timedelta(seconds=60)
    await store.rotate_webhook_key(client, "n" * 32, clock.now(), until)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    assert (claimed.subscription_id, claimed.target_kind) == (None, "url_after")
    assert claimed.secrets == ["n" * 32, "k" * 32]
    clock.advance(61)  # the lease and the overlap have both run out
    [again] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    assert again.secrets == ["n" * 32]


async def test_finish_no_deliveries_changes_nothing(store: Store, clock: FakeClock) -> None:
    client, _, _ = await _fanned_out(store, clock)
    await store.finish_deliveries([], clock.now())
    assert {d.status for d in (await store.page_deliveries(client))[0]} == {"pending"}


# --- the API's view -----------------------------------------------------------------------------


async def test_page_deliveries_narrows_by_status_subscription_and_task_within_the_client(
    store: Store, clock: FakeClock
) -> None:
    client, task_id, sub = await _fanned_out(store, clock)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    await store.finish_deliveries([_result(claimed, "delivered")], clock.now())
    rows, total = await store.page_deliveries(client, status="delivered")
    assert total == 1 and [d.id for d in rows] == [claimed.id]
    assert (await store.page_deliveries(client, status="pending"))[1] == 1
    assert (await store.page_deliveries(client, subscription_id=sub.id))[1] == 2
    assert (await store.page_deliveries(client, subscription_id=sub.id + 1000))[1] == 0
    assert (await store.page_deliveries(client, task_id=task_id))[1] == 2
    rows, total = await store.page_deliveries(client, limit=1, offset=1)
    assert total == 2 and [d.seq for d in rows] == [2]
    rows, total = await store.page_deliveries(client, limit=1, newest_first=True)
    assert total == 2 and [d.seq for d in rows] == [2]  # the console's recent deliveries
    other = await store.ensure_client("other", clock.now())
    assert await store.page_deliveries(other) == ([], 0)
    assert await store.page_deliveries(other, task_id=task_id) == ([], 0)


async def test_get_delivery_of_another_client_is_not_found(store: Store, clock: FakeClock) -> None:
    client, _, _ = await _fanned_out(store, clock)
    [row, _] = (await store.page_deliveries(client))[0]
    found, body = await store.get_delivery(row.id, client)
    assert found == row and json.loads(body) == {"type": "task.created"}
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.get_delivery(row.id, other)
    with pytest.raises(NotFound):
        await store.get_delivery(row.id + 1000, client)


async def test_redeliver_sends_a_dead_delivery_again_from_now(
    store: Store, clock: FakeClock
) -> None:
    client, _, _ = await _fanned_out(store, clock)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    await store.finish_deliveries([_result(claimed, "dead", status_code=500)], clock.now())
    clock.advance(600)
    again = await store.redeliver(claimed.id, client, clock.now())
    assert (again.status, again.attempts, again.dead_at) == ("pending", 0, None)
    assert again.next_attempt_at == again.created_at == clock.now()
    [retried] = await store.claim_deliveries("d2", clock.now(), 1, 30)
    assert retried.id == claimed.id and retried.fence > claimed.fence


async def test_redeliver_of_a_delivery_not_dead_is_a_conflict(
    store: Store, clock: FakeClock
) -> None:
    client, _, _ = await _fanned_out(store, clock)
    [pending, _] = (await store.page_deliveries(client))[0]
    with pytest.raises(Conflict):
        await store.redeliver(pending.id, client, clock.now())
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    await store.finish_deliveries([_result(claimed, "delivered")], clock.now())
    with pytest.raises(Conflict):
        await store.redeliver(claimed.id, client, clock.now())
    assert (await store.get_delivery(claimed.id, client))[0].status == "delivered"


async def test_redeliver_of_another_clients_delivery_is_not_found(
    store: Store, clock: FakeClock
) -> None:
    client, _, _ = await _fanned_out(store, clock)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    await store.finish_deliveries([_result(claimed, "dead")], clock.now())
    other = await store.ensure_client("other", clock.now())
    with pytest.raises(NotFound):
        await store.redeliver(claimed.id, other, clock.now())
    assert (await store.get_delivery(claimed.id, client))[0].status == "dead"


async def test_deleting_a_subscription_drops_its_pending_deliveries_and_keeps_the_rest(
    store: Store, clock: FakeClock
) -> None:
    client, _, sub = await _fanned_out(store, clock)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    await store.finish_deliveries([_result(claimed, "delivered")], clock.now())
    await store.delete_subscription(sub.id, client)
    rows, total = await store.page_deliveries(client)
    assert total == 1 and [(d.id, d.status) for d in rows] == [(claimed.id, "delivered")]
    assert await store.claim_deliveries("d1", clock.now(), 10, 30) == []


async def test_redeliver_to_a_deleted_subscription_is_a_conflict(
    store: Store, clock: FakeClock
) -> None:
    """Deliveries to a deleted subscription are never claimed again: a redelivery of one would
    stay pending for ever, so it is refused and the delivery stays dead."""
    client, _, sub = await _fanned_out(store, clock)
    [claimed] = await store.claim_deliveries("d1", clock.now(), 1, 30)
    await store.finish_deliveries([_result(claimed, "dead", status_code=500)], clock.now())
    await store.delete_subscription(sub.id, client)
    with pytest.raises(Conflict):
        await store.redeliver(claimed.id, client, clock.now())
    assert (await store.get_delivery(claimed.id, client))[0].status == "dead"
    assert await store.claim_deliveries("d1", clock.now(), 10, 30) == []


async def test_metrics_counts_give_tasks_per_queue_and_deliveries_per_client_by_name(
    store: Store, clock: FakeClock
) -> None:
    client, task_id, _sub = await _fanned_out(store, clock)
    clock.advance(90)
    counts = await store.metrics_counts()
    assert counts.deliveries == [("acme", "pending", 2)]
    assert counts.oldest_pending_delivery == clock.now() - timedelta(seconds=90)
    [(who, queue, status, count)] = counts.tasks
    assert (who, status, count) == (
        "acme",
        (await store.get_task(task_id, clock.now())).stored_status,
        1,
    )
    assert queue in {q.name for q in await store.list_queues(client)}
