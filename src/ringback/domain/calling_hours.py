"""Calling hours: weekly wall-clock windows in an IANA time zone, safe across DST changes.

Windows are compared with the *local wall clock*, so a DST change never shifts them: 09:00 is
09:00 local on both sides of the change. When the clocks jump forward over a window's start, the
window opens at the jump (the first instant whose wall time is past the start); when they fall
back, a start that happens twice opens at its first occurrence. A window that lies wholly inside
a skipped hour does not happen that day.

Two spellings, both accepted by :meth:`CallingHours.parse`::

    {"timezone": "Europe/Paris",
     "windows": [{"days": ["mon-fri"], "start": "09:00", "end": "18:00"}]}

    "Europe/Paris mon-fri 09:00-18:00, sat,sun 10:00-13:00"

The object form may list ``holidays``: dates on which nobody is called, yearly (``MM-DD``) or
one-off (``YYYY-MM-DD``), optionally only in some zones (see domain/holidays.py)::

    {"timezone": "Europe/Paris", "windows": [...],
     "holidays": [{"date": "12-25", "name": "Christmas"}, {"date": "2026-05-08"}]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ringback.domain.digits import ascii_digits
from ringback.domain.holidays import (
    NO_HOLIDAYS,
    Holiday,
    Holidays,
    holiday_from_text,
    parse_holidays,
)

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {name: i for names in (DAY_NAMES, _FULL_NAMES) for i, name in enumerate(names)}
_ALL_DAYS = frozenset(range(7))
_SEARCH_DAYS = 8  # every weekly window starts within 8 local days, even one skipped by a DST gap
# holidays push an opening further: yearly ones leave a day of the year open (parse_holidays
# checks it), which falls on a window's weekday within a few years; past this, not at all
_HOLIDAY_SEARCH_DAYS = 12 * 366
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_EXAMPLE = "e.g. 'Europe/Paris mon-fri 09:00-18:00'"


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError naming it if there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError) as exc:
        hint = "use an IANA name like Europe/Paris"
        raise ValueError(f"unknown time zone {name!r} ({hint})") from exc


@dataclass(frozen=True)
class Window:
    """Open on ``days`` (0=Monday..6=Sunday) from ``start`` to ``end`` (None: 24:00).

    An ``end`` at or before ``start`` crosses midnight: the window opens on its listed day at
    ``start`` and closes the next day at ``end``. Times are naive, in whole minutes.
    """

    days: frozenset[int]
    start: time
    end: time | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        if not self.days:
            raise ValueError("a window needs at least one day")
        if not self.days <= _ALL_DAYS:
            raise ValueError(f"window days are 0 (Monday) to 6 (Sunday), got {sorted(self.days)}")
        for value in (self.start, self.end):
            if value is not None and (
                value.tzinfo is not None or value.second or value.microsecond
            ):
                raise ValueError(f"window times are naive whole minutes, got {value!r}")

    def contains(self, wall: datetime) -> bool:
        """Whether the local wall-clock time ``wall`` falls inside this window."""
        day, now = wall.weekday(), wall.time()
        if self.end is None:
            return day in self.days and now >= self.start
        if self.end > self.start:
            return day in self.days and self.start <= now < self.end
        return (day in self.days and now >= self.start) or (
            (day - 1) % 7 in self.days and now < self.end
        )


@dataclass(frozen=True)
class CallingHours:
    timezone: str
    windows: tuple[Window, ...]
    holidays: Holidays = NO_HOLIDAYS

    def __post_init__(self) -> None:
        zone(self.timezone)
        object.__setattr__(self, "windows", tuple(self.windows))
        if not self.windows:
            raise ValueError("empty window list: calling hours need at least one window")

    def is_open(self, now: datetime, tz: str | None = None) -> bool:
        """Whether ``now`` (aware) is inside a window and not on a holiday, read in ``tz`` or
        else in ``timezone``."""
        return self._open(_utc(now), zone(self.timezone if tz is None else tz))

    def holiday_at(self, now: datetime, tz: str | None = None) -> Holiday | None:
        """The holiday of ``now``'s local date in ``tz`` (else ``timezone``), if any."""
        local = zone(self.timezone if tz is None else tz)
        return self.holidays.on(_utc(now).astimezone(local).date(), local.key)

    def holidays_until(
        self, now: datetime, until: datetime, tz: str | None = None
    ) -> list[Holiday]:
        """The holidays on the local dates from ``now``'s to ``until``'s (skipped by a wait)."""
        local = zone(self.timezone if tz is None else tz)
        day, last = _utc(now).astimezone(local).date(), _utc(until).astimezone(local).date()
        found = []
        while day <= last and self.holidays:
            holiday = self.holidays.on(day, local.key)
            if holiday is not None:
                found.append(holiday)
            day += timedelta(days=1)
        return found

    def delay_reason(self, now: datetime, opening: datetime, tz: str | None = None) -> str:
        """Why a task due at ``now`` waits until ``opening``: ``outside calling hours``, with
        the holidays it waits over (``holiday: Christmas (12-25)``)."""
        skipped = self.holidays_until(now, opening, tz)
        if not skipped:
            return "outside calling hours"
        return "outside calling hours, holiday: " + ", ".join(h.describe() for h in skipped)

    def next_opening(self, now: datetime, tz: str | None = None) -> datetime:
        """``now`` if open, else the earliest UTC instant after it at which a window opens
        on a day that is not a holiday."""
        now = _utc(now)
        local = zone(self.timezone if tz is None else tz)
        if self._open(now, local):
            return now
        if self.holidays:
            return self._next_opening_by_day(now, local)
        # A window opens either where the wall clock reaches a start time or where it jumps.
        first_day = now.astimezone(local).date()
        candidates = list(_offset_changes(local, now, now + timedelta(days=_SEARCH_DAYS + 2)))
        for offset in range(-1, _SEARCH_DAYS + 1):
            day = first_day + timedelta(days=offset)
            for window in self.windows:
                if day.weekday() in window.days:
                    candidates += _instants(datetime.combine(day, window.start), local)
        openings = [t for t in candidates if t > now and self._open(t, local)]
        if not openings:  # unreachable for weekly windows; kept as a guard
            raise ValueError(f"{self.describe()!r} does not open within {_SEARCH_DAYS} days")
        return min(openings)

    def _next_opening_by_day(self, now: datetime, local: ZoneInfo) -> datetime:
        """The first opening, local day by local day, skipping holidays. The hours open at a
        window's start, at a jump of the clock, or at midnight after a holiday; each of a
        day's candidates lies in that day, so the first day with one has the earliest."""
        day = now.astimezone(local).date()
        for _ in range(_HOLIDAY_SEARCH_DAYS):
            if self.holidays.on(day, local.key) is None:
                candidates = _instants(datetime.combine(day, time(0)), local)
                for window in self.windows:
                    if day.weekday() in window.days:
                        candidates += _instants(datetime.combine(day, window.start), local)
                start = datetime.combine(day, time(0), local) - timedelta(hours=3)
                end = start + timedelta(hours=30)
                if _offset(local, int(start.timestamp())) != _offset(local, int(end.timestamp())):
                    candidates += _offset_changes(local, start, end)
                openings = [
                    t
                    for t in candidates
                    if t > now and t.astimezone(local).date() == day and self._open(t, local)
                ]
                if openings:
                    return min(openings)
            day += timedelta(days=1)
        raise ValueError(f"{self.describe()!r} does not open within {_HOLIDAY_SEARCH_DAYS} days")

    def _open(self, instant: datetime, local: ZoneInfo) -> bool:
        wall = instant.astimezone(local).replace(tzinfo=None)
        if not any(window.contains(wall) for window in self.windows):
            return False
        return not self.holidays or self.holidays.on(wall.date(), local.key) is None

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any]) -> CallingHours:
        """Read the dict / JSON form or the compact string form (see the module docstring)."""
        if isinstance(spec, Mapping):
            return cls._from_dict(spec)
        if not isinstance(spec, str):
            raise ValueError(f"calling hours must be a string or an object, got {spec!r}")
        text = spec.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"calling hours are not valid JSON: {exc}") from None
            return cls._from_dict(data)
        return cls._from_text(text)

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> CallingHours:
        keys = ("timezone", "windows", "holidays")
        unknown = sorted(str(key) for key in data if key not in keys)
        if unknown:
            raise ValueError(f"unknown calling-hours key(s): {', '.join(unknown)}")
        timezone = data.get("timezone")
        if not isinstance(timezone, str):
            raise ValueError("calling hours need a 'timezone' (an IANA name like Europe/Paris)")
        zone(timezone)
        raw = data.get("windows")
        if not isinstance(raw, list | tuple):
            raise ValueError(f"calling-hours 'windows' must be a list, got {raw!r}")
        windows = []
        for number, item in enumerate(raw, 1):
            try:
                windows.append(_window_from_dict(item))
            except ValueError as exc:
                raise ValueError(f"window {number}: {exc}") from None
        holidays = parse_holidays(data.get("holidays") or [])
        return cls(timezone, tuple(windows), holidays)

    @classmethod
    def _from_text(cls, text: str) -> CallingHours:
        words = text.split(None, 1)
        if not words:
            raise ValueError(f"empty calling-hours spec ({_EXAMPLE})")
        try:
            zone(words[0])
        except ValueError:
            if _is_days(words[0]):
                raise ValueError(f"calling hours start with a time zone ({_EXAMPLE})") from None
            raise
        if len(words) == 1:
            raise ValueError(f"empty window list in {text!r} ({_EXAMPLE})")
        windows = []
        pending: list[str] = []  # day words seen before their time range ("sat,sun 10:00-13:00")
        for item in words[1].split(","):
            parts = item.split()
            if not parts:
                raise ValueError(f"empty item in {text!r} (a stray comma?)")
            timed = next((i for i, part in enumerate(parts) if ascii_digits(part[0])), None)
            if timed is None:
                pending += parts
                continue
            days, pending = [*pending, *parts[:timed]], []
            if not days:
                raise ValueError(f"window {item.strip()!r} has no days ({_EXAMPLE})")
            hours = "".join(parts[timed:])
            first, sep, last = hours.partition("-")
            if not sep:
                raise ValueError(f"bad time range {hours!r} (expected HH:MM-HH:MM)")
            day_list = re.sub(r"\s*-\s*", "-", " ".join(days)).split()  # "mon - fri" is "mon-fri"
            windows.append(Window(_parse_days(day_list), _parse_time(first), _parse_end(last)))
        if pending:
            raise ValueError(f"days {','.join(pending)!r} have no time range ({_EXAMPLE})")
        return cls(words[0], tuple(windows))

    def to_dict(self) -> dict[str, Any]:
        out = {
            "timezone": self.timezone,
            "windows": [
                {
                    "days": [DAY_NAMES[day] for day in sorted(window.days)],
                    "start": _format_time(window.start),
                    "end": _format_time(window.end),
                }
                for window in self.windows
            ],
        }
        if self.holidays:
            out["holidays"] = [holiday.to_dict() for holiday in self.holidays.items]
        return out

    def describe(self) -> str:
        """The compact form, e.g. ``Europe/Paris mon-fri 09:00-18:00, sat 10:00-13:00``."""
        items = (
            f"{_describe_days(w.days)} {_format_time(w.start)}-{_format_time(w.end)}"
            for w in self.windows
        )
        text = f"{self.timezone} {', '.join(items)}"
        if self.holidays:
            text += f" (except {', '.join(h.date_text for h in self.holidays.items)})"
        return text


