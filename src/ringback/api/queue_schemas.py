"""Request and response bodies of the queue routes (``/task_scheduler/``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ringback.api import campaign_schemas as campaign
from ringback.api.base_schemas import SeedTime, StrictIn
from ringback.domain.rows import QueueRow
from ringback.domain.task_rules import format_seed_time
from ringback.service import InvalidInput, parse_calling_hours


class Window(BaseModel):
    """A weekly window in which calls may start, in wall-clock time of the zone."""

    model_config = ConfigDict(extra="forbid")
    days: list[str] = Field(
        description="the days it opens (at least one): mon, tue, wed, thu, fri, sat, sun, "
        "ranges like mon-fri, or daily (also *) for every day"
    )
    start: str = Field(description="opening, HH:MM (00:00 to 23:59) local time in the zone")
    end: str = Field(
        description="closing, HH:MM local time (24:00 allowed); at or before start: the "
        "window crosses midnight"
    )


class Holiday(BaseModel):
    """A day on which nobody is called, read in the zone the hours are read in for a task
    (the callee's): the whole local day, 00:00 to 24:00."""

    model_config = ConfigDict(extra="forbid")
    date: str = Field(
        description="MM-DD: every year (02-29 in leap years only); YYYY-MM-DD: that day once",
        examples=["12-25", "2026-05-01"],
    )
    name: str | None = Field(
        None, description="a label shown in delay reasons (at most 100 characters); null: none"
    )
    timezones: list[str] | None = Field(
        None,
        description="IANA zones it applies in (the task's zone must be one of them); null: "
        "every zone",
    )


class CallingHoursSpec(BaseModel):
    """Weekly windows in an IANA time zone; a task due outside them waits for the next
    opening (status delayed_interval)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Europe/Paris",
                    "windows": [
                        {"days": ["mon-fri"], "start": "09:00", "end": "12:30"},
                        {"days": ["mon-fri"], "start": "14:00", "end": "18:00"},
                    ],
                    "holidays": [
                        {"date": "12-25", "name": "Christmas", "timezones": None},
                        {"date": "2026-05-01", "name": None, "timezones": ["Europe/Paris"]},
                    ],
                }
            ]
        },
    )
    timezone: str = Field(
        description="IANA time zone name the windows are read in (safe across DST changes), "
        "e.g. Europe/Paris; a task's own timezone takes its place for that task"
    )
    windows: list[Window] = Field(description="one or more windows")
    holidays: list[Holiday] = Field(
        default_factory=list,
        description="days on which nobody is called (at most 500), yearly or once; empty: none",
    )


_DAYS = "mon|tue|wed|thu|fri|sat|sun"
_DAY_ITEM = rf"(daily|\*|({_DAYS})(-({_DAYS}))?)"
_START = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_END = rf"({_START}|24:00)"
_ZONES = sorted(available_timezones())
_DATE = r"^([0-9]{4}-)?(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_HOURS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["timezone", "windows"],
            "properties": {
                "timezone": {"type": "string", "enum": _ZONES},
                "windows": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["days", "start", "end"],
                        "properties": {
                            "days": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "pattern": f"^{_DAY_ITEM}$"},
                            },
                            "start": {"type": "string", "pattern": f"^{_START}$"},
                            "end": {"type": "string", "pattern": f"^{_END}$"},
                        },
                    },
                },
                "holidays": {
                    "type": "array",
                    "maxItems": 500,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["date"],
                        "properties": {
                            "date": {"type": "string", "pattern": _DATE},
                            "name": {"type": ["string", "null"], "maxLength": 100},
                            "timezones": {  # IANA names, checked by the server
                                "type": ["array", "null"],
                                "minItems": 1,
                                "items": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        {
            "type": "string",
            "description": "compact form (more windows may follow, comma-separated)",
            "pattern": f"^({'|'.join(re.escape(z) for z in _ZONES)}) {_DAY_ITEM} {_START}-{_END}$",
        },
        {"type": "null"},
    ],
    "description": "weekly windows in which calls may start: {timezone, windows, holidays}, "
    "or the "
    "compact text 'Europe/Paris mon-fri 09:00-18:00' (more windows comma-separated: "
    "'Europe/Paris mon-fri 09:00-12:30, sat 10:00-13:00'); null: no limit",
}


def _calling_hours(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str | dict):
        raise ValueError("calling_hours must be an object or a string")
    try:
        return parse_calling_hours(value)
    except InvalidInput as exc:
        raise ValueError(exc.details[0]["msg"] if exc.details else exc.message) from None


CallingHoursIn = Annotated[
    CallingHoursSpec | str | None,
    BeforeValidator(_calling_hours),
    WithJsonSchema(_HOURS_SCHEMA, mode="validation"),
]


def hours_dict(value: CallingHoursSpec | str | None) -> dict[str, Any] | None:
    """The validated calling hours as stored (the validator turned a string into the object)."""
    if not isinstance(value, CallingHoursSpec):
        return None
    return parse_calling_hours(value.model_dump(exclude_none=True))  # holidays: as stored


_NO_NUL = {"pattern": "^[^\\u0000]*$"}  # documents what _storable enforces
_NAME = {"pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}  # and not blank
QueueName = Annotated[str, Field(min_length=1, max_length=100, json_schema_extra=_NAME)]
Comment = Annotated[str, Field(max_length=1000, json_schema_extra=_NO_NUL)]
Limit = Annotated[int, Field(ge=1, le=10_000)]
Rate = Annotated[float, Field(gt=0, le=10_000)]


_NAME_TEXT = "unique among the client's queues (1 to 100 characters, not blank)"
_COMMENT = "free text of yours (at most 1000 characters)"
_STATUS = "on: its tasks run; off: they wait (blocked_reason queue_off)"
_LIMIT = "the most tasks of the queue running at once (1 to 10,000)"
_RATE = (
    "the most new calls per second the queue starts, shared by all workers (above 0, at "
    "most 10,000)"
)


class QueueCreate(StrictIn, campaign.QueueCampaignIn):
    """A new queue."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "sales-callbacks",
                    "comment": "web form callbacks",
                    "status": "on",
                    "concurrent_task_limit": 20,
                    "max_calls_per_second": 2.5,
                    "calling_hours": "Europe/Paris mon-fri 09:00-18:00",
                },
                {
                    "name": "reminders",
                    "calling_hours": {
                        "timezone": "America/New_York",
                        "windows": [{"days": ["mon-sat"], "start": "10:00", "end": "19:00"}],
                    },
                },
            ]
        }
    )
    name: QueueName = Field(description=f"the queue's name, {_NAME_TEXT}; a clash is 409")
    comment: Comment = Field("", description=f"{_COMMENT}; default empty")
    status: Literal["on", "off"] = Field("off", description=f"{_STATUS}; default off")
    concurrent_task_limit: Limit = Field(10, description=f"{_LIMIT}; default 10")
    max_calls_per_second: Rate | None = Field(None, description=f"{_RATE}; null: no limit")
    calling_hours: CallingHoursIn = None
    redial_interrupted: bool = Field(
        False,
        description="Try a task again when a fault on ringback's side (a worker lost or "
        "stopped) cut its call, which the callee may have answered. Default false: such a "
        "task finishes failed and nobody is rung again unasked.",
    )


