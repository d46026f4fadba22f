"""The IVR resource caps (``ivr/limits.py``): no document can make a run hold, answer or
store much more than itself, and every cap ends in a clear IVR error naming line and element."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.ivr.errors import IvrError
from ringback.ivr.expr import Expressions
from ringback.ivr.interpret import IvrRun, TraceEntry
from ringback.ivr.limits import (
    LIMITS,
    IvrLimitError,
    IvrLimits,
    detail_bytes,
    store_trace,
    value_size,
)
from ringback.ivr.parse import parse
from ringback.ivr.simulate import simulate_call
from ringback.telephony.base import CallRecord

MB = 1_000_000
#: the security review's document: a 99,999-character value copied round a GoTo loop
LOOP_DOCUMENT = """<IVR>
<Section name="loop">
<Set var="a" expr="'x' * 99999"/>
<Set var="b" expr="a"/>
<GoTo>loop</GoTo>
</Section>
</IVR>"""
#: the same loop with values just under the cap: it runs until the jump bound stops it
GROWING_DOCUMENT = """<IVR>
<Set var="a" expr="'x' * 60000"/>
<Section name="loop">
<Set var="b" expr="a"/>
<Set var="c" val="{{b}}"/>
<GoTo>loop</GoTo>
</Section>
</IVR>"""


async def simulate(xml: str, limits: IvrLimits = LIMITS) -> tuple[IvrRun, CallRecord]:
    return await simulate_call(parse(xml), FakeClock(), limits=limits)


def response_size(run: IvrRun, record: CallRecord) -> int:
    """About what ``POST /calls/simulate`` answers for the run."""
    body = {
        "trace": [vars_of(entry) for entry in run.trace],
        "variables": run.var_parameters(),
        "played": record.played,
        "error": run.error.message if run.error else None,
    }
    return len(json.dumps(body).encode())


def vars_of(entry: TraceEntry) -> dict[str, Any]:
    return {"line": entry.line, "element": entry.element, "detail": entry.detail}


async def test_the_review_loop_document_ends_with_a_value_cap_error_naming_line_and_element() -> (
    None
):
    run, record = await simulate(LOOP_DOCUMENT)
    assert isinstance(run.error, IvrError)
    assert str(run.error).startswith("line 3: Cannot execute Set. value too large")
    assert "65536" in run.error.message
    assert response_size(run, record) < 2 * MB
    assert detail_bytes(record.detail) < 2 * MB


async def test_a_loop_of_values_under_the_cap_ends_at_the_jump_bound_with_a_bounded_trace() -> None:
    run, record = await simulate(GROWING_DOCUMENT)
    assert isinstance(run.error, IvrLimitError)
    assert "jumped more than 1000 times" in str(run.error)
    assert run.trace_dropped > 0
    assert [entry.element for entry in run.trace[-3:]] == ["trace full", "error", "trace full"]
    assert run.trace_bytes <= LIMITS.max_trace_bytes
    assert response_size(run, record) < 2 * MB
    assert detail_bytes(record.detail) <= LIMITS.max_detail_bytes
    assert record.detail["ivr_trace"][-2].startswith("line 6 error: The IVR jumped")


def test_interpreting_the_loop_documents_allocates_under_50_mb() -> None:
    for xml in (LOOP_DOCUMENT, GROWING_DOCUMENT):
        tracemalloc.start()
        try:
            run, _record = asyncio.run(simulate(xml))
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert run.error is not None
        assert peak < 50 * MB, (xml, peak)


async def test_a_trace_entry_detail_is_shortened_to_its_cap() -> None:
    run, _record = await simulate("<IVR>\n<Set var='a' expr=\"'y' * 5000\"/></IVR>")
    assert run.ok
    [entry] = [entry for entry in run.trace if entry.element == "Set"]
    assert len(entry.detail) < LIMITS.max_trace_detail_chars + 100
    assert entry.detail.startswith("a = 'yyy") and "more characters" in entry.detail


async def test_a_speak_text_over_its_cap_fails_the_speak_naming_the_line() -> None:
    run, record = await simulate("<IVR>\n\n<Speak>{{'z' * 5000}}</Speak></IVR>")
    assert run.error is not None and run.error.line == 3
    assert (
        run.error.message
        == "Cannot execute Speak. The text has 5000 characters, over the cap of 4096"
    )
    assert record.played == []


async def test_the_spoken_text_of_a_call_is_capped_in_total() -> None:
    xml = "<IVR><Section name='s'>\n<Speak>{{'w' * 4000}}</Speak><GoTo>s</GoTo></Section></IVR>"
    run, record = await simulate(xml)
    assert isinstance(run.error, IvrLimitError) and run.error.line == 2
    assert "spoken and SMS text would exceed 131072 characters" in run.error.message
    assert sum(len(p["text"]) for p in record.played) <= LIMITS.max_spoken_chars


async def test_the_variables_of_a_call_are_capped_in_number_and_in_total_size() -> None:
    few = IvrLimits(max_variables=len(await _call_variable_names()) + 2)
    xml = "<IVR><Set var='a' val='1'/><Set var='b' val='2'/>\n<Set var='c' val='3'/></IVR>"
    run, _record = await simulate(xml, few)
    assert isinstance(run.error, IvrLimitError) and run.error.line == 2
    assert "c is one too many" in run.error.message

    small = IvrLimits(max_variables_chars=10_000)
    xml = "<IVR><Set var='a' expr=\"'x' * 6000\"/>\n<Set var='b' expr='a'/></IVR>"
    run, _record = await simulate(xml, small)
    assert isinstance(run.error, IvrLimitError) and run.error.line == 2
    assert "over the cap of 10000" in run.error.message


async def _call_variable_names() -> list[str]:
    run, _record = await simulate("<IVR/>")
    return list(run.variables)


def test_the_stored_detail_is_cut_to_its_cap_keeping_the_first_and_last_entries() -> None:
    detail: dict[str, Any] = {"worker": "w1"}
    lines = [f"line {n} Set: a = {'v' * 500!r}" for n in range(5000)]
    store_trace(detail, lines, IvrLimits(max_detail_bytes=100_000))
    assert detail_bytes(detail) <= 100_000
    kept = detail["ivr_trace"]
    assert kept[0] == lines[0] and kept[-1] == lines[-1]
    assert any("trace entries left out" in line for line in kept)


# --- fuzzing: generated Set / concatenation chains --------------------------------------------

_OPERANDS = st.sampled_from(["a", "b", "c", "'x'", "'xyz' * 9", "[1, 2]", "7", "a + b", "len(a)"])
_STEPS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), _OPERANDS, st.sampled_from(["+", "*"]), _OPERANDS),
    min_size=1,
    max_size=8,
)
_FUZZ_LIMITS = IvrLimits(
    max_value_chars=2_000, max_variables_chars=5_000, max_trace_bytes=20_000, max_jumps=30
)


def _chain_document(steps: list[tuple[str, str, str, str]], loop: bool) -> str:
    sets = "".join(
        f"<Set var='{name}' expr=\"{left} {op} {right}\"/>" for name, left, op, right in steps
    )
    body = f"<Section name='s'>{sets}<GoTo>s</GoTo></Section>" if loop else sets
    return f"<IVR><Set var='a' val='ab'/><Set var='b' val='c'/><Set var='c' val=''/>{body}</IVR>"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_STEPS, st.booleans())
def test_generated_set_chains_end_cleanly_within_every_cap(
    steps: list[tuple[str, str, str, str]], loop: bool
) -> None:
    """Any chain of Set/concatenation (looped or not): the run ends (no exception escapes),
    an error is an IvrError with a line, and the caps hold."""
    run, record = asyncio.run(simulate(_chain_document(steps, loop), _FUZZ_LIMITS))
    if run.error is not None:
        assert run.error.line is not None and run.error.line >= 1
    assert run.call_error is None
    for name in run.set_variables:
        value = run.variables[name]
        if isinstance(value, str | list):
            assert len(value) <= _FUZZ_LIMITS.max_value_chars
    # past the cap only how the call ended is kept: a few entries of at most ~1 KiB
    assert run.trace_bytes <= _FUZZ_LIMITS.max_trace_bytes + 4 * 1_200
    assert len(run.trace) <= _FUZZ_LIMITS.max_trace_entries + 5
    assert detail_bytes(record.detail) <= _FUZZ_LIMITS.max_detail_bytes


_ATOMS = st.sampled_from(["v", "'q'", "'qq' * 30", "[v]", "{'k': v}", "1", "True", "None", "v.k"])


@st.composite
def _concatenations(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(_ATOMS)
    left, right = draw(_concatenations(depth + 1)), draw(_concatenations(depth + 1))
    return f"({left} {draw(st.sampled_from(['+', '*', '+']))} {right})"


@settings(max_examples=300, deadline=None)
@given(_concatenations(), st.integers(min_value=1, max_value=12))
def test_repeated_concatenation_in_the_evaluator_only_raises_ivr_errors_and_stays_capped(
    source: str, rounds: int
) -> None:
    """Feeding an expression's value back into itself: only IvrError ever escapes, and no
    value the evaluator returns is over the value cap."""
    variables: dict[str, Any] = {"v": "seed"}
    expressions = Expressions(variables, now=FakeClock().now)
    for _ in range(rounds):
        try:
            value = expressions.evaluate(source)
        except IvrError:
            return
        if isinstance(value, str | list | tuple | dict):
            assert value_size(value, LIMITS.max_value_chars) <= LIMITS.max_value_chars
        variables["v"] = value


async def test_a_play_of_a_file_that_is_not_audio_fails_naming_the_storage_name_only(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "storage")
    storage.write_bytes(7, "docs/b.xml", b"<IVR/>")
    run, _record = await simulate_call(
        parse("<IVR>\n<Play>docs/b.xml</Play></IVR>"), FakeClock(), storage=storage, client_id=7
    )
    assert run.error is not None and run.error.line == 2
    assert run.error.message.startswith("Cannot execute Play. Cannot play docs/b.xml: ")
    assert str(tmp_path) not in run.error.message
    assert not any(str(tmp_path) in str(entry) for entry in run.trace)
