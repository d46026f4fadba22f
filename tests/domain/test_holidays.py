"""Holidays and blackout dates of calling hours (issue 18): days on which nobody is called."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.domain.calling_hours import CallingHours, Window
from ringback.domain.holidays import Holiday, Holidays, parse_holidays


def hours(*holidays: Any, spec: str = "mon-fri", zone: str = "Europe/Paris") -> CallingHours:
    return CallingHours.parse(
        {
            "timezone": zone,
            "windows": [{"days": [spec], "start": "09:00", "end": "18:00"}],
            "holidays": list(holidays),
        }
    )


def wall(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def test_a_yearly_holiday_closes_its_day_every_year() -> None:
    christmas = hours({"date": "12-25", "name": "Christmas"})
    for year in (2026, 2027, 2030):
        day = date(year, 12, 25)
        if day.weekday() < 5:
            assert not christmas.is_open(wall("Europe/Paris", year, 12, 25, 10))
            assert christmas.holiday_at(wall("Europe/Paris", year, 12, 25, 10)) is not None
    assert christmas.is_open(wall("Europe/Paris", 2026, 12, 24, 10))


def test_a_one_off_date_closes_only_that_year() -> None:
    closed = hours({"date": "2026-05-01"})
    assert not closed.is_open(wall("Europe/Paris", 2026, 5, 1, 10))  # a Friday
    assert closed.is_open(wall("Europe/Paris", 2031, 5, 1, 10))  # a Thursday


def test_next_opening_skips_a_holiday_to_the_next_day() -> None:
    christmas = hours({"date": "12-25"})  # Friday 25 December 2026
    opening = christmas.next_opening(wall("Europe/Paris", 2026, 12, 24, 19))
    assert opening == wall("Europe/Paris", 2026, 12, 28, 9)  # Monday


def test_next_opening_skips_a_run_of_holidays() -> None:
    days = [{"date": f"2026-08-{d:02d}"} for d in range(1, 32)]
    summer = hours(*days)
    assert summer.next_opening(wall("Europe/Paris", 2026, 7, 31, 18)) == wall(
        "Europe/Paris", 2026, 9, 1, 9
    )


def test_a_holiday_is_read_in_the_zone_of_the_task() -> None:
    christmas = hours({"date": "12-25"})
    # 2026-12-25 09:00 in Paris is still the 24th in New York: open there (tz of the task)
    late_evening_ny = wall("America/New_York", 2026, 12, 24, 10)
    assert christmas.is_open(late_evening_ny, "America/New_York")
    assert not christmas.is_open(wall("America/New_York", 2026, 12, 25, 10), "America/New_York")


def test_a_holiday_limited_to_zones_applies_only_in_them() -> None:
    local = hours({"date": "2026-07-14", "timezones": ["Europe/Paris"]})  # a Tuesday
    assert not local.is_open(wall("Europe/Paris", 2026, 7, 14, 10))
    assert local.is_open(wall("Europe/Berlin", 2026, 7, 14, 10), "Europe/Berlin")


def test_the_after_midnight_part_of_an_overnight_window_is_closed_on_a_holiday() -> None:
    night = CallingHours.parse(
        {
            "timezone": "UTC",
            "windows": [{"days": ["daily"], "start": "22:00", "end": "02:00"}],
            "holidays": ["2026-01-02"],
        }
    )
    assert night.is_open(datetime(2026, 1, 1, 23, tzinfo=UTC))
    assert not night.is_open(datetime(2026, 1, 2, 1, tzinfo=UTC))
    # the holiday closes its whole day: the window opening on it, 22:00, too; the part of
    # that window after midnight, on an ordinary day, opens at midnight
    assert night.next_opening(datetime(2026, 1, 2, 1, tzinfo=UTC)) == datetime(
        2026, 1, 3, 0, tzinfo=UTC
    )


def test_a_holiday_on_the_spring_forward_day_pushes_to_the_next_morning() -> None:
    # 2026-03-29: Paris moves to summer time; a Sunday, daily window, the 29th a holiday
    daily = hours({"date": "03-29"}, spec="daily")
    assert daily.next_opening(wall("Europe/Paris", 2026, 3, 28, 19)) == wall(
        "Europe/Paris", 2026, 3, 30, 9
    )


def test_the_delay_reason_names_the_holidays_waited_over() -> None:
    christmas = hours({"date": "12-25", "name": "Christmas"})
    now = wall("Europe/Paris", 2026, 12, 24, 19)
    reason = christmas.delay_reason(now, christmas.next_opening(now))
    assert reason == "outside calling hours, holiday: Christmas (12-25)"
    assert christmas.delay_reason(now - timedelta(days=2), now) == "outside calling hours"


def test_holidays_round_trip_through_to_dict() -> None:
    spec = hours(
        {"date": "12-25", "name": "Christmas", "timezones": ["Europe/Paris"]}, "2026-05-01"
    )
    again = CallingHours.parse(spec.to_dict())
    assert again == spec
    assert again.to_dict()["holidays"] == [
        {"date": "12-25", "name": "Christmas", "timezones": ["Europe/Paris"]},
        {"date": "2026-05-01"},
    ]
    assert "holidays" not in CallingHours.parse("UTC daily 09:00-18:00").to_dict()


@pytest.mark.parametrize(
    ("holidays", "message"),
    [
        ("12-25", "'holidays' must be a list"),
        ([{"date": "13-01"}], "holiday 1: date: '13-01' is not a day of the calendar"),
        ([{"date": "2027-02-29"}], "holiday 1: date: '2027-02-29' is not a day"),
        ([{"date": "25/12"}], "holiday 1: date: bad date '25/12'"),
        ([{}], "holiday 1: date: bad date None"),
        (["01-01", {"date": "12-25", "when": 1}], "holiday 2: unknown key(s): when"),
        ([{"date": "12-25", "timezones": ["Mars/Base"]}], "holiday 1: timezones: unknown"),
        ([{"date": "12-25", "timezones": []}], "holiday 1: timezones: expected a non-empty"),
        ([{"date": "12-25", "name": 7}], "holiday 1: name: expected text"),
    ],
)
def test_bad_holidays_are_refused_naming_the_field(holidays: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + _escape(message)):
        parse_holidays(holidays)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_yearly_holidays_closing_every_day_are_refused() -> None:
    every_day = [
        f"{d.month:02d}-{d.day:02d}" for d in (date(2026, 1, 1) + timedelta(n) for n in range(365))
    ]
    with pytest.raises(ValueError, match="close every day of the year"):
        parse_holidays(every_day)
    with pytest.raises(ValueError, match="close every day of the year in Asia/Tokyo"):
        parse_holidays([{"date": day, "timezones": ["Asia/Tokyo"]} for day in every_day])
    parse_holidays(every_day[:-1])  # one day left open: accepted


def test_a_year_of_holidays_but_one_day_opens_on_that_day() -> None:
    every_day = [
        f"{d.month:02d}-{d.day:02d}" for d in (date(2026, 1, 1) + timedelta(n) for n in range(365))
    ]
    open_day = "07-15"
    busy = hours(*[d for d in every_day if d != open_day], spec="daily")
    opening = busy.next_opening(wall("Europe/Paris", 2026, 7, 16, 10))
    assert opening == wall("Europe/Paris", 2027, 7, 15, 9)


# --- properties -------------------------------------------------------------------------------

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC"]
minutes_of_day = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
windows = st.builds(
    Window,
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=minutes_of_day,
    end=st.none() | minutes_of_day,
)
dates = st.dates(date(2025, 12, 1), date(2027, 3, 1))
holiday_items = st.one_of(
    dates.map(lambda d: Holiday(d.month, d.day, d.year)),
    dates.map(lambda d: Holiday(d.month, d.day)),
    st.builds(
        lambda d, zones: Holiday(d.month, d.day, timezones=frozenset(zones)),
        dates,
        st.lists(st.sampled_from(ZONES), min_size=1, max_size=2),
    ),
)
with_holidays = st.builds(
    CallingHours,
    timezone=st.sampled_from(ZONES),
    windows=st.lists(windows, min_size=1, max_size=3).map(tuple),
    holidays=st.lists(holiday_items, max_size=40).map(Holidays),
)
instants = st.datetimes(datetime(2025, 12, 1), datetime(2027, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(hours=with_holidays, now=instants, tz=st.none() | st.sampled_from(ZONES))
def test_next_opening_is_never_on_a_holiday_nor_outside_a_window(
    hours: CallingHours, now: datetime, tz: str | None
) -> None:
    opening = hours.next_opening(now, tz)
    assert opening >= now
    assert hours.is_open(opening, tz)
    assert hours.holiday_at(opening, tz) is None
    if opening > now:
        assert not hours.is_open(max(now, opening - timedelta(seconds=1)), tz)
        probe = now
        while probe < opening:
            assert not hours.is_open(probe, tz), probe
            probe += timedelta(minutes=30)


@settings(max_examples=50, deadline=None)
@given(
    hours=with_holidays,
    now=instants.map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_next_opening_equals_the_first_open_minute_with_holidays(
    hours: CallingHours, now: datetime
) -> None:
    opening = hours.next_opening(now)
    probe = now
    while not hours.is_open(probe):
        probe += timedelta(minutes=1)
        assert probe <= opening  # never past the opening found
    assert opening == probe


@settings(max_examples=30, deadline=None)
@given(
    open_days=st.sets(st.integers(0, 364), min_size=1, max_size=3),
    window_days=st.frozensets(st.integers(0, 6), min_size=1, max_size=2),
    now=instants,
)
def test_a_year_of_holidays_never_loops_forever(
    open_days: set[int], window_days: frozenset[int], now: datetime
) -> None:
    year = [date(2026, 1, 1) + timedelta(n) for n in range(365)]
    closed = [Holiday(d.month, d.day) for n, d in enumerate(year) if n not in open_days]
    hours = CallingHours("UTC", (Window(window_days, time(9), time(18)),), Holidays(closed))
    try:
        opening = hours.next_opening(now)
    except ValueError as exc:  # no open day falls on a window's weekday within the bound
        assert "does not open within" in str(exc)
    else:
        assert hours.is_open(opening)
        assert hours.holiday_at(opening) is None
