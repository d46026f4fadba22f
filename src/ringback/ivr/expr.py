"""The one evaluator for ``expr`` attributes and ``{{ }}`` templates, built on simpleeval.

What it offers (reference A5, plus what DESIGN §6 adds):

* operators ``+ - * / // % **``, ``== != > >= < <=`` and the deprecated word forms ``GT GE LT
  LE``, ``in`` / ``not in``, ``and or not``, ``x if c else y``; string, number, list, tuple and
  dict literals; subscripts ``data['k']``, ``items[0]`` and slices;
* dotted access into JSON data (``data.balance``): only dict keys, never a Python attribute;
* functions ``str int float bool len abs round min max lower upper strip`` and the time helpers
  ``hour minute weekday date time now`` which take an IANA zone (``hour('Asia/Tokyo')``;
  ``weekday`` is ISO: 1 = Monday … 7 = Sunday; ``date`` is ``YYYY-MM-DD``, ``time`` ``HH:MM``).

Bounds, checked before the work is done, so no expression can take long or use much memory:
an expression has at most :data:`MAX_EXPR_CHARS` characters and a syntax tree at most
:data:`MAX_DEPTH` deep; integers stay within :data:`MAX_INT_BITS` bits (``**``, ``*`` and
``+`` refuse beforehand); strings, lists and the text of ``str()`` stay within
:data:`MAX_SIZE` characters / items. There are no comprehensions, lambdas, f-strings or method
calls. Every problem is an :class:`ExprError`; nothing else comes out.

Templates: ``{{ expr }}`` in a text is replaced by the value of the expression; an undefined
variable or a missing key renders as the empty string (as for null), ``True``/``False`` as
``true``/``false``, numbers and strings as themselves, lists and dicts as JSON.
"""

from __future__ import annotations

import ast
import functools
import json
import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simpleeval import EvalWithCompoundTypes

from ringback.ivr.errors import IvrError
from ringback.ivr.limits import LIMITS, value_size

MAX_EXPR_CHARS = 1000
MAX_DEPTH = 40
MAX_INT_BITS = 4096
#: characters of a string; items (deep) of a list, tuple or dict: a variable's cap
MAX_SIZE = LIMITS.max_value_chars
MAX_TEMPLATE_CHARS = LIMITS.max_value_chars

