"""Task input: the AddJob JSON of seed 000 and the scheduler task of seed 001, validated.

Both front ends become one :class:`NewTask`, the shape the store persists. Validation is strict:
unknown fields are refused by name, numbers must look like numbers, limits are the seed's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ringback.domain.model import TaskKind
from ringback.domain.urlguard import check_stored_url, check_stored_url_list

MAX_TRY_COUNT = 50
MAX_PAUSE_S = 864_000  # ten days, the seed's limit for try_again_pause_caller
DEFAULT_TRY_AGAIN_PAUSE_S = 60
MAX_VARIABLE_LEN = 200

_NUMBER_RE = re.compile(r"^\+?[0-9]{2,20}$")
_SIP_URI_RE = re.compile(r"^sips?:[A-Za-z0-9._~+!$&'()*,;=%-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
# the seed format with every field at full width: read without strptime (~10x faster); any
# other text, or a date that does not exist, takes the strptime path (and its errors)
_SEED_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(:[0-9]{2})?")


def check_number(value: str) -> str:
    """A dialable number: digits with an optional leading ``+`` (2..20 digits) or a SIP URI."""
    value = value.strip()
    if _NUMBER_RE.match(value) or _SIP_URI_RE.match(value):
        return value
    raise ValueError(
        f"{value!r} is not a phone number (digits with an optional leading +, 2 to 20 digits)"
        " or a sip: URI"
    )


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
        ) from exc
    return value


def parse_utc_time(value: str | datetime) -> datetime:
    """Seed times are ``YYYY-MM-DD HH:MM:SS`` in UTC; ISO 8601 with a zone is accepted too."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time: use 'YYYY-MM-DD HH:MM:SS' (UTC)")
    text = value.strip()
    if _SEED_TIME_RE.fullmatch(text) is not None:
        try:  # fromisoformat reads exactly this form, in C
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        except ValueError:
            pass
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a time: use 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 with a zone"
        ) from exc
    if parsed.tzinfo is None:
        raise ValueError(
            f"{value!r} has no time zone: add one (e.g. +00:00) or use 'YYYY-MM-DD HH:MM:SS' (UTC)"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00
        raise ValueError(f"{value!r} is out of range") from exc


def check_expires_at(expires_at: datetime | None, now: datetime) -> str | None:
    """What is wrong with a task's ``expires_at`` given now (None: nothing)."""
    if expires_at is not None and expires_at <= now:
        return "expires_at must be in the future"
    return None


def format_seed_time(when: datetime | None) -> str | None:
    """The seed's time format, ``YYYY-MM-DD HH:MM:SS`` in UTC (None stays None)."""
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pause_seconds(value: Any) -> Any:
    # the seed types try_again_pause as "string or integer" (seconds)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text) if "." in text else int(text)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a number of seconds") from exc
    return value


# published in the JSON schema (OpenAPI) so clients and generators know the form; the check
# itself is check_number, which says in plain words what is wrong
NUMBER_PATTERN = (
    r"^(\+?[0-9]{2,20}|sips?:[A-Za-z0-9._~+!$&'()*,;=%-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?)$"
)
Number = Annotated[
    str,
    AfterValidator(check_number),
    Field(json_schema_extra={"pattern": NUMBER_PATTERN}),
]

TimeZoneName = Annotated[str, AfterValidator(check_timezone)]
PauseSeconds = Annotated[float, BeforeValidator(_pause_seconds), Field(ge=0, le=MAX_PAUSE_S)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- AddJob (seed 000) ---------------------------------------------------------------------


class Backoff(_Strict):
    type: Literal["fixed", "exponential"]
    delay: int = Field(ge=0, le=MAX_PAUSE_S * 1000, description="milliseconds")
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)


_EVENT_NAMES = frozenset(
    {"task.created", "task.started", "task.retry_scheduled", "task.delayed", "task.updated",
     "task.finished", "task.canceled", "call.answered", "call.bridged", "call.ended"}
)  # fmt: skip


def check_event_pattern(value: str) -> str:
    """``*``, ``task.*``, ``call.*`` or an event type (``task.finished``, …)."""
    if value in ("*", "task.*", "call.*") or value in _EVENT_NAMES:
        return value
    raise ValueError(
        f"{value!r} is not an event type or pattern (*, task.*, call.*, task.finished, …)"
    )


EventPattern = Annotated[str, AfterValidator(check_event_pattern)]


#: validation context of data read back from the store (``model_validate(..., context=READ_BACK)``)
READ_BACK = {"read_back": True}


def _read_back(info: ValidationInfo) -> bool:
    """Stored data is shown and run as it was stored: URLs were checked when it was stored,
    and a rule added since must not make an older task unreadable."""
    return bool(info.context and info.context.get("read_back"))


class JobWebhook(_Strict):
    """A URL that receives this job's events (signed with the client's webhook secret)."""

    url: str = Field(max_length=2048, pattern=r"^https?://")
    events: list[EventPattern] = Field(default_factory=lambda: ["*"], min_length=1, max_length=20)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        return value if _read_back(info) else check_stored_url(value)


def _optional_time(value: Any) -> Any:
    return None if value in (None, "") else parse_utc_time(value)


#: a task's expiry (issue 18): not completed by then, it finishes failed, ``expired``
ExpiresAt = Annotated[
    datetime | None, BeforeValidator(_optional_time),
    Field(description="not completed by then (UTC), the task finishes failed: expired"),
]  # fmt: skip


#: a task's priority (issue 18): within a queue higher is dialled first, FIFO within one
Priority = Annotated[
    int, Field(ge=0, le=9, description="0-9, default 5: within a queue higher is dialled first")
]
DEFAULT_PRIORITY = 5


class JobOptions(_Strict):
    attempts: int = Field(default=1, ge=1, le=MAX_TRY_COUNT)
    expires_at: ExpiresAt = None
    priority: Priority = DEFAULT_PRIORITY
    delay: int = Field(default=0, ge=0, le=MAX_PAUSE_S * 1000, description="milliseconds")
    backoff: Backoff | None = None
    timezone: TimeZoneName | None = Field(
        default=None, description="ringback: evaluate the queue's calling hours in this zone"
    )
    webhooks: list[JobWebhook] = Field(
        default_factory=list,
        max_length=10,
        description="ringback: URLs that receive this job's events (README: Webhooks)",
    )


class MsgCallData(_Strict):
    calling_number: Number
    called_number: Number
    audio_file: str = Field(min_length=1, max_length=1024)


class IvrXml(_Strict):
    type: Literal["inline", "storage", "url"]
    data: str = Field(min_length=1, max_length=1_000_000)

    @field_validator("data")
    @classmethod
    def _answer_urls(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("type") == "url" and not _read_back(info):  # the answer URL list
            return check_stored_url_list(value)
        return value


class IvrCallData(_Strict):
    calling_number: Number
    called_number: Number
    ivr_xml: IvrXml


class MsgCallJob(_Strict):
    type: Literal["msg_call"]
    data: MsgCallData
    options: JobOptions = Field(default_factory=JobOptions)
    queue: str | None = Field(default=None, min_length=1, max_length=100)


class IvrCallJob(_Strict):
    type: Literal["ivr_call"]
    data: IvrCallData
    options: JobOptions = Field(default_factory=JobOptions)
    queue: str | None = Field(default=None, min_length=1, max_length=100)


Job = Annotated[MsgCallJob | IvrCallJob, Field(discriminator="type")]


# --- scheduler task (seed 001) ------------------------------------------------------------


class CallbackParams(_Strict):
    extended_a_numbers: list[Number] = Field(default_factory=list, max_length=20)
    caller_id_name: str | None = Field(default=None, max_length=100)
    caller_id_number: Number | None = None
    dst_dtmf: str | None = Field(default=None, pattern=r"^[0-9*#Ww]{1,64}$")


class CallbackTask(_Strict):
    name: str | None = Field(default=None, max_length=255)
    a_number: Number
    b_number: Number
    extension_id: int | None = None
    try_count: int = Field(default=1, ge=1, le=MAX_TRY_COUNT)
    try_again_pause: PauseSeconds = DEFAULT_TRY_AGAIN_PAUSE_S
    try_count_caller: int = Field(default=0, ge=0, le=MAX_TRY_COUNT)
    try_again_pause_caller: PauseSeconds = DEFAULT_TRY_AGAIN_PAUSE_S
    url_before: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"pattern": "^https?://"}
    )
    url_before_again: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"pattern": "^https?://"}
    )
    url_success: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"pattern": "^https?://"}
    )
    url_after: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"pattern": "^https?://"}
    )
    start_time_utc: datetime | None = None
    callback_params: CallbackParams = Field(default_factory=CallbackParams)
    variables: dict[str, str] = Field(default_factory=dict)
    attempts_src_ani_numbers: list[Number] = Field(default_factory=list, max_length=MAX_TRY_COUNT)
    attempts_dst_ani_numbers: list[Number] = Field(default_factory=list, max_length=MAX_TRY_COUNT)
    timezone: TimeZoneName | None = None
    expires_at: ExpiresAt = None
    priority: Priority = DEFAULT_PRIORITY

    @field_validator("start_time_utc", mode="before")
    @classmethod
    def _start_time(cls, value: Any) -> Any:
        return None if value in (None, "") else parse_utc_time(value)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if len(text) > MAX_VARIABLE_LEN:
                raise ValueError(f"variable {key!r} is longer than {MAX_VARIABLE_LEN} characters")
        return value

    @field_validator("url_before", "url_before_again", "url_success", "url_after")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value or _read_back(info):
            return value or None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return check_stored_url(value)

    @model_validator(mode="after")
    def _distinct_legs(self) -> CallbackTask:
        if self.a_number == self.b_number:
            raise ValueError("a_number and b_number are the same number")
        return self


