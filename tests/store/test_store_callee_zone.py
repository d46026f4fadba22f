"""The callee's time zone and holidays in the store, on SQLite and PostgreSQL alike (issue 18):
a task keeps its zone and where it came from, through add and update; the tasks whose zone is
the queue's follow the queue's calling hours when they change; a claim on a holiday moves a
due task to the next open day, saying so in its task.delayed event."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from test_store import msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.rows import QueueChanges
from ringback.store.db import Store

PARIS = {
    "timezone": "Europe/Paris",
    "windows": [{"days": ["daily"], "start": "09:00", "end": "18:00"}],
}
TOKYO = {**PARIS, "timezone": "Asia/Tokyo"}


async def test_a_tasks_zone_and_its_source_are_stored_on_add_and_update(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    by_number = replace(msg_task(clock), timezone="America/New_York", timezone_source="number")
    [task_id] = await store.add_tasks(client, queue_id, [by_number], clock.now())
    row = await store.get_task(task_id, clock.now())
    assert (row.timezone, row.timezone_source) == ("America/New_York", "number")
    given = replace(by_number, timezone="Asia/Tokyo", timezone_source="given")
    row = await store.update_task(task_id, client, given, clock.now())
    assert (row.timezone, row.timezone_source) == ("Asia/Tokyo", "given")


async def test_tasks_with_the_queues_zone_follow_its_calling_hours_and_others_do_not(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock, on=False)
    client = await store.ensure_client("acme", clock.now())
    await store.update_queue(queue_id, QueueChanges(calling_hours=PARIS), clock.now())
    from_queue = replace(msg_task(clock), timezone="Europe/Paris", timezone_source="queue")
    from_number = replace(msg_task(clock), timezone="America/Chicago", timezone_source="number")
    queued, numbered = await store.add_tasks(
        client, queue_id, [from_queue, from_number], clock.now()
    )
    await store.update_queue(queue_id, QueueChanges(calling_hours=TOKYO), clock.now())
    assert (await store.get_task(queued, clock.now())).timezone == "Asia/Tokyo"
    assert (await store.get_task(numbered, clock.now())).timezone == "America/Chicago"
    await store.update_queue(queue_id, QueueChanges(clear_calling_hours=True), clock.now())
    row = await store.get_task(queued, clock.now())
    assert (row.timezone, row.timezone_source) == (None, "queue")


async def test_a_claim_on_a_holiday_moves_the_task_to_the_next_open_day(
    store: Store, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 12, 25, 10, tzinfo=UTC))  # 11:00 in Paris, Christmas
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    christmas = {**PARIS, "holidays": [{"date": "12-25", "name": "Christmas"}]}
    await store.update_queue(queue_id, QueueChanges(calling_hours=christmas), clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    assert (await store.claim("w1", clock.now(), 5, 30)).tasks == []
    row = await store.get_task(task_id, clock.now())
    assert row.status == "delayed_interval"
    assert row.run_at == datetime(2026, 12, 26, 8, tzinfo=UTC)  # 09:00 in Paris the next day
    [*_, delayed] = await store.events_for_task(task_id)
    assert delayed.type == "task.delayed"
    assert delayed.data["reason"] == "outside calling hours, holiday: Christmas (12-25)"


async def test_hours_that_holidays_keep_shut_for_years_move_the_task_a_year_on(
    store: Store, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 7, 16, 10, tzinfo=UTC))
    queue_id = await setup_queue(store, clock)
    client = await store.ensure_client("acme", clock.now())
    year = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    yearly = ["02-29"] + [f"{d:%m-%d}" for d in year if f"{d:%m-%d}" != "07-15"]  # 07-15 open
    one_off = [f"{y}-07-15" for y in range(2027, 2045)]  # … except in these years
    shut = {**PARIS, "windows": [{"days": ["daily"], "start": "09:00", "end": "18:00"}],
            "holidays": yearly + one_off}  # fmt: skip
    await store.update_queue(queue_id, QueueChanges(calling_hours=shut), clock.now())
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    assert (await store.claim("w1", clock.now(), 5, 30)).tasks == []
    row = await store.get_task(task_id, clock.now())
    assert (row.status, row.run_at) == ("delayed_interval", clock.now() + timedelta(days=366))
    [*_, delayed] = await store.events_for_task(task_id)
    assert delayed.data["reason"] == "calling hours do not open"
