"""Parse and validate a Basix XML IVR document into an immutable tree of typed nodes.

Pure: no I/O. The XML parser is hardened (no DTD, no entities, no network; any DOCTYPE is
refused) and bounded (bytes, depth, element count). Every element of the dialect is described
once, in :data:`ELEMENTS` (attributes with their type, range and default; text; allowed
children); :func:`parse` walks the document against that table. Errors are
:class:`~ringback.ivr.errors.IvrError` naming the line, the element and the attribute, in the
dialect's words (``line 3: Element Speak does not support attribute studio``).

Decisions where the reference (seed-spec A8) is open, as DESIGN §6 allows:

* ``Section`` is a named block allowed only directly under the root; reached in sequence it
  runs like any block, ``GoTo`` continues at its start. Names are unique; a ``GoTo`` naming no
  Section is an error.
* ``If`` holds exactly one ``Then`` and at most one ``Else``; ``Cond`` one or more ``Clause``
  and at most one ``Else`` (last); ``Switch`` one or more ``Case`` and at most one
  ``Default`` (last); ``Set`` and ``Switch`` take exactly one of their two value attributes.
* Redirect (``method``), SendSMS (``callingNumber``, ``calledNumber``) and SetErrorHandler
  (text: a URL list or a Section) have no reference page; their shapes here are ours.
* Numeric ranges the reference leaves open get telephony-sane bounds (e.g. GetDigits
  ``timeout`` 1-3600 s, ``numDigits`` 1-99, ``maxTries`` 1-100, Wait ``length`` up to 3600 s).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lxml import etree

from ringback.ivr.errors import IvrError
from ringback.ivr.expr import ExprError, check_template, compile_expr

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 5_000
MAX_TEXT_CHARS = 100_000
MAX_AUDIO_CHILDREN = 125  # GetDigits/GetInput: extra audio children are ignored (reference)
ROOT_TAGS = ("IVR", "Response")
DTMF_KEYS = "1234567890*#"

_XML_DECLARATION = re.compile(r"\A\ufeff?\s*<\?xml\b[^>]*\?>")
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST)\b", re.IGNORECASE)
_LXML_POSITION = re.compile(r", line \d+, column")
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
        if not (text.isascii() and text.isdigit() and len(text) <= 9 and low <= int(text) <= high):
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


# --- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=True)
class Node:
    """One element: its tag, line, attributes (typed, defaults filled), text and children."""

    tag: str
    line: int
    attrs: Mapping[str, Any]
    text: str | None = None
    children: tuple[Node, ...] = ()

    def __hash__(self) -> int:
        return hash((self.tag, self.line, self.text, self.children))

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, in document order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def summary(self, indent: int = 0) -> str:
        """A readable outline: one line per element with its non-default attributes."""
        spec = ELEMENTS[self.tag]
        shown = [
            f"{name}={value!r}"
            for name, value in self.attrs.items()
            if name not in spec.attrs or value != spec.attrs[name].default
        ]
        head = " ".join([self.tag, *shown])
        if self.text is not None:
            head += f" {self.text!r}"
        lines = ["  " * indent + head]
        lines.extend(child.summary(indent + 1) for child in self.children)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Document:
    root: Node
    sections: Mapping[str, int]  # Section name -> its index among the root's children

    @property
    def body(self) -> tuple[Node, ...]:
        return self.root.children


# --- parsing -------------------------------------------------------------------------------


def parse(xml: str | bytes) -> Document:
    """The validated tree of an IVR document, or IvrError saying what is wrong and where."""
    root = _load(xml)
    tag = _tag(root)
    if tag not in ROOT_TAGS:
        raise IvrError(f"The root element must be IVR or Response, not {tag}", _line(root))
    counter = [0]
    tree = _node(root, depth=1, counter=counter)
    sections: dict[str, int] = {}
    for index, child in enumerate(tree.children):
        if child.tag == "Section":
            name = child.attrs["name"]
            if name in sections:
                raise IvrError(f"Section {name} is defined twice", child.line)
            sections[name] = index
    for node in tree.walk():
        if node.tag == "GoTo" and node.text not in sections:
            raise IvrError(f"Element GoTo names no Section called {node.text}", node.line)
    return Document(root=tree, sections=MappingProxyType(sections))


def _load(xml: str | bytes) -> etree._Element:
    if isinstance(xml, str):
        try:
            data = xml.encode("utf-8")
        except UnicodeError as exc:
            raise IvrError("The IVR document is not valid text (lone surrogates)") from exc
        text: str | bytes = _XML_DECLARATION.sub("", xml, count=1)
    else:
        data = text = xml
    if len(data) > MAX_DOCUMENT_BYTES:
        raise IvrError(f"The IVR document is larger than {MAX_DOCUMENT_BYTES} bytes")
    found = _DECLARATION.search(data)
    if found:
        line = data.count(b"\n", 0, found.start()) + 1
        raise IvrError("DOCTYPE and ENTITY declarations are not allowed", line)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    try:
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError as exc:
        message = _LXML_POSITION.sub(", column", exc.msg or "syntax error")
        raise IvrError(f"The IVR document is not well-formed XML: {message}", exc.lineno) from exc
    except (ValueError, UnicodeError) as exc:  # e.g. control characters lxml refuses outright
        raise IvrError(f"The IVR document is not well-formed XML: {exc}") from exc
    if root is None:
        raise IvrError("The IVR document is empty")
    doctype: str = getattr(root.getroottree().docinfo, "doctype", "")
    if doctype:
        raise IvrError("DOCTYPE and ENTITY declarations are not allowed", 1)
    return root


def _tag(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):  # an entity reference or other non-element node
        raise IvrError("Entity references are not allowed", _line(element))
    return tag


def _line(element: etree._Element) -> int | None:
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else None


def _node(element: etree._Element, *, depth: int, counter: list[int]) -> Node:
    tag = _tag(element)
    line = _line(element)
    counter[0] += 1
    if counter[0] > MAX_ELEMENTS:
        raise IvrError(f"The IVR document has more than {MAX_ELEMENTS} elements", line)
    if depth > MAX_DEPTH:
        raise IvrError(f"The IVR document is nested deeper than {MAX_DEPTH} levels", line)
    spec = ELEMENTS[tag]
    attrs = _attributes(element, tag, spec, line)
    children: list[Node] = []
    content = element.text or ""
    for child in element:
        if not isinstance(child.tag, str):
            raise IvrError("Entity references are not allowed", _line(child))
        child_tag = child.tag
        child_line = _line(child)
        if child_tag not in ELEMENTS or "}" in child_tag:
            raise IvrError(f"Unknown element {child_tag}", child_line)
        if child_tag not in spec.children:
            raise IvrError(f"Element {tag} cannot contain element {child_tag}", child_line)
        if ELEMENTS[child_tag].top_level_only and tag not in ROOT_TAGS:
            raise IvrError(
                f"Element {child_tag} must be placed directly inside the root element",
                child_line,
            )
        children.append(_node(child, depth=depth + 1, counter=counter))
        if (child.tail or "").strip():
            raise IvrError(f"Element {tag} cannot contain text", child_line)
    _check_structure(tag, spec, children, line)
    body: str | None = None
    if spec.text == NO_TEXT:
        if content.strip():
            raise IvrError(f"Element {tag} cannot contain text", line)
    else:
        body = content.strip()
        if not body and spec.text == TEXT:
            raise IvrError(f"Element {tag} needs a text", line)
        if len(body) > spec.text_chars:
            raise IvrError(
                f"The text of element {tag} is longer than {spec.text_chars} characters", line
            )
        try:
            check_template(body)
        except ExprError as exc:
            raise IvrError(f"Element {tag}: {exc.message}", line) from None
    return Node(tag, line or 0, MappingProxyType(attrs), body, tuple(children))


def _attributes(
    element: etree._Element, tag: str, spec: ElementSpec, line: int | None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for raw_name, raw_value in element.attrib.items():
        name = raw_name if isinstance(raw_name, str) else raw_name.decode()
        value = raw_value if isinstance(raw_value, str) else raw_value.decode()
        attr = spec.attrs.get(name)
        if attr is None:
            raise IvrError(f"Element {tag} does not support attribute {name}", line)
        try:
            attrs[name] = attr.type.convert(value)
            if isinstance(attrs[name], str) and "{{" in value:
                check_template(value)
        except ExprError as exc:
            raise IvrError(f"Attribute {name} of element {tag}: {exc.message}", line) from None
        except ValueError:
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise IvrError(
                f"Attribute {name} of element {tag} must be {attr.type.describe}, not {shown!r}",
                line,
            ) from None
    for name, attr in spec.attrs.items():
        if name in attrs:
            continue
        if attr.required:
            raise IvrError(f"Element {tag} requires attribute {name}", line)
        if attr.default is not None:
            attrs[name] = attr.default
    if spec.one_of:
        given = [name for name in spec.one_of if name in attrs]
        if len(given) != 1:
            names = " or ".join(spec.one_of)
            raise IvrError(f"Element {tag} requires exactly one of attributes {names}", line)
    if spec.check is not None:
        problem = spec.check(attrs)
        if problem:
            raise IvrError(problem, line)
    return attrs


def _check_structure(tag: str, spec: ElementSpec, children: list[Node], line: int | None) -> None:
    for child_tag, (low, high) in spec.counts.items():
        count = sum(1 for child in children if child.tag == child_tag)
        if count < low:
            raise IvrError(f"Element {tag} requires a {child_tag} element", line)
        if count > high:
            extra = [child for child in children if child.tag == child_tag][high]
            raise IvrError(f"Element {tag} can contain only one {child_tag}", extra.line)
    seen_last = False
    for child in children:
        if child.tag in spec.last:
            seen_last = True
        elif seen_last:
            last = "/".join(sorted(spec.last))
            raise IvrError(f"Element {last} must be the last element inside {tag}", child.line)
