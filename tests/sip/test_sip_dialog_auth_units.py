"""A 401/407 to our in-dialog re-INVITE or UPDATE (``dialog_requests``, RFC 3261 §22.2/22.3),
against a scripted far end: answered once, in the same dialog with the next CSeq and the
credentials for the challenge's header; a second challenge, no credentials or a challenge
ringback cannot answer is the final response, and ``auth`` says which."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sipmessage import URI, Address, Request, Response

from ringback.telephony.sip.dialog import Dialog
from ringback.telephony.sip.dialog_requests import DialogAnswer, send_in_dialog, with_sdp
from ringback.telephony.sip.digest import parse_challenge
from ringback.telephony.sip.message import Addr, response_to
from ringback.telephony.sip.session_timer import SessionTimer

FAR = Addr("127.0.0.1", 5080)
CHALLENGES = {
    401: ("WWW-Authenticate", 'Digest realm="carrier", nonce="n401", qop="auth"'),
    407: ("Proxy-Authenticate", 'Digest realm="proxy", nonce="n407", algorithm=SHA-256'),
}


class _FarEnd:
    """Answers each request with the next of ``codes``; keeps what it was sent."""

    def __init__(self, codes: list[int], challenge: str | None = None) -> None:
        self.codes = codes
        self.challenge = challenge
        self.requests: list[Request] = []
        self.acks: list[Request] = []
        self.acked_twice = asyncio.Event()

    def _answer(self, request: Request) -> Response:
        code = self.codes.pop(0)
        response = response_to(request, code)
        if code in CHALLENGES:
            header, value = CHALLENGES[code]
            response.headers.set(header, self.challenge or value)
        return response

    def start_invite(self, request: Request, dest: Addr, on_response: Any) -> None:
        self.requests.append(request)
        response = self._answer(request)
        asyncio.get_running_loop().call_soon(on_response, response)
        if response.code < 300:  # the 2xx retransmitted: ACKed again
            asyncio.get_running_loop().call_later(0.01, on_response, response)

    def start_request(self, request: Request, dest: Addr) -> SimpleNamespace:
        self.requests.append(request)
        result = asyncio.get_running_loop().create_future()
        result.set_result(self._answer(request))
        return SimpleNamespace(result=result)

    def send(self, message: Request, dest: Addr) -> None:
        assert message.method == "ACK"
        self.acks.append(message)
        if len(self.acks) == 2:
            self.acked_twice.set()


class _Call:
    """What ``send_in_dialog`` and ``SessionTimer`` use of a SipCall."""

    def __init__(self, far: _FarEnd, username: str | None = "alice") -> None:
        self._agent = far
        self._settings = SimpleNamespace(username=username, password="s3cret" if username else None)
        self._dialog = Dialog(
            call_id="call-1@ringback",
            local_tag="ours",
            local_address=Address.parse("<sip:4930123456@127.0.0.1>"),
            remote_address=Address.parse("<sip:5551234@127.0.0.1>"),
            remote_target=URI.parse("sip:5551234@127.0.0.1:5080"),
            remote_tag="theirs",
            local_cseq=10,
        )
        self._local_sdp = b"v=0\r\n"
        self.t38 = SimpleNamespace(local_sdp=None, offering=False)
        self.record = SimpleNamespace(detail={})
        self.ended = False

    async def _dialog_request(
        self, method: str, *, cseq: int | None = None
    ) -> tuple[Request, Addr]:
        contact = None if method == "ACK" else "sip:4930123456@127.0.0.1:5060"
        return self._dialog.request(
            method, via_host="127.0.0.1:5060", contact=contact, cseq=cseq
        ), FAR


async def _send(far: _FarEnd, method: str = "INVITE", **call: Any) -> DialogAnswer:
    return await send_in_dialog(
        cast(Any, _Call(far, **call)), method, lambda r: with_sdp(r, b"v=0\r\n")
    )


@pytest.mark.parametrize(("code", "header"), [(401, "Authorization"), (407, "Proxy-Authorization")])
async def test_a_challenged_reinvite_goes_again_in_the_dialog_with_the_next_cseq_and_credentials(
    code: int, header: str
) -> None:
    far = _FarEnd([code, 200])
    answer = await _send(far)
    assert (answer.final.code, answer.auth) == (200, f"{code} answered")
    first, second = far.requests
    assert second.call_id == first.call_id
    assert (
        second.headers["From"] == first.headers["From"]
        and second.headers["To"] == first.headers["To"]
    )
    assert (first.cseq.sequence, second.cseq.sequence) == (11, 12)
    assert second.headers["Via"] != first.headers["Via"]  # a new branch: a new transaction
    assert first.headers.get(header) is None
    scheme, fields = parse_challenge(second.headers[header])
    realm = parse_challenge(CHALLENGES[code][1])[1]["realm"]
    assert (scheme, fields["username"], fields["realm"], fields["uri"]) == (
        "Digest",
        "alice",
        realm,
        "sip:5551234@127.0.0.1:5080",
    )
    assert second.body == b"v=0\r\n"  # prepared again
    async with asyncio.timeout(5):  # the scripted 2xx copy comes 10 ms after the 2xx
        await far.acked_twice.wait()
    assert [ack.cseq.sequence for ack in far.acks] == [12, 12]  # the 2xx and its copy
    assert all(ack.headers[header] == second.headers[header] for ack in far.acks)


async def test_a_second_challenge_is_the_final_response_and_no_third_request_goes() -> None:
    far = _FarEnd([401, 401, 200])
    answer = await _send(far)
    assert (answer.final.code, answer.auth) == (401, "401 again after our credentials")
    assert len(far.requests) == 2 and far.acks == []  # the 401s are ACKed by the transaction


async def test_a_challenge_without_credentials_set_is_the_final_response() -> None:
    far = _FarEnd([407, 200])
    answer = await _send(far, username=None)
    assert (answer.final.code, answer.auth) == (407, "407 and no credentials are set")
    assert len(far.requests) == 1


async def test_a_challenge_ringback_cannot_answer_is_the_final_response_saying_why() -> None:
    far = _FarEnd([401, 200], challenge='Basic realm="carrier"')
    answer = await _send(far)
    assert answer.final.code == 401
    assert answer.auth == "401 not answerable: authentication scheme 'Basic' is not supported"
    assert len(far.requests) == 1


async def test_an_unchallenged_request_has_no_auth_note_and_a_refusal_stays_a_refusal() -> None:
    assert (await _send(_FarEnd([200]))).auth is None
    answer = await _send(_FarEnd([401, 488]))
    assert (answer.final.code, answer.auth) == (488, "401 answered")


async def test_a_session_refresh_by_update_answers_a_challenge_and_notes_it() -> None:
    far = _FarEnd([401, 200])
    call = _Call(far)
    timer = SessionTimer(cast(Any, call), 1800, 90)
    timer._peer_allows_update = True
    final = await timer._refresh()
    assert final is not None and final.code == 200
    assert [r.method for r in far.requests] == ["UPDATE", "UPDATE"]
    assert far.requests[1].headers.get("Session-Expires") == "1800;refresher=uac"
    assert far.requests[1].headers["Authorization"].startswith("Digest ")
    assert call.record.detail["session_refresh_auth"] == "401 answered"
