"""The expression and template evaluator: the dialect's operators, JSON data, bounds."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.ivr.expr import (
    MAX_EXPR_CHARS,
    ExprError,
    Expressions,
    Flag,
    check_template,
    compile_expr,
)

# 2026-03-02 is a Monday; 23:30 UTC is 08:30 on Tuesday in Tokyo
NOW = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)


def evaluator(**variables: Any) -> Expressions:
    base: dict[str, Any] = {
        "Digits": "7",
        "CallingNumber": "09012341234",
        "data": {"balance": 150, "items": [1, 2, 3], "info": "hi", "nested": {"k": "v"}},
        "nothing": None,
    }
    base.update(variables)
    return Expressions(base, now=lambda: NOW)


def value(source: str, **variables: Any) -> Any:
    return evaluator(**variables).evaluate(source)


def refused(source: str) -> str:
    with pytest.raises(ExprError) as caught:
        evaluator().evaluate(source)
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 1", 2),
        ("100 - 1", 99),
        ("100/10", 10),
        ("10 * 10", 100),
        ("2 ** 10", 1024),
        ("15 % 4", 3),
        ("15 == 4", False),
        ("'one' in ['two', 'three']", False),
        ("10 > 3", True),
        ("10 >= 10", True),
        ("3 < 10", True),
        ("3 <= 2", False),
        ("not (3 > 10)", True),
        ("1 != 2 and (0 or 'x')", "x"),
        ("'a' if 1 GT 2 else 'b'", "b"),
        ("str(123)", "123"),
        ("int('123')", 123),
        ("float('1.5')", 1.5),
        ("len(data.items)", 3),
        ("max(data.items) + min(1, 2)", 4),
        ("round(2.567, 1)", 2.6),
        ("abs(-3)", 3),
        ("upper('ab') + lower('CD') + strip(' e ')", "ABcde"),
        ("{'a': 1}['a']", 1),
        ("(1, 2)[0]", 1),
        ("'hello'[1:3]", "el"),
        ("true and not false and null == None", True),
    ],
)
def test_operators_and_functions_of_the_dialect(source: str, expected: Any) -> None:
    assert value(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("myvar LT 10", True),
        ("myvar LE 5", True),
        ("myvar GT 10", False),
        ("myvar GE 5", True),
        ("'GT' == 'G' + 'T'", True),  # inside quotes the words stay text
    ],
)
def test_deprecated_word_comparisons_still_work(source: str, expected: bool) -> None:
    assert value(source, myvar=5) is expected


def test_call_variables_are_strings_and_compare_as_strings() -> None:
    assert value("Digits == '7'") is True
    assert value("Digits == 7") is False
    assert value("int(Digits) * 3") == 21


def test_dotted_access_reads_keys_of_json_objects() -> None:
    assert value("data.balance > 100") is True
    assert value("data.nested.k") == "v"
    assert value("data.items[0]") == 1


@pytest.mark.parametrize(
    "source",
    [
        "data.items.count",  # a list method
        "data.keys",  # a dict method
        "Digits.upper",  # a str method
        "data.__class__",
        "().__class__.__bases__",
        "str.__name__",
        "'a'.join(['b'])",
    ],
)
def test_python_object_attributes_are_never_reachable(source: str) -> None:
    refused(source)


def test_a_missing_key_or_variable_is_an_error_in_an_expression() -> None:
    assert refused("data.nope") == "no key 'nope' in the data"
    assert refused("undefined_var > 1") == "undefined_var is not defined"
    assert refused("nothing.x") == "cannot read .x of null (only of JSON objects)"


def test_flags_are_true_false_strings_with_the_matching_truth() -> None:
    ok, ko = Flag(True), Flag(False)
    assert (ok, ko) == ("true", "false")
    e = evaluator(JobAdded=ko)
    assert e.test("JobAdded") is False
    assert e.test("not JobAdded") is True
    assert e.test("JobAdded == 'false'") is True
    assert evaluator(JobAdded=ok).test("JobAdded") is True


def test_time_helpers_read_the_injected_clock_in_a_zone() -> None:
    assert value("hour()") == 23
    assert value("hour('Asia/Tokyo')") == 8
    assert value("minute('Asia/Tokyo')") == 30
    assert value("weekday()") == 1  # Monday, ISO numbering
    assert value("weekday('Asia/Tokyo')") == 2
    assert value("date('Asia/Tokyo')") == "2026-03-03"
    assert value("time('Asia/Tokyo')") == "08:30"
    assert value("now('Asia/Tokyo')") == "2026-03-03T08:30:00"
    assert value("hour('Asia/Tokyo') >= 9 and hour('Asia/Tokyo') LT 18") is False
    assert refused("hour('Mars/Base')") == "unknown time zone 'Mars/Base'"


@pytest.mark.parametrize(
    "source",
    [
        "2 ** 100000",
        "9 ** 9 ** 9",
        "(9 ** 999) * (9 ** 999) * (9 ** 999)",
        "'a' * 10 ** 6",
        "10 ** 6 * 'a'",
        "[1] * 10 ** 6",
        "['x' * 50000] * 3",
        "('a' * 60000) + ('b' * 60000)",
        "'%999999999d' % 1",
        "[x for x in [1, 2]]",
        "f'{1:>999999999}'",
        "lambda: 1",
        "-" * 500 + "1",
        "[" * 150 + "]" * 150,
        "1" + " + 1" * MAX_EXPR_CHARS,
    ],
)
def test_bombs_are_refused_before_they_are_computed(source: str) -> None:
    e = evaluator()
    started = time.monotonic()
    with pytest.raises(ExprError):
        e.evaluate(source)
    assert time.monotonic() - started < 0.1  # generous: the refusal comes before any work


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1/0", "cannot evaluate '1/0': division by zero"),
        ("data.items[9]", "cannot evaluate 'data.items[9]': index out of range"),
        ("int('x')", "cannot evaluate \"int('x')\": invalid literal for int() with base 10: 'x'"),
        ("1 +", "invalid expression '1 +': invalid syntax"),
        ("open('x')", "unknown function open()"),
        ("x := 1", "invalid expression 'x := 1': invalid syntax"),
    ],
)
def test_runtime_and_syntax_errors_are_evaluator_errors_with_a_reason(
    source: str, message: str
) -> None:
    assert refused(source) == message


def test_templates_render_variables_json_paths_and_expressions() -> None:
    e = evaluator(JobAdded=Flag(True))
    assert e.render("Call {{CallingNumber}}: {{ data.info }}") == "Call 09012341234: hi"
    assert e.render("{{int(Digits) * 3}} {{JobAdded}} {{1 == 1}} {{data.items}}") == (
        "21 true true [1, 2, 3]"
    )
    assert e.render("no placeholders") == "no placeholders"


def test_templates_render_undefined_names_and_missing_keys_as_empty() -> None:
    assert evaluator().render("[{{nope}}][{{data.nope}}][{{nothing.x}}][{{data.items[7]}}]") == (
        "[][][][]"
    )


def test_a_template_with_a_bad_expression_is_an_error_and_can_be_checked_ahead() -> None:
    with pytest.raises(ExprError):
        evaluator().render("{{ 1 + }}")
    with pytest.raises(ExprError):
        check_template("hello {{ [x for x in y] }}")
    check_template("hello {{ data.info }}")


def test_compiled_expressions_are_cached() -> None:
    assert compile_expr("1 + 2") is compile_expr("1 + 2")


# --- properties -----------------------------------------------------------------------------

_ATOMS = st.sampled_from(
    [
        "1", "0", "-3", "2.5", "'7'", "''", "'abc'", "Digits", "data", "data.balance",
        "data.items", "data.nested", "nothing", "JobAdded", "True", "None", "[1, 'a']",
        "{'k': 1}", "99999999999", "1e308", "undefined",
    ]
)  # fmt: skip
_BINARY = st.sampled_from(
    ["+", "-", "*", "/", "//", "%", "**", "==", "!=", ">", "<", ">=", "<=", "GT", "LE", "in",
     "not in", "and", "or"]
)  # fmt: skip
_FUNCTIONS = st.sampled_from(
    ["str", "int", "float", "len", "abs", "round", "min", "max", "upper", "hour", "weekday",
     "bool", "nope"]
)  # fmt: skip


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 4 or draw(st.booleans()):
        return draw(_ATOMS)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return f"({draw(expressions(depth + 1))} {draw(_BINARY)} {draw(expressions(depth + 1))})"
    if kind == 1:
        return f"not {draw(expressions(depth + 1))}"
    if kind == 2:
        args = ", ".join(draw(st.lists(expressions(depth + 1), max_size=2)))
        return f"{draw(_FUNCTIONS)}({args})"
    if kind == 3:
        return f"{draw(expressions(depth + 1))}[{draw(expressions(depth + 1))}]"
    if kind == 4:
        return f"{draw(expressions(depth + 1))}.{draw(st.sampled_from(['balance', 'k', 'x']))}"
    return f"[{draw(expressions(depth + 1))}, {draw(expressions(depth + 1))}]"


@settings(max_examples=400, deadline=None)
@given(expressions())
def test_random_well_formed_expressions_only_ever_raise_expr_error(source: str) -> None:
    e = evaluator(JobAdded=Flag(True))
    try:
        e.evaluate(source)
        e.render("{{" + source + "}}")
    except ExprError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_random_text_as_an_expression_only_ever_raises_expr_error(source: str) -> None:
    with contextlib.suppress(ExprError):
        evaluator().evaluate(source)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="{}() 1'a+*.[]", max_size=60))
def test_random_templates_only_ever_raise_expr_error(text: str) -> None:
    with contextlib.suppress(ExprError):
        evaluator().render(text)
