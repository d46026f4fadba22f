"""The call record (CDR) of one call leg, and the one list of the fields a stored leg has.

This module owns :class:`CallRecord` (what a telephony backend records about a leg) and
``CDR_FIELDS``, the fields of a stored leg in the order the store writes them. The store's
write path, its row mapper and the API's leg views derive from ``CDR_FIELDS``; where a list
must stay spelled out (the table, the response models), a test checks it against this one.

Pure data, no I/O; imports nothing of ringback outside ``domain/``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from ringback.domain.model import Leg, Outcome


@dataclass(slots=True)
class CallRecord:
    """One call leg as it will be stored (a CDR row)."""

    leg_uuid: str
    call_uuid: str
    leg: Leg
    direction: str  # "outbound" | "inbound"
    from_number: str | None
    to_number: str
    caller_id_name: str | None
    started_at: datetime
    sip_code: int | None = None
    outcome: Outcome | None = None
    hangup_cause: str | None = None
    hangup_disposition: str | None = None  # send_bye, recv_bye, send_cancel, recv_refuse, ...
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    bridged_at: datetime | None = None
    bridged_with: str | None = None  # leg_uuid of the other party
    played: list[dict[str, Any]] = field(default_factory=list)
    dtmf_received: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    #: the call's fax (SendFax / ReceiveFax; the last one if it faxed more than once): see
    #: :data:`FAX_FIELDS`; None when the call did not fax
    fax: dict[str, Any] | None = None
    #: answering-machine detection (``ringback.domain.amd.AMD_FIELDS``); None when none ran
    amd: dict[str, Any] | None = None

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def billsec(self) -> float | None:
        if self.ended_at is None or self.answered_at is None:
            return 0.0 if self.ended_at is not None else None
        return (self.ended_at - self.answered_at).total_seconds()

    @property
    def bridged_duration_s(self) -> float | None:
        if self.bridged_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.bridged_at).total_seconds()


#: what a call record's ``fax`` holds: ``operation`` (``transmission`` / ``reception``),
#: ``file`` (the storage name: the document sent, or the received fax's TIFF), the T.30
#: outcome (``code``: 0 is OK, ``text``), ``pages``, ``bit_rate``, ``ecm``, ``remote_ident``
#: (the far station), ``seconds`` (of fax audio), and the storage names of a received fax's
#: ``tiff`` and ``pdf`` (None when nothing was received, and for a fax sent), the
#: ``transport`` that carried it (``g711`` or ``t38``) and ``t38_fallback`` (why a T.38 switch
#: ringback asked for did not happen, e.g. ``488 Not Acceptable Here``; else None)
FAX_FIELDS: tuple[str, ...] = (
    "operation", "file", "code", "text", "pages", "bit_rate", "ecm", "remote_ident", "seconds",
    "tiff", "pdf", "transport", "t38_fallback",
)  # fmt: skip


def fax_failed(fax: Mapping[str, Any] | None) -> bool:
    """Whether a call record's ``fax`` says the fax failed (a non-zero T.30 code)."""
    return fax is not None and fax.get("code") != 0


def fax_outcome(fax: Mapping[str, Any]) -> str:
    """A call record's ``fax`` in a few words, as a finish comment names it: ``fax sent: 2
    pages``, ``fax received: 1 page``, ``fax failed: 48 Disconnected after permitted
    retries``."""
    if fax_failed(fax):
        return f"fax failed: {fax.get('code')} {fax.get('text')}"
    pages = fax.get("pages") or 0
    done = "received" if fax.get("operation") == "reception" else "sent"
    return f"fax {done}: {pages} page{'' if pages == 1 else 's'}"


#: the fields a backend records, as :class:`CallRecord` declares them
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))

#: what a stored leg has besides its record: the attempt that placed it, its durations in
#: milliseconds (from the record's times), its write-ahead state (``LegState``) and the worker
#: that placed it
STORED_FIELDS: tuple[str, ...] = ("attempt", "duration_ms", "billsec_ms", "state", "worker")

#: The one field list of a stored leg (a CDR): the record's fields, then the stored ones.
CDR_FIELDS: tuple[str, ...] = RECORD_FIELDS + STORED_FIELDS

#: the fields that are times (``datetime``; stored as milliseconds since the epoch)
TIME_FIELDS: tuple[str, ...] = tuple(name for name in CDR_FIELDS if name.endswith("_at"))

#: the fields that are durations in milliseconds
MS_FIELDS: tuple[str, ...] = tuple(name for name in CDR_FIELDS if name.endswith("_ms"))


def record_values(record: CallRecord) -> dict[str, Any]:
    """The record's fields by name (``RECORD_FIELDS``), as they are (no copy)."""
    return {name: getattr(record, name) for name in RECORD_FIELDS}


def duration_ms(seconds: float | None) -> int | None:
    """A duration of the record (seconds) as the stored whole milliseconds."""
    return None if seconds is None else round(seconds * 1000)


def view_names(time_suffix: str) -> dict[str, str]:
    """How the API's views of a leg rename CDR fields: numbers as ``from`` / ``to``, times as
    ``start_time_<suffix>`` …, durations in seconds as ``duration`` / ``billsec``."""
    times = {"started_at": "start", "ringing_at": "ring", "answered_at": "answer",
             "ended_at": "end", "bridged_at": "bridged"}  # fmt: skip
    return {
        "from_number": "from",
        "to_number": "to",
        **{field: f"{stem}_time_{time_suffix}" for field, stem in times.items()},
        "duration_ms": "duration",
        "billsec_ms": "billsec",
    }


def shown_fields(renamed: Mapping[str, str], hidden: Collection[str]) -> dict[str, str]:
    """How a view of a leg names the ``CDR_FIELDS`` it shows: every field not ``hidden``, by
    its ``renamed`` name or its own. A field added to the CDR is shown unless a view hides it
    (and a test fails until the view's model has it)."""
    unknown = (set(renamed) | set(hidden)) - set(CDR_FIELDS)
    if unknown:
        raise ValueError(f"not CDR fields: {sorted(unknown)}")
    return {name: renamed.get(name, name) for name in CDR_FIELDS if name not in hidden}
