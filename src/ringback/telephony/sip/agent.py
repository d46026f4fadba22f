"""The SIP user agent core: one UDP socket, message dispatch to transactions and dialogs,
and the requests nobody owns answered (OPTIONS, unknown dialogs, unsupported methods).

Malformed datagrams are counted and dropped; an exception while handling one message is
logged and never ends the agent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol

from sipmessage import URI, Request, Response

from ringback.telephony.sip.message import (
    ALLOW,
    Addr,
    SipParseError,
    parse_datagram,
    response_to,
    tag_of,
    top_branch,
)
from ringback.telephony.sip.nat import stamp_via
from ringback.telephony.sip.transactions import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    Timers,
    TxnKey,
)

log = logging.getLogger("ringback.sip")

#: a far end's Contact host that does not resolve in time fails the request (not the agent)
RESOLVE_TIMEOUT_S = 2.0

DialogKey = tuple[str, str]  # (Call-ID, local tag)
ClientTransaction = InviteClientTransaction | NonInviteClientTransaction


class DialogUser(Protocol):
    """What owns a dialog (a :class:`~ringback.telephony.sip.call.SipCall`)."""

    def on_request(self, request: Request, source: Addr) -> None: ...

    def on_ack(self, request: Request) -> None: ...

    def on_stray_2xx(self, response: Response) -> None: ...


InviteHandler = Callable[[Request, Addr, InviteServerTransaction], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, agent: UserAgent) -> None:
        self.agent = agent

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.agent.datagram_received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)


class UserAgent:
    def __init__(self, host: str, port: int, *, timers: Timers | None = None) -> None:
        self.host = host
        self.port = port
        self.external_host: str | None = None  # NAT: advertised in Contact and Via instead
        self.timers = timers or Timers()
        self.invite_handler: InviteHandler | None = None
        self.malformed = 0  # datagrams dropped as not SIP
        self.handler_errors = 0  # messages whose handling raised
        self._transport: asyncio.DatagramTransport | None = None
        self._client: dict[TxnKey, ClientTransaction] = {}
        self._server_invites: dict[TxnKey, InviteServerTransaction] = {}
        self._server_answers: dict[TxnKey, Response] = {}  # non-INVITE, for Timer J
        self._dialogs: dict[DialogKey, DialogUser] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        for txn in list(self._client.values()):
            if isinstance(txn, NonInviteClientTransaction):
                txn.abandon()
            else:
                txn.terminate()
        for server in list(self._server_invites.values()):
            server.forget()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def contact_uri(self) -> str:
        return f"sip:ringback@{_host_in_uri(self.external_host or self.host)}:{self.port}"

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: Request | Response, dest: Addr) -> None:
        if self._transport is None:
            return
        try:
            self._transport.sendto(bytes(message), dest)
        except OSError as exc:  # e.g. no route; the transaction's timers report it
            log.warning("SIP send to %s failed: %s", dest, exc)

    def start_invite(
        self, request: Request, dest: Addr, on_response: Callable[[Response], None]
    ) -> InviteClientTransaction:
        txn = InviteClientTransaction(self, request, dest, on_response)
        self._client[txn.key] = txn
        txn.start()
        return txn

    def start_request(self, request: Request, dest: Addr) -> NonInviteClientTransaction:
        txn = NonInviteClientTransaction(self, request, dest)
        self._client[txn.key] = txn
        txn.start()
        return txn

    def forget_client(self, key: TxnKey) -> None:
        self._client.pop(key, None)

    def respond(self, request: Request, source: Addr, response: Response) -> None:
        """Answer a non-INVITE request; a retransmission of it gets the same answer."""
        key = (top_branch(request), request.method)
        self._server_answers[key] = response
        asyncio.get_running_loop().call_later(self.timers.b, self._server_answers.pop, key, None)
        self.send(response, source)

    def server_invite(
        self, request: Request, source: Addr, on_no_ack: Callable[[], None] | None = None
    ) -> InviteServerTransaction:
        txn = InviteServerTransaction(self, request, source, self._forget_server, on_no_ack)
        self._server_invites[txn.key] = txn
        return txn

    def _forget_server(self, txn: InviteServerTransaction) -> None:
        if self._server_invites.get(txn.key) is txn:
            del self._server_invites[txn.key]

    # -- dialogs ------------------------------------------------------------------------------

    def add_dialog(self, key: DialogKey, user: DialogUser) -> None:
        self._dialogs[key] = user

    def remove_dialog(self, key: DialogKey) -> None:
        self._dialogs.pop(key, None)

    async def resolve(self, uri: URI) -> Addr:
        """Where to send a request for ``uri`` (A/AAAA lookup; no NAPTR/SRV)."""
        port = uri.port or 5060
        host = uri.host.strip("[]")
        try:
            ipaddress.ip_address(host)
            return (host, port)
        except ValueError:
            pass
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_DGRAM
                )
        except TimeoutError:
            raise OSError(f"cannot resolve {host}: no answer in {RESOLVE_TIMEOUT_S:g} s") from None
        if not infos:
            raise OSError(f"cannot resolve {host}")
        address = infos[0][4]
        return (str(address[0]), int(address[1]))

    # -- receiving ----------------------------------------------------------------------------

    def datagram_received(self, data: bytes, source: Addr) -> None:
        if not data.strip():
            return  # CRLF keep-alive
        try:
            message = parse_datagram(data)
        except SipParseError as exc:
            self.malformed += 1
            log.debug("dropped a datagram from %s: %s", source, exc)
            return
        try:
            if isinstance(message, Response):
                self._on_response(message)
            else:
                self._on_request(message, source)
        except Exception:
            self.handler_errors += 1
            log.exception("error handling a SIP message from %s", source)

    def _on_response(self, response: Response) -> None:
        key = (top_branch(response), response.cseq.method)
        txn = self._client.get(key)
        if txn is not None:
            txn.receive(response)
            return
        if response.cseq.method == "INVITE" and 200 <= response.code < 300:
            local_tag = tag_of(response.from_address)
            user = self._dialogs.get((response.call_id, local_tag or ""))
            if user is not None:
                user.on_stray_2xx(response)

    def _on_request(self, request: Request, source: Addr) -> None:
        stamp_via(request, source)  # received / rport (RFC 3581): the responses carry them
        method = request.method
        branch = top_branch(request)
        if method == "ACK":
            server = self._server_invites.get((branch, "INVITE"))
            if server is not None and server.refused:  # the ACK of our failure response
                server.ack()
                return
            user = self._dialog_for(request)
            if user is not None:
                user.on_ack(request)
            return
        if method == "CANCEL":
            server = self._server_invites.get((branch, "INVITE"))
            if server is None:
                self.respond(request, source, response_to(request, 481))
                return
            self.respond(request, source, response_to(request, 200))
            if not server.final_sent:
                server.cancelled = True
                if server.on_cancel is not None:
                    server.on_cancel()
            return
        if method == "INVITE":
            server = self._server_invites.get((branch, "INVITE"))
            if server is not None:
                server.retransmitted()
                return
        else:
            answered = self._server_answers.get((branch, method))
            if answered is not None:
                self.send(answered, source)
                return
        if tag_of(request.to_address) is not None:
            user = self._dialog_for(request)
            if user is None:
                self._refuse(request, source, 481)
            else:
                user.on_request(request, source)
            return
        if method == "INVITE":
            if self.invite_handler is None:
                self._refuse(request, source, 480)
                return
            txn = self.server_invite(request, source)
            self.invite_handler(request, source, txn)
        elif method == "OPTIONS":
            response = response_to(request, 200, to_tag="opt")
            response.headers.set("Allow", ALLOW)
            response.headers.set("Accept", "application/sdp")
            self.respond(request, source, response)
        elif method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self.respond(request, source, response_to(request, 481, to_tag="none"))
        else:
            response = response_to(request, 405, to_tag="none")
            response.headers.set("Allow", ALLOW)
            self.respond(request, source, response)

    def _refuse(self, request: Request, source: Addr, code: int) -> None:
        if request.method == "INVITE":
            txn = self.server_invite(request, source)
            txn.respond(response_to(request, code, to_tag="refused"))
        else:
            self.respond(request, source, response_to(request, code))

    def _dialog_for(self, request: Request) -> DialogUser | None:
        local_tag = tag_of(request.to_address)
        if local_tag is None:
            return None
        return self._dialogs.get((request.call_id, local_tag))


def _host_in_uri(host: str) -> str:
    return f"[{host}]" if ":" in host else host
