"""Random and mutated documents never crash or hang the parser: only IvrError comes out."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringback.ivr.errors import IvrError
from ringback.ivr.parse import ELEMENTS, parse

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
