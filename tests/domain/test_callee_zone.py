"""The callee's time zone (issue 18): given, else from the number, else the queue's."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.domain.callee_zone import (
    called_number,
    callee_zone,
    number_zones,
    western_most,
)

WINTER = datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_a_given_zone_is_kept() -> None:
    zone = callee_zone("Asia/Tokyo", "+12125551234", "Europe/Paris", WINTER)
    assert (zone.timezone, zone.source) == ("Asia/Tokyo", "given")


def test_a_new_york_number_takes_new_york() -> None:
    zone = callee_zone(None, "+12125551234", "Europe/Paris", WINTER)
    assert (zone.timezone, zone.source) == ("America/New_York", "number")


def test_a_number_without_a_country_takes_the_queue_zone() -> None:
    for number in ("0612345678", "sip:bob@example.com", "+15550100", "+999123"):
        zone = callee_zone(None, number, "Europe/Paris", WINTER)
        assert (zone.timezone, zone.source) == ("Europe/Paris", "queue"), number


def test_a_country_of_one_zone_gives_it_from_the_country_code_alone() -> None:
    assert number_zones("+33 6 12 34 56 78") == ("Europe/Paris",)
    assert number_zones("+4930") == ("Europe/Berlin",)
    assert number_zones("+15550100") == ()  # several zones: the number must be valid


def test_a_queue_without_hours_leaves_no_zone() -> None:
    zone = callee_zone(None, "12345", None, WINTER)
    assert (zone.timezone, zone.source) == (None, "queue")


def test_a_number_spanning_zones_takes_the_smallest_utc_offset() -> None:
    zones = number_zones("+18005551234")  # toll-free: every North American zone
    assert "America/New_York" in zones and "America/Los_Angeles" in zones
    assert western_most(zones, WINTER) == "Pacific/Pago_Pago"  # UTC-11
    assert callee_zone(None, "+18005551234", None, WINTER).timezone == "Pacific/Pago_Pago"


def test_western_most_ties_are_broken_by_name() -> None:
    assert western_most(["Europe/Paris", "Europe/Berlin"], WINTER) == "Europe/Berlin"


def test_western_most_is_read_at_the_moment_given() -> None:
    # in January Phoenix (UTC-7, no DST) and Denver (UTC-7) tie; in July Denver is UTC-6
    assert western_most(["America/Phoenix", "America/Denver"], WINTER) == "America/Denver"
    july = datetime(2026, 7, 15, 12, tzinfo=UTC)
    assert western_most(["America/Phoenix", "America/Denver"], july) == "America/Phoenix"


def test_the_callee_of_a_callback_is_b() -> None:
    assert called_number("callback", {"a_number": "+331", "b_number": "+442"}) == "+442"
    assert called_number("msg_call", {"called_number": "+331"}) == "+331"
    assert called_number("ivr_call", {}) is None


numbers = st.one_of(
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    st.sampled_from(["+12125551234", "+18005551234", "+79161234567", "+33612345678"]),
    st.from_regex(r"[0-9]{2,15}", fullmatch=True),
)
moments = st.datetimes(datetime(2024, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC))
fallbacks = st.none() | st.sampled_from(["Europe/Paris", "Asia/Kolkata", "UTC"])


@settings(max_examples=300, deadline=None)
@given(number=numbers, fallback=fallbacks, at=moments)
def test_the_zone_is_one_of_the_number_or_the_fallback(
    number: str, fallback: str | None, at: datetime
) -> None:
    zones = number_zones(number)
    zone = callee_zone(None, number, fallback, at)
    if zones:
        assert zone.source == "number" and zone.timezone in zones
        ZoneInfo(zone.timezone)  # an IANA zone
    else:
        assert (zone.timezone, zone.source) == (fallback, "queue")


@settings(max_examples=300, deadline=None)
@given(number=numbers, at=moments)
def test_no_zone_of_the_number_is_west_of_the_one_chosen(number: str, at: datetime) -> None:
    zones = number_zones(number)
    if not zones:
        return
    chosen = western_most(zones, at)

    def offset(name: str) -> float:
        value = at.astimezone(ZoneInfo(name)).utcoffset()
        assert value is not None
        return value.total_seconds()

    assert all(offset(chosen) <= offset(other) for other in zones)
    # its wall clock is the earliest: a window opening there opens last everywhere else
    assert all(
        at.astimezone(ZoneInfo(chosen)).replace(tzinfo=None)
        <= at.astimezone(ZoneInfo(other)).replace(tzinfo=None)
        for other in zones
    )
