"""``call_values`` (the row of a stored leg) gives exactly what the field-by-field conversion
gives: its fast path (one attrgetter, plain types passed as they are) changes no value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringback.domain.cdr import RECORD_FIELDS, CallRecord, duration_ms
from ringback.domain.model import Leg, Outcome
from ringback.store import legs_sql


def _reference_column(value: Any) -> Any:
    if isinstance(value, datetime):
        return legs_sql.ms(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | dict):
        return legs_sql.dumps(value)
    return value


def _reference(rec: CallRecord, attempt: int, worker: str | None, state: str) -> tuple[Any, ...]:
    """call_values as it was written first: a dict of every field, then each converted."""
    values = {name: getattr(rec, name) for name in RECORD_FIELDS}
    values.update(
        attempt=attempt or None,
        duration_ms=duration_ms(rec.duration_s),
        billsec_ms=duration_ms(rec.billsec),
        state=state,
        worker=worker if worker is not None else rec.detail.get("worker"),
    )
    return tuple(_reference_column(values[name]) for name in legs_sql.CALL_FIELDS)


_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=3,
)


@st.composite
def _records(draw: st.DrawFn) -> CallRecord:
    start = draw(_times)
    later = st.none() | st.integers(0, 10**7).map(lambda ms: start + timedelta(milliseconds=ms))
    return CallRecord(
        leg_uuid=draw(st.text(min_size=1, max_size=8)),
        call_uuid=draw(st.text(min_size=1, max_size=8)),
        leg=draw(st.sampled_from(Leg)),
        direction=draw(st.sampled_from(["outbound", "inbound"])),
        from_number=draw(st.none() | st.text(max_size=12)),
        to_number=draw(st.text(max_size=12)),
        caller_id_name=draw(st.none() | st.text(max_size=8)),
        started_at=start,
        sip_code=draw(st.none() | st.integers(100, 699)),
        outcome=draw(st.none() | st.sampled_from(Outcome)),
        hangup_cause=draw(st.none() | st.text(max_size=8)),
        hangup_disposition=draw(st.none() | st.text(max_size=8)),
        ringing_at=draw(later),
        answered_at=draw(later),
        ended_at=draw(later),
        bridged_at=draw(later),
        bridged_with=draw(st.none() | st.text(max_size=8)),
        played=draw(st.lists(st.dictionaries(st.text(max_size=5), _json, max_size=3), max_size=2)),
        dtmf_received=draw(st.text(alphabet="0123456789*#", max_size=4)),
        detail=draw(st.dictionaries(st.sampled_from(["worker", "error", "x"]), _json, max_size=3)),
        fax=draw(st.none() | st.dictionaries(st.text(max_size=5), _json, max_size=3)),
        amd=draw(st.none() | st.dictionaries(st.text(max_size=5), _json, max_size=3)),
    )


@settings(suppress_health_check=[HealthCheck.too_slow])  # a shared, busy CI machine
@given(
    rec=_records(),
    attempt=st.integers(0, 5),
    worker=st.none() | st.text(max_size=8),
    state=st.sampled_from(["dialing", "answered", "ended", "interrupted"]),
)
def test_call_values_row_is_each_field_converted_in_call_fields_order(
    rec: CallRecord, attempt: int, worker: str | None, state: str
) -> None:
    got = legs_sql.call_values(rec, attempt, worker=worker, state=state)
    assert got == _reference(rec, attempt, worker, state)
    assert [type(v) for v in got] == [type(v) for v in _reference(rec, attempt, worker, state)]
