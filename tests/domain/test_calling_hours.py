import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.domain.calling_hours import CallingHours, Window

PARIS_OFFICE = CallingHours.parse("Europe/Paris mon-fri 09:00-18:00")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def wall(
    zone: str, year: int, month: int, day: int, hour: int, minute: int, fold: int = 0
) -> datetime:
    """The UTC instant at which the clock in ``zone`` reads the given wall time."""
    local = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold)
    return local.astimezone(UTC)


# --- is_open -------------------------------------------------------------------------------------


def test_open_inside_a_window_and_closed_outside() -> None:
    # Monday 2026-01-05, Paris is UTC+1 in winter
    assert PARIS_OFFICE.is_open(wall("Europe/Paris", 2026, 1, 5, 12, 0))
    assert not PARIS_OFFICE.is_open(wall("Europe/Paris", 2026, 1, 5, 7, 0))
    assert not PARIS_OFFICE.is_open(wall("Europe/Paris", 2026, 1, 5, 20, 0))
    assert not PARIS_OFFICE.is_open(wall("Europe/Paris", 2026, 1, 10, 12, 0))  # Saturday


def test_window_start_is_inclusive_and_end_exclusive() -> None:
    assert PARIS_OFFICE.is_open(utc(2026, 1, 5, 8, 0))  # 09:00 Paris
    assert not PARIS_OFFICE.is_open(utc(2026, 1, 5, 7, 59, 59))
    assert PARIS_OFFICE.is_open(utc(2026, 1, 5, 16, 59, 59))
    assert not PARIS_OFFICE.is_open(utc(2026, 1, 5, 17, 0))  # 18:00 Paris


def test_windows_follow_the_wall_clock_across_dst() -> None:
    # 09:00 Paris is 08:00 UTC in winter and 07:00 UTC in summer
    assert PARIS_OFFICE.is_open(utc(2026, 1, 5, 8, 0))
    assert not PARIS_OFFICE.is_open(utc(2026, 7, 6, 6, 59))
    assert PARIS_OFFICE.is_open(utc(2026, 7, 6, 7, 0))


def test_window_ending_at_24_00_stays_open_until_midnight() -> None:
    hours = CallingHours.parse("Europe/Paris mon 20:00-24:00")
    assert hours.windows[0].end is None
    assert hours.is_open(wall("Europe/Paris", 2026, 1, 5, 23, 59))
    assert not hours.is_open(wall("Europe/Paris", 2026, 1, 6, 0, 0))


def test_overnight_window_stays_open_into_the_next_day() -> None:
    hours = CallingHours.parse("Europe/Paris fri 22:00-06:00")
    assert hours.is_open(wall("Europe/Paris", 2026, 1, 9, 22, 0))  # Friday
    assert hours.is_open(wall("Europe/Paris", 2026, 1, 10, 3, 0))  # Saturday morning
    assert not hours.is_open(wall("Europe/Paris", 2026, 1, 10, 6, 0))
    assert not hours.is_open(wall("Europe/Paris", 2026, 1, 9, 3, 0))  # Thursday is not listed
    assert not hours.is_open(wall("Europe/Paris", 2026, 1, 10, 23, 0))  # nor Saturday


def test_window_whose_end_equals_its_start_lasts_a_whole_day() -> None:
    hours = CallingHours.parse("UTC mon 09:00-09:00")
    assert hours.is_open(utc(2026, 1, 5, 9, 0))
    assert hours.is_open(utc(2026, 1, 6, 8, 59))
    assert not hours.is_open(utc(2026, 1, 6, 9, 0))


def test_zone_without_dst_tokyo() -> None:
    hours = CallingHours.parse("Asia/Tokyo mon-fri 09:00-18:00")
    assert hours.is_open(utc(2026, 7, 6, 0, 0))  # Monday 09:00 JST
    assert not hours.is_open(utc(2026, 7, 5, 23, 59))
    sunday = utc(2026, 3, 8, 12, 0)  # Sunday 21:00 JST
    assert hours.next_opening(sunday) == utc(2026, 3, 9, 0, 0)


