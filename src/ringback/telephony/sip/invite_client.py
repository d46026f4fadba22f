"""The client side of one outbound INVITE (RFC 3261 §13.2): send it, answer a digest challenge,
CANCEL it when asked (only after a provisional response, §9.1), and ACK its 2xx.

:class:`InviteClient` owns the INVITE, its transactions, the responses as they arrive and the
ACK (sent again for every retransmitted 2xx). What the responses mean for the call — ringing,
answered, refused — is decided by :class:`~ringback.telephony.sip.call.SipCall`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sipmessage import Request, Response

from ringback.config import SipSettings
from ringback.telephony.base import CallRecord
from ringback.telephony.sip.agent import UserAgent
from ringback.telephony.sip.digest import DigestError, credentials_for
from ringback.telephony.sip.message import Addr, tag_of
from ringback.telephony.sip.transactions import InviteClientTransaction

#: builds the INVITE to send, with the (header, value) credentials to add when there are any
InviteBuilder = Callable[[tuple[str, str] | None], Request]


class InviteClient:
    """One outbound INVITE and its CANCEL and ACK. ``on_provisional`` sees every 1xx."""

    def __init__(
        self,
        agent: UserAgent,
        settings: SipSettings,
        record: CallRecord,
        *,
        on_provisional: Callable[[Response], None],
        on_422: Callable[[Response], bool] | None = None,
        on_forked_2xx: Callable[[Response, str | None], None] | None = None,
    ) -> None:
        self._agent = agent
        self._settings = settings
        self._record = record
        self._on_provisional = on_provisional
        self._on_422 = on_422  # True: send the INVITE again (session timer's Min-SE raised)
        self._on_forked_2xx = on_forked_2xx  # a 2xx with another To tag than the first one
        #: the To tag of the first 2xx (the answer); a 2xx with another one is a fork
        self.winner_tag: str | None = None
        self._got_2xx = False
        self._invite: Request | None = None
        self._dest: Addr | None = None
        self._txn: InviteClientTransaction | None = None
        self._responses: asyncio.Queue[Response] = asyncio.Queue()
        self._ack: tuple[Request, Addr] | None = None
        self._canceling = False
        self._cancel_sent = False
        self._provisional_seen = False
        #: whether the trunk answered anything at all (a 408 without it is Timer B)
        self.got_response = False

    async def run(self, build: InviteBuilder, dest: Addr) -> Response:
        """Send the INVITE (again with credentials after a 401/407, at most twice, the second
        time only for a stale nonce) and return its final response."""
        authorization: tuple[str, str] | None = None
        challenges = too_brief = 0
        while True:
            invite = build(authorization)
            self._invite, self._dest = invite, dest
            self._provisional_seen = self._cancel_sent = False
            self._txn = self._agent.start_invite(invite, dest, self._on_response)
            self._dest = self._txn.dest  # its CANCEL takes the same transport (TCP if large)
            final = await self._final_response()
            if final.code in (401, 407) and not self._canceling and challenges < 2:
                answered = self._answer_challenge(final, invite)
                if answered is not None and not (challenges and not _stale(final)):
                    challenges += 1
                    authorization = answered
                    continue
            retry_422 = self._on_422 is not None and final.code == 422 and too_brief < 2
            if retry_422 and not self._canceling and self._on_422 and self._on_422(final):
                too_brief += 1
                continue
            return final

    def cancel(self) -> None:
        """CANCEL the INVITE: now if a provisional response came, else as soon as one does."""
        self._canceling = True
        if self._provisional_seen and not self._cancel_sent:
            self._send_cancel()

    def send_ack(self, ack: Request, dest: Addr) -> None:
        """ACK the 2xx, with the INVITE's credentials (RFC 3261 §13.2.2.4)."""
        if self._invite is not None:
            for name in ("Authorization", "Proxy-Authorization"):
                credentials = self._invite.headers.get(name)
                if credentials is not None:
                    ack.headers.set(name, credentials)
        self._ack = (ack, dest)
        self._agent.send(ack, dest)

    def resend_ack(self) -> None:
        if self._ack is not None:
            self._agent.send(*self._ack)

    def _on_response(self, response: Response) -> None:
        self.got_response = True
        if 200 <= response.code < 300:
            tag = tag_of(response.to_address)
            if not self._got_2xx:
                self._got_2xx, self.winner_tag = True, tag
            elif tag != self.winner_tag:
                if self._on_forked_2xx is not None:
                    self._on_forked_2xx(response, self.winner_tag)
                return
            if self._ack is not None:
                self.resend_ack()
                return
        self._responses.put_nowait(response)

    async def _final_response(self) -> Response:
        while True:
            response = await self._responses.get()
            if response.code >= 200:
                return response
            self._on_provisional(response)
            self._provisional_seen = True
            if self._canceling and not self._cancel_sent:
                self._send_cancel()

    def _answer_challenge(self, response: Response, invite: Request) -> tuple[str, str] | None:
        username, password = self._settings.username, self._settings.password
        if username is None or password is None:
            return None
        try:
            return credentials_for(response, invite, username=username, password=password)
        except DigestError as exc:
            self._record.detail["auth_error"] = str(exc)
            return None

    def _send_cancel(self) -> None:
        invite, dest = self._invite, self._dest
        if invite is None or dest is None:
            return
        self._cancel_sent = True
        cancel = Request("CANCEL", invite.uri)
        cancel.headers.set("Via", invite.headers.getlist("Via")[0])
        cancel.headers.set("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            cancel.headers.set(name, invite.headers[name])
        cancel.headers.set("CSeq", f"{invite.cseq.sequence} CANCEL")
        routes = invite.headers.getlist("Route")
        if routes:
            cancel.headers.setlist("Route", list(routes))
        cancel.headers.set("Content-Length", "0")
        self._agent.start_request(cancel, dest)


def _stale(response: Response) -> bool:
    raw = response.headers.get("WWW-Authenticate") or response.headers.get("Proxy-Authenticate")
    return raw is not None and "stale=true" in raw.replace(" ", "").lower()
