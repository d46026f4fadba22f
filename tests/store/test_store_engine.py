"""The store's contract for the engine's side and its plumbing (wake-ups, LISTEN, the database's
clock, closing, leases held and given back, look-ahead claims), on SQLite and PostgreSQL alike.

Wake-ups from another store come from a background connection (PostgreSQL LISTEN): the tests
wait for the callback itself (an event), never for a while of time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from test_store import finished, msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.model import Decision, TaskStatus
from ringback.domain.rows import QueueChanges
from ringback.store import AttemptLegs, ClaimedTask, Completion, Store

OpenStore = Callable[[], Awaitable[Store]]  # the open_shared fixture (tests/store/conftest.py)

#: how long a test waits for a notification that must come (real time; it normally takes ms)
NOTIFY_WAIT_S = 20


async def _acme(store: Store, clock: FakeClock, *, limit: int = 10) -> tuple[int, int]:
    queue_id = await setup_queue(store, clock, limit=limit)
    return await store.find_client("acme"), queue_id


def _retry_in(clock: FakeClock, seconds: float) -> Callable[[ClaimedTask, AttemptLegs], Completion]:
    """A reaper's judge that sends every lost attempt to be tried again in ``seconds``."""

    def judge(task: ClaimedTask, legs: AttemptLegs) -> Completion:
        retry = Decision(
            status=TaskStatus.DELAYED, run_at=clock.now() + timedelta(seconds=seconds),
            tries_used=1, caller_tries_used=0, attempt=task.attempt,
        )  # fmt: skip
        return Completion(task.id, task.fence, retry, [], expired_before=clock.now())

    return judge


# --- wake-ups -----------------------------------------------------------------------------------


async def test_on_wake_is_called_after_each_write_that_makes_or_changes_work(
    store: Store, clock: FakeClock
) -> None:
    wakes: list[int] = []
    store.on_wake(lambda: wakes.append(1))
    client = await store.ensure_client("acme", clock.now())
    off = await store.create_queue(client, "off", clock.now())
    assert wakes == []  # a queue switched off makes no work
    await store.create_queue(client, "on", clock.now(), status="on")
    assert len(wakes) == 1
    [task_id] = await store.add_tasks(client, off.id, [msg_task(clock)], clock.now())
    assert len(wakes) == 2
    await store.update_queue(off.id, QueueChanges(status="on"), clock.now())
    assert len(wakes) == 3
    await store.update_task(task_id, client, msg_task(clock, delay_s=5), clock.now())
    assert len(wakes) == 4
    await store.get_task(task_id, clock.now())
    await store.list_queues(client)
    assert len(wakes) == 4  # reads wake nobody


async def test_listen_wakes_on_work_another_store_commits_on_postgresql_only(
    open_shared: OpenStore, clock: FakeClock
) -> None:
    """PostgreSQL: LISTEN calls back once it is connected, then for each commit of new work by
    any process. SQLite: there is no other process to hear; listening is a no-op."""
    listening_store = await open_shared()
    writing_store = await open_shared()
    woke = asyncio.Event()
    stop = await listening_store.listen(woke.set)
    try:
        client = await writing_store.ensure_client("acme", clock.now())
        queue = await writing_store.create_queue(client, "q", clock.now(), status="on")
        if await listening_store.database_time() is None:  # SQLite
            await writing_store.add_tasks(client, queue.id, [msg_task(clock)], clock.now())
            assert not woke.is_set()
            return
        await asyncio.wait_for(woke.wait(), NOTIFY_WAIT_S)  # connected (and the queue's notify)
        woke.clear()
        await writing_store.add_tasks(client, queue.id, [msg_task(clock)], clock.now())
        await asyncio.wait_for(woke.wait(), NOTIFY_WAIT_S)
    finally:
        await stop()


async def test_database_time_is_the_servers_clock_on_postgresql_and_none_on_sqlite(
    store: Store, backend: str
) -> None:
    first = await store.database_time()
    if backend == "sqlite":
        assert first is None
        return
    assert first is not None and first.tzinfo is not None
    second = await store.database_time()
    assert second is not None and second >= first
    # the server's clock, not the test's fake one (which stands still in January 2026)
    assert abs(first - datetime.now(UTC)) < timedelta(hours=1)


async def test_what_a_closed_store_committed_is_read_by_the_next_store(
    open_shared: OpenStore, clock: FakeClock
) -> None:
    first_store = await open_shared()
    client = await first_store.ensure_client("acme", clock.now())
    queue = await first_store.create_queue(client, "q", clock.now(), status="on")
    [task_id] = await first_store.add_tasks(client, queue.id, [msg_task(clock)], clock.now())
    await first_store.close()
    next_store = await open_shared()
    assert await next_store.migrate(clock.now()) == []
    assert await next_store.find_client("acme") == client
    assert (await next_store.get_task(task_id, next_store.clock.now())).status == "scheduled"


# --- leases -------------------------------------------------------------------------------------