_WORD_OPERATORS = {"GT": ">", "GE": ">=", "LT": "<", "LE": "<="}
_WORDS = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|\b(GT|GE|LT|LE)\b""")
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.UnaryOp, ast.BinOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.Call, ast.Subscript, ast.Attribute, ast.Slice, ast.List,
    ast.Tuple, ast.Dict, ast.UAdd, ast.USub, ast.Not, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.FloorDiv, ast.Mod, ast.Pow, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE,
    ast.Gt, ast.GtE, ast.In, ast.NotIn,
)  # fmt: skip


class ExprError(IvrError):
    """An expression or template that cannot be parsed or evaluated, and why."""


class Flag(str):
    """A ``"true"`` / ``"false"`` call variable (e.g. JobAdded): a string that is also a truth
    value, so ``expr="JobAdded"``, ``not JobAdded`` and ``JobAdded == 'true'`` all work."""

    __slots__ = ()

    def __new__(cls, value: bool) -> Flag:
        return super().__new__(cls, "true" if value else "false")

    def __bool__(self) -> bool:
        return self == "true"


# --- bounds ---------------------------------------------------------------------------------


def _size(value: Any, budget: int = MAX_SIZE) -> int:
    """How big ``value`` is (characters, items, digits), counting no further than ``budget``."""
    return value_size(value, budget)


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise ExprError(f"number too large (more than {MAX_INT_BITS} bits)")
    if isinstance(value, str | list | tuple | dict) and _size(value) > MAX_SIZE:
        raise ExprError(f"value too large (more than {MAX_SIZE} characters or items)")
    return value


def _int_bits(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value.bit_length()


def _power(base: Any, exponent: Any) -> Any:
    if (
        isinstance(exponent, int)
        and isinstance(base, int)
        and abs(base) > 1
        and (exponent * max(1, _int_bits(base) - 1) > MAX_INT_BITS or exponent < -10_000)
    ):
        raise ExprError(f"power too large (result over {MAX_INT_BITS} bits)")
    return _check_size(operator.pow(base, exponent))


def _multiply(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, str | list | tuple):
        left, right = right, left
    if isinstance(left, str | list | tuple) and isinstance(right, int):
        if right > 0 and _size(left) * right > MAX_SIZE:
            raise ExprError(f"value too large (more than {MAX_SIZE} characters or items)")
    elif _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
        raise ExprError(f"number too large (more than {MAX_INT_BITS} bits)")
    return _check_size(operator.mul(left, right))


def _add(left: Any, right: Any) -> Any:
    if (
        isinstance(left, str | list | tuple)
        and isinstance(right, str | list | tuple)
        and _size(left) + _size(right) > MAX_SIZE
    ):
        raise ExprError(f"value too large (more than {MAX_SIZE} characters or items)")
    return _check_size(operator.add(left, right))


def _modulo(left: Any, right: Any) -> Any:
    if not isinstance(left, int | float):  # str % ... would format, with unbounded widths
        raise ExprError(f"% needs numbers, not {_type_name(left)}")
    return operator.mod(left, right)


def _in(left: Any, right: Any) -> bool:
    return left in right


def _not_in(left: Any, right: Any) -> bool:
    return left not in right


_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: _add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _modulo,
    ast.Pow: _power,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.In: _in,
    ast.NotIn: _not_in,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}


# --- functions ------------------------------------------------------------------------------


def _str(value: Any = "") -> str:
    if _size(value) > MAX_SIZE:
        raise ExprError("value too large to convert to a string")
    return render_value(value) if isinstance(value, bool | list | tuple | dict) else str(value)


def _int(value: Any = 0, base: int = 10) -> int:
    if isinstance(value, str):
        if len(value) > 1300:
            raise ExprError("int(): the text is too long")
        return int(value, base)
    return int(value)


def _float(value: Any = 0.0) -> float:
    if isinstance(value, str) and len(value) > 1300:
        raise ExprError("float(): the text is too long")
    return float(value)


def _round(value: Any, digits: int | None = None) -> Any:
    if digits is not None and abs(digits) > 100:
        raise ExprError("round(): too many digits")
    return round(value, digits)


def _text_function(name: str) -> Callable[[Any], str]:
    def function(value: Any) -> str:
        if not isinstance(value, str):
            raise ExprError(f"{name}() needs a string")
        return str(getattr(value, name)())

    return function


def _zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str):
        raise ExprError("the time zone must be a string such as 'Asia/Tokyo'")
    return _zone_named(name)


@functools.lru_cache(maxsize=64)
def _zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ExprError(f"unknown time zone {name!r}") from None


def _time_functions(now: Callable[[], datetime]) -> dict[str, Callable[..., Any]]:
    def local(zone: str = "UTC") -> datetime:
        return now().astimezone(_zone(zone))

    return {
        "hour": lambda zone="UTC": local(zone).hour,
        "minute": lambda zone="UTC": local(zone).minute,
        "weekday": lambda zone="UTC": local(zone).isoweekday(),
        "date": lambda zone="UTC": local(zone).strftime("%Y-%m-%d"),
        "time": lambda zone="UTC": local(zone).strftime("%H:%M"),
        "now": lambda zone="UTC": local(zone).strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _functions(now: Callable[[], datetime]) -> dict[str, Callable[..., Any]]:
    return {
        "str": _str,
        "int": _int,
        "float": _float,
        "bool": bool,
        "len": len,
        "abs": abs,
        "round": _round,
        "min": min,
        "max": max,
        "lower": _text_function("lower"),
        "upper": _text_function("upper"),
        "strip": _text_function("strip"),
        **_time_functions(now),
    }


# --- compiling --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def compile_expr(source: str) -> ast.Expression:
    """The checked syntax tree of an expression (cached), or ExprError."""
    if not isinstance(source, str):
        raise ExprError("an expression must be a text")
    if len(source) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
    text = _WORDS.sub(lambda m: m.group(1) or _WORD_OPERATORS[m.group(2)], source).strip()
    if not text:
        raise ExprError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        detail = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        raise ExprError(f"invalid expression {_short(source)}: {detail}") from None
    _check_tree(tree, source)
    return tree


def _check_tree(tree: ast.AST, source: str) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError(f"expression {_short(source)} is nested too deeply")
        if not isinstance(node, _ALLOWED_NODES):
            raise ExprError(f"{_describe(node)} is not allowed in an expression ({_short(source)})")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            raise ExprError(f"only plain functions can be called ({_short(source)})")
        if isinstance(node, ast.Call) and any(k.arg is None for k in node.keywords):
            raise ExprError(f"** arguments are not allowed ({_short(source)})")
        if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
            raise ExprError(f"** in a dict is not allowed ({_short(source)})")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExprError(f"no such key {node.attr} ({_short(source)})")
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes | complex):
            raise ExprError(f"{type(node.value).__name__} literals are not allowed")
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.keyword):
                stack.append((child.value, depth + 1))
            else:
                stack.append((child, depth + 1))


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "lambda",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.JoinedStr: "an f-string",
        ast.NamedExpr: ":=",
        ast.Starred: "*",
        ast.Set: "a set",
        ast.Await: "await",
        ast.Yield: "yield",
    }
    for kind, name in names.items():
        if isinstance(node, kind):
            return name
    if isinstance(node, ast.operator | ast.unaryop | ast.cmpop):
        return f"operator {type(node).__name__}"
    return type(node).__name__


def _short(source: str) -> str:
    return repr(source if len(source) <= 60 else source[:60] + "…")


# --- evaluating -------------------------------------------------------------------------------


class _Evaluator(EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with our operators and functions, dict-key-only attribute access, and
    templates' lenient look-ups when ``lenient`` is set."""

    lenient = False

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        value = self._eval(node.value)
        if isinstance(value, dict):
            if node.attr in value:
                return value[node.attr]
            if self.lenient:
                return None
            raise ExprError(f"no key {node.attr!r} in the data")
        if value is None and self.lenient:
            return None
        raise ExprError(f"cannot read .{node.attr} of {_type_name(value)} (only of JSON objects)")

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        key = self._eval(node.slice)
        if not isinstance(container, str | list | tuple | dict):
            if container is None and self.lenient:
                return None
            raise ExprError(f"cannot index {_type_name(container)}")
        try:
            return container[key]
        except (KeyError, IndexError):
            if self.lenient:
                return None
            raise

    def _eval_name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return self.names[node.id]
        if self.lenient:
            return None
        raise ExprError(f"{node.id} is not defined")

    def _eval_call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)  # checked when compiled
        function = self.functions.get(node.func.id)
        if function is None:
            raise ExprError(f"unknown function {node.func.id}()")
        args = [self._eval(arg) for arg in node.args]
        kwargs = {k.arg: self._eval(k.value) for k in node.keywords if k.arg is not None}
        return _check_size(function(*args, **kwargs))

    def _eval_binop(self, node: ast.BinOp) -> Any:
        return _check_size(super()._eval_binop(node))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


