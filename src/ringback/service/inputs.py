"""Input checks of the application layer that need no models: how many tasks one request
may add, and calling hours (with their holidays), each refused with :class:`InvalidInput`
naming the field. Jobs and callback tasks are checked in :mod:`ringback.service.job_inputs`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ringback.domain.calling_hours import CallingHours, hours_with_holidays
from ringback.domain.rows import InvalidInput

MAX_TASKS_PER_REQUEST = 10_000


def check_count(items: Sequence[Any]) -> None:
    if not isinstance(items, list | tuple):
        raise InvalidInput("expected a list of tasks", [{"loc": [], "msg": "not a list"}])
    if not 1 <= len(items) <= MAX_TASKS_PER_REQUEST:
        raise InvalidInput(
            f"send 1 to {MAX_TASKS_PER_REQUEST} tasks at a time, not {len(items)}",
            [{"loc": [], "msg": f"{len(items)} tasks"}],
        )


def parse_calling_hours(spec: str | dict[str, Any]) -> dict[str, Any]:
    try:
        return CallingHours.parse(spec).to_dict()
    except ValueError as exc:
        raise InvalidInput(
            f"calling hours: {exc}", [{"loc": ["calling_hours"], "msg": str(exc)}]
        ) from exc


def calling_hours_with_holidays(
    spec: str | dict[str, Any] | None, holidays: list[str]
) -> dict[str, Any]:
    """Calling hours with their holidays replaced (``DATE[=NAME][@ZONE,...]`` each; none:
    no holidays); InvalidInput naming calling_hours.holidays."""
    try:
        return hours_with_holidays(spec, holidays)
    except ValueError as exc:
        raise InvalidInput(
            f"calling hours: {exc}", [{"loc": ["calling_hours", "holidays"], "msg": str(exc)}]
        ) from exc
