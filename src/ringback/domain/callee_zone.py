"""The callee's time zone (issue 18): the zone a task's calling hours are read in.

A task that names a ``timezone`` keeps it (source ``given``). Otherwise the zone comes from the
number called, with the time-zone data of ``phonenumbers`` (source ``number``): only numbers in
E.164 form (``+`` and the country code) are read, since a number without its country names no
zone (ringback has no default region per queue or client). A country whose numbers all lie in
one zone gives that zone from its country code alone; in the others the number must be valid
for ``phonenumbers`` to name its zones. A number whose zones are unknown, or a number that is
not E.164 (national digits, a sip: URI), takes the queue's zone, the zone of its calling hours
(source ``queue``; none when the queue has no calling hours).

When a number may be in several zones (a North American toll-free number, a Russian mobile),
the task takes the **western-most** of them: the zone whose UTC offset is the smallest at the
moment the zone is derived, ties broken by the zone's name (alphabetical). Its wall clock is
the latest of all the number's zones, so a window read there opens last: a call is never placed
before the opening hour anywhere the callee may be.

The number called is ``called_number`` for a call (msg_call, ivr_call) and
``b_number`` for a callback (A is the caller side, rung first and connected to B).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ringback.domain.digits import ascii_digits

# phonenumbers (its metadata: ~10 MiB) is imported when a number is first read: a worker
# process, which adds no tasks, never loads it

ZoneSource = Literal["given", "number", "queue"]
ZONE_SOURCES: tuple[ZoneSource, ...] = ("given", "number", "queue")
_UNKNOWN = "Etc/Unknown"


@dataclass(frozen=True, slots=True)
class CalleeZone:
    """A task's zone and where it came from (``timezone`` None: the queue has no hours)."""

    timezone: str | None
    source: ZoneSource


def called_number(kind: str, payload: Mapping[str, Any]) -> str | None:
    """The number a task calls (its callee): B for a callback, ``called_number`` otherwise."""
    value = payload.get("b_number" if kind == "callback" else "called_number")
    return value if isinstance(value, str) else None


def number_zones(number: str) -> tuple[str, ...]:
    """The IANA zones an E.164 number may be in, sorted; () when the number is not E.164
    (no leading +), does not parse, or its zones are unknown.

    A country whose numbers all lie in one zone (France, Germany, …) gives that zone from the
    country code alone; the others (the North American plan, Russia, Australia, …) ask
    ``phonenumbers`` about the whole number (about 0.1 ms), which also checks it is valid."""
    text = number.strip()
    if not text.startswith("+"):
        return ()
    digits = text[1:]
    for length in (1, 2, 3):  # country codes are prefix-free
        zones = _country_zones(digits[:length])
        if zones is not None:
            if len(zones) == 1 and ascii_digits(digits[length:]):
                return zones
            break
    return _library_zones(text)


@lru_cache(maxsize=65_536)
def _library_zones(text: str) -> tuple[str, ...]:
    import phonenumbers
    from phonenumbers import timezone as number_timezone

    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = set(number_timezone.time_zones_for_number(parsed)) - {_UNKNOWN}
    return tuple(sorted(name for name in zones if _zone(name) is not None))


@cache
def _country_zones(code: str) -> tuple[str, ...] | None:
    """Every zone of a country calling code's numbers (None: not a country code)."""
    import phonenumbers
    from phonenumbers.tzdata import TIMEZONE_DATA

    if not ascii_digits(code) or int(code) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return None
    zones = {name for key, names in TIMEZONE_DATA.items() if key.startswith(code) for name in names}
    return tuple(sorted(name for name in zones - {_UNKNOWN} if _zone(name) is not None))


def western_most(zones: Iterable[str], at: datetime) -> str:
    """The zone with the smallest UTC offset at ``at`` (aware), ties by name; ValueError if
    there is none."""
    ranked = sorted((_offset(name, at), name) for name in zones)
    if not ranked:
        raise ValueError("no zone to choose from")
    return ranked[0][1]


def callee_zone(
    given: str | None, number: str | None, queue_zone: str | None, at: datetime
) -> CalleeZone:
    """The task's zone: ``given`` if set, else the western-most zone of ``number`` at ``at``,
    else the queue's zone (see the module docstring)."""
    if given:
        return CalleeZone(given, "given")
    zones = number_zones(number) if number else ()
    if zones:
        return CalleeZone(western_most(zones, at), "number")
    return CalleeZone(queue_zone, "queue")


def _offset(name: str, at: datetime) -> float:
    local = _zone(name)
    offset = None if local is None else at.astimezone(local).utcoffset()
    return 0.0 if offset is None else offset.total_seconds()


@cache
def _zone(name: str) -> ZoneInfo | None:
    """The zone (kept: ZoneInfo's own cache holds few, and a country can have 40), or None."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