def test_zone_with_a_half_hour_offset_kolkata() -> None:
    hours = CallingHours.parse("Asia/Kolkata mon-fri 09:00-18:00")
    assert hours.is_open(utc(2026, 3, 9, 3, 30))  # Monday 09:00 IST (+05:30)
    assert not hours.is_open(utc(2026, 3, 9, 3, 29))
    assert hours.next_opening(utc(2026, 3, 8, 12, 0)) == utc(2026, 3, 9, 3, 30)
    assert hours.next_opening(utc(2026, 3, 9, 12, 30)) == utc(2026, 3, 10, 3, 30)  # after 18:00


def test_task_time_zone_overrides_the_default_zone() -> None:
    now = utc(2026, 1, 5, 8, 30)  # 09:30 in Paris, 03:30 in New York
    assert PARIS_OFFICE.is_open(now)
    assert not PARIS_OFFICE.is_open(now, tz="America/New_York")
    assert PARIS_OFFICE.next_opening(now) == now
    assert PARIS_OFFICE.next_opening(now, tz="America/New_York") == utc(2026, 1, 5, 14, 0)


def test_unknown_task_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        PARIS_OFFICE.is_open(utc(2026, 1, 5, 8, 0), tz="Mars/Base")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        PARIS_OFFICE.is_open(datetime(2026, 1, 5, 8, 0))


def test_aware_now_in_another_zone_is_read_as_the_same_instant() -> None:
    now = datetime(2026, 1, 5, 3, 0, tzinfo=ZoneInfo("America/New_York"))  # 09:00 Paris
    assert PARIS_OFFICE.is_open(now)
    assert PARIS_OFFICE.next_opening(now) == utc(2026, 1, 5, 8, 0)
    assert PARIS_OFFICE.next_opening(now).tzinfo is UTC


# --- next_opening --------------------------------------------------------------------------------


def test_next_opening_is_now_when_open() -> None:
    now = utc(2026, 1, 5, 10, 17, 3)
    assert PARIS_OFFICE.next_opening(now) == now


def test_next_opening_later_the_same_weekday() -> None:
    assert PARIS_OFFICE.next_opening(wall("Europe/Paris", 2026, 1, 5, 7, 0)) == utc(2026, 1, 5, 8)


def test_next_opening_after_closing_is_the_next_morning() -> None:
    evening = wall("Europe/Paris", 2026, 1, 5, 19, 0)
    assert PARIS_OFFICE.next_opening(evening) == utc(2026, 1, 6, 8, 0)


def test_next_opening_skips_the_weekend() -> None:
    friday_evening = wall("Europe/Paris", 2026, 1, 9, 18, 30)
    assert PARIS_OFFICE.next_opening(friday_evening) == utc(2026, 1, 12, 8, 0)  # Monday


def test_next_opening_waits_up_to_a_week_for_a_single_weekday() -> None:
    hours = CallingHours.parse("Europe/Paris mon 09:00-09:30")
    after = wall("Europe/Paris", 2026, 1, 5, 9, 30)
    assert hours.next_opening(after) == wall("Europe/Paris", 2026, 1, 12, 9, 0)


def test_next_opening_picks_the_earliest_of_several_windows() -> None:
    hours = CallingHours.parse("Europe/Paris mon-fri 14:00-18:00, mon-fri 09:00-12:00")
    noon = wall("Europe/Paris", 2026, 1, 5, 12, 30)
    assert hours.next_opening(noon) == wall("Europe/Paris", 2026, 1, 5, 14, 0)


def test_next_opening_of_an_overnight_window() -> None:
    hours = CallingHours.parse("Europe/Paris fri 22:00-06:00")
    saturday_morning = wall("Europe/Paris", 2026, 1, 10, 7, 0)
    assert hours.next_opening(saturday_morning) == wall("Europe/Paris", 2026, 1, 16, 22, 0)
    assert hours.next_opening(wall("Europe/Paris", 2026, 1, 10, 5, 0)) == wall(
        "Europe/Paris", 2026, 1, 10, 5, 0
    )


