"""Keep-alive HTTP/1.1 connections for small requests: the webhook deliveries.

aiohttp (the client of :mod:`ringback.outbound` for IVR fetches) spends ~100 µs of CPU on each
request; a webhook dispatcher sends thousands a second, each a small POST answered by a short
status. This pool does only that, in ~35 µs a request (``bench/webhooks.py``, docs/performance.md):

- connections are kept per destination (scheme, host, port) and reused, most recently used
  first; one that the server closed, or idle longer than ``idle_seconds``, is dropped;
- a new connection goes only to the addresses the address guard checked for this request
  (:class:`~ringback.outbound.ResolvedDestination`, one after the other), with TLS verified
  against the URL's host name for ``https``;
- the response is parsed by httptools (llhttp, the parser uvicorn uses): the status and the
  body's first ``keep`` bytes are kept; a body longer than ``max_body`` ends the exchange early
  and the connection is closed, as is any connection whose exchange did not finish cleanly (a
  timeout, a cancel, a parse error) or that the server asked to close.

Nothing is retried here but a request on a kept-alive connection that the server closed
without answering (it may have closed it idle just before): that one goes once more on a new
connection. Otherwise a failed exchange raises (``OSError`` for connections, ``ValueError``
for a response that is not HTTP) and the caller's retry policy decides.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httptools

from ringback.domain.urlguard import Destination

__all__ = ["Answer", "HttpPool"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: its status and the first bytes of its body."""

    status: int
    excerpt: bytes


class _Exchange(asyncio.Protocol):
    """One connection: sends a request, parses its response, may be reused."""

    def __init__(self, keep: int, max_body: int) -> None:
        self._keep, self._max_body = keep, max_body
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self._reset()
        self.reusable = True
        self.closed = False
        self.idle_since = 0.0

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():  # unasked-for bytes: not reusable
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ValueError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ValueError(f"not an HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed, self.reusable = True, False
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._headers_done:  # a body that ends with the connection
            self._finish()
        else:
            answer.set_exception(ConnectionResetError(f"the server closed the connection ({exc})"))

    # --- httptools callbacks --------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = self._status >= 200

    def on_body(self, body: bytes) -> None:
        if not self._headers_done:
            return
        self._seen += len(body)
        if self._kept < self._keep:
            piece = body[: self._keep - self._kept]
            self._body.append(piece)
            self._kept += len(piece)
        if self._seen > self._max_body:  # enough: answer now, drop the connection
            self.reusable = False
            self._finish()
            self.close()

    def on_message_complete(self) -> None:
        if not self._headers_done:  # an informational (1xx) response: the real one follows
            self._reset()
            return
        if not self._parser.should_keep_alive():
            self.reusable = False
        self._finish()

    # --- the exchange ---------------------------------------------------------------------

    async def exchange(self, request: bytes) -> Answer:
        assert self._transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._reset()
        self._transport.write(request)
        try:
            return await self._answer
        except BaseException:  # a timeout or a cancel leaves the response half read
            self.close()
            raise
        finally:
            self._answer = None

    def _reset(self) -> None:
        """Ready for a response: no status, no body yet."""
        self._body: list[bytes] = []
        self._kept = self._seen = self._status = 0
        self._headers_done = False

    def _finish(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(Answer(self._status, b"".join(self._body)))

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.abort()


class HttpPool:
    """Keep-alive connections per destination; see the module docstring."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = None,
        idle_seconds: float = 15.0,
        max_idle_per_destination: int = 16,
        keep: int = 1024,
        max_body: int = 1 << 20,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._idle_seconds = idle_seconds
        self._max_idle = max_idle_per_destination
        self._keep, self._max_body = keep, max_body
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Exchange]] = {}

    async def post(
        self,
        destination: Destination,
        addresses: tuple[object, ...],
        body: bytes,
        headers: Mapping[str, str],
    ) -> Answer:
        """POST ``body`` to ``destination``, connecting (if no idle connection to it is left)
        to ``addresses`` only: those the address guard checked for it."""
        key = (destination.url.scheme, destination.host, destination.port)
        request = _request(destination, body, headers)
        conn = self._take(key)
        if conn is not None:
            try:
                answer = await conn.exchange(request)
            except ConnectionResetError:
                # closed by the server while it was idle, before this request reached it (the
                # usual race with a keep-alive timeout): once more on a new connection. The
                # request may have been read after all; deliveries are at least once.
                conn = None
        if conn is None:
            conn = await self._connect(destination, addresses)
            answer = await conn.exchange(request)
        self._give_back(key, conn)
        return answer

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def _take(self, key: tuple[str, str, int]) -> _Exchange | None:
        conns = self._idle.get(key)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if not conn.closed and now - conn.idle_since < self._idle_seconds:
                return conn
            conn.close()
        return None

    def _give_back(self, key: tuple[str, str, int], conn: _Exchange) -> None:
        conns = self._idle.setdefault(key, [])
        if not conn.reusable or conn.closed or len(conns) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conns.append(conn)

    async def _connect(self, destination: Destination, addresses: tuple[object, ...]) -> _Exchange:
        loop = asyncio.get_running_loop()
        tls = destination.url.scheme == "https"
        context = (self._ssl or _default_context()) if tls else None
        error: OSError = OSError(f"no address to connect to for {destination.host}")
        for address in addresses:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    _, conn = await loop.create_connection(
                        lambda: _Exchange(self._keep, self._max_body),
                        host=str(address),
                        port=destination.port,
                        ssl=context,
                        server_hostname=destination.host if tls else None,
                    )
                return conn
            except TimeoutError:
                error = TimeoutError(f"connecting to {address} port {destination.port} timed out")
            except OSError as exc:  # ssl.SSLError included
                error = exc
        raise error


_CONTEXT: ssl.SSLContext | None = None


def _default_context() -> ssl.SSLContext:
    global _CONTEXT
    if _CONTEXT is None:  # built once: loading the system's CA certificates takes ~20 ms
        _CONTEXT = ssl.create_default_context()
    return _CONTEXT


def _request(destination: Destination, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The request's bytes. Header names and values with a line break are refused (ValueError):
    they would end the header block early."""
    url = destination.url
    host = url.raw_host or destination.host
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if not url.is_default_port():
        host = f"{host}:{destination.port}"
    lines = [f"POST {url.raw_path_qs} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"header {name!r}: a line break or colon is not allowed")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
