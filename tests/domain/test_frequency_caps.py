"""The arithmetic of frequency caps (``ringback.domain.frequency_caps``): a call delayed by
the caps fits every rule at the moment given and at no earlier one; rules parse as written;
caller ids match by number or prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.frequency_caps import (
    CallerIdEntry,
    CapRule,
    caller_id_allowed,
    cap_delay,
    check_rules,
    first_allowed,
    parse_caller_id,
    parse_rule,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)

rules_st = st.lists(
    st.builds(CapRule, st.integers(1, 5), st.integers(1, 20_000)),
    min_size=1, max_size=4, unique_by=lambda r: r.window_seconds,
)  # fmt: skip
starts_st = st.lists(
    st.integers(0, 40_000_000).map(lambda ms: NOW - timedelta(milliseconds=ms)), max_size=12
)


def _fits(rules: list[CapRule], starts: list[datetime], at: datetime) -> bool:
    """Brute force: every rule's window ending ``at`` holds fewer calls than it allows."""
    return all(
        sum(at - timedelta(seconds=r.window_seconds) < s <= at for s in starts) < r.max_calls
        for r in rules
    )


@given(rules_st, starts_st)
def test_a_delayed_call_fits_every_rule_at_its_moment_and_at_no_earlier_one(
    rules: list[CapRule], starts: list[datetime]
) -> None:
    delay = cap_delay("0901", rules, starts, NOW)
    if delay is None:
        assert _fits(rules, starts, NOW)
        return
    assert delay.until > NOW and not _fits(rules, starts, NOW)
    assert _fits(rules, starts, delay.until)
    assert not _fits(rules, starts, delay.until - MS)  # times are stored to the millisecond


@given(st.builds(CapRule, st.integers(1, 5), st.integers(1, 20_000)), starts_st)
def test_one_rule_waits_for_the_call_that_makes_room_to_leave_the_window(
    rule: CapRule, starts: list[datetime]
) -> None:
    until = first_allowed(rule, starts, NOW)
    window = timedelta(seconds=rule.window_seconds)
    counted = sorted(s for s in starts if NOW - window < s <= NOW)
    if len(counted) < rule.max_calls:
        assert until is None
    else:
        assert until == counted[-rule.max_calls] + window


def test_three_calls_a_day_delay_the_fourth_to_the_first_call_plus_24h() -> None:
    starts = [NOW - timedelta(hours=h) for h in (20, 5, 1)]
    delay = cap_delay("0901", [CapRule(3, 86400), CapRule(1, 3600)], starts, NOW)
    assert delay is not None and delay.until == NOW + timedelta(hours=4)
    assert delay.rule == CapRule(3, 86400)
    assert delay.reason().startswith("frequency cap: 0901 was called 3 per 1d already")


@given(st.integers(1, 1000), st.sampled_from(["s", "m", "h", "d"]), st.integers(1, 300))
def test_a_rule_written_as_calls_per_window_parses_to_its_seconds(
    calls: int, unit: str, count: int
) -> None:
    seconds = count * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if seconds > 366 * 86400:
        with pytest.raises(ValueError, match="window_seconds"):
            parse_rule(f"{calls}/{count}{unit}")
        return
    rule = parse_rule(f" {calls} / {count}{unit} ")
    assert rule == CapRule(calls, seconds)
    assert parse_rule(rule.describe().replace(" per ", "/")) == rule


@pytest.mark.parametrize("text", ["3", "3/", "3/24", "x/1h", "3/1w", "0/1h", "1001/1h", ""])
def test_a_rule_that_is_not_calls_per_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rule(text)


def test_two_rules_of_one_window_are_refused() -> None:
    with pytest.raises(ValueError, match="same window_seconds"):
        check_rules([CapRule(1, 60), CapRule(2, 60)])


def test_caller_ids_match_by_number_or_prefix_and_an_empty_list_allows_any() -> None:
    allowed = [parse_caller_id("+33 1 84 80 00 00"), parse_caller_id("0506*")]
    assert allowed == [CallerIdEntry("+33184800000", False), CallerIdEntry("0506", True)]
    assert caller_id_allowed(allowed, "+33184800000")
    assert caller_id_allowed(allowed, "05068680000")
    assert not caller_id_allowed(allowed, "+331848000001")
    assert caller_id_allowed([], "anything")
