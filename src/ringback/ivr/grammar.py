"""The Basix XML IVR dialect, described once: every element's attributes (type, range,
default), text and allowed children (:data:`ELEMENTS`), the attribute types, and the
document's bounds. :mod:`ringback.ivr.parse` walks documents against these tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ringback.domain.digits import ascii_digits
from ringback.ivr.expr import compile_expr

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 5_000
MAX_TEXT_CHARS = 100_000
MAX_AUDIO_CHILDREN = 125  # GetDigits/GetInput: extra audio children are ignored (reference)
ROOT_TAGS = ("IVR", "Response")
DTMF_KEYS = "1234567890*#"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Z][A-Za-z]{1,3})?\Z")


# --- attribute types -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttrType:
    """How an attribute value is read: ``convert`` raises ValueError when it is wrong, and the
    error then says the value ``must be <describe>``."""

    describe: str
    convert: Callable[[str], Any]


def integer(low: int, high: int) -> AttrType:
    def convert(value: str) -> int:
        text = value.strip()
        if not (ascii_digits(text) and len(text) <= 9 and low <= int(text) <= high):
            raise ValueError
        return int(text)

    return AttrType(f"an integer from {low} to {high}", convert)


def seconds(high: float) -> AttrType:
    def convert(value: str) -> float:
        text = value.strip()
        if not text or len(text) > 32 or not re.fullmatch(r"[0-9]*\.?[0-9]*", text):
            raise ValueError
        number = float(text)
        if not (math.isfinite(number) and 0 < number <= high):
            raise ValueError
        return number

    return AttrType(f"a number of seconds above 0 and at most {high:g}", convert)


def _boolean(value: str) -> bool:
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError


BOOLEAN = AttrType("true or false", _boolean)


def choice(*values: str) -> AttrType:
    def convert(value: str) -> str:
        if value not in values:
            raise ValueError
        return value

    return AttrType("one of " + ", ".join(values), convert)


def keys(*, single: bool, empty: bool = False) -> AttrType:
    def convert(value: str) -> str:
        if value == "" and empty:
            return ""
        if not value or any(key not in DTMF_KEYS for key in value):
            raise ValueError
        if single and len(value) != 1:
            raise ValueError
        if len(set(value)) != len(value):
            raise ValueError
        return value

    what = "one key of" if single else "distinct keys of"
    return AttrType(f"{what} {DTMF_KEYS}" + (" (or empty)" if empty else ""), convert)


def text(max_chars: int = 2048, *, ascii_only: bool = False) -> AttrType:
    def convert(value: str) -> str:
        if not value.strip() or len(value) > max_chars:
            raise ValueError
        if ascii_only and not value.isascii():
            raise ValueError
        return value

    what = "ASCII text" if ascii_only else "a non-empty text"
    return AttrType(f"{what} of at most {max_chars} characters", convert)


def _name(value: str) -> str:
    if not _NAME.match(value) or len(value) > 64:
        raise ValueError
    return value


NAME = AttrType("a name of letters, digits and _ (not starting with a digit)", _name)


def _expression(value: str) -> str:
    if not value.strip() or len(value) > 1000:
        raise ValueError
    compile_expr(value)  # an ExprError says what is wrong with it
    return value.strip()


EXPR = AttrType("a non-empty expression of at most 1000 characters", _expression)


def _targets(value: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in value.split(","))
    if len(value) > 4096 or not parts or any(not part for part in parts):
        raise ValueError
    return parts


TARGETS = AttrType("a comma-separated list of URLs, storage files or a Section name", _targets)


def _language(value: str) -> str:
    if not _LANGUAGE.match(value):
        raise ValueError
    return value


LANGUAGE = AttrType("a language code such as ja-JP or en-US", _language)


def _voice(value: str) -> str:
    if not value.strip() or len(value) > 64:
        raise ValueError
    if "-Neural2-" in value or "-Studio-" in value:
        raise ValueError  # the dialect offers Standard and Wavenet voices only
    return value


VOICE = AttrType("a Standard or Wavenet voice name (Neural2 and Studio are not available)", _voice)
PURPOSE = choice("prompt", "alert")


@dataclass(frozen=True, slots=True)
class Attr:
    type: AttrType
    default: Any = None
    required: bool = False
    deprecated: bool = False


# --- elements ------------------------------------------------------------------------------

#: what an element's text is: not allowed, required (non-empty), or optional
NO_TEXT, TEXT, OPTIONAL_TEXT = "none", "required", "optional"


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """One element of the dialect.

    ``children`` lists the elements allowed inside (``STATEMENTS`` for a block of statements);
    ``counts`` bounds how many of a child there may be (min, max); ``last`` names children that
    must come after all others; ``one_of`` lists attributes of which exactly one is required;
    ``check`` is a cross-attribute rule returning an error message or None.
    """

    attrs: Mapping[str, Attr] = field(default_factory=dict)
    text: str = NO_TEXT
    text_chars: int = 4096
    children: frozenset[str] = frozenset()
    counts: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    last: frozenset[str] = frozenset()
    one_of: tuple[str, ...] = ()
    top_level_only: bool = False
    check: Callable[[Mapping[str, Any]], str | None] | None = None


AUDIO = frozenset({"Play", "Speak", "Wait"})

#: the 22 statement elements of reference A8
STATEMENTS = frozenset({
    "AddJob", "Answer", "Cond", "GetDigits", "GetInput", "GetJSON", "GoTo", "Hangup", "If",
    "Park", "Play", "ReceiveFax", "Redirect", "Section", "SendFax", "SendSMS", "Set",
    "SetErrorHandler", "Speak", "Switch", "Transfer", "Wait",
})  # fmt: skip

_DIGIT_ATTRS: dict[str, Attr] = {
    "action": Attr(TARGETS),
    "timeout": Attr(integer(1, 3600), 5),
    "interdigitTimeout": Attr(integer(1, 3600), 5),
    "finishOnKey": Attr(keys(single=True, empty=True), "#"),
    "numDigits": Attr(integer(1, 99), 99),
    "validDigits": Attr(keys(single=False), DTMF_KEYS),
    "maxTries": Attr(integer(1, 100), 1),
    "playBeep": Attr(BOOLEAN, False),
}


def _transfer_check(attrs: Mapping[str, Any]) -> str | None:
    if "answerTimeout" in attrs and "failureAction" not in attrs:
        return "Attribute answerTimeout of element Transfer needs attribute failureAction"
    if attrs.get("relayReceivedCallingNumber") and "callingNumber" in attrs:
        return (
            "Attributes relayReceivedCallingNumber and callingNumber of element Transfer "
            "cannot be used together"
        )
    return None


def _block(**extra: Any) -> ElementSpec:
    return ElementSpec(children=STATEMENTS, **extra)


ELEMENTS: Mapping[str, ElementSpec] = MappingProxyType({
    # roots
    "IVR": _block(),
    "Response": _block(),
    # A8.1
    "AddJob": ElementSpec(text=TEXT, text_chars=MAX_TEXT_CHARS),
    # A8.2
    "Answer": ElementSpec(),
    # A8.3
    "Cond": ElementSpec(
        children=frozenset({"Clause", "Else"}),
        counts={"Clause": (1, MAX_ELEMENTS), "Else": (0, 1)},
        last=frozenset({"Else"}),
    ),
    "Clause": _block(attrs={"expr": Attr(EXPR, required=True)}),
    # A8.4
    "GetDigits": ElementSpec(
        attrs={
            **_DIGIT_ATTRS,
            "retries": Attr(integer(1, 100), deprecated=True),
            "invalidDigitsSound": Attr(text(), deprecated=True),
        },
        children=AUDIO,
    ),
    # A8.5
    "GetInput": ElementSpec(
        attrs={
            **_DIGIT_ATTRS,
            "language": Attr(LANGUAGE),
            "speechTimeout": Attr(integer(1, 3600), 5),
            "profanityFilter": Attr(BOOLEAN, False),
        },
        children=AUDIO,
    ),
    # A8.6
    "GetJSON": ElementSpec(
        attrs={
            "var": Attr(NAME, required=True),
            "url": Attr(text(4096), required=True),
            "method": Attr(choice("POST", "GET"), "POST"),
        }
    ),
    # A8.7
    "GoTo": ElementSpec(text=TEXT, text_chars=64),
    "Section": _block(
        attrs={"name": Attr(NAME, required=True)}, top_level_only=True
    ),
    # A8.8
    "Hangup": ElementSpec(attrs={"reason": Attr(choice("rejected", "busy"))}),
    # A8.9
    "If": ElementSpec(
        attrs={"expr": Attr(EXPR, required=True)},
        children=frozenset({"Then", "Else"}),
        counts={"Then": (1, 1), "Else": (0, 1)},
        last=frozenset({"Else"}),
    ),
    "Then": _block(),
    "Else": _block(),
    # A8.10
    "Park": ElementSpec(attrs={"timeout": Attr(integer(1, 86_400), 21_600)}),
    # A8.11
    "Play": ElementSpec(
        attrs={
            "loop": Attr(integer(1, 5), 1),
            "terminators": Attr(keys(single=False)),
            "purpose": Attr(PURPOSE, "prompt"),
        },
        text=TEXT,
        text_chars=1024,
    ),
    # A8.12
    "ReceiveFax": ElementSpec(
        attrs={
            "ident": Attr(text(20, ascii_only=True), deprecated=True),
            "action": Attr(TARGETS, deprecated=True),
        },
        text=TEXT,
        text_chars=1024,
    ),
    # A8.13
    "Redirect": ElementSpec(attrs={"method": Attr(choice("POST", "GET"), "POST")}, text=TEXT),
    # A8.14
    "SendFax": ElementSpec(
        attrs={
            "header": Attr(text(20, ascii_only=True)),
            "ident": Attr(text(20, ascii_only=True), deprecated=True),
            "action": Attr(TARGETS, deprecated=True),
        },
        text=TEXT,
        text_chars=1024,
    ),
    # A8.15
    "SendSMS": ElementSpec(
        attrs={"callingNumber": Attr(text(64)), "calledNumber": Attr(text(64))},
        text=TEXT,
        text_chars=1600,
    ),
    # A8.16
    "Set": ElementSpec(
        attrs={
            "var": Attr(NAME, required=True),
            "val": Attr(AttrType("a text", lambda value: value)),
            "expr": Attr(EXPR),
        },
        one_of=("val", "expr"),
    ),
    # A8.17
    "SetErrorHandler": ElementSpec(text=TEXT),
    # A8.18
    "Speak": ElementSpec(
        attrs={
            "language": Attr(LANGUAGE, "ja-JP"),
            "voice": Attr(VOICE),
            "loop": Attr(integer(1, 5), 1),
            "purpose": Attr(PURPOSE, "prompt"),
        },
        text=TEXT,
    ),
    # A8.19
    "Switch": ElementSpec(
        attrs={"expr": Attr(EXPR), "var": Attr(NAME)},
        one_of=("expr", "var"),
        children=frozenset({"Case", "Default"}),
        counts={"Case": (1, MAX_ELEMENTS), "Default": (0, 1)},
        last=frozenset({"Default"}),
    ),
    "Case": _block(attrs={"val": Attr(AttrType("a text", lambda value: value), required=True)}),
    "Default": _block(),
    # A8.20
    "Transfer": ElementSpec(
        attrs={
            "callingNumber": Attr(text(64)),
            "failureAction": Attr(TARGETS),
            "answerTimeout": Attr(integer(5, 180)),
            "suppressPreAnswerAudio": Attr(BOOLEAN, False),
            "relayReceivedCallingNumber": Attr(BOOLEAN, False),
        },
        text=TEXT,
        text_chars=1024,
        check=_transfer_check,
    ),
    # A8.21
    "Wait": ElementSpec(
        attrs={"length": Attr(seconds(3600), 1.0), "purpose": Attr(PURPOSE, "prompt")}
    ),
})  # fmt: skip