# --- DST -----------------------------------------------------------------------------------------
# Europe/Paris 2026: 02:00 CET -> 03:00 CEST on Sun 29 March (01:00 UTC);
#                    03:00 CEST -> 02:00 CET on Sun 25 October (01:00 UTC).
# America/New_York 2026: 02:00 EST -> 03:00 EDT on Sun 8 March (07:00 UTC);
#                        02:00 EDT -> 01:00 EST on Sun 1 November (06:00 UTC).


def test_spring_forward_paris_window_starting_in_the_gap_opens_at_the_jump() -> None:
    hours = CallingHours.parse("Europe/Paris sun 02:30-12:00")
    opening = hours.next_opening(utc(2026, 3, 28, 12, 0))
    assert opening == utc(2026, 3, 29, 1, 0)  # 03:00 CEST, the first instant past 02:30
    assert hours.is_open(opening)
    assert not hours.is_open(opening - timedelta(seconds=1))  # 01:59:59 CET


def test_spring_forward_new_york_window_starting_in_the_gap_opens_at_the_jump() -> None:
    hours = CallingHours.parse("America/New_York sun 02:15-10:00")
    assert hours.next_opening(utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 8, 7, 0)  # 03:00 EDT


def test_spring_forward_paris_window_the_day_after_opens_at_0900_summer_time() -> None:
    before = PARIS_OFFICE.next_opening(utc(2026, 3, 22, 12, 0))  # Sunday before the change
    after = PARIS_OFFICE.next_opening(utc(2026, 3, 29, 12, 0))  # Sunday of the change
    assert before == utc(2026, 3, 23, 8, 0)  # 09:00 CET
    assert after == utc(2026, 3, 30, 7, 0)  # 09:00 CEST


def test_spring_forward_new_york_window_the_day_after_opens_at_0900_daylight_time() -> None:
    hours = CallingHours.parse("America/New_York mon-fri 09:00-17:00")
    assert hours.next_opening(utc(2026, 3, 8, 12, 0)) == utc(2026, 3, 9, 13, 0)  # 09:00 EDT
    assert hours.next_opening(utc(2026, 3, 1, 12, 0)) == utc(2026, 3, 2, 14, 0)  # 09:00 EST


def test_window_wholly_inside_the_spring_forward_gap_is_skipped_that_day() -> None:
    hours = CallingHours.parse("Europe/Paris sun 02:00-02:30")
    opening = hours.next_opening(utc(2026, 3, 28, 12, 0))
    assert opening == wall("Europe/Paris", 2026, 4, 5, 2, 0)  # the next Sunday
    assert opening == utc(2026, 4, 5, 0, 0)


def test_fall_back_paris_opens_at_the_first_occurrence() -> None:
    hours = CallingHours.parse("Europe/Paris sun 02:30-04:00")
    assert hours.next_opening(utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 0, 30)  # CEST


def test_fall_back_new_york_opens_at_the_first_occurrence() -> None:
    hours = CallingHours.parse("America/New_York sun 01:30-05:00")
    opening = hours.next_opening(utc(2026, 10, 31, 12, 0))
    assert opening == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, not 01:30 EST (06:30 UTC)
    assert opening == wall("America/New_York", 2026, 11, 1, 1, 30, fold=0)


def test_fall_back_reopens_a_window_when_the_clock_goes_back_into_it() -> None:
    hours = CallingHours.parse("Europe/Paris sun 02:00-02:30")
    after_first_pass = utc(2026, 10, 25, 0, 45)  # 02:45 CEST, closed
    assert not hours.is_open(after_first_pass)
    assert hours.next_opening(after_first_pass) == utc(2026, 10, 25, 1, 0)  # 02:00 CET


def test_fall_back_second_occurrence_of_the_start_opens_the_window_again() -> None:
    hours = CallingHours.parse("Europe/Paris sun 02:15-02:30")
    after_first_pass = utc(2026, 10, 25, 0, 45)  # 02:45 CEST
    assert hours.next_opening(after_first_pass) == utc(2026, 10, 25, 1, 15)  # 02:15 CET


# --- property: next_opening is the first open instant ------------------------------------------

ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # changes at midnight
    "UTC",
]
# Approximate 2026 transitions, to aim `now` at the interesting weeks.
TRANSITIONS = [
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15, 30),
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
]

