"""The rules of a task's fields that need no validation library: the number, time and time-zone
checks, the limits, and :class:`NewTask`, the shape the store persists.

The intake's models (:mod:`ringback.domain.tasks`, pydantic) apply these rules to what a
client sends; the store, the engine and the dialler import this module alone, so a worker
never loads the models (docs/design-notes.md, "A worker without the intake's models")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ringback.domain.model import TaskKind

MAX_TRY_COUNT = 50
MAX_PAUSE_S = 864_000  # ten days, the seed's limit for try_again_pause_caller
DEFAULT_TRY_AGAIN_PAUSE_S = 60
#: a callback task's seed URLs (the fields of CallbackTask that name one): each receives some of
#: the task's events (webhooks/targets.py); the stores write the events of a task that names
#: none (and has no ``webhooks``, and whose client has no subscription) as already dispatched
SEED_URL_FIELDS = ("url_before", "url_before_again", "url_success", "url_after")
MAX_VARIABLE_LEN = 200

_NUMBER_RE = re.compile(r"^\+?[0-9]{2,20}$")
_SIP_URI_RE = re.compile(r"^sips?:[A-Za-z0-9._~+!$&'()*,;=%-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
# the seed format with every field at full width: read without strptime (~10x faster); any
# other text, or a date that does not exist, takes the strptime path (and its errors)
_SEED_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(:[0-9]{2})?")
DEFAULT_PRIORITY = 5


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
    if when is None:
        return None
    when = when.astimezone(UTC)
    if when.year < 1000:  # strftime writes such a year without leading zeros
        return when.strftime(_TIME_FORMATS[0])
    return when.isoformat(" ")[:19]  # the same text, about twice as fast as strftime


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
    timezone_source: str | None = None  # given, number or queue: set by the service

    @property
    def names_webhook_urls(self) -> bool:
        """True if the task itself names a webhook URL (a seed URL field, a job's webhooks)."""
        return bool(self.webhooks) or any(self.payload.get(field) for field in SEED_URL_FIELDS)