def hours_with_holidays(
    hours: str | Mapping[str, Any] | None, holidays: Sequence[str]
) -> dict[str, Any]:
    """Calling hours (any form) with their holidays replaced by ``holidays``, each in the
    CLI's ``DATE[=NAME][@ZONE,...]`` form (none: no holidays); the stored object form."""
    if not hours:
        raise ValueError("holidays need calling hours: give the calling hours too")
    spec = CallingHours.parse(hours).to_dict()
    spec["holidays"] = [holiday_from_text(text) for text in holidays]
    return CallingHours.parse(spec).to_dict()


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"expected an aware UTC datetime, got naive {now!r}")
    return now.astimezone(UTC)


def _instants(wall: datetime, local: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the clock reads ``wall``: none in a gap, two in a fold."""
    found = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=local, fold=fold).astimezone(UTC)
        if instant.astimezone(local).replace(tzinfo=None) == wall:
            found.append(instant)
    return found


def _offset_changes(local: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """The instants in about [start, end] at which the zone's UTC offset changes."""
    hour = int(start.timestamp()) // 3600 * 3600
    before = _offset(local, hour)
    while hour < end.timestamp():
        after = _offset(local, hour + 3600)
        if after != before:  # bisect to the second: tz transitions fall on whole seconds
            low, high = hour, hour + 3600
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(local, middle) == before else (low, middle)
            yield datetime.fromtimestamp(high, UTC)
        hour, before = hour + 3600, after


def _offset(local: ZoneInfo, timestamp: int) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, local).utcoffset()


