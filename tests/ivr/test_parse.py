"""The IVR parser and validator: the dialect's elements, attributes, defaults and errors."""

from __future__ import annotations

import pytest

from ringback.ivr.errors import IvrError
from ringback.ivr.parse import (
    ELEMENTS,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_ELEMENTS,
    STATEMENTS,
    Node,
    parse,
)


def only(xml: str) -> Node:
    """The single element inside the root."""
    [node] = parse(xml).body
    return node


def error(xml: str | bytes) -> str:
    with pytest.raises(IvrError) as caught:
        parse(xml)
    return str(caught.value)


def test_the_table_describes_the_22_elements_of_the_dialect_plus_their_parts() -> None:
    assert len(STATEMENTS) == 22
    assert set(ELEMENTS) == STATEMENTS | {
        "IVR", "Response", "Then", "Else", "Clause", "Case", "Default",
    }  # fmt: skip


@pytest.mark.parametrize("root", ["IVR", "Response"])
def test_root_is_ivr_or_response(root: str) -> None:
    assert parse(f"<{root}><Answer/></{root}>").root.tag == root


def test_a_prolog_with_an_encoding_is_accepted_as_text_and_as_bytes() -> None:
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n<IVR><Speak>こんにちは</Speak></IVR>'
    assert only(xml).text == "こんにちは"
    assert only(xml.encode()).text == "こんにちは"


def test_another_root_is_an_error_naming_it() -> None:
    assert error("<Speak>hi</Speak>") == (
        "line 1: The root element must be IVR or Response, not Speak"
    )


def test_unknown_attribute_is_an_error_in_the_dialects_words_with_the_line() -> None:
    assert error("<IVR>\n\n<Speak studio='x'>hi</Speak></IVR>") == (
        "line 3: Element Speak does not support attribute studio"
    )


def test_element_names_are_case_sensitive() -> None:
    assert error("<IVR>\n<speak>hi</speak></IVR>") == "line 2: Unknown element speak"


def test_attribute_names_are_case_sensitive() -> None:
    assert error("<IVR><Play LOOP='2'>a.wav</Play></IVR>") == (
        "line 1: Element Play does not support attribute LOOP"
    )


def test_defaults_are_filled_for_every_attribute_that_has_one() -> None:
    node = only("<IVR><GetDigits/></IVR>")
    assert dict(node.attrs) == {
        "timeout": 5,
        "interdigitTimeout": 5,
        "finishOnKey": "#",
        "numDigits": 99,
        "validDigits": "1234567890*#",
        "maxTries": 1,
        "playBeep": False,
    }
    assert dict(only("<IVR><Speak>x</Speak></IVR>").attrs) == {
        "language": "ja-JP",
        "loop": 1,
        "purpose": "prompt",
    }
    assert dict(only("<IVR><Wait/></IVR>").attrs) == {"length": 1.0, "purpose": "prompt"}
    assert dict(only("<IVR><Park/></IVR>").attrs) == {"timeout": 21600}
    assert only("<IVR><GetJSON var='d' url='http://x'/></IVR>").attrs["method"] == "POST"