class QueueUpdate(StrictIn, campaign.QueueCampaignIn):
    """Only the fields sent change; ``null`` clears max_calls_per_second and calling_hours
    (and leaves the other fields as they are)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "on"},
                {"concurrent_task_limit": 5, "max_calls_per_second": None},
                {"calling_hours": "Europe/Paris mon-fri 09:00-12:30, mon-fri 14:00-18:00"},
            ]
        }
    )
    name: QueueName | None = Field(None, description=f"a new name, {_NAME_TEXT}; a clash is 409")
    comment: Comment | None = Field(None, description=_COMMENT)
    status: Literal["on", "off"] | None = Field(None, description=_STATUS)
    concurrent_task_limit: Limit | None = Field(None, description=_LIMIT)
    max_calls_per_second: Rate | None = Field(None, description=f"{_RATE}; null: no limit")
    calling_hours: CallingHoursIn = None
    redial_interrupted: bool | None = Field(
        None, description="redial tasks whose call a fault on ringback's side cut (see "
        "QueueCreate)",
    )  # fmt: skip


class QueueOut(campaign.QueueCampaignOut):
    """A queue with its counters."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "name": "sales-callbacks",
                    "comment": "web form callbacks",
                    "status": "on",
                    "concurrent_task_limit": 20,
                    "max_calls_per_second": 2.5,
                    "calling_hours": {
                        "timezone": "Europe/Paris",
                        "windows": [{"days": ["mon-fri"], "start": "09:00", "end": "18:00"}],
                    },
                    "redial_interrupted": False,
                    "task_count": 120,
                    "sched_task_count": 35,
                    "running_count": 4,
                    "last_call_date": "2030-05-01 08:14:02",
                    "create_date_utc": "2030-04-28 16:00:00",
                }
            ]
        }
    )
    id: int = Field(description="the queue's id ({sid} in paths)")
    name: str = Field(description="unique among the client's queues")
    comment: str = Field(description="free text of the client's")
    status: Literal["on", "off"] = Field(description=_STATUS)
    concurrent_task_limit: int = Field(description=_LIMIT)
    max_calls_per_second: float | None = Field(description=f"{_RATE}; null: no limit")
    calling_hours: CallingHoursSpec | None = Field(
        description="weekly windows in which calls may start; null: any time"
    )
    redial_interrupted: bool = Field(
        description="true: a task whose call a fault on ringback's side cut is tried again; "
        "false: it finishes failed"
    )
    task_count: int = Field(description="tasks in the queue, finished ones included")
    sched_task_count: int = Field(
        description="tasks waiting to run (scheduled, delayed or delayed_interval)"
    )
    running_count: int = Field(description="tasks running now (executed)")
    last_call_date: SeedTime | None = Field(
        description="when the queue last started a task, UTC, YYYY-MM-DD HH:MM:SS; null: never"
    )
    create_date_utc: SeedTime = Field(description="when it was created, UTC, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, row: QueueRow) -> QueueOut:
        return cls(
            id=row.id,
            name=row.name,
            comment=row.comment,
            status=row.status,
            concurrent_task_limit=row.concurrent_task_limit,
            max_calls_per_second=row.max_calls_per_second,
            calling_hours=CallingHoursSpec.model_validate(row.calling_hours)
            if row.calling_hours
            else None,
            redial_interrupted=row.redial_interrupted,
            task_ttl_seconds=row.task_ttl_seconds,
            task_count=row.task_count,
            sched_task_count=row.sched_task_count,
            running_count=row.running_count,
            last_call_date=format_seed_time(row.last_call_at),
            create_date_utc=format_seed_time(row.created_at) or "",
        )


class QueueListOut(BaseModel):
    queues: list[QueueOut] = Field(description="the client's queues, by id")
