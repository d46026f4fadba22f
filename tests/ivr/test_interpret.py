"""The IVR interpreter, run on simulated calls: what the caller hears, the trace, the limits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.ivr.interpret import IvrRun
from ringback.ivr.parse import parse
from ringback.ivr.simulate import simulate_call
from ringback.service import TaskService
from ringback.store.db import Store
from ringback.telephony.base import CallRecord
from support import make_wav
from worker_env import worker_env

CLIENT = 3


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    storage = Storage(tmp_path / "storage")
    make_wav(storage.resolve(CLIENT, "audio/hello.wav"))
    make_wav(storage.resolve(CLIENT, "audio/invalid.wav"))
    return storage


async def run(
    xml: str, digits: str = "", storage: Storage | None = None, **kwargs: object
) -> tuple[IvrRun, CallRecord]:
    return await simulate_call(
        parse(xml),
        FakeClock(),
        digits=digits,
        storage=storage,
        client_id=CLIENT,
        **kwargs,  # type: ignore[arg-type]
    )


def heard(record: CallRecord) -> list[str]:
    return [entry.get("text") or Path(entry["file"]).name for entry in record.played]


async def test_elements_run_in_document_order_and_the_call_is_hung_up_at_the_end(
    storage: Storage,
) -> None:
    result, record = await run(
        "<IVR><Answer/><Speak>Hello</Speak><Play loop='2'>audio/hello.wav</Play>"
        "<Wait length='0.5'/><Speak>Bye</Speak></IVR>",
        storage=storage,
    )
    assert result.ok and result.hung_up_by == "end of document"
    assert heard(record) == ["Hello", "hello.wav", "Bye"]
    assert record.played[1]["loop"] == 2
    assert [str(entry) for entry in result.trace] == [
        "line 1 Answer: already answered",
        "line 1 Speak: 'Hello'",
        "line 1 Play: audio/hello.wav x2",
        "line 1 Wait: 0.5 s",
        "line 1 Speak: 'Bye'",
        "line 0 end of document: hang up",
    ]


async def test_hangup_ends_the_call_with_its_reason_and_nothing_after_runs() -> None:
    result, record = await run("<IVR><Hangup reason='busy'/><Speak>never</Speak></IVR>")
    assert result.hung_up_by == "Hangup"
    assert record.hangup_cause == "USER_BUSY"
    assert heard(record) == []


async def test_speak_renders_templates_and_maps_legacy_voices() -> None:
    result, record = await run(
        "<IVR><Set var='amount' val='1234'/><Speak voice='nozomi'>"
        "{{CallingNumber}} owes {{int(amount) * 2}}</Speak></IVR>"
    )
    assert heard(record) == ["09012341234 owes 2468"]
    assert record.played[0]["voice"] == "ja-JP-Wavenet-B"
    assert record.played[0]["language"] == "ja-JP"
    assert result.var_parameters() == {"var_amount": "1234"}


async def test_set_expr_stores_the_value_with_its_type() -> None:
    result, _ = await run("<IVR><Set var='n' expr='2 ** 10'/><Set var='s' expr=\"str(n)\"/></IVR>")
    assert result.variables["n"] == 1024 and result.variables["s"] == "1024"


async def test_if_runs_then_or_else() -> None:
    xml = (
        "<IVR><If expr=\"CallingNumber == '{n}'\"><Then><Speak>yes</Speak></Then>"
        "<Else><Speak>no</Speak></Else></If></IVR>"
    )
    assert heard((await run(xml.format(n="09012341234")))[1]) == ["yes"]
    assert heard((await run(xml.format(n="1")))[1]) == ["no"]


async def test_cond_runs_the_first_true_clause_or_else() -> None:
    xml = (
        "<IVR><Set var='b' expr='{b}'/><Cond>"
        "<Clause expr='b > 10000'><Speak>gold</Speak></Clause>"
        "<Clause expr='b > 5000'><Speak>silver</Speak></Clause>"
        "<Else><Speak>bronze</Speak></Else></Cond></IVR>"
    )
    assert heard((await run(xml.format(b=20000)))[1]) == ["gold"]
    assert heard((await run(xml.format(b=6000)))[1]) == ["silver"]
    assert heard((await run(xml.format(b=1)))[1]) == ["bronze"]


async def test_switch_matches_cases_as_text_with_expr_or_the_legacy_var() -> None:
    xml = (
        "<IVR><GetDigits numDigits='1'/><Switch {attr}><Case val='1'><Speak>one</Speak></Case>"
        "<Case val='2'><Speak>two</Speak></Case><Default><Speak>other</Speak></Default>"
        "</Switch></IVR>"
    )
    assert heard((await run(xml.format(attr="expr='int(Digits)'"), digits="2"))[1]) == ["two"]
    assert heard((await run(xml.format(attr="var='Digits'"), digits="1"))[1]) == ["one"]
    assert heard((await run(xml.format(attr="var='Digits'"), digits="7"))[1]) == ["other"]


async def test_getdigits_stops_at_finish_on_key_or_num_digits_and_sets_digits() -> None:
    result, _ = await run("<IVR><GetDigits/></IVR>", digits="1234#9")
    assert result.variables["Digits"] == "1234"
    result, _ = await run("<IVR><GetDigits numDigits='2'/></IVR>", digits="1234#")
    assert result.variables["Digits"] == "12"
    result, _ = await run("<IVR><GetDigits finishOnKey='*'/></IVR>", digits="12*")
    assert result.variables["Digits"] == "12"


async def test_getdigits_plays_the_prompt_then_the_alert_on_invalid_keys_and_retries(
    storage: Storage,
) -> None:
    xml = (
        "<IVR><GetDigits numDigits='1' validDigits='12' maxTries='3'>"
        "<Speak>Press 1 or 2</Speak><Play purpose='alert'>audio/invalid.wav</Play>"
        "</GetDigits></IVR>"
    )
    result, record = await run(xml, digits="9,2", storage=storage)
    assert result.variables["Digits"] == "2"
    assert heard(record) == ["Press 1 or 2", "invalid.wav", "Press 1 or 2", "Press 1 or 2"]
    assert [e.detail for e in result.trace if e.element == "GetDigits"] == [
        "try 1: invalid '9'",
        "try 2: no input",
        "try 3: '2'",
    ]


async def test_getdigits_without_input_falls_through_with_empty_digits() -> None:
    result, record = await run(
        "<IVR><GetDigits maxTries='2'><Speak>PIN?</Speak></GetDigits><Speak>next</Speak></IVR>"
    )
    assert result.variables["Digits"] == ""
    assert heard(record) == ["PIN?", "PIN?", "next"]


async def test_getdigits_deprecated_retries_and_invalid_digits_sound(storage: Storage) -> None:
    xml = (
        "<IVR><GetDigits numDigits='1' validDigits='1' retries='2' "
        "invalidDigitsSound='audio/invalid.wav'/></IVR>"
    )
    result, record = await run(xml, digits="51", storage=storage)
    assert result.variables["Digits"] == "1"
    assert heard(record) == ["invalid.wav"]


async def test_getdigits_action_naming_a_section_jumps_there() -> None:
    xml = (
        "<IVR><GetDigits action='menu' numDigits='1'/><Speak>skipped</Speak>"
        "<Section name='menu'><Speak>menu {{Digits}}</Speak></Section></IVR>"
    )
    assert heard((await run(xml, digits="4"))[1]) == ["menu 4"]


async def test_goto_continues_at_the_section_and_sections_run_in_sequence() -> None:
    xml = (
        "<IVR><GoTo>b</GoTo><Section name='a'><Speak>a</Speak></Section>"
        "<Section name='b'><Speak>b</Speak></Section><Speak>after</Speak></IVR>"
    )
    assert heard((await run(xml))[1]) == ["b", "after"]


async def test_an_endless_goto_loop_is_stopped_with_a_clear_error() -> None:
    result, record = await run("<IVR><Section name='l'><Wait/><GoTo>l</GoTo></Section></IVR>")
    assert result.error is not None
    assert str(result.error) == (
        "line 1: The IVR jumped more than 1000 times; stopped (endless loop?)"
    )
    assert record.ended_at is not None


async def test_the_step_limit_stops_a_long_run() -> None:
    result, _ = await run("<IVR>" + "<Wait/>" * 20 + "</IVR>", max_steps=10)
    assert str(result.error) == (
        "line 1: The IVR executed more than 10 elements; stopped (endless loop?)"
    )


async def test_a_missing_play_file_ends_the_call_in_the_dialects_words(storage: Storage) -> None:
    result, _ = await run("<IVR><Play>audio/{{'none'}}.wav</Play></IVR>", storage=storage)
    assert str(result.error) == "line 1: Cannot execute Play. File audio/none.wav doesn't exist"


async def test_an_expression_error_at_run_time_ends_the_call() -> None:
    result, _ = await run("<IVR><If expr='int(CallingNumber) / 0'><Then/></If></IVR>")
    assert str(result.error).startswith("line 1: Cannot execute If. cannot evaluate")


# --- AddJob -----------------------------------------------------------------------------------


async def add_job_run(store: Store, clock: FakeClock, job: str) -> IvrRun:
    service = TaskService(store, clock)
    client_id = await store.ensure_client("acme", clock.now())
    xml = (
        f"<IVR><AddJob>{job}</AddJob><If expr='JobAdded'><Then><Speak>ok</Speak></Then></If></IVR>"
    )
    result, _ = await simulate_call(parse(xml), clock, client_id=client_id, jobs=service)
    return result


async def test_addjob_with_invalid_json_sets_job_added_false_and_continues(
    store: Store, clock: FakeClock
) -> None:
    result = await add_job_run(store, clock, "{not json")
    assert result.variables["JobAdded"] == "false" and not result.variables["JobAdded"]
    assert result.ok and result.jobs_added == []
    [entry] = [e for e in result.trace if e.element == "AddJob"]
    assert entry.detail.startswith("not added: Expecting property name")


async def test_addjob_is_validated_exactly_as_the_jobs_api_does(
    store: Store, clock: FakeClock
) -> None:
    job = '{"type": "msg_call", "data": {"calling_number": "1", "called_number": "2"}}'
    result = await add_job_run(store, clock, job)
    assert result.variables["JobAdded"] == "false"
    [entry] = [e for e in result.trace if e.element == "AddJob"]
    assert "data.audio_file: Field required" in entry.detail
    assert result.jobs_added == []


async def test_a_job_added_by_an_ivr_is_in_the_audit_log_as_the_ivrs(
    store: Store, clock: FakeClock
) -> None:
    job = ('{"type": "msg_call", "data": {"calling_number": "0506868000", '
           '"called_number": "0901234000", "audio_file": "a.wav"}}')  # fmt: skip
    result = await add_job_run(store, clock, job)
    assert result.variables["JobAdded"] == "true", result.trace
    client_id = await store.ensure_client("acme", clock.now())
    [entry] = await store.list_audit(client_id, object_type="task")
    assert (entry.channel, entry.action, entry.summary["count"]) == ("ivr", "created", 1)


async def test_addjob_without_a_job_queue_is_an_error() -> None:
    result, _ = await run('<IVR><AddJob>{"type": "msg_call"}</AddJob></IVR>')
    assert str(result.error) == "line 1: Cannot execute AddJob. No job queue is available here"


async def test_seed_example_calls_the_caller_back_10_s_later(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    seed = (Path(__file__).parent / "documents" / "valid_seed_addjob_callback.xml").read_text()
    env = await worker_env(store, clock, tmp_path, wavs={"some_message.wav": 0.5},
                           owner="ivr-test")  # fmt: skip
    service, client_id = env.service, env.client_id
    started = clock.now()
    result, record = await simulate_call(
        parse(seed),
        clock,
        caller="09012341234",
        called="05068680000",
        client_id=client_id,
        jobs=service,
    )
    assert result.ok and result.variables["JobAdded"] == "true"
    assert heard(record) == ["Hi, thank you for calling. I am calling you back in a few seconds."]
    [task_id] = result.jobs_added
    task = await store.get_task(task_id, store.clock.now())
    assert task.kind == "msg_call"
    assert task.payload["called_number"] == "09012341234"
    assert task.payload["calling_number"] == "05068680000"
    assert task.run_at - started == timedelta(seconds=10)
    # once due, the worker runs it: the caller's phone rings and hears the message
    worker = env.worker
    assert await worker.drain() == 0  # not due yet
    clock.advance(10)
    assert await worker.drain() == 1
    [call] = await store.calls(task_id=task_id)
    assert call.to_number == "09012341234"
    assert [Path(entry["file"]).name for entry in call.played] == ["some_message.wav"]
    assert (await store.get_task(task_id, store.clock.now())).finish_result == "success"


async def test_an_ivr_call_task_can_add_jobs_through_the_worker(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    env = await worker_env(store, clock, tmp_path, wavs={"m.wav": 0.5}, owner="w")
    service, client_id = env.service, env.client_id  # AddJob checks the file the job names
    inner = (
        '{"type": "msg_call", "data": {"calling_number": "{{CallingNumber}}", '
        '"called_number": "{{CalledNumber}}", "audio_file": "m.wav"}}'
    )
    xml = f"<IVR><AddJob>{inner}</AddJob><Speak>added {{{{JobAdded}}}}</Speak></IVR>"
    job = {
        "type": "ivr_call",
        "data": {
            "calling_number": "0501",
            "called_number": "0902",
            "ivr_xml": {"type": "inline", "data": xml},
        },
    }
    [ivr_task] = await service.add_jobs(client_id, [job])
    await env.worker.drain()  # runs the ivr_call task, then the msg_call it added (due at once)
    [call] = await store.calls(task_id=ivr_task)
    assert [entry["text"] for entry in call.played] == ["added true"]
    tasks = await store.list_tasks(store.clock.now(), client_id=client_id)
    added = [task for task in tasks if task.id != ivr_task]
    assert [(t.kind, t.payload["called_number"]) for t in added] == [("msg_call", "0902")]
