"""``task_json`` (the task webhooks carry) is the API's view of the task to the byte, without
pydantic: tasks as the store holds them (payloads from the intake's own validation, read back
through JSON) of every kind and status, with calls, faxes and detections, are shown by both."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, field_serializer

from ringback.api.fast_dump import json_dumper, plan_source
from ringback.api.schemas import TaskOut, task_json, task_out
from ringback.api.task_plan import TASK_PLAN
from ringback.domain.amd import AMD_POLICIES, amd_result
from ringback.domain.json_plan import Equals
from ringback.domain.model import Leg, Outcome, TaskKind, TaskStatus
from ringback.domain.rows import CallRow, TaskRow
from ringback.domain.task_rules import NewTask
from ringback.domain.tasks import (
    CallbackTask,
    IvrCallJob,
    MsgCallJob,
    task_from_callback,
    task_from_job,
)

NOW = datetime(2030, 5, 1, 7, 30, tzinfo=UTC)
_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=-11, minutes=-30)), timezone(timedelta(hours=14)),
     ZoneInfo("Europe/Paris"), ZoneInfo("America/St_Johns"), ZoneInfo("Asia/Kathmandu")]
)  # fmt: skip
#: times with and without microseconds, in and out of UTC
_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=_zones
).flatmap(lambda when: st.sampled_from([when, when.replace(microsecond=0)]))
_text = st.text(max_size=12)  # any unicode, surrogates excluded (JSON could not hold them)
#: a storage name: unicode but for surrogates and NUL, not blank
_names = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=20
).filter(str.strip)
_numbers = st.from_regex(r"\+?[0-9]{2,20}", fullmatch=True) | st.sampled_from(
    ["sip:alice@pbx.example.com", "sips:+33612345678@trunk.example.net:5061"]
)
_urls = st.from_regex(r"https://hooks\.example\.com/[a-z0-9/]{0,20}", fullmatch=True)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False,
    allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def _stored(value: Any) -> Any:
    """As read back from the store: through JSON."""
    return orjson.loads(orjson.dumps(value))


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def _callbacks(draw: st.DrawFn) -> NewTask:
    a, b = draw(st.lists(_numbers, min_size=2, max_size=2, unique=True))
    pause = st.integers(0, 864_000) | st.floats(0, 864_000) | st.sampled_from(["90", " 1.5 "])
    given_: dict[str, Any] = {
        "a_number": a, "b_number": b, "name": draw(_maybe(st.text(max_size=20))),
        "extension_id": draw(_maybe(st.integers(-(2**63), 2**63 - 1))),
        "try_count": draw(st.integers(1, 50)), "try_count_caller": draw(st.integers(0, 50)),
        "try_again_pause": draw(pause), "try_again_pause_caller": draw(pause),
        "callback_params": draw(st.fixed_dictionaries({}, optional={
            "extended_a_numbers": st.lists(_numbers, max_size=3),
            "caller_id_name": _maybe(st.text(max_size=10)),
            "caller_id_number": _maybe(_numbers),
            "dst_dtmf": _maybe(st.from_regex(r"[0-9*#Ww]{1,8}", fullmatch=True)),
        })),
        "variables": draw(st.dictionaries(_text, st.text(max_size=30), max_size=3)),
        "attempts_src_ani_numbers": draw(st.lists(_numbers, max_size=2)),
        "attempts_dst_ani_numbers": draw(st.lists(_numbers, max_size=2)),
        "timezone": draw(st.sampled_from([None, "Europe/Paris", "America/New_York"])),
        "start_time_utc": draw(st.sampled_from([None, "", "2031-01-02 03:04:05",
                                                "2031-01-02T03:04:05.250+05:45"])),
        "expires_at": draw(st.sampled_from([None, "2032-02-29 23:59:59"])),
        "priority": draw(st.integers(0, 9)),
    }  # fmt: skip
    for url in ("url_before", "url_before_again", "url_success", "url_after"):
        given_[url] = draw(_maybe(_urls))
    return task_from_callback(CallbackTask.model_validate(given_), NOW)


@st.composite
def _jobs(draw: st.DrawFn, kind: TaskKind) -> NewTask:
    calling, called = draw(st.lists(_numbers, min_size=2, max_size=2))
    data: dict[str, Any] = {"calling_number": calling, "called_number": called}
    if kind is TaskKind.MSG_CALL:
        model: type[MsgCallJob | IvrCallJob] = MsgCallJob
        data["audio_file"] = draw(_names)
    else:
        model = IvrCallJob
        data["ivr_xml"] = draw(st.sampled_from([
            {"type": "inline", "data": "<Response><Hangup/></Response>"},
            {"type": "storage", "data": "ivr/menü.xml"},
            {"type": "url", "data": "https://ivr.example.com/a, https://ivr.example.com/b"},
        ]))  # fmt: skip
    if draw(st.booleans()):
        data["amd"] = draw(st.sampled_from(AMD_POLICIES))
    options = draw(st.fixed_dictionaries({}, optional={
        "attempts": st.integers(1, 50), "delay": st.integers(0, 10**6),
        "backoff": st.fixed_dictionaries(
            {"type": st.sampled_from(["fixed", "exponential"]), "delay": st.integers(0, 10**8)},
            optional={"jitter": st.integers(0, 1) | st.floats(0, 1)},
        ),
        "timezone": _maybe(st.sampled_from(["Asia/Tokyo", "Pacific/Chatham"])),
        "webhooks": st.lists(st.fixed_dictionaries({"url": _urls}, optional={
            "events": st.lists(st.sampled_from(["*", "task.*", "call.ended"]), min_size=1,
                               max_size=3)}), max_size=2),
        "priority": st.integers(0, 9),
    }))  # fmt: skip
    job = model.model_validate({"type": kind.value, "data": data, "options": options})
    return task_from_job(job, NOW)


@st.composite
def _faxes(draw: st.DrawFn) -> dict[str, Any]:
    received = draw(st.booleans())
    fax = {
        "operation": "reception" if received else "transmission",
        "file": draw(_maybe(st.text(min_size=1, max_size=15))),
        "code": draw(st.integers(0, 100)), "text": draw(_text), "pages": draw(st.integers(0, 50)),
        "bit_rate": draw(_maybe(st.sampled_from([2400, 9600, 14400]))),
        "ecm": draw(_maybe(st.booleans())), "remote_ident": draw(_maybe(_text)),
        "seconds": draw(_maybe(st.integers(0, 600) | st.floats(0, 600))),
        "tiff": draw(_maybe(st.just("fax/in/ré çu.tiff"))) if received else None,
        "pdf": draw(_maybe(st.just("fax/in/ré çu.pdf"))) if received else None,
        "transport": draw(_maybe(st.sampled_from(["g711", "t38"]))),
        "t38_fallback": draw(_maybe(st.just("488 Not Acceptable Here"))),
    }  # fmt: skip
    # a record written before a field existed lacks it
    dropped = draw(st.sets(st.sampled_from(["bit_rate", "ecm", "transport", "t38_fallback"])))
    return {key: value for key, value in fax.items() if key not in dropped}


@st.composite
def _calls(draw: st.DrawFn) -> CallRow:
    start = draw(_times)
    later = _maybe(_times)
    amd = st.builds(amd_result, st.sampled_from(["human", "machine", "unknown"]), _text,
                    st.integers(0, 5000), _maybe(st.integers(0, 30000)),
                    st.sampled_from(AMD_POLICIES[1:]))  # fmt: skip
    return CallRow(
        id=draw(st.integers(1, 10**9)), call_uuid=draw(_text), leg_uuid=draw(_text),
        leg=draw(st.sampled_from(Leg)).value, client_id=draw(st.integers(1, 10**6)),
        queue_id=draw(_maybe(st.integers(1, 10**6))), task_id=draw(_maybe(st.integers(1))),
        attempt=draw(_maybe(st.integers(0, 50))), direction="outbound",
        from_number=draw(_maybe(_numbers)), to_number=draw(_numbers),
        caller_id_name=draw(_maybe(_text)), sip_code=draw(_maybe(st.integers(100, 699))),
        outcome=draw(_maybe(st.sampled_from(Outcome))), hangup_cause=draw(_maybe(_text)),
        hangup_disposition=draw(_maybe(st.sampled_from(["send_bye", "recv_bye"]))),
        started_at=start, ringing_at=draw(later), answered_at=draw(later),
        ended_at=draw(later), bridged_at=draw(later), bridged_with=draw(_maybe(_text)),
        duration_ms=draw(_maybe(st.integers(0, 10**8))),
        billsec_ms=draw(_maybe(st.integers(0, 10**8))),
        played=_stored(draw(st.lists(st.dictionaries(_text, _json, max_size=3), max_size=2))),
        dtmf_received=draw(st.text(alphabet="0123456789*#", max_size=4)),
        detail={}, task_kind=None,
        state=draw(st.sampled_from(["dialing", "answered", "ended", "interrupted"])),
        fax=draw(_maybe(_faxes())), amd=draw(_maybe(amd)),
    )  # fmt: skip


@st.composite
def _tasks(draw: st.DrawFn, kind: TaskKind, status: str) -> tuple[TaskRow, list[CallRow]]:
    new = draw(_callbacks() if kind is TaskKind.CALLBACK else _jobs(kind))
    payload = _stored(new.payload)
    if new.kind is not TaskKind.CALLBACK and "amd" not in payload and draw(st.booleans()):
        payload["amd"] = "off"  # stored before "off" was left out
    row = TaskRow(
        id=draw(st.integers(1, 2**63 - 1)), client_id=draw(st.integers(1, 10**6)),
        queue_id=draw(st.integers(1, 10**6)), kind=new.kind, name=new.name, payload=payload,
        status=status, stored_status=draw(st.sampled_from([status, "finished"])),
        blocked_reason=draw(st.sampled_from([None, "queue_off", "calling_hours"])),
        run_at=draw(_times), start_time_utc=new.start_time_utc, timezone=new.timezone,
        max_tries=new.max_tries, tries_used=draw(st.integers(0, 50)),
        max_caller_tries=new.max_caller_tries, caller_tries_used=draw(st.integers(0, 50)),
        backoff=_stored(new.backoff), caller_pause_s=new.caller_pause_s,
        attempt=draw(st.integers(0, 50)),
        finish_result=draw(st.sampled_from([None, "success", "failed"])),
        finish_comment=draw(_maybe(st.text(max_size=40))), cdr=draw(_maybe(_text)),
        lease_owner=None, lease_until=None, fence=0, event_seq=0, created_at=draw(_times),
        updated_at=NOW, first_attempt_at=None, last_attempt_at=None,
        finished_at=draw(_maybe(_times)), webhooks=_stored(new.webhooks),
        expires_at=draw(_maybe(_times)), priority=new.priority,
        timezone_source=draw(st.sampled_from([None, "given", "number", "queue"])),
    )  # fmt: skip
    return row, draw(st.lists(_calls(), max_size=3))


@pytest.mark.parametrize("status", [status.value for status in TaskStatus])
@pytest.mark.parametrize("kind", TaskKind)
def test_the_task_webhooks_carry_is_the_api_view_of_the_task_to_the_byte(
    kind: TaskKind, status: str
) -> None:
    @settings(max_examples=40)
    @given(task=_tasks(kind, status))
    def shown_alike(task: tuple[TaskRow, list[CallRow]]) -> None:
        row, calls = task
        shown = task_out(row, calls).model_dump(mode="json", by_alias=True)
        built = task_json(row, calls)
        assert built == shown
        assert json.dumps(built) == json.dumps(shown)  # the same keys in the same order; 1, 1.0
        assert orjson.dumps(built) == orjson.dumps(shown)  # as the dispatcher writes the body

    shown_alike()


# --- the dumper on its own --------------------------------------------------------------------


class _Inner(BaseModel):
    x: float
    tags: list[str] = []


class _Other(BaseModel):
    y: int
    z: int = 0


class _Outer(BaseModel):
    b: int = Field(alias="B")
    a: _Inner | None = None
    many: list[_Inner] = []
    either: _Inner | _Other | None = None
    hidden: str = Field("x", exclude_if=Equals("x"))


@pytest.mark.parametrize(
    "values",
    [
        {"B": 1},
        {"B": 1, "a": {"x": 2, "unknown": 1}, "many": [{"x": 1.5, "tags": ["é"]}], "hidden": "y"},
        {"either": {"y": 3}, "B": 2, "hidden": "x"},
        {"either": {"x": 3}, "B": 2},
    ],
)
def test_a_models_json_is_pydantics_dump_of_the_values(values: dict[str, Any]) -> None:
    built = json_dumper(_Outer)(values)
    assert json.dumps(built) == json.dumps(_Outer.model_validate(values).model_dump(
        mode="json", by_alias=True))  # fmt: skip


def test_a_missing_required_field_is_refused_as_validation_would() -> None:
    with pytest.raises(ValueError, match="_Outer: missing B"):
        json_dumper(_Outer)({"b": 1})
    with pytest.raises(ValueError, match="fit no member"):
        json_dumper(_Outer)({"B": 1, "either": {"z": 1}})


def test_a_default_list_is_a_new_one_each_time() -> None:
    dump = json_dumper(_Outer)
    first = dump({"B": 1})
    first["many"].append("changed")
    assert dump({"B": 1})["many"] == []


def test_models_the_plan_cannot_follow_are_refused() -> None:
    class Serialized(BaseModel):
        when: int

        @field_serializer("when")
        def _when(self, value: int) -> str:
            return str(value)

    with pytest.raises(TypeError, match="serializers"):
        json_dumper(Serialized)

    class Opaque(BaseModel):  # a plan is data: a function cannot be written into one
        hidden: str = Field("x", exclude_if=lambda value: value == "x")

    with pytest.raises(TypeError, match="exclude_if must be an Equals"):
        json_dumper(Opaque)


def test_the_task_plan_written_out_for_workers_is_the_task_models() -> None:
    assert json_dumper(TaskOut) == TASK_PLAN, (
        "api/task_plan.py is not TaskOut's plan: run python -m ringback.api.fast_dump "
        "and ruff format src/ringback/api/task_plan.py"
    )


def test_a_written_plan_rebuilds_the_same_plan() -> None:
    namespace: dict[str, Any] = {}
    exec(plan_source("TASK_PLAN", json_dumper(TaskOut), "TaskOut"), namespace)
    assert namespace["TASK_PLAN"] == TASK_PLAN
