"""Holidays and blackout dates of calling hours (issue 18): days on which nobody is called.

Each is a date, yearly (``MM-DD``: every year; ``02-29`` only in leap years) or one-off
(``YYYY-MM-DD``), with an optional ``name`` and an optional list of ``timezones``::

    {"date": "12-25", "name": "Christmas"}
    {"date": "2026-05-01", "timezones": ["Europe/Paris", "Europe/Brussels"]}

The date is read in the zone the calling hours are read in for the task (the callee's zone, see
domain/callee_zone.py; else the hours' own zone): it closes that whole local calendar day, from
00:00 to 24:00, the part after midnight of a window that opened the day before included. A
holiday with ``timezones`` applies only to tasks whose calling hours are read in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_HOLIDAYS = 500
MAX_NAME = 100
_DATE_RE = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")
_KEYS = ("date", "name", "timezones")
_DATE_FORM = "MM-DD for every year or YYYY-MM-DD for one day"


@dataclass(frozen=True, slots=True)
class Holiday:
    """A closed day: ``month``-``day`` of ``year`` (None: every year), in ``timezones``
    (empty: every zone)."""

    month: int
    day: int
    year: int | None = None
    name: str = ""
    timezones: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        date(2000 if self.year is None else self.year, self.month, self.day)  # ValueError

    @property
    def date_text(self) -> str:
        text = f"{self.month:02d}-{self.day:02d}"
        return text if self.year is None else f"{self.year:04d}-{text}"

    def closes(self, day: date, zone: str) -> bool:
        """Whether this holiday closes the local date ``day`` of a task read in ``zone``."""
        if self.timezones and zone not in self.timezones:
            return False
        return (
            day.month == self.month
            and day.day == self.day
            and (self.year is None or day.year == self.year)
        )

    def describe(self) -> str:
        """``Christmas (12-25)`` or ``2026-05-01``."""
        return f"{self.name} ({self.date_text})" if self.name else self.date_text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"date": self.date_text}
        if self.name:
            out["name"] = self.name
        if self.timezones:
            out["timezones"] = sorted(self.timezones)
        return out


class Holidays:
    """A set of holidays, looked up by local date and zone in constant time."""

    def __init__(self, items: Iterable[Holiday] = ()) -> None:
        self.items = tuple(items)
        self._by_month_day: dict[tuple[int, int], list[Holiday]] = {}
        for item in self.items:
            self._by_month_day.setdefault((item.month, item.day), []).append(item)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Holidays) and self.items == other.items

    def __hash__(self) -> int:
        return hash(self.items)

    def __repr__(self) -> str:
        return f"Holidays({list(self.items)!r})"

    def on(self, day: date, zone: str) -> Holiday | None:
        """The holiday closing local date ``day`` in ``zone`` (None: an ordinary day)."""
        for item in self._by_month_day.get((day.month, day.day), ()):
            if item.closes(day, zone):
                return item
        return None


NO_HOLIDAYS = Holidays()


def parse_holidays(raw: object) -> Holidays:
    """The ``holidays`` list of calling hours; ValueError naming the item and its field."""
    if not isinstance(raw, list | tuple):
        raise ValueError(f"'holidays' must be a list, got {raw!r}")
    if len(raw) > MAX_HOLIDAYS:
        raise ValueError(f"'holidays' has {len(raw)} dates: at most {MAX_HOLIDAYS}")
    items = []
    for number, item in enumerate(raw, 1):
        try:
            items.append(_holiday(item))
        except ValueError as exc:
            raise ValueError(f"holiday {number}: {exc}") from None
    holidays = Holidays(items)
    _check_some_day_open(holidays)
    return holidays


def holiday_from_text(text: str) -> dict[str, Any]:
    """The object form of ``DATE[=NAME][@ZONE,ZONE...]`` (the CLI's ``--holiday``), e.g.
    ``12-25=Christmas`` or ``2026-05-01@Europe/Paris,Europe/Brussels``; ValueError if bad."""
    rest, _, zones = text.partition("@")
    day, _, name = rest.partition("=")
    item: dict[str, Any] = {"date": day.strip()}
    if name.strip():
        item["name"] = name.strip()
    if zones.strip():
        item["timezones"] = [zone.strip() for zone in zones.split(",") if zone.strip()]
    try:
        _holiday(item)
    except ValueError as exc:
        raise ValueError(f"holiday {text!r}: {exc} (e.g. 12-25=Christmas@Europe/Paris)") from None
    return item


def _holiday(item: object) -> Holiday:
    if isinstance(item, str):
        item = {"date": item}
    if not isinstance(item, Mapping):
        raise ValueError(f"expected an object with a date, got {item!r}")
    unknown = sorted(str(key) for key in item if key not in _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(unknown)}")
    text = item.get("date")
    match = _DATE_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"date: bad date {text!r} ({_DATE_FORM})")
    year = None if match[1] is None else int(match[1])
    try:
        holiday_date = (year, int(match[2]), int(match[3]))
        date(2000 if year is None else year, holiday_date[1], holiday_date[2])
    except ValueError:
        raise ValueError(f"date: {text!r} is not a day of the calendar ({_DATE_FORM})") from None
    name = item.get("name") or ""
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise ValueError(f"name: expected text of at most {MAX_NAME} characters, got {name!r}")
    return Holiday(
        month=holiday_date[1],
        day=holiday_date[2],
        year=year,
        name=name.strip(),
        timezones=_zones(item.get("timezones")),
    )


def _zones(raw: object) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError(f"timezones: expected a non-empty list of IANA names, got {raw!r}")
    for name in raw:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
            hint = "use an IANA name like Europe/Paris"
            raise ValueError(f"timezones: unknown time zone {name!r} ({hint})") from None
    return frozenset(raw)


def _check_some_day_open(holidays: Holidays) -> None:
    """Refuse yearly holidays that close every day of the year in some zone: the hours would
    never open (one-off dates end, so they cannot)."""
    zones: set[str | None] = {None}
    for item in holidays.items:
        zones |= set(item.timezones)
    for zone in zones:
        yearly = {
            (h.month, h.day)
            for h in holidays.items
            if h.year is None and (not h.timezones or zone in h.timezones)
        }
        if len(yearly - {(2, 29)}) >= 365:
            where = "" if zone is None else f" in {zone}"
            raise ValueError(f"holidays close every day of the year{where}: nobody is ever called")


def holidays_to_list(holidays: Sequence[Holiday]) -> list[dict[str, Any]]:
    return [item.to_dict() for item in holidays]
