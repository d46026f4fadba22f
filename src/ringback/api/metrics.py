"""Prometheus metrics of one app (own registry, never the global one).

Read from the store on every scrape (so every process shows the whole service):

- ``ringback_tasks{status}`` and ``ringback_finished_tasks{result}``: all clients;
- ``ringback_queue_tasks{client,queue,status}``: per queue, for the
  :data:`MAX_LABELLED_QUEUES` queues holding the most tasks; the rest are summed under
  ``client="(other)", queue="(other)"`` so the number of series stays bounded;
- ``ringback_webhook_deliveries{client,status}`` (pending, delivered, dead) and
  ``ringback_webhook_oldest_pending_seconds``: how long the longest-waiting pending delivery has
  been due (0: none).

Fed by this process: the engine's ``ringback_attempts_total{outcome}``,
``ringback_claim_seconds``, ``ringback_lateness_seconds`` and ``ringback_calls_in_progress``
(a worker in this process: pass the same :class:`Metrics` to it; it implements the worker's
``WorkerMetrics``), the API's ``ringback_http_requests_total{method,route,status}`` and
``ringback_http_request_seconds{method,route}`` (``route`` is the route's template, e.g.
``/client/{client_id}/jobs/``, never the raw path), and the process collectors
(``process_*``: CPU, memory, open files; ``python_*``). Labelled series appear once something was
counted; nothing is made up.

With the sip dialer, this process's view of its trunks (:meth:`Metrics.watch_sip_trunks`):
``ringback_sip_trunk_up{trunk}`` (1 up, 0 down by the last OPTIONS ping; absent while not
pinged), ``ringback_sip_trunk_latency_seconds{trunk}`` (the last ping's round trip) and
``ringback_sip_trunk_calls{trunk}`` (calls on the trunk now).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from ringback.domain.model import TaskStatus
from ringback.domain.rows import MetricsCounts, StatusReport

__all__ = ["CONTENT_TYPE_LATEST", "MAX_LABELLED_QUEUES", "OTHER", "Metrics"]

_STORED = [s.value for s in TaskStatus if s is not TaskStatus.DELAYED_CONCURRENT_TASK]
_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: queues with series of their own; more would make a scrape (and Prometheus) heavy
MAX_LABELLED_QUEUES = 200
#: the label of what is summed beyond that bound
OTHER = "(other)"
del GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR  # the global registry's: not used


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.tasks = Gauge(
            "ringback_tasks", "Tasks by stored status", ["status"], registry=registry
        )
        self.finished = Gauge(
            "ringback_finished_tasks", "Finished tasks by result", ["result"], registry=registry
        )
        self.queue_tasks = Gauge(
            "ringback_queue_tasks", "Tasks by queue and stored status",
            ["client", "queue", "status"], registry=registry,
        )  # fmt: skip
        self.deliveries = Gauge(
            "ringback_webhook_deliveries", "Webhook deliveries by client and status",
            ["client", "status"], registry=registry,
        )  # fmt: skip
        self.oldest_pending = Gauge(
            "ringback_webhook_oldest_pending_seconds",
            "How long the longest-waiting pending webhook delivery has been due (0: none)",
            registry=registry,
        )
        self.attempts = Counter(
            "ringback_attempts", "Call attempts by outcome", ["outcome"], registry=registry
        )
        self.calls_in_progress = Gauge(
            "ringback_calls_in_progress", "Attempts this process's worker has under way",
            registry=registry,
        )  # fmt: skip
        self.claim_seconds = Histogram(
            "ringback_claim_seconds", "Time one claim transaction took", buckets=_SECONDS,
            registry=registry,
        )  # fmt: skip
        self.lateness_seconds = Histogram(
            "ringback_lateness_seconds", "Claim time minus the time the task was due",
            buckets=_SECONDS, registry=registry,
        )  # fmt: skip
        self.http_requests = Counter(
            "ringback_http_requests", "API requests by method, route template and status",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.http_seconds = Histogram(
            "ringback_http_request_seconds", "API request duration by method and route template",
            ["method", "route"], buckets=_SECONDS, registry=registry,
        )  # fmt: skip

        self.sip_trunk_up = Gauge(
            "ringback_sip_trunk_up", "1: the SIP trunk answered its last OPTIONS ping; 0: not",
            ["trunk"], registry=registry,
        )  # fmt: skip
        self.sip_trunk_latency = Gauge(
            "ringback_sip_trunk_latency_seconds", "Round trip of the trunk's last OPTIONS ping",
            ["trunk"], registry=registry,
        )  # fmt: skip
        self.sip_trunk_calls = Gauge(
            "ringback_sip_trunk_calls", "Calls on the SIP trunk now, in this process",
            ["trunk"], registry=registry,
        )  # fmt: skip
        self._sip_trunks: Callable[[], list[dict[str, Any]]] | None = None

    def watch_sip_trunks(self, report: Callable[[], list[dict[str, Any]]]) -> None:
        """Read the sip dialer's trunks (``TrunkPool.report``) at each scrape."""
        self._sip_trunks = report

    def _render_sip_trunks(self) -> None:
        if self._sip_trunks is None:
            return
        for gauge in (self.sip_trunk_up, self.sip_trunk_latency, self.sip_trunk_calls):
            gauge.clear()
        for trunk in self._sip_trunks():
            name = str(trunk["name"])
            self.sip_trunk_calls.labels(trunk=name).set(trunk["calls"])
            if trunk["state"] != "unknown":
                self.sip_trunk_up.labels(trunk=name).set(1 if trunk["state"] == "up" else 0)
            if trunk["latency_ms"] is not None:
                self.sip_trunk_latency.labels(trunk=name).set(trunk["latency_ms"] / 1000)

    # the engine's WorkerMetrics protocol: a worker in this process reports here
    def observe_claim(self, seconds: float) -> None:
        self.claim_seconds.observe(seconds)

    def observe_lateness(self, seconds: float) -> None:
        self.lateness_seconds.observe(seconds)

    def count_attempt(self, outcome: str) -> None:
        self.attempts.labels(outcome=outcome).inc()

    def watch_calls_in_progress(self, count: Callable[[], int]) -> None:
        """Read the worker's attempts under way at each scrape."""
        self.calls_in_progress.set_function(count)

    def watch_sip_registrations(self, read: Callable[[], list[tuple[str, bool, float]]]) -> None:
        """``ringback_sip_registered{aor}`` (1 bound, 0 not) and
        ``ringback_sip_registration_expires_seconds{aor}`` from ``read()`` at each scrape:
        (AOR, bound, seconds until the binding expires) for each of the dialer's registrations."""
        self.registry.register(_SipRegistrations(read))

    # the API's request log reports here
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_seconds.labels(method=method, route=route).observe(seconds)

    def render(self, report: StatusReport, counts: MetricsCounts, now: datetime) -> bytes:
        """The exposition text, with the store's gauges from ``report`` and ``counts`` (read
        just now)."""
        for status in _STORED:
            self.tasks.labels(status=status).set(report.counts.get(status, 0))
        for key, count in report.counts.items():
            if key.startswith("finished/"):
                self.finished.labels(result=key.removeprefix("finished/")).set(count)
        self.queue_tasks.clear()  # a queue deleted since the last scrape has no series left
        for (client, queue, status), count in _bounded(counts.tasks).items():
            self.queue_tasks.labels(client=client, queue=queue, status=status).set(count)
        self.deliveries.clear()
        for client, status, count in counts.deliveries:
            self.deliveries.labels(client=client, status=status).set(count)
        oldest = counts.oldest_pending_delivery
        self.oldest_pending.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        self._render_sip_trunks()
        return generate_latest(self.registry)