def _window_from_dict(item: object) -> Window:
    if not isinstance(item, Mapping):
        raise ValueError(f"expected an object with days, start and end, got {item!r}")
    unknown = sorted(str(key) for key in item if key not in ("days", "start", "end"))
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(unknown)}")
    missing = [key for key in ("days", "start", "end") if key not in item]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    days = item["days"]
    return Window(
        _parse_days([days] if isinstance(days, str) else days),
        _parse_time(item["start"]),
        _parse_end(item["end"]),
    )


def _parse_days(items: object) -> frozenset[int]:
    """Day names and ranges (``mon``, ``Monday``, ``mon-fri``, ``fri-mon``, ``daily``, ``*``)."""
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"bad days {items!r} (expected e.g. ['mon-fri'] or ['sat', 'sun'])")
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"bad day {item!r}")
        for token in item.split(","):
            first, sep, last = token.strip().partition("-")
            if first.lower() in ("daily", "*") and not sep:
                days |= _ALL_DAYS
            elif sep:
                a, b = _day(first), _day(last)
                days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
            else:
                days.add(_day(first))
    return frozenset(days)


def _is_days(text: str) -> bool:
    try:
        _parse_days([text])
    except ValueError:
        return False
    return True


def _day(name: str) -> int:
    number = _DAY_NUMBERS.get(name.strip().lower())
    if number is None:
        raise ValueError(
            f"bad day {name.strip()!r} (use mon, tue, wed, thu, fri, sat, sun, a range like"
            " mon-fri, or daily)"
        )
    return number


def _parse_time(text: object, *, end: bool = False) -> time:
    match = _TIME_RE.match(text.strip()) if isinstance(text, str) else None
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return time(int(match[1]), int(match[2]))
    if end:
        hint = "expected HH:MM from 00:00 to 24:00"
    elif isinstance(text, str) and text.strip() == "24:00":
        hint = "a window cannot start at 24:00; use 00:00 to 23:59"
    else:
        hint = "expected HH:MM from 00:00 to 23:59"
    raise ValueError(f"bad time {text!r} ({hint})")


def _parse_end(text: object) -> time | None:
    if isinstance(text, str) and text.strip() == "24:00":
        return None
    return _parse_time(text, end=True)


def _format_time(value: time | None) -> str:
    return "24:00" if value is None else f"{value.hour:02d}:{value.minute:02d}"


def _describe_days(days: frozenset[int]) -> str:
    if days == _ALL_DAYS:
        return "daily"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[day] for day in run)
    return ",".join(parts)
