"""SIP transports (RFC 3261 §18): one UDP socket, TCP and TLS connections kept per destination
and reused, inbound TCP (on the SIP port) and TLS (on the TLS port) connections accepted,
CRLF keep-alive pings on the connections we opened and idle connections closed.

TLS uses Python's ``ssl``: the far end's certificate and host name are verified unless turned
off; a client certificate is presented when configured, and the same certificate serves the
inbound TLS listener.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipmessage import URI

from ringback.config import SipSettings
from ringback.telephony.sip.message import TRANSPORTS, Addr
from ringback.telephony.sip.stream import StreamConnection

log = logging.getLogger("ringback.sip")

#: a TCP connect plus TLS handshake that takes longer fails the request
CONNECT_TIMEOUT_S = 5.0
#: RFC 3261 §18.1.1: a request larger than this that would go over UDP goes over TCP
UDP_LIMIT = 1300
ConnKey = tuple[str, str, int]  # (transport, host, port)


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """How the agent sends and listens; built from :class:`SipSettings`."""

    default: str = "udp"  # the transport of URIs that name none
    tls_port: int | None = None  # inbound TLS; None: the SIP port + 1 (any free one for 0)
    tls_ca: str | None = None  # CA bundle (PEM) to verify servers; None: the system's
    tls_cert: str | None = None  # our certificate chain (PEM): client and inbound server
    tls_key: str | None = None
    tls_verify: bool = True  # verify the far end's certificate and host name
    keepalive_s: float = 30.0  # CRLF ping interval on connections we opened; 0: none
    idle_s: float = 600.0  # a connection with no SIP message for this long is closed

    @classmethod
    def from_settings(cls, settings: SipSettings) -> TransportConfig:
        return cls(
            default=settings.transport,
            tls_port=settings.tls_port,
            tls_ca=settings.tls_ca,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            tls_verify=settings.tls_verify,
            keepalive_s=settings.keepalive_s,
            idle_s=settings.tcp_idle_s,
        )

    def client_context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca)
        except (ssl.SSLError, OSError) as exc:
            raise OSError(f"cannot load the TLS CA file {self.tls_ca}: {exc}") from None
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.tls_cert:
            self._load_certificate(context, self.tls_cert)
        return context

    def server_context(self) -> ssl.SSLContext | None:
        """The inbound TLS listener's context; None without a certificate (no TLS listener)."""
        if not self.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._load_certificate(context, self.tls_cert)
        return context

    def _load_certificate(self, context: ssl.SSLContext, cert: str) -> None:
        try:
            context.load_cert_chain(cert, self.tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise OSError(f"cannot load the TLS certificate {cert} and its key: {exc}") from None


def uri_transport(uri: URI, default: str) -> str:
    """The transport a URI asks for: ``sips:`` is TLS, else ``;transport=``, else ``default``."""
    if uri.scheme.lower() == "sips":
        return "tls"
    named = uri.parameters.get("transport")
    if named:
        name = named.lower()
        if name not in TRANSPORTS:
            raise OSError(f"transport {named!r} in {uri} is not supported (udp, tcp or tls)")
        return name
    return default


def default_port(transport: str) -> int:
    return 5061 if transport == "tls" else 5060


def proxy_uri(settings: SipSettings, target: URI) -> URI:
    """The trunk as a URI carrying the transport a new call uses: the settings' transport,
    the target's own ``;transport=`` when it names one, TLS for a ``sips:`` target."""
    transport = uri_transport(target, settings.transport)
    host = f"[{settings.proxy_host}]" if ":" in settings.proxy_host else settings.proxy_host
    return URI.parse(f"sip:{host}:{settings.proxy_port};transport={transport}")


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Addr], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.on_datagram(data, Addr(str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)


class _Pending:
    """A connection being opened: what to write once it is up."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.task: asyncio.Task[None] | None = None


class Transports:
    """The agent's sockets: ``send`` picks the UDP socket or the stream for a destination."""

    def __init__(
        self,
        host: str,
        port: int,
        config: TransportConfig,
        *,
        on_message: Callable[[bytes, Addr], None],
        on_failure: Callable[[Addr, str], None],
    ) -> None:
        self.host = host
        self.port = port
        self.tls_port = 0  # the TLS listener's port once started (0: none)
        self.config = config
        self.malformed_streams = 0  # connections closed for data that is not framed SIP
        self._on_message = on_message
        self._on_failure = on_failure
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: dict[ConnKey, StreamConnection] = {}
        self._pending: dict[ConnKey, _Pending] = {}
        self._client_ssl: ssl.SSLContext | None = None
        self._tick: asyncio.TimerHandle | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server_ssl = self.config.server_context()
        self._client_ssl = self.config.client_context()
        configured = self.port
        for attempt in range(20):  # port 0: UDP and TCP need the same free port number
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self._on_message), local_addr=(self.host, self.port)
            )
            port = int(udp.get_extra_info("sockname")[1])
            try:
                tcp = await loop.create_server(
                    lambda: self._accepted("tcp"), self.host, port, reuse_address=True
                )
            except OSError:
                udp.close()
                if self.port != 0 or attempt == 19:
                    raise
                continue
            self._udp, self.port = udp, port
            self._servers.append(tcp)
            break
        if server_ssl is not None:
            wanted = self.config.tls_port
            if wanted is None:
                wanted = configured + 1 if 0 < configured < 65535 else 0
            tls = await loop.create_server(
                lambda: self._accepted("tls"),
                self.host,
                wanted,
                ssl=server_ssl,
                reuse_address=True,
                ssl_handshake_timeout=CONNECT_TIMEOUT_S,
            )
            self.tls_port = int(tls.sockets[0].getsockname()[1])
            self._servers.append(tls)
        self._schedule_tick()

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        for pending in self._pending.values():
            if pending.task is not None:
                pending.task.cancel()
        self._pending.clear()
        for connection in list(self._connections.values()):
            connection.close()
        self._connections.clear()
        for server in self._servers:
            server.close()
        self._servers.clear()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def listen_port(self, transport: str) -> int:
        """The port we take ``transport`` connections on (for Via and Contact)."""
        return self.tls_port if transport == "tls" and self.tls_port else self.port

    # -- sending ------------------------------------------------------------------------------

    def send(self, data: bytes, dest: Addr) -> None:
        if dest.transport == "udp":
            if self._udp is None:
                return
            try:
                self._udp.sendto(data, (dest.host, dest.port))
            except OSError as exc:  # e.g. no route; the transaction's timers report it
                log.warning("SIP send to %s failed: %s", dest, exc)
            return
        key: ConnKey = (dest.transport, dest.host, dest.port)
        connection = self._connections.get(key)
        if connection is not None and not connection.closed:
            connection.send_message(data)
            return
        pending = self._pending.get(key)
        if pending is None:
            if self._udp is None:
                return  # closed
            pending = self._pending[key] = _Pending()
            pending.task = asyncio.get_running_loop().create_task(self._connect(key, dest))
        pending.queue.append(data)

    async def _connect(self, key: ConnKey, dest: Addr) -> None:
        loop = asyncio.get_running_loop()
        tls = dest.transport == "tls"
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, connection = await loop.create_connection(
                    lambda: self._new_connection(dest.transport, outbound=True),
                    dest.host,
                    dest.port,
                    ssl=self._client_ssl if tls else None,
                    server_hostname=(dest.server_name or dest.host) if tls else None,
                    ssl_handshake_timeout=CONNECT_TIMEOUT_S if tls else None,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._pending.pop(key, None)
            reason = _connect_error(dest, exc)
            log.warning("%s", reason)
            self._on_failure(dest, reason)
            return
        pending = self._pending.pop(key, None)
        self._connections[key] = connection
        for data in pending.queue if pending is not None else []:
            connection.send_message(data)

    # -- connections --------------------------------------------------------------------------

    def _new_connection(self, transport: str, *, outbound: bool) -> StreamConnection:
        return StreamConnection(
            transport, self._stream_message, self._lost, self._malformed, outbound=outbound
        )

    def _accepted(self, transport: str) -> StreamConnection:
        connection = self._new_connection(transport, outbound=False)
        asyncio.get_running_loop().call_soon(self._register_inbound, connection)
        return connection

    def _register_inbound(self, connection: StreamConnection) -> None:
        if connection.closed or not connection.peer[0]:
            return
        key: ConnKey = (connection.transport_name, *connection.peer)
        self._connections.setdefault(key, connection)

    def _stream_message(self, connection: StreamConnection, data: bytes) -> None:
        host, port = connection.peer
        key: ConnKey = (connection.transport_name, host, port)
        self._connections.setdefault(key, connection)  # a message before registration
        self._on_message(data, Addr(host, port, connection.transport_name))

    def _lost(self, connection: StreamConnection) -> None:
        key: ConnKey = (connection.transport_name, *connection.peer)
        if self._connections.get(key) is connection:
            del self._connections[key]
        if connection.outbound and connection.lost_reason:
            dest = Addr(connection.peer[0], connection.peer[1], connection.transport_name)
            where = f"{dest.transport.upper()} connection to {dest.host}:{dest.port}"
            self._on_failure(dest, f"{where} ended: {connection.lost_reason}")

    def _malformed(self, connection: StreamConnection, reason: str) -> None:
        self.malformed_streams += 1
        log.info("closed the %s connection from %s: %s", connection.transport_name,
                 connection.peer, reason)  # fmt: skip

    def connections(self) -> list[StreamConnection]:
        return [c for c in self._connections.values() if not c.closed]

    # -- keep-alive and idle close ------------------------------------------------------------

    def _schedule_tick(self) -> None:
        keepalive, idle = self.config.keepalive_s, self.config.idle_s
        delay = keepalive if keepalive > 0 else idle / 2
        if delay > 0:
            self._tick = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        now = asyncio.get_running_loop().time()
        for connection in self.connections():
            if self.config.idle_s > 0 and now - connection.last_message >= self.config.idle_s:
                log.debug("closing the idle %s connection to %s", connection.transport_name,
                          connection.peer)  # fmt: skip
                connection.close()
            elif self.config.keepalive_s > 0 and connection.outbound:
                connection.ping()
        self._schedule_tick()


def _connect_error(dest: Addr, exc: BaseException) -> str:
    where = f"{dest.transport.upper()} connection to {dest.server_name or dest.host}:{dest.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{where} refused: certificate verify failed: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return f"{where} failed: no connection in {CONNECT_TIMEOUT_S:g} s"
    text = str(exc) or type(exc).__name__
    return f"{where} failed: {text}"
