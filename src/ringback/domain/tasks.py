"""Task input: the AddJob JSON of seed 000 and the scheduler task of seed 001, validated.

Both front ends become one :class:`~ringback.domain.task_rules.NewTask`, the shape the store
persists. Validation is strict: unknown fields are refused by name, numbers must look like
numbers, limits are the seed's. The rules themselves (numbers, times, zones, limits) are in
:mod:`ringback.domain.task_rules`, which needs no pydantic: a worker imports that alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

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

from ringback.domain.json_plan import Equals
from ringback.domain.model import TaskKind
from ringback.domain.task_examples import (
    CALLBACK_TASK_EXAMPLES,
    IVR_CALL_EXAMPLES,
    MSG_CALL_EXAMPLES,
)
from ringback.domain.task_rules import (
    DEFAULT_PRIORITY,
    DEFAULT_TRY_AGAIN_PAUSE_S,
    MAX_PAUSE_S,
    MAX_TRY_COUNT,
    MAX_VARIABLE_LEN,
    NewTask,
    check_event_pattern,
    check_number,
    check_timezone,
    parse_utc_time,
)
from ringback.domain.urlguard import check_stored_url, check_stored_url_list

AmdPolicy = Annotated[
    Literal["off", "continue", "hangup", "wait_for_beep"],  # domain.amd.AMD_POLICIES
    Field(
        exclude_if=Equals("off"),  # a task without detection shows none
        description="answering-machine detection once answered: off (default: none), "
        "continue (detect, then go on; the IVR's AnsweredBy says the result), hangup (hang "
        "up on a machine: the task finishes failed, comment 'answering machine', no retry), "
        "wait_for_beep (on a machine wait for the beep, at most 30 s, then play / run the IVR)",
    ),
]


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
_NUMBER_FORM = "digits with an optional leading + (2 to 20 digits), or a sip:/sips: URI"
_TIME_IN = (
    "UTC as YYYY-MM-DD HH:MM:SS (or YYYY-MM-DD HH:MM), or ISO 8601 with a zone "
    "(2024-05-01T09:00:00+02:00); answers show YYYY-MM-DD HH:MM:SS in UTC"
)
_ZONE = "IANA time zone name, e.g. Europe/Paris"

TimeZoneName = Annotated[str, AfterValidator(check_timezone)]
PauseSeconds = Annotated[float, BeforeValidator(_pause_seconds), Field(ge=0, le=MAX_PAUSE_S)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- AddJob (seed 000) ---------------------------------------------------------------------


class Backoff(_Strict):
    """The wait between tries of a job. Every wait is capped at ten days."""

    type: Literal["fixed", "exponential"] = Field(
        description="fixed: wait `delay` ms before every retry; exponential: wait "
        "round(delay × 2^(n−1)) ms before retry n (retry 1 is attempt 2)"
    )
    delay: int = Field(
        ge=0, le=MAX_PAUSE_S * 1000,
        description="base wait in milliseconds (0 to 864,000,000, ten days)",
    )  # fmt: skip
    jitter: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="0 to 1: each wait is drawn uniformly from [d × (1 − jitter), d]; "
        "0 (default) waits exactly d",
    )  # fmt: skip


EventPattern = Annotated[str, AfterValidator(check_event_pattern)]


#: validation context of data read back from the store (``model_validate(..., context=READ_BACK)``)
READ_BACK = {"read_back": True}


def _read_back(info: ValidationInfo) -> bool:
    """Stored data is shown and run as it was stored: URLs were checked when it was stored,
    and a rule added since must not make an older task unreadable."""
    return bool(info.context and info.context.get("read_back"))


class JobWebhook(_Strict):
    """A URL that receives this job's events (signed with the client's webhook secret)."""

    url: str = Field(
        max_length=2048, pattern=r"^https?://",
        description="http(s) URL (at most 2048 characters) that receives a signed POST per "
        "event; refused when it has credentials, control characters or a host that cannot "
        "be encoded",
    )  # fmt: skip
    events: list[EventPattern] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=20,
        description="event types or patterns to send (1 to 20): *, task.*, call.* or exact "
        "types such as task.finished; default [\"*\"]",
    )  # fmt: skip

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


class JobOptions(_Strict):
    """How and when the job is tried."""

    attempts: int = Field(
        default=1, ge=1, le=MAX_TRY_COUNT,
        description="total number of tries including the first (1 to 50, default 1); a try "
        "counts only once a call was really placed",
    )  # fmt: skip
    expires_at: ExpiresAt = None
    priority: Priority = DEFAULT_PRIORITY
    delay: int = Field(
        default=0, ge=0, le=MAX_PAUSE_S * 1000,
        description="milliseconds to wait before the first try (0 to 864,000,000, ten days; "
        "default 0: at once)",
    )  # fmt: skip
    backoff: Backoff | None = Field(
        default=None,
        description="the wait between tries; null (default): retry as soon as possible",
    )
    timezone: TimeZoneName | None = Field(
        default=None,
        description=f"{_ZONE}: the queue's calling hours are read in this zone instead of "
        "the queue's; null (default): the called number's zone (E.164 numbers), else the "
        "queue's",
    )
    webhooks: list[JobWebhook] = Field(
        default_factory=list,
        max_length=10,
        description="up to 10 URLs that receive this job's events, signed with the client's "
        "webhook signing secret (a ringback addition to AddJob)",
    )


class MsgCallData(_Strict):
    """A call that plays one audio file once answered."""

    calling_number: Number = Field(description=f"caller id shown to the callee: {_NUMBER_FORM}")
    called_number: Number = Field(description=f"the number called: {_NUMBER_FORM}")
    audio_file: str = Field(
        min_length=1, max_length=1024,
        description="storage name of the audio file played once answered (e.g. "
        "audio/hello.wav, uploaded with PUT /storage/{path}); it must exist and be audio "
        "ringback can play when the job is added",
    )  # fmt: skip
    amd: AmdPolicy = "off"


class IvrXml(_Strict):
    """Where the IVR document comes from."""

    type: Literal["inline", "storage", "url"] = Field(
        description="inline: `data` is the XML document; storage: `data` is a storage name; "
        "url: `data` is an answer URL, or a comma-separated fallback list of them, fetched "
        "when the call is answered"
    )
    data: str = Field(
        min_length=1, max_length=1_000_000,
        description="the document (inline), its storage name (storage, checked to exist and "
        "parse when the job is added) or the http(s) answer URLs (url); 1 to 1,000,000 "
        "characters",
    )  # fmt: skip

    @field_validator("data")
    @classmethod
    def _answer_urls(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("type") == "url" and not _read_back(info):  # the answer URL list
            return check_stored_url_list(value)
        return value


class IvrCallData(_Strict):
    """A call that runs an IVR document once answered."""

    calling_number: Number = Field(description=f"caller id shown to the callee: {_NUMBER_FORM}")
    called_number: Number = Field(description=f"the number called: {_NUMBER_FORM}")
    ivr_xml: IvrXml = Field(description="the IVR document to run")
    amd: AmdPolicy = "off"


_JOB_OPTIONS = "attempts, delay, backoff, time zone and webhooks; all optional"
_JOB_QUEUE = (
    "name of an existing queue of the client (1 to 100 characters; an unknown name is "
    "refused, 422); null (default): the queue named default, made and switched on at first use"
)


class MsgCallJob(_Strict):
    """AddJob: a call that plays a message."""

    model_config = ConfigDict(json_schema_extra={"examples": MSG_CALL_EXAMPLES})
    type: Literal["msg_call"] = Field(description="msg_call: play `data.audio_file`")
    data: MsgCallData = Field(description="who to call and what to play")
    options: JobOptions = Field(default_factory=JobOptions, description=_JOB_OPTIONS)
    queue: str | None = Field(default=None, min_length=1, max_length=100, description=_JOB_QUEUE)


class IvrCallJob(_Strict):
    """AddJob: a call that runs an IVR document."""

    model_config = ConfigDict(json_schema_extra={"examples": IVR_CALL_EXAMPLES})
    type: Literal["ivr_call"] = Field(description="ivr_call: run `data.ivr_xml`")
    data: IvrCallData = Field(description="who to call and the IVR to run")
    options: JobOptions = Field(default_factory=JobOptions, description=_JOB_OPTIONS)
    queue: str | None = Field(default=None, min_length=1, max_length=100, description=_JOB_QUEUE)


Job = Annotated[MsgCallJob | IvrCallJob, Field(discriminator="type")]


# --- scheduler task (seed 001) ------------------------------------------------------------


class CallbackParams(_Strict):
    """Caller ids, more A numbers and digits for a callback's calls."""

    extended_a_numbers: list[Number] = Field(
        default_factory=list, max_length=20,
        description="up to 20 more A numbers rung at the same time as a_number; the first to "
        "answer is connected to B, the others are hung up",
    )  # fmt: skip
    caller_id_name: str | None = Field(
        default=None, max_length=100,
        description="caller name shown on both legs (at most 100 characters); null: none",
    )  # fmt: skip
    caller_id_number: Number | None = Field(
        default=None,
        description="caller id of the A legs and of the B leg unless attempts_src_ani_numbers "
        "/ attempts_dst_ani_numbers name one for the attempt; null: A legs show the trunk's "
        "default and B is shown the A number that answered",
    )
    dst_dtmf: str | None = Field(
        default=None, pattern=r"^[0-9*#Ww]{1,64}$",
        description="DTMF sent to B once it answered, before A and B are connected "
        "(1 to 64 of 0-9 * # W w); null: none",
    )  # fmt: skip


