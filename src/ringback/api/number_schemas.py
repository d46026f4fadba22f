"""Request and response bodies of inbound routing (``/numbers/``) and simulated calls."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ringback.api.fax_links import FaxOut
from ringback.domain.rows import NumberRow
from ringback.domain.task_rules import format_seed_time
from ringback.domain.urlguard import check_stored_url_list

#: a called number as it arrives in a SIP request URI: digits, an optional leading +
NUMBER_PATTERN = r"^\+?[0-9]{1,32}$"
_ANSWER_URL = r"^https?://[^\s,]+(\s*,\s*https?://[^\s,]+)*$"  # a comma-separated fallback list


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NumberIn(_In):
    answer_url: Annotated[str, AfterValidator(check_stored_url_list)] | None = Field(
        default=None, max_length=4096, pattern=_ANSWER_URL,
        description="the XML server URL (a comma-separated list: the next is tried when one "
        "cannot be reached); the call's parameters are POSTed to it (answer-URL protocol)",
    )  # fmt: skip
    ivr_file: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description="or: an IVR XML file in the client's storage",
    )  # fmt: skip
    notify_completed: bool = Field(
        default=False,
        description="POST CallStatus=completed to the answer URL when the call ends",
    )
    description: str = Field(default="", max_length=500, description="free text of yours")

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.answer_url is None) == (self.ivr_file is None):
            raise ValueError("give exactly one of answer_url and ivr_file")
        if self.notify_completed and self.answer_url is None:
            raise ValueError("notify_completed needs an answer_url to notify")
        return self


class NumberOut(BaseModel):
    number: str = Field(description="the called number routed")
    answer_url: str | None = Field(description="the answer URL list; null if ivr_file is used")
    ivr_file: str | None = Field(description="storage name of the IVR; null if answer_url is used")
    notify_completed: bool = Field(description="POST CallStatus=completed when the call ends")
    description: str = Field(description="free text of yours")
    created_at: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")
    updated_at: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, row: NumberRow) -> NumberOut:
        return cls(
            number=row.number,
            answer_url=row.answer_url,
            ivr_file=row.ivr_file,
            notify_completed=row.notify_completed,
            description=row.description,
            created_at=format_seed_time(row.created_at),
            updated_at=format_seed_time(row.updated_at),
        )


class NumberListOut(BaseModel):
    numbers: list[NumberOut] = Field(description="the client's routed numbers")


class SimulateIn(_In):
    called_number: str = Field(
        pattern=NUMBER_PATTERN, description="the number called: one of the client's numbers"
    )
    calling_number: str = Field(
        default="09012341234", pattern=NUMBER_PATTERN, description="the caller's number"
    )
    digits: str = Field(
        default="", max_length=200, pattern=r"^[0-9*#A-Da-d,]*$",
        description="what the caller presses, in order; ',' is a pause (the current "
        "GetDigits times out)",
    )  # fmt: skip
    variables: dict[str, str] = Field(
        default_factory=dict, max_length=50,
        description="extra call variables (e.g. CallerName), as the platform would send them",
    )  # fmt: skip


class TraceEntryOut(BaseModel):
    line: int = Field(description="line of the element in the IVR document")
    element: str = Field(description="the element's name, e.g. GetDigits")
    detail: str = Field(description="what it did")


class SimulatedCallOut(BaseModel):
    call_uuid: str = Field(description="the call's record in call_history")
    status: str = Field(description="completed, or error (the IVR failed: see error)")
    error: str | None = Field(description="why the IVR failed; null if it did not")
    hung_up_by: str | None = Field(description="Hangup, end of document, caller, or error")
    trace: list[TraceEntryOut] = Field(description="every element executed, in order")
    variables: dict[str, Any] = Field(description="the variables created with Set")
    jobs_added: list[int] = Field(description="task ids added by AddJob")
    played: list[dict[str, Any]] = Field(description="what the caller heard")
    dtmf_received: str = Field(description="the digits the caller pressed, in order")
    fax: FaxOut | None = Field(
        None, description="the call's fax (SendFax / ReceiveFax) with download links"
    )
