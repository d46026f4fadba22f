"""What an IVR run produces and what its parts share: the run's result (:class:`IvrRun` and its
:class:`TraceEntry` trace), the predefined call variables (:func:`call_variables`), the
services the IVR talks to (:class:`JobQueue`, :class:`SmsSender`), and the signals element
handlers raise to the interpreter loop (:class:`Continue`, :class:`Stop`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ringback.ivr.errors import IvrError
from ringback.ivr.expr import render_value
from ringback.ivr.limits import LIMITS, IvrLimits, shorten
from ringback.ivr.parse import Document
from ringback.telephony.base import Call, CallRecord


class JobQueue(Protocol):
    """Where AddJob puts jobs: :class:`ringback.service.TaskService` is one."""

    async def add_jobs(self, client_id: int, items: Sequence[Any]) -> list[int]: ...


class SmsSender(Protocol):
    """Where SendSMS sends its messages."""

    async def send_sms(self, call: Call, *, from_number: str, to_number: str, text: str) -> None:
        """Send the SMS (or raise any Exception: SendSMS then fails the call with its message)."""
        ...


class RecordingSmsSender:
    """The default :class:`SmsSender`: sends nothing, records the SMS in the call record
    (``record.detail["sms"]``, a list of ``{"from", "to", "text"}``)."""

    async def send_sms(self, call: Call, *, from_number: str, to_number: str, text: str) -> None:
        sent = call.record.detail.setdefault("sms", [])
        sent.append({"from": from_number, "to": to_number, "text": text})


@dataclass(frozen=True, slots=True)
class TraceEntry:
    line: int
    element: str
    detail: str = ""

    def __str__(self) -> str:
        return f"line {self.line} {self.element}" + (f": {self.detail}" if self.detail else "")


@dataclass(slots=True)
class IvrRun:
    """What happened: the trace, the variables at the end, and how it ended."""

    trace: list[TraceEntry] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    set_variables: list[str] = field(default_factory=list)  # echoed as var_<name>
    jobs_added: list[int] = field(default_factory=list)
    error: IvrError | None = None
    call_error: str | None = None
    hung_up_by: str | None = None  # "Hangup", "end of document", "Transfer"
    # the URL the current document came from (errors are reported there); None: not a URL
    answer_url: str | None = None
    documents: list[str] = field(default_factory=list)  # where each loaded document came from
    fax: dict[str, str] = field(default_factory=dict)  # FaxOperation, FaxFilePath, ...
    other_legs: list[CallRecord] = field(default_factory=list)  # Transfer legs, ended
    notifications: list[str] = field(default_factory=list)  # answer-URL POSTs and their fate
    trace_bytes: int = 0  # the size of the trace kept so far (its entries as text, UTF-8)
    trace_dropped: int = 0  # entries left out once the trace was full (see limits)

    @property
    def ok(self) -> bool:
        return self.error is None and self.call_error is None

    def add_trace(
        self, entry: TraceEntry, limits: IvrLimits = LIMITS, *, final: bool = False
    ) -> None:
        """Append ``entry`` within the trace caps (:mod:`ringback.ivr.limits`): its detail is
        shortened; once the trace is full, entries are left out (one entry says so) unless
        ``final`` (how the call ended)."""
        if len(entry.detail) > limits.max_trace_detail_chars:
            detail = shorten(entry.detail, limits.max_trace_detail_chars)
            entry = TraceEntry(entry.line, entry.element, detail)
        size = len(str(entry).encode())
        full = (
            self.trace_dropped > 0
            or len(self.trace) >= limits.max_trace_entries
            or self.trace_bytes + size > limits.max_trace_bytes
        )
        if full and not final:
            if not self.trace_dropped:
                self.trace.append(
                    TraceEntry(
                        entry.line, "trace full",
                        f"later entries are left out (cap: {limits.max_trace_entries} entries, "
                        f"{limits.max_trace_bytes} bytes), except how the call ended",
                    )
                )  # fmt: skip
            self.trace_dropped += 1
            return
        self.trace.append(entry)
        self.trace_bytes += size

    def trace_lines(self) -> list[str]:
        """The trace as text, one line per entry (what call records keep)."""
        return [str(entry) for entry in self.trace]

    def var_parameters(self) -> dict[str, str]:
        """The ``var_<name>`` parameters of the answer-URL protocol for the Set variables."""
        return {f"var_{name}": render_value(self.variables[name]) for name in self.set_variables}


def call_variables(
    *,
    call_uuid: str,
    direction: str,
    calling_number: str,
    called_number: str,
    status: str = "in-progress",
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The predefined call variables (reference A2/A6), all strings.

    ``extra`` overrides: ``CallingNumber`` / ``CalledNumber`` there also set their legacy
    aliases (``From``; ``To`` and ``DNIS``).
    """
    extra = dict(extra or {})
    calling_number = extra.pop("CallingNumber", calling_number)
    called_number = extra.pop("CalledNumber", called_number)
    variables: dict[str, Any] = {
        "CallUUID": call_uuid,
        "CallStatus": status,
        "Direction": direction,
        "CallingNumber": calling_number,
        "CalledNumber": called_number,
        "From": calling_number,
        "To": called_number,
        "DNIS": called_number,
        "Anonymous": "false",
        "Digits": "",
    }
    variables.update(extra)
    return variables


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


class Continue(Exception):
    """Go on at ``index`` of ``document`` (a jump, or a newly loaded document)."""

    def __init__(self, document: Document, index: int, answer_url: str | None) -> None:
        self.document = document
        self.index = index
        self.answer_url = answer_url


class Stop(Exception):
    """End the run here: the call was hung up (Hangup, or a Transfer that bridged)."""
