"""Prometheus metrics of one app (own registry, never the global one).

``ringback_tasks{status}`` and ``ringback_finished_tasks{result}`` are read from the store on
every scrape. The engine instruments (``attempts``, ``claim_seconds``, ``lateness_seconds``)
are only fed by a worker running in the same process: pass the same :class:`Metrics` to it
(it implements the worker's ``WorkerMetrics``: observe_claim, observe_lateness, count_attempt).
Labelled series appear once something was counted; nothing is made up.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ringback.domain.model import TaskStatus
from ringback.domain.rows import StatusReport

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_STORED = [s.value for s in TaskStatus if s is not TaskStatus.DELAYED_CONCURRENT_TASK]
_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tasks = Gauge(
            "ringback_tasks", "Tasks by stored status", ["status"], registry=self.registry
        )
        self.finished = Gauge(
            "ringback_finished_tasks", "Finished tasks by result", ["result"],
            registry=self.registry,
        )  # fmt: skip
        self.attempts = Counter(
            "ringback_attempts", "Call attempts by outcome", ["outcome"], registry=self.registry
        )
        self.claim_seconds = Histogram(
            "ringback_claim_seconds", "Time one claim transaction took", buckets=_SECONDS,
            registry=self.registry,
        )  # fmt: skip
        self.lateness_seconds = Histogram(
            "ringback_lateness_seconds", "Claim time minus the time the task was due",
            buckets=_SECONDS, registry=self.registry,
        )  # fmt: skip

    # the engine's WorkerMetrics protocol: a worker in this process reports here
    def observe_claim(self, seconds: float) -> None:
        self.claim_seconds.observe(seconds)

    def observe_lateness(self, seconds: float) -> None:
        self.lateness_seconds.observe(seconds)

    def count_attempt(self, outcome: str) -> None:
        self.attempts.labels(outcome=outcome).inc()

    def render(self, report: StatusReport) -> bytes:
        """The exposition text, with the task gauges from ``report`` (read just now)."""
        for status in _STORED:
            self.tasks.labels(status=status).set(report.counts.get(status, 0))
        for key, count in report.counts.items():
            if key.startswith("finished/"):
                self.finished.labels(result=key.removeprefix("finished/")).set(count)
        return generate_latest(self.registry)
