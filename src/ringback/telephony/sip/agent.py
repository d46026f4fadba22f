"""The SIP user agent core: its transports (UDP, TCP, TLS: see ``transport``), message
dispatch to transactions and dialogs, and the requests nobody owns answered (OPTIONS, unknown
dialogs, unsupported methods).

Malformed datagrams are counted and dropped (a malformed stream closes its connection); an
exception while handling one message is logged and never ends the agent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Protocol

from sipmessage import URI, Request, Response, Via

from ringback.telephony.sip.message import (
    ALLOW,
    SDP,
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
from ringback.telephony.sip.transport import (
    UDP_LIMIT,
    TransportConfig,
    Transports,
    default_port,
    uri_transport,
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


class UserAgent:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        timers: Timers | None = None,
        transport: TransportConfig | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.external_host: str | None = None  # NAT: advertised in Contact and Via instead
        self.timers = timers or Timers()
        self.transport_config = transport or TransportConfig()
        self.net = Transports(
            host,
            port,
            self.transport_config,
            on_message=self.datagram_received,
            on_failure=self._transport_failed,
        )
        self.invite_handler: InviteHandler | None = None
        self.malformed = 0  # datagrams dropped as not SIP
        self.handler_errors = 0  # messages whose handling raised
        self._started = False
        self._client: dict[TxnKey, ClientTransaction] = {}
        self._server_invites: dict[TxnKey, InviteServerTransaction] = {}
        self._server_answers: dict[TxnKey, Response] = {}  # non-INVITE, for Timer J
        self._dialogs: dict[DialogKey, DialogUser] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind UDP and TCP on the SIP port, and TLS on the TLS port when a certificate is
        configured."""
        await self.net.start()
        self.port = self.net.port
        self._started = True

    def close(self) -> None:
        for txn in list(self._client.values()):
            if isinstance(txn, NonInviteClientTransaction):
                txn.abandon()
            else:
                txn.terminate()
        for server in list(self._server_invites.values()):
            server.forget()
        self.net.close()
        self._started = False

    @property
    def contact_uri(self) -> str:
        return self.contact_for(self.transport_config.default)

    def contact_for(self, transport: str) -> str:
        """Our Contact for requests that reach us over ``transport`` (NAT: the external
        address when one is set)."""
        where = _host_in_uri(self.external_host or self.host)
        host = f"sip:ringback@{where}:{self.net.listen_port(transport)}"
        return host if transport == "udp" else f"{host};transport={transport}"

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: Request | Response, dest: Addr) -> None:
        if not self._started:
            return
        dest = _as_addr(dest)
        if isinstance(message, Request):
            dest = self.route(message, dest)
            self._stamp_via(message, dest)
        self.net.send(bytes(message), dest)

    def route(self, request: Request, dest: Addr) -> Addr:
        """RFC 3261 §18.1.1: a request larger than 1300 bytes bound for UDP goes over TCP."""
        dest = _as_addr(dest)
        if dest.transport == "udp" and len(bytes(request)) > UDP_LIMIT:
            return dest._replace(transport="tcp")
        return dest

    def _stamp_via(self, request: Request, dest: Addr) -> None:
        """Our top Via names the transport the request goes over, and our port for it."""
        vias = list(request.headers.getlist("Via"))
        if not vias:
            return
        top = Via.parse(vias[0])
        port = self.net.listen_port(dest.transport)
        wanted = dataclasses.replace(top, transport=dest.transport.upper(), port=port)
        if wanted != top:
            vias[0] = str(wanted)
            request.headers.setlist("Via", vias)

    def start_invite(
        self, request: Request, dest: Addr, on_response: Callable[[Response], None]
    ) -> InviteClientTransaction:
        dest = self.route(request, dest)
        self._stamp_via(request, dest)
        txn = InviteClientTransaction(self, request, dest, on_response)
        self._client[txn.key] = txn
        txn.start()
        return txn

    def start_request(self, request: Request, dest: Addr) -> NonInviteClientTransaction:
        dest = self.route(request, dest)
        self._stamp_via(request, dest)
        txn = NonInviteClientTransaction(self, request, dest)
        self._client[txn.key] = txn
        txn.start()
        return txn

    def forget_client(self, key: TxnKey) -> None:
        self._client.pop(key, None)

    def respond(self, request: Request, source: Addr, response: Response) -> None:
        """Answer a non-INVITE request; a retransmission of it gets the same answer."""
        key = (top_branch(request), request.method)
        if not _as_addr(source).reliable:  # Timer J; zero over TCP and TLS
            self._server_answers[key] = response
            loop = asyncio.get_running_loop()
            loop.call_later(self.timers.b, self._server_answers.pop, key, None)
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

    async def resolve(self, uri: URI, server_name: str | None = None) -> Addr:
        """Where to send a request for ``uri`` (A/AAAA lookup; no NAPTR/SRV), over the
        transport it names (``sips:``, ``;transport=``) or the configured one; a TLS
        certificate must show ``server_name`` (default: the URI's host name)."""
        transport = uri_transport(uri, self.transport_config.default)
        port = uri.port or default_port(transport)
        host = uri.host.strip("[]")
        try:
            ipaddress.ip_address(host)
            return Addr(host, port, transport, server_name=server_name)
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
        return Addr(str(address[0]), int(address[1]), transport, server_name=server_name or host)

    def _transport_failed(self, dest: Addr, reason: str) -> None:
        """A connection could not be opened: the requests waiting on it fail at once (RFC
        3261 §8.1.3.1: a transport error is a 503)."""
        for txn in list(self._client.values()):
            if txn.dest[:3] == dest[:3]:
                txn.fail(reason)

    # -- receiving ----------------------------------------------------------------------------

    def datagram_received(self, data: bytes, source: Addr | tuple[str, int]) -> None:
        """One message from a datagram or a stream (framed by ``stream``)."""
        source = _as_addr(source)
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
        stamp_via(request, (source[0], source[1]))  # received / rport (RFC 3581)
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
            response.headers.set("Accept", SDP)
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


def _as_addr(dest: Addr | tuple[str, int]) -> Addr:
    return dest if isinstance(dest, Addr) else Addr(dest[0], dest[1])


def _host_in_uri(host: str) -> str:
    return f"[{host}]" if ":" in host else host
