"""What the responses to one outbound INVITE open before and beside its answer: early media,
forked answers, and the route sets ringback refuses.

- **Early media**: a 18x with SDP connects the call's RTP to the address it gives at once, so
  ring-back tones and announcements are received (and counted) before the answer; the 2xx's
  SDP takes over (a 2xx without SDP keeps the early one).
- **Forking**: a proxy may fork the INVITE; every To tag of a 18x is an early dialog (kept in
  :attr:`EarlyDialogs.tags`). The first 2xx wins; a 2xx with another To tag is ACKed and then
  BYEd at once (RFC 3261 section 13.2.2.4), each copy of it ACKed again.
- **Strict routing** (RFC 2543: a Record-Route URI without ``;lr``) is not supported: the call
  fails with an error saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sipmessage import Address, Request, Response

from ringback.telephony.sip.media_port import session_stats
from ringback.telephony.sip.message import SDP, Addr, tag_of
from ringback.telephony.sip.prack import early_dialog
from ringback.telephony.sip.sdp import RemoteMedia, SdpError, parse_remote_media

if TYPE_CHECKING:
    from ringback.telephony.sip.call import SipCall

log = logging.getLogger("ringback.sip")

STRICT_ROUTING = "strict routing is not supported: the route {uri} has no ;lr (loose routing)"


def strict_route(routes: list[Address]) -> str | None:
    """The error for a route set whose first hop is a strict router, else None."""
    if routes and "lr" not in routes[0].uri.parameters:
        return STRICT_ROUTING.format(uri=routes[0].uri)
    return None


def sdp_body(message: Request | Response) -> bytes | None:
    content_type = (message.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return message.body if message.body and content_type == SDP else None


class EarlyDialogs:
    """The early dialogs, early media and forked 2xx of one outbound call."""

    def __init__(self, call: SipCall) -> None:
        self._call = call
        self.tags: list[str] = []  # To tags of the early dialogs, in order of arrival
        self.media: RemoteMedia | None = None  # the last early SDP taken
        self.body: bytes | None = None  # its SDP as sent (the answer's when the 2xx has none)
        self._seen: set[str] = set()  # To tags of forked 2xx
        self._forks: dict[str, tuple[Request, Addr]] = {}  # To tag → the ACK sent
        self._tasks: set[asyncio.Task[None]] = set()

    def on_provisional(self, response: Response) -> None:
        """Track the early dialog; a 18x with SDP starts early media."""
        tag = tag_of(response.to_address)
        if tag is not None and tag not in self.tags:
            self.tags.append(tag)
            if len(self.tags) > 1:
                self._call.record.detail["early_dialogs"] = len(self.tags)
        body = sdp_body(response)
        if body is None or response.code == 100:
            return
        try:
            remote = parse_remote_media(body)
        except SdpError as exc:
            self._call.record.detail.setdefault("sdp_errors", []).append(f"early: {exc}")
            return
        media = self._call._media
        if self.media is None or remote.address != self.media.address:
            media.connect(remote)
            self._call.record.detail["early_media"] = f"{response.code} {remote.host}:{remote.port}"
        self.media, self.body = remote, body

    def note_answer(self) -> None:
        """At the answer: how many RTP packets came in before it (early media)."""
        session = self._call._media.session
        if self.media is not None and session is not None:
            received = session_stats(session).get("packets_received")
            if received is not None:
                self._call.record.detail["early_rtp_packets_received"] = received

    def on_forked_2xx(self, response: Response, winner_tag: str | None) -> None:
        """A 2xx from another branch than the answer's: ACK it, then BYE it (once)."""
        tag = tag_of(response.to_address) or ""
        if tag == winner_tag:
            return
        if tag in self._seen:
            sent = self._forks.get(tag)
            if sent is not None:
                self._call._agent.send(*sent)  # a retransmission: the same ACK again
            return
        self._seen.add(tag)
        task = asyncio.get_running_loop().create_task(self._ack_and_bye(response, tag))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack_and_bye(self, response: Response, tag: str) -> None:
        call = self._call
        invite = call._invite
        assert invite is not None
        dialog = early_dialog(call._dialog, response)
        ack = dialog.request(
            "ACK", via_host=call._via_host(), contact=None, cseq=invite.cseq.sequence
        )
        for name in ("Authorization", "Proxy-Authorization"):
            credentials = invite.headers.get(name)
            if credentials is not None:
                ack.headers.set(name, credentials)
        try:
            dest = await call._agent.resolve(dialog.next_hop)
        except OSError as exc:
            call.record.detail["forked_2xx_error"] = str(exc)
            return
        self._forks[tag] = (ack, dest)
        call._agent.send(ack, dest)
        bye = dialog.request("BYE", via_host=call._via_host(), contact=call._agent.contact_uri)
        forked = call.record.detail.setdefault("forked_2xx", [])
        forked.append(tag)
        log.info("call %s: a forked 2xx (To tag %s) ACKed and BYEd", call.call_id, tag)
        txn = call._agent.start_request(bye, dest)
        with contextlib.suppress(TimeoutError):
            answer = await asyncio.wait_for(asyncio.shield(txn.result), call._agent.timers.b)
            call.record.detail["forked_bye_response"] = answer.code
