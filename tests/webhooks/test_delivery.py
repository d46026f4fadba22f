"""Webhook delivery against a real HTTP receiver on 127.0.0.1, on both stores.

The worker (tests/worker_env.py: the simulator in fast mode) and the dispatcher run in this
process on a fake clock: time for retries is moved, not waited for; the HTTP requests are real.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from ringback.api.schemas import task_json, task_out
from ringback.clock import FakeClock
from ringback.domain.credentials import new_signing_secret as new_secret
from ringback.service.webhooks import WebhookService
from ringback.store.db import Store
from ringback.webhooks.dispatcher import Dispatcher, DispatcherConfig
from ringback.webhooks.schedule import RetryPolicy
from ringback.webhooks.signing import verify
from support_webhooks import Received, Receiver
from worker_env import B_NUMBER as OK_B
from worker_env import WorkerEnv, worker_env

BUSY_B = "0907777486"


@dataclass
class Env(WorkerEnv):
    dispatcher: Dispatcher
    receiver: Receiver
    queue_id: int  # the default queue: where env.callback() adds tasks

    async def pending(self) -> int:
        _, total = await self.store.page_deliveries(self.client_id, status="pending", limit=1)
        return total

    async def deliver_all(self, rounds: int = 200) -> None:
        """Deliver until nothing is pending, moving the clock past every retry wait."""
        for _ in range(rounds):
            await self.dispatcher.run_once()
            if await self.pending() == 0:
                return
            self.clock.advance(3600)
        raise AssertionError("deliveries still pending")

    def seed_urls(self, tag: str) -> dict[str, str]:
        return {f: f"{self.receiver.url}/{tag}/{f}" for f in
                ("url_before", "url_before_again", "url_success", "url_after")}  # fmt: skip


@pytest.fixture
async def env(
    store: Store, clock: FakeClock, tmp_path: Path, receiver: Receiver
) -> AsyncIterator[Env]:
    work = await worker_env(store, clock, tmp_path)
    queue = await store.ensure_queue(work.client_id, "default", clock.now(), status="on")
    # timeouts far above what a loaded machine takes to answer: a request the receiver had and
    # answered is never taken for a lost one and sent again (the exactly-once checks); the
    # outage test shortens them for its slow receiver
    config = DispatcherConfig(
        connect_timeout_s=5.0, total_timeout_s=5.0, allow_private=True,
        retry=RetryPolicy(base_s=1.0, cap_s=60.0),
    )  # fmt: skip
    dispatcher = Dispatcher(
        WebhookService(store, clock),
        clock,
        config,
        owner="test-dispatcher",
        rng=random.Random(3),
        task_json=task_json,
    )
    yield Env(**work.parts(), dispatcher=dispatcher, receiver=receiver, queue_id=queue.id)


async def _secrets(env: Env) -> list[str]:
    key = await env.store.webhook_key(env.client_id, new_secret(), env.clock.now())
    subs = await env.store.list_subscriptions(env.client_id)
    return [key.secret, *(s.secret for s in subs)]


def _signed(request: Received, secrets: list[str]) -> bool:
    header = request.headers["Ringback-Signature"]
    stamp = int(header.split(",")[0].removeprefix("t="))
    return any(verify(header, request.body, s, now=stamp) for s in secrets)


def _by_target(requests: list[Received], path: str) -> list[tuple[str, int]]:
    return [(r.json["type"], r.json["sequence"]) for r in requests if r.path == path]


async def test_each_seed_url_receives_exactly_its_events_in_order_and_signed(env: Env) -> None:
    success = await env.callback(**env.seed_urls("ok"))
    retried = await env.callback(b_number=BUSY_B, try_count=3, try_again_pause=10,
                                 **env.seed_urls("busy"))  # fmt: skip
    canceled = await env.callback(start_time_utc="2030-01-01 00:00:00", **env.seed_urls("cxl"))
    assert await env.store.cancel_task(canceled, env.clock.now())
    await env.run_all_finished([success, retried])
    await env.deliver_all()

    got = env.receiver.requests()
    secrets = await _secrets(env)
    assert got and all(_signed(r, secrets) for r in got)
    assert all(r.headers["User-Agent"].startswith("ringback-webhooks/") for r in got)
    assert all(r.headers["Ringback-Event-Id"] == r.json["id"] for r in got)
    types = {path: [t for t, _ in _by_target(got, path)] for path in sorted({r.path for r in got})}
    assert types == {
        "/ok/url_before": ["task.started"],
        "/ok/url_success": ["task.finished"],
        "/ok/url_after": ["task.finished"],
        "/busy/url_before": ["task.started"],
        "/busy/url_before_again": ["task.started", "task.started"],
        "/busy/url_after": ["task.finished"],
        "/cxl/url_after": ["task.canceled"],
    }
    attempts = [r.json["attempt"] for r in got if r.path.startswith("/busy/url_before")]
    assert sorted(attempts) == [1, 2, 3]
    for path in types:
        seqs = [s for _, s in _by_target(got, path)]
        assert seqs == sorted(seqs)
    finished = next(r.json for r in got if r.path == "/ok/url_success")
    assert finished["task"]["id"] == success and finished["task"]["finish_result"] == "success"
    assert finished["client_id"] == env.client_id and finished["queue_id"] == env.queue_id


async def test_a_body_carries_the_task_as_the_api_shows_it_to_the_byte(env: Env) -> None:
    retried = await env.callback(b_number=BUSY_B, try_count=2, try_again_pause=10,
                                 **env.seed_urls("busy"))  # fmt: skip
    await env.run_all_finished([retried])
    await env.deliver_all()

    [finished] = [r for r in env.receiver.requests() if r.path == "/busy/url_after"]
    hooks = WebhookService(env.store, env.clock)
    row = (await hooks.tasks([retried]))[retried]
    calls = (await hooks.calls_for_tasks([retried]))[retried]
    shown = task_out(row, calls).model_dump(mode="json", by_alias=True)
    assert len(shown["calls"]) == 4  # two attempts, legs A and B each
    assert orjson.dumps({"task": shown})[1:-1] in finished.body


async def test_subscription_receives_every_event_of_every_task_in_sequence_order(env: Env) -> None:
    await env.store.create_subscription(
        env.client_id, url=f"{env.receiver.url}/all", events=["*"], secret=new_secret(),
        active=True, description="", now=env.clock.now(),
    )  # fmt: skip
    await env.store.create_subscription(
        env.client_id, url=f"{env.receiver.url}/calls", events=["call.*"], secret=new_secret(),
        active=True, description="", now=env.clock.now(),
    )  # fmt: skip
    ids = [await env.callback(b_number=BUSY_B if i % 2 else OK_B, try_count=2) for i in range(6)]
    await env.run_all_finished(ids)
    await env.deliver_all()
    got = env.receiver.requests()
    for task_id in ids:
        stored = [(e.type, e.seq) for e in await env.store.events_for_task(task_id)]
        mine = [r for r in got if r.json["task"]["id"] == task_id]
        assert _by_target(mine, "/all") == stored
        assert _by_target(mine, "/calls") == [(t, s) for t, s in stored if t.startswith("call.")]


@pytest.mark.slow  # waits out real HTTP timeouts of a slow receiver, many rounds
async def test_receiver_outage_errors_and_timeouts_delay_but_never_lose_or_reorder_events(
    env: Env,
) -> None:
    """Down, then 500, then slower than the timeout, then well: every event arrives, in order
    per task; an event arrives twice only when the receiver had it and timed out."""
    await env.store.create_subscription(
        env.client_id, url=f"{env.receiver.url}/all", events=["*"], secret=new_secret(),
        active=True, description="", now=env.clock.now(),
    )  # fmt: skip
    ids = [await env.callback(b_number=BUSY_B if i % 3 == 0 else OK_B, try_count=2,
                              **env.seed_urls(f"t{i}")) for i in range(8)]  # fmt: skip
    await env.run_all_finished(ids)

    env.receiver.stop()  # down
    for _ in range(2):
        await env.dispatcher.run_once()
        env.clock.advance(3600)
    assert env.receiver.requests() == []
    env.receiver.start()
    env.dispatcher.config.total_timeout_s = 0.5  # the slow receiver answers after 1 s
    for mode in ("error", "error", "slow", "slow"):
        env.receiver.mode = mode
        await env.dispatcher.run_once()
        env.clock.advance(3600)
    env.dispatcher.config.total_timeout_s = 5.0  # well again: nothing taken for lost
    env.receiver.mode = "ok"
    await env.deliver_all()

    got = env.receiver.requests()
    rows, total = await env.store.page_deliveries(env.client_id, limit=1000)
    assert total == len(rows) and all(r.status == "delivered" for r in rows)
    assert {r.mode for r in got} >= {"error", "slow", "ok"}
    seen: dict[tuple[str, str], str] = {}
    for request in got:
        key = (request.path, request.json["id"])
        if key in seen:  # a repeat: the earlier copy must have been processed and timed out,
            assert seen[key] in ("slow", "error")  # or refused (500: not processed)
        if request.mode in ("slow", "ok") or key not in seen:
            seen[key] = request.mode
    processed = [r for r in got if r.mode in ("ok", "slow")]
    dupes = {
        (r.path, r.json["id"])
        for r in processed
        if sum(1 for o in processed if (o.path, o.json["id"]) == (r.path, r.json["id"])) > 1
    }
    assert all(
        any(o.mode == "slow" for o in processed if (o.path, o.json["id"]) == d) for d in dupes
    )
    for task_id in ids:
        stored = [(e.type, e.seq) for e in await env.store.events_for_task(task_id)]
        mine = [r for r in processed if r.json["task"]["id"] == task_id and r.path == "/all"]
        first_seen: list[tuple[str, int]] = []
        for r in mine:
            item = (r.json["type"], r.json["sequence"])
            if item not in first_seen:
                first_seen.append(item)
        assert first_seen == stored


async def test_a_dead_delivery_lets_the_next_event_through_and_can_be_redelivered(
    env: Env,
) -> None:
    env.dispatcher.config.retry = RetryPolicy(base_s=1.0, cap_s=60.0, give_up_after_s=100)
    task_id = await env.callback(**env.seed_urls("d"))
    await env.run_all_finished([task_id])
    env.receiver.mode = "error"
    for _ in range(20):
        await env.dispatcher.run_once()
        env.clock.advance(30)
    dead, total = await env.store.page_deliveries(env.client_id, status="dead")
    # url_before died; the next events (url_success, url_after) went on and died too
    assert total == 3 and {d.target_kind for d in dead} == {"url_before", "url_success",
                                                              "url_after"}  # fmt: skip
    assert all(d.last_status_code == 500 and len(d.response_excerpt or "") <= 512 for d in dead)
    env.receiver.mode = "ok"
    for row in dead:
        await env.store.redeliver(row.id, env.client_id, env.clock.now())
    await env.deliver_all()
    ok = [r for r in env.receiver.requests() if r.mode == "ok"]
    assert sorted(r.path for r in ok) == ["/d/url_after", "/d/url_before", "/d/url_success"]


async def test_410_gone_disables_the_subscription(env: Env) -> None:
    sub = await env.store.create_subscription(
        env.client_id, url=f"{env.receiver.url}/gone", events=["task.*"], secret=new_secret(),
        active=True, description="", now=env.clock.now(),
    )  # fmt: skip
    env.receiver.mode = "gone"
    task_id = await env.callback()
    await env.run_all_finished([task_id])
    await env.dispatcher.run_once()
    after = await env.store.get_subscription(sub.id, env.client_id)
    assert not after.active and "410" in (after.disabled_reason or "")
    env.receiver.mode = "ok"
    for _ in range(3):  # its later events are held, not sent, while it is disabled
        env.clock.advance(3600)
        await env.dispatcher.run_once()
    assert len(env.receiver.requests()) == 1
    await env.store.update_subscription(sub.id, env.client_id, {"active": True}, env.clock.now())
    await env.deliver_all()  # switched on again: they follow, in order
    types = [r.json["type"] for r in env.receiver.requests()]
    assert types == ["task.created", "task.started", "task.finished"]


async def test_a_lost_lease_is_taken_over_and_the_event_is_still_delivered(env: Env) -> None:
    """A dispatcher that claimed deliveries and died (kill -9) leaves leases that run out;
    another dispatcher then sends them."""
    task_id = await env.callback(**env.seed_urls("k"))
    await env.run_all_finished([task_id])
    await env.dispatcher.fan_out()
    claimed = await env.store.claim_deliveries("dead-worker", env.clock.now(), 100, 60)
    assert claimed  # and this owner never answers
    await env.dispatcher.run_once()
    assert env.receiver.requests() == []  # still leased
    env.clock.advance(61)
    await env.deliver_all()
    assert sorted(r.path for r in env.receiver.requests()) == [
        "/k/url_after", "/k/url_before", "/k/url_success"]  # fmt: skip
    # the dead owner's late answer is refused by the fence
    from ringback.domain.rows import DeliveryResult

    late = [DeliveryResult(c.id, c.fence, "dead", None, 500, "late", None) for c in claimed]
    await env.store.finish_deliveries(late, env.clock.now())
    rows, _ = await env.store.page_deliveries(env.client_id)
    assert {r.status for r in rows} == {"delivered"}


async def test_requests_to_one_host_never_exceed_the_per_host_connection_limit(env: Env) -> None:
    env.dispatcher.config.per_host = 2
    env.dispatcher.config.total_timeout_s = 5.0
    await env.store.create_subscription(
        env.client_id, url=f"{env.receiver.url}/all", events=["task.created"],
        secret=new_secret(), active=True, description="", now=env.clock.now(),
    )  # fmt: skip
    for _ in range(8):  # eight tasks: eight first events that may go in parallel
        await env.callback(start_time_utc="2030-01-01 00:00:00")
    env.receiver.mode, env.receiver.slow_s = "hold", 0.2
    await env.dispatcher.run_once()
    assert len(env.receiver.requests()) == 8
    assert env.receiver.peak == 2


async def test_a_delivery_to_an_impossible_url_goes_dead_at_once_and_the_next_event_goes_through(
    env: Env,
) -> None:
    # a subscription stored before URLs were checked: IDNA cannot encode its host
    sub = await env.store.create_subscription(
        env.client_id, url="https://\u05d0a.example/hook", events=["*"], secret=new_secret(),
        active=True, description="", now=env.clock.now(),
    )  # fmt: skip
    task_id = await env.callback(b_number=BUSY_B, try_count=2)
    await env.dispatcher.run_once()  # task.created: no retry wait, no clock moved
    dead, total = await env.store.page_deliveries(env.client_id, status="dead")
    assert total >= 1 and await env.pending() == 0
    assert all((d.last_error or "").startswith("refused: ") for d in dead)
    await env.store.update_subscription(
        sub.id, env.client_id, {"url": f"{env.receiver.url}/fixed"}, env.clock.now()
    )
    await env.run_all_finished([task_id])
    await env.deliver_all()
    got = [r.json["type"] for r in env.receiver.requests() if r.path == "/fixed"]
    assert got and "task.finished" in got  # the later events of that target were delivered