class Expressions:
    """Evaluates expressions and templates over a live mapping of call variables."""

    def __init__(self, variables: Mapping[str, Any], now: Callable[[], datetime]) -> None:
        """``now`` is the injected clock's (the time helpers read it; never the wall clock)."""
        self.variables = variables
        self._strict = self._make(now, lenient=False)
        self._lenient = self._make(now, lenient=True)

    def _make(self, now: Callable[[], datetime], *, lenient: bool) -> _Evaluator:
        names = _Names(self.variables)
        evaluator = _Evaluator(operators=dict(_OPERATORS), functions=_functions(now), names=names)
        evaluator.lenient = lenient
        return evaluator

    def evaluate(self, source: str) -> Any:
        """The value of an expression; ExprError for anything wrong."""
        return self._run(self._strict, source)

    def test(self, source: str) -> bool:
        """The truth of an expression (Python truthiness; see :class:`Flag`)."""
        return bool(self.evaluate(source))

    def render(self, text: str) -> str:
        """``text`` with every ``{{ expr }}`` replaced by its value (see module docstring)."""
        if "{{" not in text:
            return text
        pieces: list[str] = []
        total = 0
        last = 0
        for match in _TEMPLATE.finditer(text):
            value = render_value(self._run(self._lenient, match.group(1)))
            pieces.append(text[last : match.start()])
            pieces.append(value)
            total += len(value) + match.start() - last
            if total > MAX_TEMPLATE_CHARS:
                raise ExprError(f"the text is longer than {MAX_TEMPLATE_CHARS} characters")
            last = match.end()
        pieces.append(text[last:])
        return "".join(pieces)

    def _run(self, evaluator: _Evaluator, source: str) -> Any:
        tree = compile_expr(source)
        try:
            return evaluator.eval(source, previously_parsed=tree.body)
        except ExprError:
            raise
        except Exception as exc:  # the evaluator's boundary: every failure becomes ExprError
            raise ExprError(f"cannot evaluate {_short(source)}: {_explain(exc)}") from None


def check_template(text: str) -> None:
    """ExprError if a ``{{ }}`` placeholder of ``text`` holds an invalid expression."""
    for match in _TEMPLATE.finditer(text):
        compile_expr(match.group(1))


def render_value(value: Any) -> str:
    """How a value reads inside a text: null is empty, booleans are true/false, containers
    are JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (ValueError, TypeError) as exc:
            raise ExprError(f"cannot write the value as text: {exc}") from None
    return str(value)


def _explain(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, KeyError):
        return f"no key {exc.args[0]!r}" if exc.args else "no such key"
    if isinstance(exc, IndexError):
        return "index out of range"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc).replace("\n", " ")
    return text[:200] or type(exc).__name__


class _Names(dict[str, Any]):
    """The evaluator's names: the live call variables plus True/False/None/true/false/null."""

    _CONSTANTS: Mapping[str, Any] = {
        "True": True,
        "False": False,
        "None": None,
        "true": True,
        "false": False,
        "null": None,
    }

    def __init__(self, variables: Mapping[str, Any]) -> None:
        super().__init__()
        self._variables = variables

    def __getitem__(self, key: str) -> Any:
        if key in self._variables:
            return self._variables[key]
        return self._CONSTANTS[key]

    def __contains__(self, key: object) -> bool:
        return key in self._variables or key in self._CONSTANTS