# --- what the store persists ----------------------------------------------------------------


#: the webhook URL fields of a scheduler (callback) task (seed 001)
SEED_URLS: tuple[str, ...] = ("url_before", "url_before_again", "url_success", "url_after")


@dataclass(slots=True)
class NewTask:
    kind: TaskKind
    name: str | None
    payload: dict[str, Any]
    run_at: datetime
    max_tries: int
    backoff: dict[str, Any] | None
    max_caller_tries: int
    caller_pause_s: float
    timezone: str | None
    start_time_utc: datetime | None
    webhooks: list[dict[str, Any]] | None = None  # a job's options.webhooks
    expires_at: datetime | None = None  # None: the queue's task_ttl_seconds, if it has one
    priority: int = 5  # 0-9: within a queue higher is dialled first

    @property
    def names_webhook_urls(self) -> bool:
        """True if the task itself names a webhook URL (a seed URL field, a job's webhooks)."""
        return bool(self.webhooks) or any(self.payload.get(field) for field in SEED_URLS)


def task_from_job(job: MsgCallJob | IvrCallJob, now: datetime) -> NewTask:
    options = job.options
    backoff = options.backoff.model_dump() if options.backoff else None
    return NewTask(
        kind=TaskKind(job.type),
        name=None,
        payload=job.data.model_dump(),
        run_at=now + timedelta(milliseconds=options.delay),
        max_tries=options.attempts,
        backoff=backoff,
        max_caller_tries=0,
        caller_pause_s=0.0,
        timezone=options.timezone,
        start_time_utc=None,
        webhooks=[hook.model_dump() for hook in options.webhooks] or None,
        expires_at=options.expires_at,
        priority=options.priority,
    )


