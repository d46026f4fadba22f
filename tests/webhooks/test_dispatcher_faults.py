"""While its database is away, each loop of the webhook dispatcher (fan-out, delivery) logs one
line, then a summary at most every 10 s, then one line on recovery: not a line (nor a
traceback) per retry. Here the fan-out's reads fail."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from structlog.testing import capture_logs

from ringback.api.schemas import task_json
from ringback.clock import FakeClock
from ringback.service.webhooks import WebhookService
from ringback.store.db import Store
from ringback.webhooks.dispatcher import Dispatcher, DispatcherConfig

OUTAGE_S = 47.0
RETRY_S = 0.25  # monotonic time each failed round takes


class FlakyStore:
    """A store unreachable for ``OUTAGE_S`` (of a monotonic clock it moves), then healthy
    with nothing to do; it stops the dispatcher a few healthy rounds later."""

    def __init__(self) -> None:
        self.now = 500.0
        self.failures = 0
        self.healthy_rounds = 0
        self.dispatcher: Dispatcher | None = None
        self._wake: Callable[[], None] = lambda: None

    def monotonic(self) -> float:
        return self.now

    def on_wake(self, callback: Callable[[], None]) -> None:
        self._wake = callback

    async def undispatched_events(self, limit: int) -> list[Any]:
        if self.now < 500.0 + OUTAGE_S:
            self.failures += 1
            self.now += RETRY_S
            self._wake()  # retry at once: time is moved here, not waited for
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        self.healthy_rounds += 1
        if self.healthy_rounds == 3:
            assert self.dispatcher is not None
            self.dispatcher.stop()
        self._wake()
        return []

    async def claim_deliveries(self, *args: Any) -> list[Any]:
        return []


async def test_an_outage_logs_one_start_line_summaries_every_10_s_and_one_recovery() -> None:
    store = FlakyStore()
    dispatcher = Dispatcher(
        WebhookService(cast(Store, store), clock := FakeClock()),
        clock,
        DispatcherConfig(idle_poll_seconds=0.0),
        owner="test",
        monotonic=store.monotonic,
        task_json=task_json,
    )
    store.dispatcher = dispatcher
    with capture_logs() as logs:
        await dispatcher.run()
    assert store.failures >= OUTAGE_S / RETRY_S  # ~188 retries
    assert all("exc_info" not in entry for entry in logs)
    events = [entry["event"] for entry in logs]
    assert events[0] == "webhook fan-out failing"
    assert "5432" in logs[0]["error"]
    summaries = [e for e in events if e.startswith("webhook fan-out still failing for ")]
    assert 1 <= len(summaries) <= math.ceil(OUTAGE_S / 10)
    assert events[-1] == f"webhook fan-out recovered after 47 s, {store.failures} failures"
    assert len(events) == 1 + len(summaries) + 1