def test_attribute_values_are_typed() -> None:
    node = only(
        "<IVR><GetDigits timeout='10' numDigits='4' finishOnKey='*' validDigits='123'"
        " playBeep='true' maxTries='3' action='http://a/x, http://b/x'/></IVR>"
    )
    assert node.attrs["timeout"] == 10
    assert node.attrs["playBeep"] is True
    assert node.attrs["action"] == ("http://a/x", "http://b/x")
    assert only("<IVR><Wait length='0.5'/></IVR>").attrs["length"] == 0.5


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<Play loop='6'>a.wav</Play>", "Attribute loop of element Play must be an integer"),
        ("<Play loop='0'>a.wav</Play>", "Attribute loop of element Play must be an integer"),
        ("<Speak loop='x'>a</Speak>", "Attribute loop of element Speak must be an integer"),
        ("<Play terminators='ab'>a.wav</Play>", "Attribute terminators of element Play must"),
        ("<Play purpose='main'>a.wav</Play>", "Attribute purpose of element Play must be one of"),
        ("<Wait length='0'/>", "Attribute length of element Wait must be a number of seconds"),
        ("<Wait length='-1'/>", "Attribute length of element Wait must be a number of seconds"),
        ("<Wait length='nan'/>", "Attribute length of element Wait must be a number of seconds"),
        ("<Wait length='3601'/>", "Attribute length of element Wait must be a number of seconds"),
        ("<Hangup reason='bored'/>", "Attribute reason of element Hangup must be one of"),
        ("<GetDigits finishOnKey='12'/>", "Attribute finishOnKey of element GetDigits must"),
        ("<GetDigits validDigits='12a'/>", "Attribute validDigits of element GetDigits must"),
        ("<GetDigits numDigits='100'/>", "Attribute numDigits of element GetDigits must"),
        ("<GetDigits playBeep='yes'/>", "Attribute playBeep of element GetDigits must be true"),
        ("<GetDigits timeout='0'/>", "Attribute timeout of element GetDigits must"),
        ("<GetDigits action='a,,b'/>", "Attribute action of element GetDigits must"),
        ("<GetInput language='english'/>", "Attribute language of element GetInput must"),
        ("<GetJSON var='1x' url='http://x'/>", "Attribute var of element GetJSON must be a name"),
        ("<GetJSON var='d' url='http://x' method='PUT'/>", "Attribute method of element GetJSON"),
        ("<Park timeout='0'/>", "Attribute timeout of element Park must be an integer"),
        ("<SendFax header='x" + "y" * 20 + "'>f.tiff</SendFax>", "Attribute header of element"),
        ("<Speak voice='en-US-Neural2-A'>x</Speak>", "Attribute voice of element Speak must"),
        ("<Speak language='EN'>x</Speak>", "Attribute language of element Speak must"),
        (
            "<Transfer answerTimeout='4' failureAction='s'>1</Transfer>",
            "Attribute answerTimeout of element Transfer must",
        ),
        ("<Set var='x' expr=' '/>", "Attribute expr of element Set must be a non-empty"),
    ],
)
def test_a_bad_attribute_value_names_the_attribute_the_element_and_the_rule(
    xml: str, message: str
) -> None:
    assert error(f"<IVR>{xml}</IVR>").startswith(f"line 1: {message}")


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<If><Then/></If>", "Element If requires attribute expr"),
        ("<Clause expr='1'/>", "Element IVR cannot contain element Clause"),
        ("<Cond><Else/></Cond>", "Element Cond requires a Clause element"),
        ("<Cond><Else/><Clause expr='1'/></Cond>", "Element Else must be the last element"),
        ("<If expr='1'><Then/><Then/></If>", "Element If can contain only one Then"),
        ("<If expr='1'><Else/><Then/></If>", "Element Else must be the last element inside If"),
        ("<Switch expr='1'><Default/></Switch>", "Element Switch requires a Case element"),
        ("<Switch><Case val='1'/></Switch>", "Element Switch requires exactly one of attributes"),
        (
            "<Switch expr='1' var='Digits'><Case val='1'/></Switch>",
            "Element Switch requires exactly one of attributes expr or var",
        ),
        ("<Switch var='Digits'><Case/></Switch>", "Element Case requires attribute val"),
        ("<Set var='x' val='1' expr='2'/>", "Element Set requires exactly one of attributes"),
        ("<Speak/>", "Element Speak needs a text"),
        ("<Play> </Play>", "Element Play needs a text"),
        ("<AddJob/>", "Element AddJob needs a text"),
        ("<Answer>now</Answer>", "Element Answer cannot contain text"),
        ("<Speak>hi<Wait/></Speak>", "Element Speak cannot contain element Wait"),
        ("<GetDigits><Hangup/></GetDigits>", "Element GetDigits cannot contain element Hangup"),
        ("<Section name='a'/><Section name='a'/>", "Section a is defined twice"),
        ("<GoTo>menu</GoTo>", "Element GoTo names no Section called menu"),
        ("<Then/>", "Element IVR cannot contain element Then"),
        ("<IVR/>", "Element IVR cannot contain element IVR"),
        ("<Say>hi</Say>", "Unknown element Say"),
        (
            "<Transfer relayReceivedCallingNumber='true' callingNumber='1'>2</Transfer>",
            "Attributes relayReceivedCallingNumber and callingNumber of element Transfer",
        ),
        (
            "<Transfer answerTimeout='30'>2</Transfer>",
            "Attribute answerTimeout of element Transfer needs attribute failureAction",
        ),
    ],
)
def test_structure_rules_are_errors_with_the_line(xml: str, message: str) -> None:
    assert error(f"<IVR>{xml}</IVR>").startswith(f"line 1: {message}")


def test_a_section_must_sit_directly_under_the_root() -> None:
    xml = "<IVR><If expr='1'><Then>\n<Section name='a'/></Then></If></IVR>"
    assert error(xml) == "line 2: Element Section must be placed directly inside the root element"


