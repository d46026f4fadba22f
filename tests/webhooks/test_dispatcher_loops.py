"""The running dispatcher (``Dispatcher.run``: its fan-out and delivery loops) against real
receivers on 127.0.0.1, on both stores: outcomes are stored in batches while sends are in
flight, but a send that ends is never held behind a slow one for longer than the idle poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ringback.api.schemas import task_json
from ringback.clock import FakeClock, SystemClock
from ringback.domain.credentials import new_signing_secret as new_secret
from ringback.service.webhooks import WebhookService
from ringback.store.db import Store
from ringback.webhooks.dispatcher import Dispatcher, DispatcherConfig
from support_webhooks import Receiver
from worker_env import until, worker_env

HOLD_S = 8.0  # the slow receiver answers after this (within the dispatcher's timeout)
WAIT_S = 6.0  # how long the fast receiver's outcomes may take to be stored, at most


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    running.mode, running.slow_s = "hold", HOLD_S
    try:
        yield running
    finally:
        running.stop()


async def test_a_fast_receivers_outcomes_are_stored_while_a_slow_receiver_holds_its_requests(
    store: Store, clock: FakeClock, tmp_path: Path, receiver: Receiver, slow_receiver: Receiver
) -> None:
    env = await worker_env(store, clock, tmp_path)  # its worker is not run: nothing is dialled
    client = env.client_id
    for target in (receiver, slow_receiver):
        await store.create_subscription(
            client, url=f"{target.url}/hook", events=["task.created"], secret=new_secret(),
            active=True, description="", now=clock.now(),
        )  # fmt: skip
    for _ in range(3):
        await env.callback()
    dispatcher = Dispatcher(
        WebhookService(store, SystemClock()),
        SystemClock(),
        DispatcherConfig(total_timeout_s=HOLD_S + 20, idle_poll_seconds=0.25, allow_private=True),
        owner="test-loops",
        task_json=task_json,
    )

    async def delivered() -> int:
        _, total = await store.page_deliveries(client, status="delivered", limit=1)
        return total

    running = asyncio.create_task(dispatcher.run())
    try:
        await until(lambda: slow_receiver.active == 3, within=WAIT_S, what="slow requests")
        await until(lambda: _equal(delivered(), 3), within=WAIT_S, what="fast outcomes stored")
        # stored while the slow receiver still holds its three requests open: they did not
        # wait for those to end
        assert slow_receiver.active == 3
        assert len(receiver.requests()) == 3
    finally:
        dispatcher.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, timeout=HOLD_S + 30)
    assert await delivered() == 6  # the slow ones' outcomes were stored on the way out


async def _equal(value: Any, expected: int) -> bool:
    return bool(await value == expected)