def _bounded(rows: list[tuple[str, str, str, int]]) -> dict[tuple[str, str, str], int]:
    """Per (client, queue, status); the queues beyond the :data:`MAX_LABELLED_QUEUES` largest
    summed under :data:`OTHER`."""
    sizes: dict[tuple[str, str], int] = defaultdict(int)
    for client, queue, _status, count in rows:
        sizes[(client, queue)] += count
    kept = set(sorted(sizes, key=lambda key: (-sizes[key], key))[:MAX_LABELLED_QUEUES])
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for client, queue, status, count in rows:
        key = (client, queue) if (client, queue) in kept else (OTHER, OTHER)
        out[(*key, status)] += count
    return out


class _SipRegistrations:
    """The SIP registrations' state, read at each scrape (a custom collector)."""

    def __init__(self, read: Callable[[], list[tuple[str, bool, float]]]) -> None:
        self._read = read

    def describe(self) -> list[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families(self._read())

    @staticmethod
    def _families(rows: Sequence[tuple[str, bool, float]] = ()) -> list[GaugeMetricFamily]:
        bound = GaugeMetricFamily(
            "ringback_sip_registered", "1 when the AOR is registered, else 0", labels=["aor"]
        )
        expires = GaugeMetricFamily(
            "ringback_sip_registration_expires_seconds",
            "Seconds until the AOR's binding expires (0: not bound)",
            labels=["aor"],
        )
        for aor, registered, seconds in rows:
            bound.add_metric([aor], 1.0 if registered else 0.0)
            expires.add_metric([aor], max(0.0, seconds))
        return [bound, expires]
