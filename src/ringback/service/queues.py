"""Queues (task schedulers): create, read, list, change, switch on or off, delete."""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ringback.clock import Clock
from ringback.domain.rows import QueueChanges, QueueRow
from ringback.service.audit import AuditLog, entry
from ringback.store import Store


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue and its live counts (the console's queue list): tasks waiting to start, running,
    waiting for a retry or for calling hours, and finished since midnight UTC by result."""

    queue: QueueRow
    scheduled: int
    running: int
    delayed: int
    finished_today: int
    succeeded_today: int

    @property
    def success_rate(self) -> float | None:
        """The share of today's finished tasks that succeeded (None: none finished)."""
        return self.succeeded_today / self.finished_today if self.finished_today else None


class QueueService:
    """A client's queues. Every method takes the client's id; another client's queue is
    NotFound, as if it did not exist."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.audit = AuditLog(store, clock)

    async def create(self, client_id: int, name: str, **fields: Any) -> QueueRow:
        """A new queue (Conflict: the name is taken). ``fields``: comment, status,
        concurrent_task_limit, max_calls_per_second, calling_hours, redial_interrupted."""
        queue = await self.store.create_queue(client_id, name, self.clock.now(), **fields)
        await self.audit.created(
            client_id, entry("created", "queue", queue.id, name=name, **fields)
        )
        return queue

    async def ensure(self, client_id: int, name: str, *, status: str = "off") -> QueueRow:
        """The queue named ``name``, made with ``status`` if it does not exist yet."""
        return await self.store.ensure_queue(client_id, name, self.clock.now(), status=status)

    async def get(self, client_id: int, queue_id: int, *, pending: bool = True) -> QueueRow:
        """The queue with its counters (``pending=False``: without the count of waiting tasks,
        which costs a count)."""
        return await self.store.get_queue(queue_id, client_id=client_id, pending=pending)

    async def find(self, client_id: int, name: str) -> QueueRow:
        return await self.store.find_queue(client_id, name)

    async def list(self, client_id: int | None = None) -> list[QueueRow]:
        """The client's queues (every client's with None: the operator's CLI)."""
        return await self.store.list_queues(client_id)

    async def stats(self, client_id: int) -> builtins.list[QueueStats]:
        """Every queue of the client with its live counts (:class:`QueueStats`)."""
        now = self.clock.now().astimezone(UTC)
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
        queues = await self.store.list_queues(client_id)
        counts = await self.store.queue_counts(client_id, midnight)
        out: builtins.list[QueueStats] = []
        for queue in queues:
            of = counts.get(queue.id, {})
            finished = {k: n for k, n in of.items() if k.startswith("finished/")}
            out.append(
                QueueStats(
                    queue=queue,
                    scheduled=of.get("scheduled", 0),
                    running=of.get("executed", 0),
                    delayed=of.get("delayed", 0) + of.get("delayed_interval", 0),
                    finished_today=sum(finished.values()),
                    succeeded_today=finished.get("finished/success", 0),
                )
            )
        return out

    async def change(self, client_id: int, queue_id: int, changes: QueueChanges) -> QueueRow:
        summary = {k: v for k, v in asdict(changes).items() if v not in (None, False)}
        with self.audit.change(client_id, entry("changed", "queue", queue_id, **summary)):
            return await self.store.update_queue(
                queue_id, changes, self.clock.now(), client_id=client_id
            )

    async def set_status(self, client_id: int, name: str, status: str) -> QueueRow:
        """Switch the queue named ``name`` on or off."""
        queue = await self.find(client_id, name)
        return await self.change(client_id, queue.id, QueueChanges(status=status))

    async def delete(self, client_id: int, queue_id: int, *, force: bool = False) -> int:
        """Delete the queue (Conflict while it has unfinished tasks, unless ``force``: they are
        canceled first). Returns the tasks canceled."""
        with self.audit.change(client_id, entry("deleted", "queue", queue_id, force=force)):
            return await self.store.delete_queue(
                queue_id, self.clock.now(), force=force, client_id=client_id
            )
