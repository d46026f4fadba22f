"""The elements that need more than the call itself: Transfer (through the dialer), Park,
SendFax / ReceiveFax (through the call), SendSMS (through a sender), GetInput, SetErrorHandler,
and the first document from client storage."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import EventType, Leg, TaskKind
from ringback.engine.runners import run_attempt
from ringback.ivr.errors import IvrNotSupported
from ringback.ivr.interpret import IvrRun
from ringback.ivr.parse import parse
from ringback.ivr.runner import IvrSource
from ringback.ivr.simulate import simulate_call
from ringback.telephony.base import Call, CallRecord
from ringback.telephony.sim import SimDialer
from support import attempt_context, on_clock

CLIENT = 3


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage")


async def simulate(
    xml: str | IvrSource, digits: str = "", **kwargs: Any
) -> tuple[IvrRun, CallRecord]:
    source = parse(xml) if isinstance(xml, str) else xml
    return await simulate_call(source, FakeClock(), digits=digits, client_id=CLIENT, **kwargs)


def spoken(record: CallRecord) -> list[str]:
    return [entry["text"] for entry in record.played if entry["type"] == "speak"]


def trace(result: IvrRun) -> list[str]:
    return [str(entry) for entry in result.trace]


# --- Transfer ----------------------------------------------------------------------------


async def test_transfer_to_a_number_that_answers_bridges_the_call_and_ends_the_ivr() -> None:
    result, record = await simulate(
        "<IVR><Speak>connecting</Speak><Transfer>0312345678</Transfer><Speak>never</Speak></IVR>"
    )
    assert result.ok and result.hung_up_by == "Transfer"
    assert spoken(record) == ["connecting"]
    [leg] = result.other_legs
    assert (leg.leg, leg.to_number, leg.from_number) == (Leg.TRANSFER, "0312345678", "05068680000")
    assert leg.bridged_with == record.leg_uuid and record.bridged_with == leg.leg_uuid
    assert leg.call_uuid == record.call_uuid
    assert trace(result)[1:] == [
        "line 1 Transfer: calling 0312345678 from 05068680000, ring 30 s",
        "line 1 Transfer: answered: bridged",
        "line 1 Transfer: the bridged call ended",
    ]


async def test_transfer_caller_id_relay_or_given_and_sip_uris() -> None:
    result, _ = await simulate(
        "<IVR><Transfer relayReceivedCallingNumber='true'>sip:alice@pbx.example</Transfer></IVR>"
    )
    [leg] = result.other_legs
    assert (leg.to_number, leg.from_number) == ("sip:alice@pbx.example", "09012341234")
    result, _ = await simulate(
        "<IVR><Transfer callingNumber='0501111'>+81312345678</Transfer></IVR>"
    )
    assert result.other_legs[0].from_number == "0501111"


@pytest.mark.parametrize(
    ("number", "reason"),
    [("0312340486", "busy"), ("0312340480", "no_answer"), ("0312340404", "invalid_number")],
)
async def test_a_failed_transfer_sets_the_reason_and_goes_on(number: str, reason: str) -> None:
    xml = (
        f"<IVR><Transfer>{number}</Transfer>"
        "<Switch var='TransferFailureReason'><Case val='busy'><Speak>busy</Speak></Case>"
        "<Default><Speak>other {{TransferFailureReason}}</Speak></Default></Switch></IVR>"
    )
    result, record = await simulate(xml)
    assert result.ok
    assert result.variables["TransferFailureReason"] == reason
    assert spoken(record) == ["busy" if reason == "busy" else f"other {reason}"]
    assert result.other_legs[0].ended_at is not None


async def test_a_failed_transfer_follows_failure_action_with_answer_timeout() -> None:
    xml = (
        "<IVR><Transfer failureAction='sorry' answerTimeout='5' suppressPreAnswerAudio='true'>"
        "0312340486</Transfer><Speak>skipped</Speak>"
        "<Section name='sorry'><Speak>sorry: {{TransferFailureReason}}</Speak></Section></IVR>"
    )
    result, record = await simulate(xml)
    assert spoken(record) == ["sorry: busy"]
    assert trace(result)[0] == (
        "line 1 Transfer: calling 0312340486 from 05068680000, ring 5 s "
        "(suppressPreAnswerAudio not honoured)"
    )
    assert "line 1 Transfer: failureAction: Section sorry" in trace(result)


async def test_transfer_to_a_basix_user_or_voicemail_is_not_supported() -> None:
    result, _ = await simulate("<IVR><Transfer>uservoicemail,tanaka</Transfer></IVR>")
    assert isinstance(result.error, IvrNotSupported)
    assert "Transferring to 'uservoicemail,tanaka' is not supported" in str(result.error)


# --- Park --------------------------------------------------------------------------------


async def test_park_holds_the_call_until_its_timeout_then_goes_on() -> None:
    result, record = await simulate("<IVR><Park timeout='30'/><Speak>back</Speak></IVR>")
    assert result.ok
    assert record.played[0] == {"type": "park", "seconds": 30.0, "music": None}
    assert spoken(record) == ["back"]
    assert trace(result)[:2] == [
        "line 1 Park: up to 30 s",
        "line 1 Park: timed out: the call goes on",
    ]


async def test_a_caller_who_hangs_up_while_parked_ends_the_ivr() -> None:
    clock = FakeClock()
    run = simulate_call(parse("<IVR><Park/><Speak>never</Speak></IVR>"), clock, fast=False)
    result, record = await on_clock(clock, run, step=1.0)
    assert result.call_error == "far end hung up"
    assert spoken(record) == []
    assert record.ended_at is not None and record.answered_at is not None
    assert (record.ended_at - record.answered_at).total_seconds() == pytest.approx(3.0)


# --- faxes -------------------------------------------------------------------------------


async def test_the_sim_backend_faxes_and_sets_the_fax_variables(storage: Storage) -> None:
    # the details (documents, results, timing, failures) are in tests/fax/test_fax_sim.py
    page = Image.new("1", (300, 200), 1)
    ImageDraw.Draw(page).rectangle((5, 5, 294, 194), outline=0)
    out = io.BytesIO()
    page.save(out, format="PNG")
    storage.write_bytes(CLIENT, "faxes/out.png", out.getvalue())
    result, _ = await simulate("<IVR><SendFax>faxes/out.png</SendFax></IVR>", storage=storage)
    assert result.ok
    assert result.fax == {
        "FaxOperation": "transmission", "FaxFilePath": "faxes/out.png", "FaxResultCode": "0",
        "FaxResultText": "OK", "FaxPageCount": "1",
    }  # fmt: skip
    result, _ = await simulate("<IVR><ReceiveFax>in.tiff</ReceiveFax></IVR>", storage=storage)
    assert result.ok
    assert (result.fax["FaxOperation"], result.fax["FaxResultCode"]) == ("reception", "0")
    assert storage.resolve(CLIENT, "received_faxes/in.tiff").is_file()


async def test_a_document_that_cannot_be_faxed_ends_the_call(storage: Storage) -> None:
    storage.write_bytes(CLIENT, "faxes/out.tiff", b"II*\x00")
    result, _ = await simulate("<IVR><SendFax>faxes/out.tiff</SendFax></IVR>", storage=storage)
    assert str(result.error) == (
        "line 1: Cannot execute SendFax. File faxes/out.tiff cannot be faxed: "
        "not a TIFF, PDF or image format that can be read"
    )


async def test_sendfax_of_a_missing_file_ends_the_call_in_the_dialects_words(
    storage: Storage,
) -> None:
    result, _ = await simulate("<IVR><SendFax>none.tiff</SendFax></IVR>", storage=storage)
    assert str(result.error) == "line 1: Cannot execute SendFax. File none.tiff doesn't exist"


# --- SendSMS -----------------------------------------------------------------------------


async def test_sendsms_is_recorded_in_the_call_record_by_default() -> None:
    result, record = await simulate(
        "<IVR><SendSMS>Your code is {{1200 + 34}}</SendSMS>"
        "<SendSMS callingNumber='0501111' calledNumber='0802222'>hi</SendSMS></IVR>"
    )
    assert result.ok
    assert record.detail["sms"] == [
        {"from": "05068680000", "to": "09012341234", "text": "Your code is 1234"},
        {"from": "0501111", "to": "0802222", "text": "hi"},
    ]


async def test_sendsms_goes_through_the_configured_sender_and_its_failure_is_reported() -> None:
    class Failing:
        async def send_sms(
            self, call: Call, *, from_number: str, to_number: str, text: str
        ) -> None:
            raise RuntimeError("gateway down")

    result, _ = await simulate("<IVR><SendSMS>hi</SendSMS></IVR>", sms=Failing())
    assert str(result.error) == "line 1: Cannot execute SendSMS. The SMS was not sent: gateway down"


# --- GetInput ----------------------------------------------------------------------------


async def test_getinput_collects_dtmf_and_says_speech_is_not_supported() -> None:
    xml = (
        "<IVR><GetInput numDigits='2' language='ja-JP'><Speak>say or press</Speak></GetInput>"
        "<Speak>got {{Digits}}</Speak></IVR>"
    )
    result, record = await simulate(xml, digits="42")
    assert spoken(record) == ["say or press", "got 42"]
    assert trace(result)[0] == (
        "line 1 GetInput: speech input not supported (no speech recognizer is configured): "
        "DTMF only"
    )


async def test_getinput_action_naming_a_section_jumps_with_the_digits() -> None:
    xml = (
        "<IVR><GetInput action='menu' numDigits='1'/><Speak>skipped</Speak>"
        "<Section name='menu'><Speak>menu {{Digits}}</Speak></Section></IVR>"
    )
    _, record = await simulate(xml, digits="5")
    assert spoken(record) == ["menu 5"]


# --- SetErrorHandler ---------------------------------------------------------------------


async def test_an_error_handler_section_takes_over_after_an_error() -> None:
    xml = (
        "<IVR><SetErrorHandler>oops</SetErrorHandler><Speak>one</Speak>\n"
        "<Set var='x' expr='1 / 0'/><Speak>skipped</Speak><Hangup/>"
        "<Section name='oops'><Speak>sorry</Speak></Section></IVR>"
    )
    result, record = await simulate(xml)
    assert result.ok
    assert spoken(record) == ["one", "sorry"]
    assert "division by zero" in result.variables["Error"]
    assert trace(result)[2].startswith("line 2 error handler: Cannot execute Set.")
    assert trace(result)[3] == "line 2 SetErrorHandler: to Section oops"


async def test_an_error_inside_the_error_handler_loop_is_bounded() -> None:
    xml = (
        "<IVR><SetErrorHandler>oops</SetErrorHandler>"
        "<Section name='oops'><Set var='x' expr='1 / 0'/></Section></IVR>"
    )
    result, _ = await simulate(xml)
    assert result.error is not None
    assert "jumped more than 1000 times" in str(result.error)


# --- where the first document comes from -------------------------------------------------


async def test_the_first_document_can_come_from_client_storage(storage: Storage) -> None:
    storage.write_bytes(CLIENT, "ivr/main.xml", b"<IVR><Speak>stored</Speak></IVR>")
    result, record = await simulate(IvrSource("storage", "ivr/main.xml"), storage=storage)
    assert result.ok and spoken(record) == ["stored"]
    result, _ = await simulate(IvrSource("storage", "ivr/none.xml"), storage=storage)
    assert str(result.error) == "Cannot read the IVR document: File ivr/none.xml doesn't exist"


async def test_inline_xml_with_an_error_ends_the_call_before_anything_runs() -> None:
    result, record = await simulate(IvrSource("xml", "<IVR><Speak studio='x'>hi</Speak></IVR>"))
    assert str(result.error) == "line 1: Element Speak does not support attribute studio"
    assert record.played == [] and record.ended_at is not None


def test_an_ivr_source_must_name_a_known_kind_and_hold_data() -> None:
    with pytest.raises(ValueError, match="kind must be one of xml, storage, url"):
        IvrSource("ftp", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        IvrSource("xml", " ")


async def test_an_ivr_call_task_records_and_reports_its_transfer_leg(storage: Storage) -> None:
    dialer = SimDialer(FakeClock(), fast=True)
    ctx = attempt_context(
        TaskKind.IVR_CALL,
        {
            "calling_number": "+15550000",
            "called_number": "+15551234",
            "ivr_xml": {"type": "inline", "data": "<IVR><Transfer>+15559999</Transfer></IVR>"},
        },
        dialer,
        storage,
        client_id=CLIENT,
    )
    result = await run_attempt(ctx)
    assert (result.success, result.comment) == (True, "IVR completed")
    main, transfer = sorted(ctx.calls, key=lambda record: record.leg != Leg.MAIN)
    assert (transfer.leg, transfer.to_number, transfer.from_number) == (
        Leg.TRANSFER,
        "+15559999",
        "+15550000",
    )
    assert transfer.bridged_with == main.leg_uuid
    ended = [data["leg"] for kind, data in ctx.progress if kind is EventType.CALL_ENDED]
    assert sorted(ended) == ["main", "transfer"]
