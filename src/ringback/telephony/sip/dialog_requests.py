"""Our requests in an established dialog that wait for their answer: a re-INVITE (RFC 3261
§14.1; the T.38 offer, the audio offered back, a session refresh) or an UPDATE (RFC 3311, a
session refresh), with a 401 / 407 answered once (§22.2, §22.3).

A challenged request goes again in the same dialog — the same Call-ID and tags, the next CSeq,
a new branch — with ``Authorization`` (401) or ``Proxy-Authorization`` (407) answering the
challenge with the call's trunk credentials (:func:`~.digest.credentials_for`, as for the first
INVITE). The INVITE transaction has ACKed the 401 / 407 already (§17.1.1.3). What the second
answer says is then taken as the first one would have been. A second challenge, a challenge
when no credentials are set, or one ringback cannot answer is the final response, a refusal
like any other; :attr:`DialogAnswer.auth` says which, for the caller to note in the record.

A 2xx to a re-INVITE is ACKed, every copy of it, with the re-INVITE's credentials (§13.2.2.4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipmessage import Request, Response

from ringback.telephony.sip.digest import DigestError, credentials_for
from ringback.telephony.sip.message import ALLOW, SDP, Addr

if TYPE_CHECKING:
    from ringback.telephony.sip.call import SipCall

#: fills in a request (body, headers) before it goes; called again for the challenged resend
Prepare = Callable[[Request], None]
_CREDENTIALS = ("Authorization", "Proxy-Authorization")


@dataclass(frozen=True, slots=True)
class DialogAnswer:
    """The final response to our in-dialog request, and what became of a challenge to it."""

    final: Response
    #: None: not challenged; else e.g. "401 answered", "407 again after our credentials",
    #: "401 and no credentials are set", "401 not answerable: <why>"
    auth: str | None = None


def with_sdp(request: Request, body: bytes) -> None:
    """``body`` as ``request``'s SDP (an offer in a re-INVITE), with our ``Allow``."""
    request.body = body
    request.headers.set("Allow", ALLOW)
    request.headers.set("Content-Type", SDP)
    request.headers.set("Content-Length", str(len(body)))


async def send_in_dialog(call: SipCall, method: str, prepare: Prepare) -> DialogAnswer:
    """Send ``method`` (``INVITE`` or ``UPDATE``) in ``call``'s dialog and return its final
    response; a 401 / 407 is answered once (see the module). ``OSError`` when the far end's
    address does not resolve."""
    authorization: tuple[str, str] | None = None
    note: str | None = None
    while True:
        request, dest = await call._dialog_request(method)
        prepare(request)
        if authorization is not None:
            request.headers.set(*authorization)
        if method == "INVITE":
            final = await _invite(call, request, dest)
        else:
            final = await asyncio.shield(call._agent.start_request(request, dest).result)
        code = final.code
        if code not in (401, 407):
            return DialogAnswer(final, note)
        if authorization is not None:
            return DialogAnswer(final, f"{code} again after our credentials")
        username, password = call._settings.username, call._settings.password
        if username is None or password is None:
            return DialogAnswer(final, f"{code} and no credentials are set")
        try:
            authorization = credentials_for(final, request, username=username, password=password)
        except DigestError as exc:
            return DialogAnswer(final, f"{code} not answerable: {exc}")
        note = f"{code} answered"


async def _invite(call: SipCall, request: Request, dest: Addr) -> Response:
    """One re-INVITE transaction: its final response, a 2xx ACKed (every copy of it)."""
    responses: asyncio.Queue[Response] = asyncio.Queue()
    ack: list[tuple[Request, Addr]] = []

    def on_response(response: Response) -> None:
        if 200 <= response.code < 300 and ack:  # a retransmitted 2xx: ACK again
            call._agent.send(*ack[0])
            return
        responses.put_nowait(response)

    call._agent.start_invite(request, dest, on_response)
    while (final := await responses.get()).code < 200:
        pass
    if final.code < 300:
        ack_request, ack_dest = await call._dialog_request("ACK", cseq=request.cseq.sequence)
        for name in _CREDENTIALS:
            credentials = request.headers.get(name)
            if credentials is not None:
                ack_request.headers.set(name, credentials)
        ack.append((ack_request, ack_dest))
        call._agent.send(ack_request, ack_dest)  # its SDP is the session's, unchanged
    return final
