"""The one CDR field list (``ringback.domain.cdr.CDR_FIELDS``) and every place that must agree
with it: the record, the table, the store's row, write path and PostgreSQL types, the API."""

from __future__ import annotations

import typing
from dataclasses import fields
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from ringback.api import schemas
from ringback.api.history_schemas import CdrLeg
from ringback.domain import cdr
from ringback.domain.cdr import CDR_FIELDS, CallRecord, shown_fields
from ringback.domain.model import Leg, Outcome
from ringback.service import history
from ringback.store import legs_sql, postgres_legs
from ringback.store.records import CALL_ROW_EXTRA, CallRow
from ringback.store.schema import calls

#: the calls table's own columns, not part of a CDR: row id, owner, queue and task
TABLE_ONLY = {"id", "client_id", "queue_id", "task_id"}


def _names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_the_field_list_is_the_record_then_the_stored_fields() -> None:
    assert tuple(f.name for f in fields(CallRecord)) == cdr.RECORD_FIELDS
    assert CDR_FIELDS == cdr.RECORD_FIELDS + cdr.STORED_FIELDS
    assert len(set(CDR_FIELDS)) == len(CDR_FIELDS)


def test_time_fields_are_the_records_datetimes() -> None:
    hints = typing.get_type_hints(CallRecord)
    dated = {name for name, hint in hints.items() if datetime in typing.get_args(hint)}
    dated |= {name for name, hint in hints.items() if hint is datetime}
    assert set(cdr.TIME_FIELDS) == dated
    assert set(cdr.MS_FIELDS) == {"duration_ms", "billsec_ms"}


def test_table_columns_are_the_field_list() -> None:
    assert set(calls.c.keys()) == set(CDR_FIELDS) | TABLE_ONLY


def test_store_row_is_the_field_list() -> None:
    assert not set(CALL_ROW_EXTRA) & set(CDR_FIELDS)
    assert {f.name for f in fields(CallRow)} == set(CDR_FIELDS) | set(CALL_ROW_EXTRA)


def test_write_path_is_the_field_list() -> None:
    assert legs_sql.CALL_FIELDS == CDR_FIELDS
    typed = [part.split()[0] for part in postgres_legs._CALL_TYPES.split(", ")]
    assert tuple(typed) == CDR_FIELDS
    at = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    rec = CallRecord(
        leg_uuid="l1", call_uuid="c1", leg=Leg.B, direction="outbound", from_number="1",
        to_number="2", caller_id_name=None, started_at=at, outcome=Outcome.BUSY,
        ended_at=at.replace(second=3), played=[{"file": "x.wav"}], detail={"worker": "w1"},
    )  # fmt: skip
    values = dict(zip(CDR_FIELDS, legs_sql.call_values(rec, 2), strict=True))
    assert values["leg"] == "b"
    assert values["outcome"] == "busy"
    assert values["started_at"] == 1714554000000
    assert values["duration_ms"] == 3000
    assert values["billsec_ms"] == 0
    assert values["played"] == '[{"file":"x.wav"}]'
    assert values["detail"] == '{"worker":"w1"}'
    assert (values["attempt"], values["state"], values["worker"]) == (2, "ended", "w1")
    assert legs_sql.call_values(rec, 0, worker="w2", state="dialing")[-3:] == (
        0,  # billsec_ms
        "dialing",
        "w2",
    )


@pytest.mark.parametrize(
    ("model", "shown"),
    [(CdrLeg, history.CDR_LEG_FIELDS), (schemas.CallOut, schemas.CALL_OUT_FIELDS)],
    ids=["call_history_leg", "task_call"],
)
def test_api_leg_models_show_the_field_list(model: type[BaseModel], shown: dict[str, str]) -> None:
    """A field added to the CDR is shown by every leg view unless the view hides it: the
    view's model must then have it (or the view name it in its hidden set)."""
    assert set(shown) <= set(CDR_FIELDS)
    assert _names(model) == set(shown.values())


def test_shown_fields_refuses_names_that_are_no_cdr_fields() -> None:
    with pytest.raises(ValueError, match="not CDR fields"):
        shown_fields({"from_numbr": "from"}, ())
    with pytest.raises(ValueError, match="not CDR fields"):
        shown_fields({}, {"nope"})