minutes_of_day = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
windows = st.builds(
    Window,
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=minutes_of_day,
    end=st.none() | minutes_of_day,
)
calling_hours = st.builds(
    CallingHours,
    timezone=st.sampled_from(ZONES),
    windows=st.lists(windows, min_size=1, max_size=3).map(tuple),
)
instants = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
    st.builds(
        lambda base, seconds: base + timedelta(seconds=seconds),
        st.sampled_from(TRANSITIONS),
        st.integers(-9 * 86400, 2 * 86400),
    ),
)


@settings(max_examples=300, deadline=None)
@given(hours=calling_hours, now=instants)
def test_next_opening_is_open_and_nothing_before_it_is(hours: CallingHours, now: datetime) -> None:
    opening = hours.next_opening(now)
    assert opening >= now
    assert opening - now <= timedelta(days=9)
    assert hours.is_open(opening)
    if opening > now:
        assert not hours.is_open(now)
        assert not hours.is_open(max(now, opening - timedelta(seconds=1)))
        probe = now + timedelta(minutes=15)
        while probe < opening:
            assert not hours.is_open(probe), probe
            probe += timedelta(minutes=15)


@settings(max_examples=40, deadline=None)
@given(hours=calling_hours, now=instants.map(lambda t: t.replace(second=0, microsecond=0)))
def test_next_opening_equals_the_first_open_minute(hours: CallingHours, now: datetime) -> None:
    # zone offsets and windows are whole minutes, so from a whole minute the opening is one too
    probe = now
    while not hours.is_open(probe):
        probe += timedelta(minutes=1)
    assert hours.next_opening(now) == probe


# --- parse / to_dict / describe ------------------------------------------------------------------


def test_parse_dict_form() -> None:
    hours = CallingHours.parse(
        {
            "timezone": "Europe/Paris",
            "windows": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"},
                {"days": "sat", "start": "10:00", "end": "13:00"},
            ],
        }
    )
    assert hours == CallingHours(
        "Europe/Paris",
        (
            Window(frozenset(range(5)), time(9), time(18)),
            Window(frozenset({5}), time(10), time(13)),
        ),
    )


def test_parse_json_string_form() -> None:
    spec = '{"timezone": "UTC", "windows": [{"days": ["daily"], "start": "00:00", "end": "24:00"}]}'
    assert CallingHours.parse(spec) == CallingHours(
        "UTC", (Window(frozenset(range(7)), time(0), None),)
    )


def test_parse_compact_form() -> None:
    hours = CallingHours.parse("Europe/Paris mon-fri 09:00-18:00, sat 10:00-13:00")
    assert hours == CallingHours.parse(
        {
            "timezone": "Europe/Paris",
            "windows": [
                {"days": ["mon-fri"], "start": "09:00", "end": "18:00"},
                {"days": ["sat"], "start": "10:00", "end": "13:00"},
            ],
        }
    )


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat,sun", {5, 6}),
        ("sat, sun", {5, 6}),
        ("daily", set(range(7))),
        ("*", set(range(7))),
        ("Monday,WED", {0, 2}),
        ("mon - wed", {0, 1, 2}),
        ("fri-mon", {4, 5, 6, 0}),
        ("mon,wed-fri", {0, 2, 3, 4}),
    ],
)
def test_parse_day_spellings(days: str, expected: set[int]) -> None:
    hours = CallingHours.parse(f"UTC {days} 09:00-10:00")
    assert hours.windows[0].days == expected


def test_parse_compact_form_with_multi_day_lists_and_spaced_ranges() -> None:
    hours = CallingHours.parse("Asia/Tokyo sat,sun 10:00 - 13:00, mon-fri 9:00-24:00")
    assert hours.windows == (
        Window(frozenset({5, 6}), time(10), time(13)),
        Window(frozenset(range(5)), time(9), None),
    )


def test_describe_is_the_compact_form() -> None:
    hours = CallingHours.parse(
        "Europe/Paris mon-fri 09:00-18:00, sat,sun 10:00-13:00, daily 22:00-24:00,"
        " mon,wed 1:05-2:00"
    )
    assert hours.describe() == (
        "Europe/Paris mon-fri 09:00-18:00, sat,sun 10:00-13:00, daily 22:00-24:00,"
        " mon,wed 01:05-02:00"
    )


