"""Random and mutated documents never crash or hang the parser (only IvrError comes out) nor
the interpreter (a run always ends, with the call hung up)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ringback.clock import FakeClock
from ringback.ivr.errors import IvrError
from ringback.ivr.fetch import OfflineFetcher
from ringback.ivr.interpret import IvrRun
from ringback.ivr.parse import (
    ELEMENTS,
    STATEMENTS,
    Document,
    forget_attribute_sets,
    parse,
    parse_uncached,
)
from ringback.ivr.simulate import simulate_call

pytestmark = pytest.mark.slow  # big hypothesis runs (hundreds of examples each)

CORPUS = [path.read_bytes() for path in sorted((Path(__file__).parent / "documents").glob("*.xml"))]
TAGS = sorted(ELEMENTS)
VALUES = ["", "1", "0", "-1", "5", "99", "1.5", "true", "false", "#", "*", "12#", "abc",
          "prompt", "alert", "busy", "POST", "GET", "ja-JP", "x" * 300, "{{1+}}", "{{Digits}}",
          "1 GT 2", "http://a, http://b", "menu", "&amp;", "&lt;"]  # fmt: skip


def parse_or_ivr_error(xml: str | bytes) -> None:
    with contextlib.suppress(IvrError):
        parse(xml)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    known = sorted(ELEMENTS[tag].attrs) or ["x"]
    names = draw(st.lists(st.sampled_from([*known, "studio"]), max_size=3, unique=True))
    attrs = "".join(f' {name}="{draw(st.sampled_from(VALUES))}"' for name in names)
    if depth > 3 or draw(st.booleans()):
        body = draw(st.sampled_from(["", "hello", "{{Digits}}", "menu", " "]))
    else:
        body = "".join(draw(st.lists(elements(depth + 1), max_size=3)))
    return f"<{tag}{attrs}>{body}</{tag}>"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["IVR", "Response", "Speak"]), st.lists(elements(), max_size=5))
def test_random_documents_from_the_dialects_vocabulary_only_raise_ivr_errors(
    root: str, children: list[str]
) -> None:
    parse_or_ivr_error(f"<{root}>{''.join(children)}</{root}>")


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(CORPUS), st.data())
def test_mutated_corpus_documents_only_raise_ivr_errors(
    document: bytes, data: st.DataObject
) -> None:
    mutated = bytearray(document)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.integers(0, 2))
        at = data.draw(st.integers(0, max(0, len(mutated) - 1)))
        if kind == 0 and mutated:
            mutated[at] = data.draw(st.integers(0, 255))
        elif kind == 1:
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif mutated:
            del mutated[at : at + data.draw(st.integers(1, 16))]
    parse_or_ivr_error(bytes(mutated))
    with contextlib.suppress(UnicodeDecodeError):
        parse_or_ivr_error(bytes(mutated).decode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_only_raises_ivr_errors(text: str) -> None:
    parse_or_ivr_error(text)
    parse_or_ivr_error("<IVR>" + text + "</IVR>")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_ivr_errors(data: bytes) -> None:
    parse_or_ivr_error(data)


def run_if_valid(xml: str, digits: str) -> None:
    try:
        document = parse(xml)
    except IvrError:
        return
    result, record = asyncio.run(
        asyncio.wait_for(
            simulate_call(
                document, FakeClock(), digits=digits, fetcher=OfflineFetcher(), max_steps=300
            ),
            timeout=10,
        )
    )
    assert isinstance(result, IvrRun)
    assert record.ended_at is not None  # the call always ends
    assert result.ok or result.error is not None or result.call_error is not None


SNIPPETS = [
    "<Answer/>", "<Speak>hi {{Digits}}</Speak>", "<Wait length='0.5'/>", "<Hangup/>",
    "<Set var='x' expr='1 + 2'/>", "<Set var='y' expr='1 / 0'/>", "<Play>{{x}}.wav</Play>",
    "<GetDigits numDigits='1' validDigits='12' maxTries='2'><Speak>p</Speak></GetDigits>",
    "<GetInput numDigits='2' action='s'/>", "<GetDigits action='http://a/x, none.xml'/>",
    "<Redirect>s</Redirect>", "<Redirect method='GET'>http://a/x, none.xml</Redirect>",
    "<GetJSON var='d' url='http://a/x'/>", "<GetJSON var='d' url='file://d.json'/>",
    "<Transfer failureAction='s'>0312340486</Transfer>", "<Transfer>0312345678</Transfer>",
    "<Transfer>uservoicemail,x</Transfer>", "<Park timeout='5'/>", "<SendSMS>hi</SendSMS>",
    "<SetErrorHandler>s</SetErrorHandler>", "<SetErrorHandler>http://a/e</SetErrorHandler>",
    "<GoTo>s</GoTo>", "<AddJob>{}</AddJob>", "<SendFax>f.tiff</SendFax>",
    "<ReceiveFax>in.tiff</ReceiveFax>",
]  # fmt: skip


@st.composite
def statements(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 5 if depth < 3 else 0))
    if kind == 1:
        then, other = draw(statements(depth + 1)), draw(statements(depth + 1))
        return f"<If expr=\"Digits == '1'\"><Then>{then}</Then><Else>{other}</Else></If>"
    if kind == 2:
        case, default = draw(statements(depth + 1)), draw(statements(depth + 1))
        return (
            f"<Switch expr='Digits'><Case val='2'>{case}</Case>"
            f"<Default>{default}</Default></Switch>"
        )
    return "".join(draw(st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=4)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements(), statements(), st.text(alphabet="0123456789*#,", max_size=12))
def test_random_valid_documents_never_crash_or_hang_the_interpreter(
    body: str, section: str, digits: str
) -> None:
    xml = f"<IVR>{body}<Section name='s'>{section}</Section></IVR>"
    parse(xml)  # valid by construction
    run_if_valid(xml, digits)


def outcome(xml: str) -> object:
    """The parsed tree, or the error's line and message."""
    try:
        return parse_uncached(xml)
    except IvrError as exc:
        return (exc.line, exc.message)


