"""Response models of the call-history and storage routes.

Times are the seed's ``YYYY-MM-DD HH:MM:SS`` in UTC; durations are whole seconds (rounded
down, as a CDR's ``duration`` / ``billsec``). The values come from ``ringback.history``; a leg's
fields (:class:`CdrLeg`) are ``history.CDR_LEG_FIELDS``, derived from the one CDR field list
(``ringback.domain.cdr.CDR_FIELDS``), and a test checks that this model names the same.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ringback.api.amd_schemas import AmdOut
from ringback.api.fax_links import FaxOut

SeedTime = str


class CdrLeg(BaseModel):
    """One leg (part) of a call, as the telephony backend recorded it."""

    model_config = ConfigDict(populate_by_name=True)

    leg_uuid: str = Field(description="this leg")
    leg: str = Field(description="main (msg_call / ivr_call), a / b (callback), transfer")
    from_: str | None = Field(alias="from", description="caller id number shown on this leg")
    to: str = Field(description="the number this leg called")
    sip_code: int | None = Field(description="final SIP response code of the leg")
    outcome: str | None = Field(
        description="answered, busy, no_answer, rejected, invalid_number, failed, canceled"
    )
    hangup_cause: str | None = Field(description="hangup cause, e.g. NORMAL_CLEARING")
    hangup_disposition: str | None = Field(
        description="send_bye, recv_bye, send_cancel, …, interrupted"
    )
    state: str = Field(
        "ended",
        description="dialing (stored, being placed), answered (up), ended, or interrupted "
        "(its worker was lost: closed by the reaper with what was known)",
    )
    start_time_gmt: SeedTime = Field(description="when it was dialled, UTC, YYYY-MM-DD HH:MM:SS")
    ring_time_gmt: SeedTime | None = Field(
        description="when it rang, UTC, YYYY-MM-DD HH:MM:SS; null: never"
    )
    answer_time_gmt: SeedTime | None = Field(
        description="when it answered, UTC, YYYY-MM-DD HH:MM:SS; null: never"
    )
    end_time_gmt: SeedTime | None = Field(
        description="when it ended, UTC, YYYY-MM-DD HH:MM:SS; null: not yet"
    )
    bridged_time_gmt: SeedTime | None = Field(
        description="when it was connected to another leg, UTC, YYYY-MM-DD HH:MM:SS; null: never"
    )
    bridged_with: str | None = Field(description="leg_uuid of the leg this one was bridged to")
    duration: int | None = Field(description="seconds from start to end")
    billsec: int | None = Field(description="seconds from answer to end (0 if never answered)")
    played: list[dict[str, Any]] = Field(description="what was played or sent on the leg")
    dtmf_received: str = Field(description="DTMF digits received on the leg, in order")
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="what the backend kept besides: ivr_trace (every IVR element executed), "
        "sms (SendSMS), media (RTP packets and codec on the sip backend), …",
    )
    fax: FaxOut | None = Field(
        None,
        description="the leg's fax (SendFax / ReceiveFax), with links to download the document "
        "sent or the fax received (TIFF and PDF); null if the leg did not fax",
    )
    amd: AmdOut | None = Field(
        None, description="answering-machine detection (the task's amd policy); null: none ran"
    )


class CallHistoryRecord(BaseModel):
    """One call (all legs of one attempt)."""

    call_uuid: str = Field(description="the call (GET /call_history/{call_uuid})")
    flow: Literal["in", "out"] = Field(description="out: placed by a task; in: an inbound call")
    from_username: str | None = Field(
        description="caller number: the caller id of a msg/ivr call, the A number of a callback"
    )
    from_screen_name: str | None = Field(description="caller name shown to the callee")
    to_username: str | None = Field(
        description="the number called (main leg or B leg); null if B was never dialled"
    )
    start_time_gmt: SeedTime = Field(
        description="when the first leg was dialled, UTC, YYYY-MM-DD HH:MM:SS"
    )
    answer_time_gmt: SeedTime | None = Field(description="when the first leg answered")
    end_time_gmt: SeedTime | None = Field(
        description="when the last leg ended, UTC, YYYY-MM-DD HH:MM:SS"
    )
    duration: int | None = Field(description="seconds from the first start to the last end")
    bridged_duration: int | None = Field(description="seconds connected; null if never")
    bridged_time_gmt: SeedTime | None = Field(
        description="when two legs were connected, UTC, YYYY-MM-DD HH:MM:SS; null: never"
    )
    bridged_username: str | None = Field(description="number of the party connected to")
    hangup_cause: str | None = Field(description="hangup cause of the main leg (or B leg)")
    hangup_disposition: str | None = Field(description="who hung up: send_bye, recv_bye, …")
    result: str | None = Field(description="outcome of the main leg (or B leg of a callback)")
    task_id: int | None = Field(description="the task that placed it; null: none (inbound)")
    attempt: int | None = Field(description="the task's attempt (1 = first)")
    client_owner_id: int = Field(description="the client's number")
    application: str | None = Field(
        description="kind of the task that placed the call: callback, msg_call or ivr_call "
        "(null for a call of no task)"
    )
    cdr: list[CdrLeg] = Field(description="every leg of the call")


class CallHistoryPage(BaseModel):
    calls: list[CallHistoryRecord] = Field(description="one page of calls, oldest first")
    total: int = Field(description="calls matching the period, all pages")
    limit: int = Field(description="the page size asked (1 to 1000, default 100)")
    offset: int = Field(description="how many matches were skipped (default 0)")


class StoredFile(BaseModel):
    path: str = Field(description="path inside the client's storage")
    size: int = Field(description="bytes")
    modified_utc: SeedTime = Field(description="last change, UTC, YYYY-MM-DD HH:MM:SS")


class StorageListing(BaseModel):
    files: list[StoredFile] = Field(description="the files, by path")
    total: int = Field(description="how many files are listed")
