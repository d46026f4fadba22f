"""The webhook deliveries' keep-alive HTTP/1.1 client (ringback/http_pool.py), against real
servers on 127.0.0.1: connections reused and dropped when they must be, bodies of every
framing, early ends, timeouts, TLS verified, and requests whose bytes parse back."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.urlguard import BlockedAddress, check_url
from ringback.http_pool import HttpPool, _request
from ringback.outbound import OutboundClient
from support_tls import make_ca, make_cert

#: what a server answers to its n-th request (from 1, over all connections): the bytes to send
#: and whether to close the connection after them; None: no answer at all
Respond = Callable[[int], tuple[bytes, bool] | None]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class _Parsed:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.url = b""
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


class _Server:
    """Counts connections and requests; answers each request as ``respond`` says."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.connections = 0
        self.requests: list[_Parsed] = []
        self.open: set[asyncio.Transport] = set()
        self.all_closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> _Server:
        return self

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _Served(self), "127.0.0.1", 0, ssl=ssl_context
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for transport in list(self.open):
            transport.abort()


class _Served(asyncio.Protocol):
    """One connection to a :class:`_Server`, its requests read by httptools."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.request = _Parsed()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections += 1
        self.server.open.add(transport)
        self.server.all_closed.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.transport is not None
        self.server.open.discard(self.transport)
        if not self.server.open:
            self.server.all_closed.set()

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    # httptools' callbacks: the request's parts, then its end
    def on_url(self, url: bytes) -> None:
        self.request.on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.on_header(name, value)

    def on_body(self, body: bytes) -> None:
        self.request.on_body(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.server.requests.append(self.request)
        self.request = _Parsed()
        answer = self.server.respond(len(self.server.requests))
        if answer is None:  # never answered
            return
        data, close = answer
        self.transport.write(data)
        if close:
            self.transport.close()


def _url(port: int, scheme: str = "http", host: str = "127.0.0.1") -> str:
    return f"{scheme}://{host}:{port}/hook?x=1"


async def _post(pool: HttpPool, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    destination = check_url(url)
    assert destination.address is not None
    answer = await pool.post(destination, (destination.address,), body, {"X-A": "1"})
    return answer.status, answer.excerpt


async def test_a_connection_is_kept_alive_and_carries_the_next_requests() -> None:
    async with _Server(lambda n: (OK, False)) as server:
        port = await server.start()
        pool = HttpPool()
        for _ in range(3):
            assert await _post(pool, _url(port)) == (200, b"ok")
        assert (server.connections, len(server.requests)) == (1, 3)
        await pool.close()


async def test_a_server_that_says_close_gets_a_new_connection_for_the_next_request() -> None:
    close = b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    async with _Server(lambda n: (close, False)) as server:
        port = await server.start()
        pool = HttpPool()
        assert await _post(pool, _url(port)) == (201, b"")
        assert await _post(pool, _url(port)) == (201, b"")
        assert server.connections == 2
        await pool.close()


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async with _Server(lambda n: (OK, True)) as server:  # answers, then hangs up
        port = await server.start()
        pool = HttpPool()
        assert await _post(pool, _url(port)) == (200, b"ok")
        await _until_closed(server)
        assert await _post(pool, _url(port)) == (200, b"ok")
        assert server.connections == 2
        await pool.close()


async def test_a_request_on_a_connection_closed_unanswered_goes_again_on_a_new_one() -> None:
    """The server reads the second request on the kept-alive connection and hangs up without
    an answer (as when its idle timeout crosses the request): the pool sends it once more."""
    async with _Server(lambda n: (OK, False) if n != 2 else (b"", True)) as server:
        port = await server.start()
        pool = HttpPool()
        assert await _post(pool, _url(port)) == (200, b"ok")
        assert await _post(pool, _url(port)) == (200, b"ok")
        assert (server.connections, len(server.requests)) == (2, 3)
        await pool.close()


async def _until_closed(server: _Server) -> None:
    """Until the server has closed every connection it served (bounded)."""
    async with asyncio.timeout(10):
        await server.all_closed.wait()


@pytest.mark.parametrize(
    ("response", "excerpt"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
         b"abcd"),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"unti"),  # ends with the connection
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)  # fmt: skip
async def test_every_body_framing_gives_the_status_and_the_first_bytes(
    response: bytes, excerpt: bytes
) -> None:
    async with _Server(lambda n: (response, True)) as server:
        port = await server.start()
        pool = HttpPool(keep=4)
        status, got = await _post(pool, _url(port))
        assert (status, got) == (int(response.rsplit(b"HTTP/1.", 1)[1][2:5]), excerpt)
        await pool.close()


async def test_a_body_over_the_limit_ends_the_exchange_and_the_connection() -> None:
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000
    async with _Server(lambda n: (huge, False)) as server:
        port = await server.start()
        pool = HttpPool(keep=3, max_body=1000)
        assert await _post(pool, _url(port)) == (200, b"xxx")
        assert await _post(pool, _url(port)) == (200, b"xxx")
        assert server.connections == 2
        await pool.close()


async def test_an_answer_that_is_not_http_is_a_value_error() -> None:
    async with _Server(lambda n: (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", False)) as server:
        port = await server.start()
        pool = HttpPool()
        with pytest.raises(ValueError, match="not an HTTP response"):
            await _post(pool, _url(port))
        await pool.close()


async def test_a_server_that_hangs_up_without_answering_is_a_connection_error() -> None:
    async with _Server(lambda n: (b"", True)) as server:
        port = await server.start()
        pool = HttpPool()
        with pytest.raises(ConnectionError):
            await _post(pool, _url(port))
        await pool.close()


async def test_a_timed_out_exchange_drops_its_connection() -> None:
    async with _Server(lambda n: None if n == 1 else (OK, False)) as server:
        port = await server.start()
        pool = HttpPool()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await _post(pool, _url(port))
        assert await _post(pool, _url(port)) == (200, b"ok")  # a new connection
        assert server.connections == 2
        await pool.close()


async def test_nothing_listening_is_a_connection_error() -> None:
    async with _Server(lambda n: (OK, False)) as server:
        port = await server.start()
    pool = HttpPool(connect_timeout=5)
    with pytest.raises(OSError):
        await _post(pool, _url(port))


async def test_https_is_verified_against_the_urls_host(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    leaf = make_cert(tmp_path, ca, "hooks", hosts=("127.0.0.1",))
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(leaf.cert, leaf.key)
    async with _Server(lambda n: (OK, False)) as server:
        port = await server.start(served)
        trusting = ssl.create_default_context(cafile=str(ca.cert))
        pool = HttpPool(ssl_context=trusting)
        assert await _post(pool, _url(port, "https")) == (200, b"ok")
        await pool.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await _post(HttpPool(), _url(port, "https"))  # the system's CAs: not ours


async def test_outbound_post_connects_only_to_the_addresses_the_guard_checked() -> None:
    async def to_loopback(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    async with _Server(lambda n: (OK, False)) as server:
        port = await server.start()
        url = _url(port, host="hooks.example")
        async with OutboundClient(getaddrinfo=to_loopback) as guarded:
            with pytest.raises(BlockedAddress):
                await guarded.post(url, b"{}", {})
        async with OutboundClient(getaddrinfo=to_loopback, allow_private=True) as client:
            answer = await client.post(url, b"{}", {})
            assert answer.status == 200
        assert server.requests[0].headers[b"host"].startswith(b"hooks.example:")


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        _request(check_url("http://127.0.0.1:1/"), b"", {"X-A": "1\r\nX-Injected: 1"})


header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True).filter(
    lambda n: n.lower() not in ("host", "content-length", "transfer-encoding")
)
header_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@given(
    headers=st.dictionaries(header_names, header_values, max_size=6),
    body=st.binary(max_size=300),
    path=st.sampled_from(["/", "/hook", "/a/b?x=1&y=%20", "/h%C3%A9"]),
)
def test_a_request_parses_back_to_its_url_headers_and_body(
    headers: dict[str, str], body: bytes, path: str
) -> None:
    headers = {name: value for name, value in {n.lower(): v for n, v in headers.items()}.items()}
    data = _request(check_url(f"http://127.0.0.1:8080{path}"), body, headers)
    parsed = _Parsed()
    parser = httptools.HttpRequestParser(parsed)
    parser.feed_data(data)
    assert parsed.done and parser.get_method() == b"POST"
    assert parsed.url.decode() == path
    assert parsed.body == body
    assert parsed.headers[b"host"] == b"127.0.0.1:8080"
    assert parsed.headers[b"content-length"] == str(len(body)).encode()
    for name, value in headers.items():
        assert parsed.headers[name.encode()] == value.encode()
