"""What an attempt runner is given: the task, the dialer, storage, and a way to report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ringback.client_files import Storage
from ringback.clock import Clock
from ringback.domain.model import EventType, TaskKind
from ringback.telephony.base import CallRecord, Dialer

if TYPE_CHECKING:  # the IVR interpreter is imported by an ivr_call's attempt only
    from ringback.ivr.fetch import Fetcher
    from ringback.ivr.interpret import JobQueue


@dataclass(slots=True)
class AttemptContext:
    task_id: int
    client_id: int
    queue_id: int
    kind: TaskKind
    attempt: int  # 1-based number of this attempt
    call_uuid: str  # shared by every leg of this attempt; becomes the task's ``cdr``
    payload: dict[str, Any]
    dialer: Dialer
    storage: Storage
    clock: Clock
    ring_timeout_s: float = 30.0
    # where an IVR's <AddJob> puts jobs (the worker gives its TaskService); None: AddJob fails
    jobs: JobQueue | None = None
    # what an IVR fetches its URLs with (the worker's); None: every URL fails, said in the trace
    fetcher: Fetcher | None = None
    calls: list[CallRecord] = field(default_factory=list)
    progress: list[tuple[EventType, dict[str, Any]]] = field(default_factory=list)
    # set by the worker: called on every emit, so progress events are written early
    on_progress: Callable[[AttemptContext], None] | None = None

    def emit(self, type: EventType, data: dict[str, Any]) -> None:
        """A lifecycle fact that happened during the attempt (e.g. ``call.answered``)."""
        self.progress.append((type, data))
        if self.on_progress is not None:
            self.on_progress(self)

    def record_call(self, record: CallRecord) -> None:
        """A finished leg; stored with the attempt's result."""
        self.calls.append(record)
