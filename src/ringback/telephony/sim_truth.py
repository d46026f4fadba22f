"""The simulator's truth log: what was really dialled, independent of the database.

With ``RINGBACK_SIM_TRUTH_LOG=<dir>`` every process appends one JSON line per leg event to
``<dir>/dials-<pid>.jsonl``:

- ``{"ev": "originate", "leg_uuid", "call_uuid", "to", "t", "pid"}`` when a leg is dialled;
- ``{"ev": "answer", "leg_uuid", "call_uuid", "to", "t", "pid"}`` when it answers;
- ``{"ev": "hangup", "leg_uuid", "call_uuid", "to", "disposition", "cause", "t", "pid"}``
  when it ends.

``t`` is Unix seconds on this host's own clock, the time the event was due (the simulator
applies its timeline lazily). ringback's clock follows the database server's (see
:class:`~ringback.clock.AlignedClock`), each process by its own reading of it, a few
milliseconds apart; that offset is taken out here, so the lines of several processes compare
with each other and with the chaos runner's kill times.

Each line is written with one ``os.write`` on an ``O_APPEND`` descriptor, so a line
whose write returned survives ``kill -9`` of the process. The chaos suite (``make chaos``)
compares these lines with the calls and tasks in the database.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any


class TruthLog:
    """Appends leg events to ``<directory>/dials-<pid>.jsonl`` (reopened after a fork)."""

    def __init__(self, directory: Path, host_offset: Callable[[], float] = lambda: 0.0) -> None:
        """``host_offset``: seconds ringback's clock is ahead of this host's now."""
        self.directory = Path(directory)
        self._host_offset = host_offset
        self._fd: int | None = None
        self._pid = 0

    def originate(self, leg_uuid: str, call_uuid: str, to: str, at: datetime) -> None:
        self._write({"ev": "originate", "leg_uuid": leg_uuid, "call_uuid": call_uuid, "to": to}, at)

    def answer(self, leg_uuid: str, call_uuid: str, to: str, at: datetime) -> None:
        self._write({"ev": "answer", "leg_uuid": leg_uuid, "call_uuid": call_uuid, "to": to}, at)

    def hangup(
        self,
        leg_uuid: str,
        call_uuid: str,
        to: str,
        at: datetime,
        *,
        disposition: str,
        cause: str,
    ) -> None:
        line = {
            "ev": "hangup",
            "leg_uuid": leg_uuid,
            "call_uuid": call_uuid,
            "to": to,
            "disposition": disposition,
            "cause": cause,
        }
        self._write(line, at)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _write(self, line: dict[str, Any], at: datetime) -> None:
        pid = os.getpid()
        line["t"] = at.timestamp() - self._host_offset()
        line["pid"] = pid
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        os.write(self._descriptor(pid), data)

    def _descriptor(self, pid: int) -> int:
        if self._fd is None or self._pid != pid:  # first line, or a forked child
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"dials-{pid}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._pid = pid
        return self._fd
