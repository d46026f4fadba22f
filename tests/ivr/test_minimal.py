"""The stopgap IVR runner: a safe parser for a Basix subset, and running it on a sim call."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringback.clock import FakeClock
from ringback.domain.model import Outcome
from ringback.ivr.minimal import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    NOT_SUPPORTED_YET,
    HangupStep,
    IvrError,
    IvrNotSupported,
    PlayStep,
    SpeakStep,
    WaitStep,
    check_play_files,
    parse_minimal,
    run_minimal,
)
from ringback.storage import Storage
from ringback.telephony.base import OriginateRequest
from ringback.telephony.sim import SimCall, SimDialer
from support import make_wav

CLIENT = 5


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage")


async def fast_call() -> SimCall:
    dialer = SimDialer(FakeClock(), fast=True)
    call = await dialer.originate(OriginateRequest(to_number="+15551234", caller_id_number=None))
    assert await call.wait_answer() is Outcome.ANSWERED
    return call


# --- parsing ------------------------------------------------------------------------------


def test_supported_elements_become_steps_with_their_attributes_and_lines() -> None:
    steps = parse_minimal(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<IVR>\n"
        '  <Play loop="2"> ivr/hello.wav </Play>\n'
        '  <Speak language="en" voice="kal" loop="3">Good morning</Speak>\n'
        '  <Wait length="1.5"/>\n'
        "  <Wait/>\n"
        "  <!-- a comment -->\n"
        '  <Hangup reason="busy"/>\n'
        "</IVR>\n"
    )
    assert steps == [
        PlayStep(path="ivr/hello.wav", loop=2, line=3),
        SpeakStep(text="Good morning", language="en", voice="kal", loop=3, line=4),
        WaitStep(seconds=1.5, line=5),
        WaitStep(seconds=1.0, line=6),
        HangupStep(reason="busy", line=8),
    ]


def test_response_is_accepted_as_the_root_too() -> None:
    assert parse_minimal("<Response><Hangup/></Response>") == [HangupStep(line=1)]


def test_any_other_root_is_refused() -> None:
    with pytest.raises(IvrError, match="root element must be IVR or Response, not Speak"):
        parse_minimal("<Speak>hi</Speak>")


@pytest.mark.parametrize("tag", sorted(NOT_SUPPORTED_YET))
def test_other_elements_of_the_dialect_are_not_supported_yet(tag: str) -> None:
    with pytest.raises(IvrNotSupported) as caught:
        parse_minimal(f"<IVR><{tag}/></IVR>")
    assert str(caught.value) == f"Element {tag} is not supported yet (line 1)"


def test_not_supported_is_an_ivr_error() -> None:
    assert issubclass(IvrNotSupported, IvrError)


def test_unknown_attribute_is_reported_in_the_dialect_style_with_its_line() -> None:
    with pytest.raises(IvrError) as caught:
        parse_minimal('<IVR>\n<Play>a.wav</Play>\n<Speak studio="x">hi</Speak>\n</IVR>')
    assert str(caught.value) == "Element Speak does not support attribute studio (line 3)"
    assert not isinstance(caught.value, IvrNotSupported)


def test_dialect_attributes_that_need_missing_features_are_not_supported_yet() -> None:
    with pytest.raises(IvrNotSupported, match="Attribute terminators of element Play"):
        parse_minimal('<IVR><Play terminators="#">a.wav</Play></IVR>')


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<IVR><Dance/></IVR>", "Unknown element Dance (line 1)"),
        ("<IVR>\n<speak>hi</speak></IVR>", "Unknown element speak (line 2)"),
        (
            '<IVR><Play loop="6">a.wav</Play></IVR>',
            "Attribute loop of element Play must be an integer from 1 to 5, not '6' (line 1)",
        ),
        ('<IVR><Speak loop="0">hi</Speak></IVR>', "Attribute loop of element Speak"),
        ('<IVR><Speak loop="two">hi</Speak></IVR>', "Attribute loop of element Speak"),
        ('<IVR><Wait length="0"/></IVR>', "Attribute length of element Wait"),
        ('<IVR><Wait length="-1"/></IVR>', "Attribute length of element Wait"),
        ('<IVR><Wait length="nan"/></IVR>', "Attribute length of element Wait"),
        ('<IVR><Wait length="soon"/></IVR>', "Attribute length of element Wait"),
        (
            '<IVR><Hangup reason="bored"/></IVR>',
            "Attribute reason of element Hangup must be rejected or busy, not 'bored' (line 1)",
        ),
        ("<IVR><Play>  </Play></IVR>", "Element Play needs the path of a file"),
        ("<IVR><Speak/></IVR>", "Element Speak needs a text"),
        ("<IVR><Play><Speak>hi</Speak></Play></IVR>", "Element Play cannot contain element Speak"),
        ('<IVR lang="en"/>', "Element IVR does not support attribute lang (line 1)"),
        ("<IVR><Play>a.wav</IVR>", "not well-formed XML"),
        ("", "not well-formed XML"),
    ],
)
def test_invalid_documents_are_refused_with_a_clear_message(xml: str, message: str) -> None:
    with pytest.raises(IvrError) as caught:
        parse_minimal(xml)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "xml",
    [
        "<IVR><Play>https://example.com/a.wav</Play></IVR>",
        "<IVR><Play>ivr/{{Digits}}.wav</Play></IVR>",
        "<IVR><Speak>You dialed {{Digits}}</Speak></IVR>",
    ],
)
def test_urls_and_variables_are_not_supported_yet(xml: str) -> None:
    with pytest.raises(IvrNotSupported):
        parse_minimal(xml)


@pytest.mark.parametrize(
    "xml",
    [
        '<!DOCTYPE IVR [<!ENTITY a "aaaa">]><IVR><Speak>&a;</Speak></IVR>',
        '<?xml version="1.0"?>\n<!DOCTYPE IVR SYSTEM "http://example.com/ivr.dtd"><IVR/>',
        '<!DOCTYPE IVR [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><IVR><Speak>&xxe;</Speak></IVR>',
        "<!doctype IVR><IVR/>",
    ],
)
def test_doctype_and_entity_declarations_are_refused(xml: str) -> None:
    with pytest.raises(IvrError, match="DOCTYPE and ENTITY declarations are not allowed"):
        parse_minimal(xml)


def test_billion_laughs_is_refused_without_expanding_anything() -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    with pytest.raises(IvrError, match="DOCTYPE"):
        parse_minimal(f"<!DOCTYPE IVR [{entities}]><IVR><Speak>&l9;</Speak></IVR>")


def test_undeclared_entity_reference_is_refused() -> None:
    with pytest.raises(IvrError, match="not well-formed"):
        parse_minimal("<IVR><Speak>&secret;</Speak></IVR>")


def test_predefined_entities_and_cdata_are_plain_text() -> None:
    steps = parse_minimal("<IVR><Speak>Tom &amp; Jerry <![CDATA[<3]]></Speak></IVR>")
    assert steps == [SpeakStep(text="Tom & Jerry <3", line=1)]


def test_documents_over_one_megabyte_are_refused() -> None:
    xml = "<IVR>" + "<Wait/>" * (MAX_DOCUMENT_BYTES // 7) + "</IVR>"
    with pytest.raises(IvrError, match="larger than"):
        parse_minimal(xml)


def test_documents_nested_deeper_than_the_limit_are_refused() -> None:
    depth = MAX_DEPTH + 1
    xml = "<IVR>" + "<a>" * (depth - 1) + "</a>" * (depth - 1) + "</IVR>"
    with pytest.raises(IvrError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_minimal(xml)


# --- running ------------------------------------------------------------------------------


async def test_run_plays_speaks_waits_and_hangs_up_with_the_reason(
    storage: Storage, tmp_path: Path
) -> None:
    make_wav(storage.client_dir(CLIENT) / "ivr" / "hello.wav", seconds=0.5)
    steps = parse_minimal(
        "<IVR><Play loop='2'>ivr/hello.wav</Play><Speak voice='kal'>Bye</Speak>"
        "<Wait length='2'/><Hangup reason='rejected'/><Speak>never said</Speak></IVR>"
    )
    call = await fast_call()
    await run_minimal(steps, call, storage, CLIENT)
    record = call.record
    assert [entry["type"] for entry in record.played] == ["play", "speak"]
    assert record.played[0]["file"] == str(storage.resolve(CLIENT, "ivr/hello.wav"))
    assert record.played[0]["seconds"] == 1.0
    assert record.played[1]["text"] == "Bye"
    assert (record.hangup_cause, record.hangup_disposition) == ("CALL_REJECTED", "send_bye")


async def test_run_does_not_hang_up_when_the_document_has_no_hangup(storage: Storage) -> None:
    call = await fast_call()
    await run_minimal(parse_minimal("<IVR><Speak>Hi</Speak></IVR>"), call, storage, CLIENT)
    assert call.record.ended_at is None


async def test_play_of_a_missing_file_raises_the_dialect_error(storage: Storage) -> None:
    steps = parse_minimal("<IVR><Play>ivr/none.wav</Play></IVR>")
    call = await fast_call()
    with pytest.raises(IvrError) as caught:
        await run_minimal(steps, call, storage, CLIENT)
    assert str(caught.value) == "Cannot execute Play. File ivr/none.wav doesn't exist"
    with pytest.raises(IvrError, match="doesn't exist"):
        check_play_files(steps, storage, CLIENT)


async def test_play_path_leaving_the_client_folder_is_refused(storage: Storage) -> None:
    steps = parse_minimal("<IVR><Play>../6/secret.wav</Play></IVR>")
    with pytest.raises(IvrError, match=r"Cannot execute Play\. storage path .* contains '\.\.'"):
        await run_minimal(steps, await fast_call(), storage, CLIENT)