def test_goto_may_jump_from_inside_a_block_to_a_section() -> None:
    doc = parse(
        "<IVR><Section name='menu'><If expr='1'><Then><GoTo>menu</GoTo></Then></If></Section></IVR>"
    )
    assert doc.sections == {"menu": 0}


def test_text_between_elements_is_an_error() -> None:
    assert error("<IVR><Answer/>\n oops <Hangup/></IVR>") == (
        "line 1: Element IVR cannot contain text"
    )


def test_comments_and_processing_instructions_are_ignored() -> None:
    assert [n.tag for n in parse("<IVR><!-- hi --><?pi x?><Answer/></IVR>").body] == ["Answer"]


def test_the_tree_is_immutable() -> None:
    node = only("<IVR><Speak>hi</Speak></IVR>")
    with pytest.raises(AttributeError):
        node.text = "bye"  # type: ignore[misc]
    with pytest.raises(TypeError):
        node.attrs["loop"] = 3  # type: ignore[index]


def test_summary_shows_each_element_with_its_non_default_attributes() -> None:
    doc = parse("<IVR><Speak loop='2'>hi</Speak><If expr='x'><Then><Hangup/></Then></If></IVR>")
    assert doc.root.summary() == ("IVR\n  Speak loop=2 'hi'\n  If expr='x'\n    Then\n      Hangup")


# --- hardening ------------------------------------------------------------------------------


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<IVR><Speak>&lol3;</Speak></IVR>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE IVR [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<IVR><Speak>&xxe;</Speak></IVR>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE IVR SYSTEM "http://127.0.0.1:9/evil.dtd">
<IVR><Speak>hi</Speak></IVR>"""

PARAMETER_ENTITY = """<!DOCTYPE IVR [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x"> %p;]><IVR/>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PARAMETER_ENTITY])
def test_doctype_entities_and_external_dtds_are_refused(xml: str) -> None:
    assert "DOCTYPE and ENTITY declarations are not allowed" in error(xml)
    assert "DOCTYPE and ENTITY declarations are not allowed" in error(xml.encode())


def test_an_undeclared_entity_reference_is_refused() -> None:
    assert "Entity 'xxe' not defined" in error("<IVR><Speak>&xxe;</Speak></IVR>")


def test_an_oversized_document_is_refused_before_parsing() -> None:
    xml = "<IVR><Speak>" + "a" * MAX_DOCUMENT_BYTES + "</Speak></IVR>"
    assert error(xml) == f"The IVR document is larger than {MAX_DOCUMENT_BYTES} bytes"


def test_a_too_deep_document_is_refused() -> None:
    depth = MAX_DEPTH + 1
    xml = "<IVR>" + "<If expr='1'><Then>" * depth + "<Answer/>" + "</Then></If>" * depth + "</IVR>"
    assert f"nested deeper than {MAX_DEPTH} levels" in error(xml)


def test_a_document_with_too_many_elements_is_refused() -> None:
    xml = "<IVR>" + "<Answer/>" * MAX_ELEMENTS + "</IVR>"
    assert f"more than {MAX_ELEMENTS} elements" in error(xml)


@pytest.mark.parametrize("xml", ["", "   ", "<IVR>", "<IVR></Response>", "\x00<IVR/>", "<IVR/>x"])
def test_broken_xml_is_an_ivr_error(xml: str) -> None:
    assert error(xml)


def test_namespaced_elements_are_unknown() -> None:
    assert error("<IVR><x:Speak xmlns:x='urn:x'>hi</x:Speak></IVR>") == (
        "line 1: Unknown element {urn:x}Speak"
    )


def test_expressions_are_checked_when_the_document_is_validated() -> None:
    assert error("<IVR><If expr='1 +'><Then/></If></IVR>") == (
        "line 1: Attribute expr of element If: invalid expression '1 +': invalid syntax"
    )
    assert error("<IVR><Set var='x' expr='x.__class__'/></IVR>").startswith(
        "line 1: Attribute expr of element Set:"
    )


def test_templates_are_checked_when_the_document_is_validated() -> None:
    assert error("<IVR>\n<Speak>Hello {{ 1 + }}</Speak></IVR>") == (
        "line 2: Element Speak: invalid expression ' 1 + ': invalid syntax"
    )
    assert error("<IVR><GetJSON var='d' url='http://x/{{[a for a in b]}}'/></IVR>").startswith(
        "line 1: Attribute url of element GetJSON: a comprehension is not allowed"
    )