def _task_url(receives: str) -> Any:
    return Field(
        default=None, max_length=2048, json_schema_extra={"pattern": "^https?://"},
        description=f"http(s) URL (at most 2048 characters) that receives {receives} as a "
        "signed webhook POST; null or empty: none",
    )  # fmt: skip


_PAUSE_FORM = "seconds, a number or a numeric string, 0 to 864,000 (ten days), default 60"


class CallbackTask(_Strict):
    """A callback: ring A, then B, and connect them."""

    model_config = ConfigDict(json_schema_extra={"examples": CALLBACK_TASK_EXAMPLES})
    name: str | None = Field(
        default=None, max_length=255,
        description="a label of yours (at most 255 characters; task lists filter on it); "
        "null: none",
    )  # fmt: skip
    a_number: Number = Field(description=f"the A party, rung first: {_NUMBER_FORM}")
    b_number: Number = Field(
        description=f"the B party, rung once A answered, then connected to A: {_NUMBER_FORM}; "
        "must differ from a_number"
    )
    extension_id: int | None = Field(
        default=None,
        description="an integer of yours, stored and shown back; ringback does not act on it",
    )
    try_count: int = Field(
        default=1, ge=1, le=MAX_TRY_COUNT,
        description="total number of tries including the first (1 to 50, default 1); a try "
        "counts only once a call was really placed",
    )  # fmt: skip
    try_again_pause: PauseSeconds = Field(
        default=DEFAULT_TRY_AGAIN_PAUSE_S,
        description=f"wait between tries, {_PAUSE_FORM}",
    )
    try_count_caller: int = Field(
        default=0, ge=0, le=MAX_TRY_COUNT,
        description="tries allowed for reaching A, counted apart from try_count (0 to 50; "
        "default 0: off, every failed attempt spends a try_count try)",
    )  # fmt: skip
    try_again_pause_caller: PauseSeconds = Field(
        default=DEFAULT_TRY_AGAIN_PAUSE_S,
        description=f"wait after an attempt that failed on the A leg, {_PAUSE_FORM}",
    )
    url_before: str | None = _task_url("task.started of the first attempt")
    url_before_again: str | None = _task_url("task.started of every later attempt")
    url_success: str | None = _task_url("task.finished with finish_result success")
    url_after: str | None = _task_url("task.finished (any result) and task.canceled")
    start_time_utc: datetime | None = Field(
        default=None,
        description=f"earliest start, {_TIME_IN}; null, empty or in the past: at once",
    )
    callback_params: CallbackParams = Field(
        default_factory=CallbackParams,
        description="caller ids, more A numbers and digits for B; all optional",
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="name → text (each at most 200 characters) handed to the telephony "
        "backend with each leg",
    )
    attempts_src_ani_numbers: list[Number] = Field(
        default_factory=list, max_length=MAX_TRY_COUNT,
        description="caller id of the A legs per attempt (item n for attempt n, up to 50); "
        "an attempt beyond the list uses callback_params.caller_id_number",
    )  # fmt: skip
    attempts_dst_ani_numbers: list[Number] = Field(
        default_factory=list, max_length=MAX_TRY_COUNT,
        description="caller id of the B leg per attempt (item n for attempt n, up to 50); an "
        "attempt beyond the list uses callback_params.caller_id_number, else the A number "
        "that answered",
    )  # fmt: skip
    timezone: TimeZoneName | None = Field(
        default=None,
        description=f"{_ZONE}: the queue's calling hours are read in this zone; null "
        "(default): b_number's zone (E.164 numbers), else the queue's",
    )
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
