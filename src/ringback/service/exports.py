"""CSV exports of a client's tasks and calls, streamed: the text comes a chunk at a time (the
header first, then :data:`CHUNK` rows per read of the store), so an export of any size holds
one chunk in memory, and the database is read in short keyset reads (``store/exports.py``).

The columns and the cell rules (UTC ISO 8601 times, formula-like cells prefixed with an
apostrophe) are in :mod:`ringback.domain.export`. The filters are the lists' own: a task
export takes what ``TaskService.page`` takes, a calls export the call history's window (and
the console's outcome).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Unpack

from ringback.clock import Clock
from ringback.domain.export import (
    CALL_COLUMNS,
    TASK_COLUMNS,
    call_cells,
    csv_lines,
    header,
    task_cells,
)
from ringback.store import Store, TaskFilters

#: rows read from the store per chunk
CHUNK = 1000


class Exports:
    """A client's tasks and calls as CSV text, a chunk at a time."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def check_tasks(self, **filters: Unpack[TaskFilters]) -> None:
        """NotFound when the filters name a queue the client does not have: called before an
        answer starts, so that the error is an error and not a truncated file."""
        queue_id = filters.get("queue_id")
        if queue_id is not None:
            await self.store.get_queue(queue_id, client_id=filters.get("client_id"), pending=False)

    async def tasks_csv(
        self, *, chunk: int = CHUNK, **filters: Unpack[TaskFilters]
    ) -> AsyncIterator[str]:
        """The tasks matching ``filters`` by id: the header, then one text per chunk."""
        yield header(TASK_COLUMNS)
        after = 0
        while True:
            rows = await self.store.tasks_after(self.clock.now(), after, limit=chunk, **filters)
            if not rows:
                return
            yield csv_lines(task_cells(row) for row in rows)
            if len(rows) < chunk:
                return
            after = rows[-1].id

    async def calls_csv(
        self,
        client_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        outcome: str | None = None,
        chunk: int = CHUNK,
    ) -> AsyncIterator[str]:
        """The client's calls that started in [start, end) (with a leg that ended with
        ``outcome``), oldest first, one row per call: the header, then one text per chunk."""
        yield header(CALL_COLUMNS)
        key: tuple[int, int] | None = None
        while True:
            calls, key = await self.store.calls_after(
                client_id, key, limit=chunk, start=start, end=end, outcome=outcome
            )
            if calls:
                yield csv_lines(call_cells(legs) for legs in calls if legs)
            if key is None or len(calls) < chunk:
                return
