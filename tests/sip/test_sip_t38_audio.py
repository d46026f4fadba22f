"""Back to audio after T.38 (docs/fax.md, "Back to audio after a T.38 fax"), against sipp:
the rule is that the side whose fax step ran on T.38 re-INVITEs back to the call's audio when
the step ends with the call up (whoever switched), offering the call's codec on the same RTP
port with the T.38 stream kept as ``m=image 0``; 200 puts the RTP stream back (sipp echoes a
chirp played after it); 488 leaves the call up with its media steps failing and saying why
(until the far end's own re-INVITE back to audio); 481 (the dialog gone) hangs up; a far end's
re-INVITE back to audio during a T.38 fax ends the fax and is answered with the offer's
m-lines, and ringback sends no re-INVITE of its own; a T.38 offer in an UPDATE is answered as
one in a re-INVITE."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from support_media import HOST, best_correlation, chirp, floats, write_wav
from support_sip import answered_call, bounded, sip_dialer, sipp_peer

from ringback.telephony.base import CallError
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer

pytestmark = pytest.mark.slow  # runs sipp

FAX_S = 2.0  # a ReceiveFax on T.38 with nobody sending: it ends after this much fax time


def _chirp_wav(tmp_path: Path) -> tuple[Path, bytes]:
    pcm = chirp(0.6)
    return write_wav(tmp_path / "chirp.wav", [floats(pcm)], 8000, 2), pcm


async def _on_t38(dialer: SipDialer) -> SipCall:
    """An answered call that sipp has moved to T.38 (it re-INVITEs at once)."""
    call = await answered_call(dialer)
    await call.t38.wait_channel()
    return call


def _received(messages: str, first_line: str) -> list[str]:
    """The SDP bodies of the messages sipp received (from ringback) whose first line starts
    with ``first_line``, in order."""
    out = []
    for block in re.split(r"(?m)^-{10,} .*\n", messages):
        direction, _, message = block.strip("\n").partition("\n")
        head, _, body = message.strip("\n").partition("\n\n")
        if "received" in direction and head.startswith(first_line) and "v=0" in body:
            out.append(body)
    return out


def _m_lines(sdp: str) -> list[str]:
    return [line.strip() for line in sdp.splitlines() if line.strip().startswith("m=")]


def _o_version(sdp: str) -> int:
    found = re.search(r"^o=\S+ \d+ (\d+)", sdp, re.M)
    assert found is not None
    return int(found.group(1))


@bounded(90)
async def test_rule_ringback_reinvites_back_to_audio_after_its_t38_fax_and_play_is_heard(
    tmp_path: Path,
) -> None:
    wav, pcm = _chirp_wav(tmp_path)
    with sipp_peer(tmp_path, "uas_t38_back_to_audio", extra=["-rtp_echo"]) as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await _on_t38(dialer)
            result = (await call.receive_fax(FAX_S)).result
            assert result.transport == "t38" and result.code != 0  # nobody sent a page
            assert call.t38.channel is None and call.t38.stuck is None  # back on audio
            session = call.media
            assert session is not None
            session.start_recording(20)  # sipp echoes what reaches its audio port
            await call.play(wav)
            async with asyncio.timeout(10):
                while best_correlation(pcm, session.recorded_pcm()) < 0.9:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the re-INVITE's m=audio PCMU and m=image 0
    t38 = record.detail["t38"]
    assert (t38["switched"], t38["audio_return"], t38["left"]) == (
        "accepted",
        200,
        "back to audio (our re-INVITE)",
    )
    messages = sipp.message_file.read_text()
    [invite, reinvite] = _received(messages, "INVITE sip:")
    [t38_answer] = _received(messages, "SIP/2.0 200")
    original_port = _m_lines(invite)[0].split()[1]
    # RFC 3264 §8: the same RTP port, the codec the call had, the image stream kept disabled
    assert _m_lines(reinvite) == [f"m=audio {original_port} RTP/AVP 0 101", "m=image 0 udptl t38"]
    assert _o_version(reinvite) == _o_version(t38_answer) + 1
    assert record.detail["codec"] == "PCMU" and record.hangup_disposition == "send_bye"


@bounded(90)
async def test_rule_a_refused_reinvite_back_to_audio_keeps_the_call_up_and_media_steps_say_why(
    tmp_path: Path,
) -> None:
    wav, _ = _chirp_wav(tmp_path)
    with sipp_peer(tmp_path, "uas_t38_back_to_audio_refused") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await _on_t38(dialer)
            result = (await call.receive_fax(FAX_S)).result
            assert result.transport == "t38"
            assert not call.ended  # RFC 3261 §14.1: the session stays as it was
            why = "the far end refused to go back to audio after T.38 (488 Not Acceptable Here)"
            assert call.t38.stuck == why
            with pytest.raises(CallError, match=re.escape(f"cannot play: {why}")):
                await call.play(wav)
            with pytest.raises(CallError, match=re.escape(f"cannot send a fax: {why}")):
                await call.send_fax(wav)
            with pytest.raises(CallError, match="refused to go back to audio"):
                await call.send_dtmf("1")
            assert not call.ended
            # 3 s later sipp goes back to audio itself: accepted, and the media work again
            async with asyncio.timeout(20):
                while call.t38.stuck is not None:  # noqa: ASYNC110 (no event marks it)
                    await asyncio.sleep(0.05)
            await call.play(wav)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the offer, no second one, and its own re-INVITE's 200
    t38 = record.detail["t38"]
    assert (t38["audio_return"], t38["left"]) == (
        "488 Not Acceptable Here",
        "the far end offered audio",
    )
    assert record.detail["codec"] == "PCMA"  # sipp's offer back to audio
    assert record.hangup_disposition == "send_bye"


@bounded(90)
async def test_rule_a_reinvite_back_to_audio_met_by_481_ends_the_call_with_bye(
    tmp_path: Path,
) -> None:
    with sipp_peer(tmp_path, "uas_t38_back_to_audio_gone") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await _on_t38(dialer)
            result = (await call.receive_fax(FAX_S)).result
            assert result.transport == "t38"
            assert call.ended  # RFC 3261 §12.2.1.2: the dialog is gone
            record = await call.wait_ended()
            with pytest.raises(CallError):
                await call.play(Path("never.wav"))
        await sipp.passed()  # sipp checked the BYE
    assert record.detail["t38"]["audio_return"] == "481 Call/Transaction Does Not Exist"
    assert (record.hangup_disposition, record.hangup_cause) == (
        "send_bye",
        "NORMAL_TEMPORARY_FAILURE",
    )


@bounded(90)
async def test_rule_a_far_reinvite_back_to_audio_during_a_t38_fax_ends_it_and_audio_resumes(
    tmp_path: Path,
) -> None:
    wav, _ = _chirp_wav(tmp_path)
    with sipp_peer(tmp_path, "uas_t38_far_back_to_audio_mid_fax") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await _on_t38(dialer)
            loop = asyncio.get_running_loop()
            started = loop.time()
            result = (await call.receive_fax(60)).result  # sipp goes back to audio 3 s in
            assert loop.time() - started < 30
            assert (result.transport, result.pages) == ("t38", 0) and result.code != 0
            assert call.t38.channel is None and call.t38.stuck is None
            await call.play(wav)  # the audio stream is the call's again
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the answer's m-lines and that ringback sent no re-INVITE
    t38 = record.detail["t38"]
    assert t38["left"] == "the far end offered audio" and "audio_return" not in t38
    assert record.detail["codec"] == "PCMA"  # the far end's offer back to audio
    assert record.detail["remote_rtp"].startswith(f"{HOST}:")


@bounded(90)
async def test_rule_a_t38_offer_in_an_update_is_answered_as_a_reinvite_one(tmp_path: Path) -> None:
    with sipp_peer(tmp_path, "uas_t38_far_update") as sipp:
        async with sip_dialer(sipp.sip_port) as dialer:
            call = await _on_t38(dialer)  # sipp's UPDATE moved the call to T.38
            channel = call.t38.channel
            assert channel is not None and channel.remote.address == (HOST, 6010)
            await call.hangup()
            record = await call.wait_ended()
        await sipp.passed()  # sipp checked the 200's m=image and its attributes
    assert record.detail["t38"]["switched"] == "accepted"
