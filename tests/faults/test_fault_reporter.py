"""A component that keeps failing logs one line, then a summary at most every 10 s, then one
line when it recovers; never a traceback, never a password. Time is moved, not waited for."""

from __future__ import annotations

import itertools
import math
from typing import Any

import sqlalchemy.exc
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from ringback.faults import FaultReporter, describe_error


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail_for(reporter: FaultReporter, clock: Monotonic, seconds: float, every: float) -> int:
    """Fail every ``every`` seconds for ``seconds``; returns the failures."""
    failures, start = 0, clock.now
    while clock.now - start <= seconds:
        reporter.failed(ConnectionRefusedError(111, "Connection refused"))
        failures += 1
        clock.now += every
    clock.now = start + seconds
    return failures


def test_a_31_s_outage_logs_one_start_line_3_summaries_and_one_recovery() -> None:
    clock = Monotonic()
    reporter = FaultReporter("claim", monotonic=clock)
    with capture_logs() as logs:
        failures = fail_for(reporter, clock, 31.0, every=0.25)
        reporter.succeeded()
    events = [entry["event"] for entry in logs]
    assert events[0] == "claim failing"
    assert logs[0]["error"] == "ConnectionRefusedError: [Errno 111] Connection refused"
    summaries = events[1:-1]
    assert len(summaries) == 3
    assert summaries[0].startswith("claim still failing for 10 s, 41 failures, last error: ")
    assert events[-1] == f"claim recovered after 31 s, {failures} failures"
    assert all("exc_info" not in entry for entry in logs)


@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=25.0), min_size=1, max_size=200),
    summary_every=st.sampled_from([1.0, 10.0]),
)
def test_summaries_are_at_least_the_interval_apart_and_at_most_duration_over_interval(
    gaps: list[float], summary_every: float
) -> None:
    clock = Monotonic()
    reporter = FaultReporter("flush", monotonic=clock, summary_every_s=summary_every)
    logged: list[tuple[float, dict[str, Any]]] = []
    with capture_logs() as logs:
        start = clock.now
        for gap in gaps:
            reporter.failed(OSError("database away"))
            logged.extend((clock.now, entry) for entry in logs[len(logged) :])
            clock.now += gap
        duration = clock.now - gaps[-1] - start
        reporter.succeeded()
    assert len(logs) == 2 + len(logged) - 1
    times = [when for when, _ in logged[1:]]
    assert all(b - a >= summary_every for a, b in itertools.pairwise(times))
    assert len(times) <= math.ceil(duration / summary_every)
    assert logs[-1]["event"].endswith(f"{len(gaps)} failures")


def test_the_state_says_failing_since_when_and_healthy_for_how_long() -> None:
    clock = Monotonic()
    reporter = FaultReporter("heartbeat", monotonic=clock)
    clock.now += 5
    assert (reporter.failing, reporter.healthy_for(), reporter.failures) == (False, 5.0, 0)
    with capture_logs():
        reporter.failed(TimeoutError())
        clock.now += 3
        reporter.failed(TimeoutError())
        assert (reporter.failing, reporter.failing_since, reporter.healthy_since) == (
            True, 1005.0, None,
        )  # fmt: skip
        assert (reporter.healthy_for(), reporter.failures) == (0.0, 2)
        reporter.succeeded()
    clock.now += 7
    assert (reporter.failing, reporter.failing_since, reporter.healthy_since) == (
        False, None, 1008.0,
    )  # fmt: skip
    assert (reporter.healthy_for(), reporter.failures) == (7.0, 0)


def test_success_without_a_failure_logs_nothing() -> None:
    reporter = FaultReporter("reap", monotonic=Monotonic())
    with capture_logs() as logs:
        for _ in range(100):
            reporter.succeeded()
    assert logs == []


def test_an_error_is_logged_as_its_first_line_without_password_sql_or_parameters() -> None:
    orig = OSError("connect to postgresql://ringback:s3cret@db:5432/rb failed\nDETAIL: more")
    wrapped = sqlalchemy.exc.OperationalError(
        "UPDATE tasks SET lease_owner=$1", {"called_number": "0901234567"}, orig
    )
    shown = describe_error(wrapped)
    assert shown == "OSError: connect to postgresql://ringback:***@db:5432/rb failed"
    assert describe_error(ValueError("password=hunter2 host=db")) == (
        "ValueError: password=*** host=db"
    )
    assert describe_error(RuntimeError()) == "RuntimeError"
    assert len(describe_error(RuntimeError("x" * 5000))) == 300
