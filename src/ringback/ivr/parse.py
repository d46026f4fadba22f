"""Parse and validate a Basix XML IVR document into an immutable tree of typed nodes.

Pure: no I/O. The XML parser is hardened (no DTD, no entities, no network; any DOCTYPE is
refused) and bounded (bytes, depth, element count). Every element of the dialect is described
once, in :data:`ringback.ivr.grammar.ELEMENTS` (attributes with their type, range and default;
text; allowed children); :func:`parse` walks the document against that table. Errors are
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

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from lxml import etree

from ringback.ivr.errors import IvrError
from ringback.ivr.expr import ExprError, check_template
from ringback.ivr.grammar import (
    ELEMENTS,
    MAX_AUDIO_CHILDREN,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_ELEMENTS,
    NO_TEXT,
    ROOT_TAGS,
    STATEMENTS,
    TEXT,
    ElementSpec,
)
from ringback.ivr.parse_cache import ParseCache, document_key

_XML_DECLARATION = re.compile(r"\A\ufeff?\s*<\?xml\b[^>]*\?>")
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST)\b", re.IGNORECASE)
_LXML_POSITION = re.compile(r", line \d+, column")

#: parsed documents by content hash (the same IVR is fetched for every call of a campaign)
CACHE: ParseCache[Document] = ParseCache()


# --- the tree ------------------------------------------------------------------------------


class Node(NamedTuple):
    """One element: its tag, line, attributes (typed, defaults filled), text and children.

    Immutable (a named tuple: a parsed document is built from tens of these, and a tuple is
    made in a third of a frozen dataclass's time); hashed without its attributes, which are a
    read-only mapping.
    """

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
    """The validated tree of an IVR document, or IvrError saying what is wrong and where.

    The same document (the same bytes, or the same text) is parsed once: the result is kept in
    a bounded cache (:mod:`ringback.ivr.parse_cache`) keyed by a hash of the input, and is
    immutable (frozen nodes, read-only mappings), so every run can share it; a run's state
    lives in its interpreter. Documents that fail are not kept (each call raises afresh).
    """
    key = document_key(xml)
    found = CACHE.get(key)
    if found is not None:
        return found
    document = parse_uncached(xml)
    CACHE.put(key, document, len(xml))
    return document


def parse_uncached(xml: str | bytes) -> Document:
    """:func:`parse` without the cache: the document parsed and validated now."""
    root = _load(xml)
    tag = _tag(root)
    if tag not in ROOT_TAGS:
        raise IvrError(f"The root element must be IVR or Response, not {tag}", _line(root))
    counter = [0]
    gotos: list[Node] = []
    tree = _node(root, 1, counter, gotos)
    sections: dict[str, int] = {}
    for index, child in enumerate(tree.children):
        if child.tag == "Section":
            name = child.attrs["name"]
            if name in sections:
                raise IvrError(f"Section {name} is defined twice", child.line)
            sections[name] = index
    for node in gotos:  # in document order
        if node.text not in sections:
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
    found = _DECLARATION.search(data) if b"<!" in data else None
    if found:
        line = data.count(b"\n", 0, found.start()) + 1
        raise IvrError("DOCTYPE and ENTITY declarations are not allowed", line)
    parser = _parser()
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


def _parser() -> etree.XMLParser:
    """A hardened XML parser: no DTD, no entities, no network, no comments or PIs kept."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def _tag(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):  # an entity reference or other non-element node
        raise IvrError("Entity references are not allowed", _line(element))
    return tag


def _line(element: etree._Element) -> int | None:
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else None


@dataclass(frozen=True, slots=True)
class _Rules:
    """What :func:`_node` checks for one tag, read once from its :class:`ElementSpec`."""

    spec: ElementSpec
    convert: Mapping[str, Callable[[str], Any]]
    describe: Mapping[str, str]
    defaults: tuple[tuple[str, Any], ...]  # (name, default) of attributes that have one
    required: tuple[str, ...]
    visits_attrs: bool  # attributes to fill in or check even when none is written
    structure: bool  # child counts or a last child to check

    @classmethod
    def of(cls, spec: ElementSpec) -> _Rules:
        attrs = spec.attrs
        return cls(
            spec=spec,
            convert={name: attr.type.convert for name, attr in attrs.items()},
            describe={name: attr.type.describe for name, attr in attrs.items()},
            defaults=tuple(
                (name, attr.default) for name, attr in attrs.items() if attr.default is not None
            ),
            required=tuple(name for name, attr in attrs.items() if attr.required),
            visits_attrs=bool(attrs) or spec.check is not None,
            structure=bool(spec.counts or spec.last),
        )


_RULES: Mapping[str, _Rules] = {tag: _Rules.of(spec) for tag, spec in ELEMENTS.items()}
_TOP_LEVEL_ONLY = frozenset(tag for tag, spec in ELEMENTS.items() if spec.top_level_only)
_NO_ATTRS: Mapping[str, Any] = MappingProxyType({})
_new_node = tuple.__new__  # Node's fields in order, without the generated __new__'s call
#: an element's checked attributes by its tag and attributes as written: the same few sets
#: (``language="en-US"``, a menu's ``GetDigits``) recur within and across documents; their
#: values are immutable, so every node with them shares one mapping
_SEEN_ATTRS: dict[tuple[Any, ...], Mapping[str, Any]] = {}
_SEEN_ATTRS_MAX = 4096  # sets kept; the table starts afresh when full
_SEEN_ATTRS_CHARS = 256  # a set whose values are longer in all is not kept


def forget_attribute_sets() -> None:
    """Forget every attribute set checked so far (the next parses check theirs afresh)."""
    _SEEN_ATTRS.clear()


def _node(element: etree._Element, depth: int, counter: list[int], gotos: list[Node]) -> Node:
    """The node of ``element`` (its tag already checked to be allowed where it stands)."""
    tag: str = element.tag
    line: int | None = element.sourceline  # type: ignore[assignment]  # an int here
    counter[0] += 1
    if counter[0] > MAX_ELEMENTS:
        raise IvrError(f"The IVR document has more than {MAX_ELEMENTS} elements", line)
    if depth > MAX_DEPTH:
        raise IvrError(f"The IVR document is nested deeper than {MAX_DEPTH} levels", line)
    rules = _RULES[tag]
    items: list[tuple[str, str]] = element.items()  # type: ignore[assignment]  # str, not bytes
    if items or rules.visits_attrs:
        key = (tag, *items)
        attrs = _SEEN_ATTRS.get(key)
        if attrs is None:
            attrs = MappingProxyType(_attributes(items, tag, rules, line))
            if sum(len(value) for _, value in items) <= _SEEN_ATTRS_CHARS:
                if len(_SEEN_ATTRS) >= _SEEN_ATTRS_MAX:
                    _SEEN_ATTRS.clear()
                _SEEN_ATTRS[key] = attrs
    else:
        attrs = _NO_ATTRS
    children: list[Node] = []
    allowed = rules.spec.children
    for child in element:
        child_tag = child.tag
        if child_tag not in allowed:
            _refuse_child(tag, child)
        if child_tag in _TOP_LEVEL_ONLY and tag not in ROOT_TAGS:
            raise IvrError(
                f"Element {child_tag} must be placed directly inside the root element",
                _line(child),
            )
        children.append(_node(child, depth + 1, counter, gotos))
        tail = child.tail
        if tail and not tail.isspace():
            raise IvrError(f"Element {tag} cannot contain text", _line(child))
    if rules.structure:
        _check_structure(tag, rules.spec, children, line)
    content = element.text
    body: str | None = None
    if rules.spec.text == NO_TEXT:
        if content and not content.isspace():
            raise IvrError(f"Element {tag} cannot contain text", line)
    else:
        body = content.strip() if content else ""
        if not body and rules.spec.text == TEXT:
            raise IvrError(f"Element {tag} needs a text", line)
        if len(body) > rules.spec.text_chars:
            raise IvrError(
                f"The text of element {tag} is longer than {rules.spec.text_chars} characters", line
            )
        if "{{" in body:
            try:
                check_template(body)
            except ExprError as exc:
                raise IvrError(f"Element {tag}: {exc.message}", line) from None
    node = _new_node(Node, (tag, line or 0, attrs, body, tuple(children)))
    if tag == "GoTo":
        gotos.append(node)
    return node


def _refuse_child(tag: str, child: etree._Element) -> None:
    child_tag = child.tag
    if not isinstance(child_tag, str):  # an entity reference or other non-element node
        raise IvrError("Entity references are not allowed", _line(child))
    if child_tag not in ELEMENTS or "}" in child_tag:
        raise IvrError(f"Unknown element {child_tag}", _line(child))
    raise IvrError(f"Element {tag} cannot contain element {child_tag}", _line(child))


def _attributes(
    items: list[tuple[str, str]], tag: str, rules: _Rules, line: int | None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    convert = rules.convert
    for raw_name, raw_value in items:
        name = raw_name if isinstance(raw_name, str) else raw_name.decode()
        value = raw_value if isinstance(raw_value, str) else raw_value.decode()
        read = convert.get(name)
        if read is None:
            raise IvrError(f"Element {tag} does not support attribute {name}", line)
        try:
            attrs[name] = found = read(value)
            if "{{" in value and isinstance(found, str):
                check_template(value)
        except ExprError as exc:
            raise IvrError(f"Attribute {name} of element {tag}: {exc.message}", line) from None
        except ValueError:
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise IvrError(
                f"Attribute {name} of element {tag} must be {rules.describe[name]}, not {shown!r}",
                line,
            ) from None
    for name in rules.required:
        if name not in attrs:
            raise IvrError(f"Element {tag} requires attribute {name}", line)
    for name, default in rules.defaults:
        if name not in attrs:
            attrs[name] = default
    if rules.spec.one_of:
        given = [name for name in rules.spec.one_of if name in attrs]
        if len(given) != 1:
            names = " or ".join(rules.spec.one_of)
            raise IvrError(f"Element {tag} requires exactly one of attributes {names}", line)
    if rules.spec.check is not None:
        problem = rules.spec.check(attrs)
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


#: the grammar's names callers read through the parser
__all__ = [
    "ELEMENTS",
    "MAX_AUDIO_CHILDREN",
    "MAX_DOCUMENT_BYTES",
    "STATEMENTS",
    "Document",
    "Node",
    "forget_attribute_sets",
    "parse",
    "parse_uncached",
]
