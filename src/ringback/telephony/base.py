"""The dialer seam: what the engine and the IVR ask of any telephony backend (sim, sip).

The call record a backend fills in is `ringback.domain.cdr.CallRecord`, re-exported here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ringback.domain.cdr import CallRecord as CallRecord  # re-exported: the CDR lives in domain
from ringback.domain.model import Leg, Outcome
from ringback.ids import new_uuid
from ringback.telephony.fax.result import FaxResult, ReceivedFax


@dataclass(slots=True)
class OriginateRequest:
    to_number: str
    caller_id_number: str | None
    caller_id_name: str | None = None
    ring_timeout_s: float = 30.0
    leg: Leg = Leg.MAIN
    call_uuid: str = ""  # the attempt's call uuid; legs of one attempt share it
    variables: dict[str, str] = field(default_factory=dict)
    # the leg's id, chosen before dialling so that the leg can be stored first (write-ahead);
    # empty: the dialer picks one. The sip dialer also makes it the SIP Call-ID.
    leg_uuid: str = ""
    queue_id: int | None = None  # the task's queue: the sip dialer chooses trunks by it


def outbound_record(
    request: OriginateRequest, started_at: datetime, from_number: str | None = None
) -> CallRecord:
    """The record of a new outbound leg as ``request`` describes it; its id is the request's
    (chosen before dialling) or a new one."""
    return CallRecord(
        leg_uuid=request.leg_uuid or new_uuid(),
        call_uuid=request.call_uuid,
        leg=request.leg,
        direction="outbound",
        from_number=from_number or request.caller_id_number,
        to_number=request.to_number,
        caller_id_name=request.caller_id_name,
        started_at=started_at,
    )


class CallError(Exception):
    """A media or signalling operation failed on a live call (e.g. the far end hung up)."""


def played_file(path: Path | str, name: str | None, loop: int, seconds: float) -> dict[str, Any]:
    """A call record's ``played`` entry for a file: named by ``name`` (a storage name or URL),
    else by the file's own name, never by the server's path."""
    return {"type": "play", "file": name or Path(path).name, "loop": loop,
            "seconds": round(seconds, 3)}  # fmt: skip


def played_speech(
    text: str, language: str | None, voice: str | None, loop: int, seconds: float
) -> dict[str, Any]:
    """A call record's ``played`` entry for spoken text."""
    return {"type": "speak", "text": text, "language": language, "voice": voice, "loop": loop,
            "seconds": round(seconds, 3)}  # fmt: skip


def ended_error(record: CallRecord, action: str) -> CallError:
    """Why ``action`` cannot be done on the call of ``record``, which has ended."""
    if record.answered_at is None:
        return CallError(f"cannot {action}: the call was not answered")
    if record.hangup_disposition == "recv_bye":
        return CallError("far end hung up")
    return CallError(f"cannot {action}: the call has ended")


class CannotPlay(CallError):
    """A file cannot be played (missing, unreadable, not audio); the call itself goes on.

    ``path`` is the server's path (for logs of this process only); ``str()`` and ``reason``
    never show it: messages a client sees name the file by its storage name or URL."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot play {Path(path).name}: {reason}")
        self.path = str(path)
        self.reason = reason


class CallNotSupported(Exception):
    """The backend cannot do this operation at all (the message says which and which backend,
    e.g. ``SendFax is not supported by the sim backend``); the call itself is unaffected."""


class Call(Protocol):
    """One leg. Methods that need an answered call raise :class:`CallError` otherwise."""

    @property
    def record(self) -> CallRecord: ...

    async def wait_answer(self) -> Outcome:
        """Until answered or failed; ``Outcome.ANSWERED`` or the failure outcome."""
        ...

    async def play(self, path: Path, *, loop: int = 1, name: str | None = None) -> None:
        """Play the WAV file at ``path``; ``name`` is what the call's record shows for it (a
        storage name or URL: never the server's path; default the file's own name)."""
        ...

    async def speak(
        self, text: str, *, language: str | None = None, voice: str | None = None, loop: int = 1
    ) -> None: ...

    async def wait(self, seconds: float) -> None: ...

    async def collect_digits(
        self, *, max_digits: int, timeout_s: float, finish_on_key: str = "#"
    ) -> str: ...

    async def send_dtmf(self, digits: str) -> None: ...

    async def bridge(self, other: Call) -> None:
        """Connect the two answered legs; returns when either side hangs up."""
        ...

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """End the call: BYE when answered, CANCEL while ringing; idempotent."""
        ...

    async def park(self, timeout_s: float, music: Path | None = None) -> None:
        """Hold the call (music on hold when answered, ringback while ringing) until
        ``timeout_s`` passes; CallError if it ends meanwhile."""
        ...

    async def send_fax(
        self, path: Path, *, header: str = "", ident: str = "", name: str | None = None
    ) -> FaxResult:
        """Send the fax TIFF at ``path`` (``telephony.fax.documents.convert``'s output) on the
        answered call, ``header`` above each page, ``ident`` as this station's id; ``name`` is
        what the call's record shows for it (as for :meth:`play`). A failed transmission is a
        result with a non-zero code; CallNotSupported when the backend cannot fax, CallError
        when the call is not up."""
        ...

    async def receive_fax(
        self, timeout_s: float, *, ident: str = "", name: str | None = None
    ) -> ReceivedFax:
        """Receive a fax on the answered call within ``timeout_s`` of audio: the result and
        the TIFF (empty unless the result is a success); errors as for :meth:`send_fax`."""
        ...

    async def wait_ended(self) -> CallRecord: ...


class Dialer(Protocol):
    name: str

    async def originate(self, request: OriginateRequest) -> Call:
        """Start an outbound leg and return at once; the leg rings in the background."""
        ...

    async def close(self) -> None: ...
