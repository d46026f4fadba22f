"""A refusal's reason and ``Retry-After`` kept in the call's record (trunk failover reads them)."""

from __future__ import annotations

from sipmessage import Response

from ringback.domain.cdr import CallRecord
from ringback.domain.digits import ascii_digits

#: a Retry-After longer than this is taken as this (a trunk is never paused for days)
MAX_RETRY_AFTER_S = 3600


def retry_after_s(raw: str | None) -> int | None:
    """The seconds of a ``Retry-After`` value (``delta-seconds [comment] *(;param)``, RFC 3261
    §20.33), at most :data:`MAX_RETRY_AFTER_S`; None when absent or not a number."""
    if raw is None:
        return None
    head = raw.strip().split(";", 1)[0].split("(", 1)[0].strip()
    if not ascii_digits(head):
        return None
    return min(int(head), MAX_RETRY_AFTER_S)


def note_refusal(record: CallRecord, response: Response) -> None:
    """Keep ``response``'s code, phrase and Retry-After (if any) in ``record.detail``."""
    record.detail["reason"] = f"{response.code} {response.phrase}"
    seconds = retry_after_s(response.headers.get("Retry-After"))
    if seconds is not None:
        record.detail["retry_after_s"] = seconds
