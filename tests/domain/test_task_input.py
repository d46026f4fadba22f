"""Task input: AddJob JSON and scheduler tasks validated into the one stored shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from ringback.domain.model import TaskKind
from ringback.domain.task_rules import (
    SEED_URL_FIELDS,
    check_number,
    format_seed_time,
    parse_utc_time,
)
from ringback.domain.tasks import CallbackTask, Job, MsgCallJob, task_from_callback, task_from_job

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
jobs: TypeAdapter[object] = TypeAdapter(Job)
MSG = {"calling_number": "05068680000", "called_number": "09012341234", "audio_file": "a.wav"}


@given(st.from_regex(r"\+?[0-9]{2,20}", fullmatch=True))
def test_digits_with_an_optional_plus_are_numbers(number: str) -> None:
    assert check_number(number) == number


@given(st.text(min_size=1, max_size=30).filter(lambda s: not s.strip().lstrip("+").isdigit()))
def test_anything_else_that_is_not_a_sip_uri_is_refused(text: str) -> None:
    if text.strip().startswith(("sip:", "sips:")):
        return
    with pytest.raises(ValueError, match="is not a phone number"):
        check_number(text)


def test_a_sip_uri_is_a_number() -> None:
    assert check_number("sip:alice@example.com:5060") == "sip:alice@example.com:5060"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_seed_times_are_read_as_utc(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    assert parse_utc_time(text) == moment.replace(tzinfo=UTC)


_offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(timezones=st.none() | st.just(UTC) | _offsets | st.timezones()))
def test_times_are_shown_in_utc_as_strftime_writes_them(moment: datetime) -> None:
    try:
        expected = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError):  # beyond year 1 or 9999 once in UTC
        with pytest.raises((OverflowError, ValueError)):
            format_seed_time(moment)
        return
    assert format_seed_time(moment) == expected


def test_iso_times_need_a_zone_and_are_converted_to_utc() -> None:
    assert parse_utc_time("2026-03-02T12:00:00+02:00") == datetime(2026, 3, 2, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="has no time zone"):
        parse_utc_time("2026-03-02T12:00:00")
    with pytest.raises(ValueError, match="is not a time"):
        parse_utc_time("yesterday")


def test_the_seed_example_job_becomes_a_msg_call_task() -> None:
    job = jobs.validate_python(
        {"type": "msg_call", "data": MSG,
         "options": {"attempts": 3, "delay": 10000, "backoff": {"delay": 10000, "type": "fixed"}}}
    )  # fmt: skip
    assert isinstance(job, MsgCallJob)
    task = task_from_job(job, NOW)
    assert (task.kind, task.max_tries, task.run_at) == (
        TaskKind.MSG_CALL, 3, NOW + timedelta(seconds=10),
    )  # fmt: skip
    assert task.backoff == {"type": "fixed", "delay": 10000, "jitter": 0.0}
    assert task.payload == MSG


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 51}, "attempts"),
        ({"delay": -1}, "delay"),
        ({"backoff": {"type": "linear", "delay": 5}}, "type"),
        ({"backoff": {"type": "fixed", "delay": 5, "jitter": 2}}, "jitter"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"priority": 10}, "priority"),  # 0-9
    ],
)
def test_bad_job_options_are_refused_naming_the_field(
    options: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        jobs.validate_python({"type": "msg_call", "data": MSG, "options": options})
    assert field in {str(part) for error in caught.value.errors() for part in error["loc"]}


def test_an_ivr_call_job_needs_its_document() -> None:
    data = {"calling_number": "0506868000", "called_number": "09012341234"}
    with pytest.raises(ValidationError, match="ivr_xml"):
        jobs.validate_python({"type": "ivr_call", "data": data})


def test_a_scheduler_task_becomes_a_callback_task_with_its_pause_as_fixed_backoff() -> None:
    spec = CallbackTask.model_validate(
        {"name": "t1", "a_number": "101", "b_number": "0901234567", "try_count": 5,
         "try_again_pause": "30", "try_count_caller": 2, "try_again_pause_caller": 15,
         "start_time_utc": "2026-03-02 11:00:00",
         "callback_params": {"extended_a_numbers": ["102"], "caller_id_number": "0501112222"}}
    )  # fmt: skip
    task = task_from_callback(spec, NOW)
    assert task.kind is TaskKind.CALLBACK and task.name == "t1"
    assert task.run_at == datetime(2026, 3, 2, 11, tzinfo=UTC)
    assert task.backoff == {"type": "fixed", "delay": 30_000, "jitter": 0.0}
    assert (task.max_tries, task.max_caller_tries, task.caller_pause_s) == (5, 2, 15.0)
    assert task.payload["callback_params"]["extended_a_numbers"] == ["102"]


def test_a_start_time_in_the_past_starts_now() -> None:
    spec = CallbackTask.model_validate(
        {"a_number": "101", "b_number": "102", "start_time_utc": "2020-01-01 00:00:00"}
    )
    assert task_from_callback(spec, NOW).run_at == NOW


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"try_count": 0}, "try_count"),
        ({"try_count": 51}, "try_count"),
        ({"try_again_pause_caller": 864_001}, "try_again_pause_caller"),
        ({"try_again_pause": "soon"}, "try_again_pause"),
        ({"a_number": "12a"}, "a_number"),
        ({"start_time_utc": "2026-13-01 00:00:00"}, "start_time_utc"),
        ({"url_after": "ftp://x"}, "url_after"),
        ({"variables": {"k": "x" * 201}}, "variables"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_scheduler_tasks_are_refused_naming_the_field(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CallbackTask.model_validate({"a_number": "101", "b_number": "102", **fields})
    assert field in {str(part) for error in caught.value.errors() for part in error["loc"]}


def test_a_and_b_must_differ() -> None:
    with pytest.raises(ValidationError, match="same number"):
        CallbackTask.model_validate({"a_number": "101", "b_number": "101"})


def test_the_seed_url_field_list_names_every_url_field_of_a_callback_task() -> None:
    """The stores decide from SEED_URL_FIELDS whether a task's events can reach a seed URL."""
    urls = {name for name in CallbackTask.model_fields if name.startswith("url_")}
    assert set(SEED_URL_FIELDS) == urls and len(SEED_URL_FIELDS) == len(urls)