_NOT_IN_PAYLOAD = frozenset(
    {
        "name",
        "try_count",
        "try_count_caller",
        "timezone",
        "start_time_utc",
        "expires_at",
        "priority",
    }
)
_CALLBACK_LIST = TypeAdapter(list[CallbackTask])


def task_from_callback(spec: CallbackTask, now: datetime) -> NewTask:
    payload = spec.model_dump(exclude=set(_NOT_IN_PAYLOAD), exclude_none=True)
    return _callback_task(spec, payload, now)


def tasks_from_callbacks(specs: list[CallbackTask], now: datetime) -> list[NewTask]:
    """:func:`task_from_callback` of each, their payloads dumped in one call."""
    payloads = _CALLBACK_LIST.dump_python(
        specs, exclude={"__all__": set(_NOT_IN_PAYLOAD)}, exclude_none=True
    )
    return [_callback_task(s, p, now) for s, p in zip(specs, payloads, strict=True)]


def _callback_task(spec: CallbackTask, payload: dict[str, Any], now: datetime) -> NewTask:
    start = spec.start_time_utc
    return NewTask(
        kind=TaskKind.CALLBACK,
        name=spec.name,
        payload=payload,
        run_at=max(now, start) if start else now,
        max_tries=spec.try_count,
        backoff={"type": "fixed", "delay": round(spec.try_again_pause * 1000), "jitter": 0.0},
        max_caller_tries=spec.try_count_caller,
        caller_pause_s=float(spec.try_again_pause_caller),
        timezone=spec.timezone,
        start_time_utc=start,
        expires_at=spec.expires_at,
        priority=spec.priority,
    )