LEAVES = sorted(tag for tag in STATEMENTS if not ELEMENTS[tag].children)


@st.composite
def leaves(draw: st.DrawFn) -> str:
    """A statement without children, with some of its attributes (valid or not)."""
    tag = draw(st.sampled_from(LEAVES))
    names = draw(st.lists(st.sampled_from(sorted(ELEMENTS[tag].attrs) or ["x"]), unique=True))
    attrs = "".join(f' {name}="{draw(st.sampled_from(VALUES))}"' for name in names)
    return f"<{tag}{attrs}>{draw(st.sampled_from(['', 'hello', 'menu']))}</{tag}>"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(leaves(), min_size=1, max_size=6), st.lists(leaves(), max_size=6))
def test_a_document_parses_the_same_whether_its_attribute_sets_were_checked_before(
    first: list[str], second: list[str]
) -> None:
    earlier = f"<IVR>{''.join(first)}</IVR>"
    document = f"<IVR>\n{''.join(second + first)}</IVR>"  # other lines, the same attributes
    forget_attribute_sets()
    fresh = outcome(document)
    forget_attribute_sets()
    outcome(earlier)
    assert outcome(document) == fresh  # with the sets of `earlier` (and its errors) seen
    assert outcome(document) == fresh  # with every set of `document` seen
    if isinstance(fresh, Document):  # each node's attributes are its own element's, checked
        tree = etree.fromstring(document)
        for node, element in zip(fresh.root.walk(), tree.iter(), strict=True):
            assert node.tag == element.tag
            if element is not tree:
                forget_attribute_sets()
                xml = etree.tostring(element, encoding="unicode", with_tail=False)
                assert node.attrs == parse_uncached(f"<IVR>{xml}</IVR>").root.children[0].attrs
