"""What a worker is built with and reports: its settings (:class:`WorkerConfig`), its counters
(:class:`WorkerStats`), where it reports measurements (:class:`WorkerMetrics`), and its id."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from ringback.config import Settings
from ringback.ivr.fetch import FetchConfig


class WorkerMetrics(Protocol):
    """Where a worker reports what it measures (the API's Prometheus metrics, for one)."""

    def observe_claim(self, seconds: float) -> None: ...

    def observe_lateness(self, seconds: float) -> None: ...

    def count_attempt(self, outcome: str) -> None: ...


@dataclass(slots=True)
class WorkerConfig:
    max_in_flight: int = 150
    claim_batch: int = 200
    lease_seconds: float = 60.0
    reap_every_seconds: float = 5.0
    # finish waiting tasks whose expires_at passed (a bounded, index-driven sweep; a claim
    # finishes the due ones itself)
    expire_every_seconds: float = 10.0
    # fold the per-queue status counts kept as appended changes (Store.compact_status_counts)
    counts_every_seconds: float = 5.0
    idle_poll_seconds: float = 1.0  # upper bound on sleep: catches work added by other processes
    blocked_poll_seconds: float = 0.05  # due work held back by queue limits: look again this soon
    # claim tasks due this soon and dial each at its exact run_at: the claim's database round
    # trips then never make a call late (the slot is held at most this much early)
    lookahead_seconds: float = 0.25
    shutdown_grace_seconds: float = 30.0
    ring_timeout_seconds: float = 30.0
    # how an IVR fetches its answer URLs, GetJSON and Redirect targets
    fetch: FetchConfig = field(default_factory=FetchConfig)

    @property
    def reap_after(self) -> float:
        """How long this worker must have reached the database without a failure before it
        reaps (after it starts, and after an outage): two leases. Every live worker renews its
        leases every third of a lease once the database is back; one lease left too little
        room on a loaded machine, where a renewal can take seconds (the chaos suite once saw
        two tasks of live workers reaped after a 20 s outage with an 8 s lease)."""
        return 2 * self.lease_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            max_in_flight=settings.max_in_flight,
            claim_batch=settings.claim_batch,
            lease_seconds=settings.lease_seconds,
            ring_timeout_seconds=settings.ring_timeout_seconds,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            fetch=FetchConfig.from_settings(settings),
        )


@dataclass(slots=True)
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    fenced_out: int = 0
    reaped: int = 0
    released: int = 0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
