"""The dialler reads a stored payload (ringback.domain.payloads) to the values the intake's
models give for it, checks numbers by the intake's own rule, names every field at fault and
ignores fields it does not dial with."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.amd import AMD_POLICIES
from ringback.domain.payloads import (
    CallbackPayload,
    IvrCallPayload,
    MsgCallPayload,
    PayloadError,
    read_callback,
    read_ivr_call,
    read_msg_call,
)
from ringback.domain.tasks import (
    READ_BACK,
    CallbackParams,
    CallbackTask,
    IvrCallData,
    IvrCallJob,
    IvrXml,
    MsgCallData,
    MsgCallJob,
    task_from_callback,
    task_from_job,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
numbers = st.from_regex(r"\+?[0-9]{2,20}", fullmatch=True) | st.sampled_from(
    ["sip:alice@example.com", "sips:bob@10.0.0.1:5061"]
)
policies = st.sampled_from(AMD_POLICIES)
names = st.from_regex(r"[a-z0-9]{1,12}(/[a-z0-9]{1,12})?\.(wav|xml)", fullmatch=True)
labels = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)


def stored(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload as the store gives it back: through JSON."""
    result: dict[str, Any] = json.loads(json.dumps(payload))
    return result


@given(numbers, numbers, names, policies)
def test_a_stored_msg_call_reads_back_as_the_intake_model_reads_it(
    calling: str, called: str, audio: str, amd: str
) -> None:
    data = {"calling_number": calling, "called_number": called, "audio_file": audio, "amd": amd}
    job = MsgCallJob.model_validate({"type": "msg_call", "data": data})
    payload = stored(task_from_job(job, NOW).payload)
    model = MsgCallData.model_validate(payload, context=READ_BACK)
    assert read_msg_call(payload) == MsgCallPayload(
        model.calling_number, model.called_number, model.audio_file, model.amd
    )


@given(numbers, numbers, st.sampled_from(["inline", "storage", "url"]), names, policies)
def test_a_stored_ivr_call_reads_back_as_the_intake_model_reads_it(
    calling: str, called: str, source: str, name: str, amd: str
) -> None:
    document = {"inline": "<IVR><Hangup/></IVR>", "storage": name}
    xml = {"type": source, "data": document.get(source, "https://ivr.example.com/a.xml")}
    data = {"calling_number": calling, "called_number": called, "ivr_xml": xml, "amd": amd}
    job = IvrCallJob.model_validate({"type": "ivr_call", "data": data})
    payload = stored(task_from_job(job, NOW).payload)
    model = IvrCallData.model_validate(payload, context=READ_BACK)
    assert read_ivr_call(payload) == IvrCallPayload(
        model.calling_number, model.called_number, model.ivr_xml.type, model.ivr_xml.data, model.amd
    )


@given(
    st.lists(numbers, min_size=2, max_size=2, unique=True),
    st.lists(numbers, max_size=3),
    st.none() | labels,
    st.none() | numbers,
    st.none() | st.from_regex(r"[0-9*#Ww]{1,10}", fullmatch=True),
    st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), labels, max_size=3),
    st.lists(numbers, max_size=3),
    st.lists(numbers, max_size=3),
)
def test_a_stored_callback_reads_back_as_the_intake_model_reads_it(
    ab: list[str],
    more_a: list[str],
    caller_name: str | None,
    caller_number: str | None,
    dtmf: str | None,
    variables: dict[str, str],
    src_ani: list[str],
    dst_ani: list[str],
) -> None:
    params = {
        "extended_a_numbers": more_a, "caller_id_name": caller_name,
        "caller_id_number": caller_number, "dst_dtmf": dtmf,
    }  # fmt: skip
    spec = CallbackTask.model_validate(
        {
            "a_number": ab[0],
            "b_number": ab[1],
            "callback_params": params,
            "variables": variables,
            "attempts_src_ani_numbers": src_ani,
            "attempts_dst_ani_numbers": dst_ani,
        }
    )
    payload = stored(task_from_callback(spec, NOW).payload)
    model = CallbackTask.model_validate(payload, context=READ_BACK)
    p = model.callback_params
    assert read_callback(payload) == CallbackPayload(
        model.a_number, model.b_number, tuple(p.extended_a_numbers), p.caller_id_name,
        p.caller_id_number, p.dst_dtmf, model.variables, tuple(model.attempts_src_ani_numbers),
        tuple(model.attempts_dst_ani_numbers),
    )  # fmt: skip


def test_every_field_the_dialler_reads_is_a_field_of_the_intake_models() -> None:
    def fields(cls: Any) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert fields(MsgCallPayload) <= set(MsgCallData.model_fields)
    ivr = {"ivr_type", "ivr_data"}
    assert fields(IvrCallPayload) - ivr <= set(IvrCallData.model_fields)
    assert {"type", "data"} <= set(IvrXml.model_fields)
    assert fields(CallbackPayload) <= set(CallbackTask.model_fields) | set(
        CallbackParams.model_fields
    )


@pytest.mark.parametrize(
    ("read", "payload", "problems"),
    [
        (
            read_msg_call,
            {"calling_number": "nope", "audio_file": ""},
            "calling_number: 'nope' is not a phone number (digits with an optional leading +, "
            "2 to 20 digits) or a sip: URI; called_number: missing; "
            "audio_file: not a non-empty string",
        ),
        (read_msg_call, ["not", "an", "object"], "payload: not an object; calling_number: missing"),
        (
            read_msg_call,
            {"calling_number": "100", "called_number": "200", "audio_file": "a.wav", "amd": "x"},
            "amd: 'x' is not one of off, continue, hangup, wait_for_beep",
        ),
        (
            read_ivr_call,
            {"calling_number": "100", "called_number": "200"},
            "ivr_xml: missing",
        ),
        (
            read_ivr_call,
            {"calling_number": "100", "called_number": "200", "ivr_xml": {"type": "ftp"}},
            "ivr_xml.type: 'ftp' is not one of inline, storage, url; ivr_xml.data: missing",
        ),
        (
            read_callback,
            {"a_number": 5, "b_number": "200", "callback_params": {"extended_a_numbers": "300"}},
            "a_number: 5 is not a phone number; "
            "callback_params.extended_a_numbers: not a list of numbers",
        ),
        (
            read_callback,
            {
                "a_number": "100",
                "b_number": "200",
                "variables": {"x": 1},
                "attempts_dst_ani_numbers": ["300", "x"],
            },
            "variables: not an object of names and texts; attempts_dst_ani_numbers: 'x' is not a "
            "phone number",
        ),
    ],
)
def test_a_payload_that_cannot_be_dialled_names_every_field_at_fault(
    read: Any, payload: Any, problems: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        read(payload)
    assert str(caught.value).startswith(problems)


def test_fields_the_dialler_does_not_use_are_ignored_so_older_and_newer_tasks_still_dial() -> None:
    payload = {"calling_number": " 100", "called_number": "200", "audio_file": "a.wav",
               "added_by_a_later_version": {"x": 1}, "amd": None}  # fmt: skip
    assert read_msg_call(payload) == MsgCallPayload("100", "200", "a.wav", "off")