def test_to_dict_lists_day_names_and_24_00() -> None:
    assert CallingHours.parse("UTC fri-mon 20:00-24:00").to_dict() == {
        "timezone": "UTC",
        "windows": [{"days": ["mon", "fri", "sat", "sun"], "start": "20:00", "end": "24:00"}],
    }


@settings(max_examples=200)
@given(calling_hours)
def test_parse_round_trips_describe_and_to_dict(hours: CallingHours) -> None:
    assert CallingHours.parse(hours.describe()) == hours
    assert CallingHours.parse(hours.to_dict()) == hours
    assert CallingHours.parse(json.dumps(hours.to_dict())) == hours


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Mars/Base mon-fri 09:00-18:00", "unknown time zone 'Mars/Base'"),
        ("Mars/Base mon-fri 09:00-18:00", "use an IANA name like Europe/Paris"),
        ("Europe mon-fri 09:00-18:00", "unknown time zone 'Europe'"),
        ({"timezone": "Mars/Base", "windows": []}, "unknown time zone 'Mars/Base'"),
        ("Europe/Paris mnday 09:00-18:00", "bad day 'mnday'"),
        ("Europe/Paris mon-frday 09:00-18:00", "bad day 'frday'"),
        ("Europe/Paris mon 25:00-26:00", "bad time '25:00'"),
        ("Europe/Paris mon 09:00-25:00", "bad time '25:00'"),
        ("Europe/Paris mon 09:60-10:00", "bad time '09:60'"),
        ("Europe/Paris mon 24:00-10:00", "cannot start at 24:00"),
        ("Europe/Paris mon 0900-1000", "bad time '0900'"),
        ("Europe/Paris mon 09:00", "bad time range '09:00'"),
        ("Europe/Paris", "empty window list"),
        ({"timezone": "Europe/Paris", "windows": []}, "empty window list"),
        ("", "empty calling-hours spec"),
        ("mon-fri 09:00-18:00", "start with a time zone"),
        ("Europe/Paris sat", "days 'sat' have no time range"),
        ("Europe/Paris 09:00-18:00", "window '09:00-18:00' has no days"),
        ("Europe/Paris mon 09:00-10:00,", "empty item"),
        ('{"timezone": "UTC"', "not valid JSON"),
        ({"windows": []}, "need a 'timezone'"),
        ({"timezone": "UTC", "windows": [], "zone": 1}, "unknown calling-hours key(s): zone"),
        ({"timezone": "UTC", "windows": "mon"}, "'windows' must be a list"),
        (
            {"timezone": "UTC", "windows": [{"days": ["mon"], "start": "09:00"}]},
            "window 1: missing end",
        ),
        (
            {"timezone": "UTC", "windows": [{"days": [], "start": "09:00", "end": "10:00"}]},
            "window 1: bad days",
        ),
        (
            {"timezone": "UTC", "windows": [{"days": ["mon"], "start": 9, "end": "10:00"}]},
            "window 1: bad time 9",
        ),
        (
            {"timezone": "UTC", "windows": [{"days": "x", "start": "9:00", "end": "10:00"}]},
            "window 1: bad day 'x'",
        ),
    ],
)
def test_bad_spec_names_what_is_wrong(spec: Any, message: str) -> None:
    with pytest.raises(ValueError) as error:
        CallingHours.parse(spec)
    assert message in str(error.value)


def test_calling_hours_without_windows_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="empty window list"):
        CallingHours("Europe/Paris", ())


def test_calling_hours_with_an_unknown_zone_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        CallingHours("Mars/Base", (Window(frozenset({0}), time(9), time(10)),))


@pytest.mark.parametrize(
    ("days", "start", "message"),
    [
        (frozenset(), time(9), "at least one day"),
        (frozenset({7}), time(9), "0 \\(Monday\\) to 6 \\(Sunday\\)"),
        (frozenset({0}), time(9, 0, 30), "whole minutes"),
        (frozenset({0}), time(9, tzinfo=UTC), "naive"),
    ],
)
def test_bad_window_is_refused_at_construction(
    days: frozenset[int], start: time, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Window(days, start, time(18))