async def test_heartbeat_extends_only_the_owners_running_tasks(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    ids = await store.add_tasks(client, queue_id, [msg_task(clock)] * 3, clock.now())
    [mine] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    [theirs] = (await store.claim("w2", clock.now(), 1, 30)).tasks
    clock.advance(10)
    waiting = ids[2]
    assert await store.heartbeat("w1", clock.now(), 60, [mine.id, theirs.id, waiting]) == 1
    assert (await store.get_task(mine.id, clock.now())).lease_until == clock.now() + timedelta(
        seconds=60
    )
    assert (await store.get_task(theirs.id, clock.now())).lease_until == clock.now() + timedelta(
        seconds=20
    )
    assert (await store.get_task(waiting, clock.now())).lease_until is None
    done = finished(clock)
    assert await store.complete(
        [Completion(mine.id, mine.fence, done, done.events)], clock.now()
    ) == [True]
    assert await store.heartbeat("w1", clock.now(), 60, [mine.id]) == 0  # finished


async def test_release_gives_back_only_the_owners_tasks_with_a_new_fence(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 2, clock.now())
    [mine] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    [theirs] = (await store.claim("w2", clock.now(), 1, 30)).tasks
    assert await store.release("w1", [theirs.id], clock.now()) == 0
    assert (await store.get_task(theirs.id, clock.now())).lease_owner == "w2"
    assert await store.release("w1", [], clock.now()) == 0
    clock.advance(3)
    assert await store.release("w1", [mine.id], clock.now()) == 1
    task = await store.get_task(mine.id, clock.now())
    assert (task.status, task.attempt, task.run_at) == ("scheduled", 0, clock.now())
    assert task.fence > mine.fence
    done = finished(clock)  # the attempt given back may not write its result
    assert await store.complete(
        [Completion(mine.id, mine.fence, done, done.events)], clock.now()
    ) == [False]
    [again] = (await store.claim("w3", clock.now(), 1, 30)).tasks
    assert (again.id, again.attempt) == (mine.id, 1)


# --- claims -------------------------------------------------------------------------------------


async def test_claim_looks_ahead_to_tasks_due_within_the_look_ahead(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    [soon] = await store.add_tasks(client, queue_id, [msg_task(clock, delay_s=2)], clock.now())
    [later] = await store.add_tasks(client, queue_id, [msg_task(clock, delay_s=9)], clock.now())
    assert (await store.claim("w1", clock.now(), 10, 30)).tasks == []
    result = await store.claim("w1", clock.now(), 10, 30, lookahead_seconds=5)
    assert [t.id for t in result.tasks] == [soon]
    assert result.tasks[0].run_at == clock.now() + timedelta(seconds=2)
    assert result.next_due == clock.now() + timedelta(seconds=9)
    assert later not in [t.id for t in result.tasks]


async def test_claim_reports_blocked_when_due_work_waits_behind_the_limit(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock, limit=1)
    await store.add_tasks(client, queue_id, [msg_task(clock)] * 2, clock.now())
    first = await store.claim("w1", clock.now(), 5, 30)
    assert len(first.tasks) == 1 and first.blocked
    assert first.next_due == clock.now()
    [task] = first.tasks
    done = finished(clock)
    assert await store.complete(
        [Completion(task.id, task.fence, done, done.events)], clock.now()
    ) == [True]
    second = await store.claim("w1", clock.now(), 5, 30)
    assert len(second.tasks) == 1 and not second.blocked and second.next_due is None


async def test_a_claimed_task_carries_its_retry_state(store: Store, clock: FakeClock) -> None:
    client, queue_id = await _acme(store, clock)
    task = replace(msg_task(clock), max_tries=4, max_caller_tries=2, caller_pause_s=1.5)
    [task_id] = await store.add_tasks(client, queue_id, [task], clock.now())
    [claimed] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert (claimed.id, claimed.client_id, claimed.queue_id) == (task_id, client, queue_id)
    assert claimed.payload == task.payload and claimed.kind is task.kind
    retry = claimed.retry
    assert (retry.max_tries, retry.max_caller_tries, retry.caller_pause_s) == (4, 2, 1.5)
    assert (retry.tries_used, retry.attempt, retry.backoff) == (0, 1, task.backoff)


async def test_a_released_retry_goes_back_to_delayed_with_its_attempt_given_back(
    store: Store, clock: FakeClock
) -> None:
    client, queue_id = await _acme(store, clock)
    [task_id] = await store.add_tasks(client, queue_id, [msg_task(clock)], clock.now())
    [first] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert await store.release("w1", [task_id], clock.now()) == 1
    [second] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert (second.attempt, first.attempt) == (1, 1)
    clock.advance(31)  # the lease ran out: the reaper sends it down the retry path
    assert await store.reap(clock.now(), _retry_in(clock, 5)) == 1
    assert (await store.get_task(task_id, clock.now())).status == "delayed"
    clock.advance(5)
    [third] = (await store.claim("w1", clock.now(), 1, 30)).tasks
    assert third.attempt == 2
    assert await store.release("w1", [task_id], clock.now()) == 1
    task = await store.get_task(task_id, clock.now())
    assert (task.status, task.attempt, task.lease_owner) == ("delayed", 1, None)
