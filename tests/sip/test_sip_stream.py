"""SIP on a stream: Content-Length framing whatever the chunking, RFC 5626 CRLF keep-alives
(ping answered with a pong, pings sent on connections we opened), idle connections closed,
responses on the connection the request came on, and malformed stream data closing only that
connection. Real sockets on 127.0.0.1 against the user agent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sipmessage import URI, Message, Request

from ringback.telephony.sip.agent import UserAgent
from ringback.telephony.sip.message import Addr
from ringback.telephony.sip.stream import KeepAlive, StreamError, StreamFramer
from ringback.telephony.sip.transport import TransportConfig

HOST = "127.0.0.1"


def options(n: int, via: str = "TCP", body: bytes = b"") -> bytes:
    return (
        f"OPTIONS sip:x@{HOST} SIP/2.0\r\nVia: SIP/2.0/{via} {HOST}:5999;branch=z9hG4bKo{n}\r\n"
        f"From: <sip:a@b>;tag=a{n}\r\nTo: <sip:c@d>\r\nCall-ID: o{n}\r\nCSeq: 1 OPTIONS\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@given(
    bodies=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=1, max_value=2000), max_size=12),
)
def test_framing_by_content_length_gives_the_same_messages_whatever_the_chunking(
    bodies: list[bytes], cuts: list[int]
) -> None:
    messages = [options(i, body=body) for i, body in enumerate(bodies)]
    stream = b"".join(messages)
    framer = StreamFramer()
    out: list[bytes | KeepAlive] = []
    start = 0
    for cut in sorted(set(cuts)):
        out += framer.feed(stream[start:cut])
        start = max(start, cut)
    out += framer.feed(stream[start:])
    assert out == messages
    assert framer.pending == 0


@given(st.lists(st.binary(max_size=600), max_size=8))
def test_any_bytes_on_a_stream_frame_or_raise_a_stream_error_and_nothing_else(
    chunks: list[bytes],
) -> None:
    framer = StreamFramer()
    try:
        for chunk in chunks:
            for item in framer.feed(chunk):
                assert isinstance(item, (bytes, KeepAlive))
    except StreamError:
        pass  # the connection is closed; nothing else may escape


def test_a_double_crlf_is_a_ping_and_a_single_crlf_a_pong() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KeepAlive("ping")]
    assert framer.feed(b"\r\n") == [KeepAlive("pong")]
    assert framer.feed(b"\r\n\r\n" + options(1)) == [KeepAlive("ping"), options(1)]


@pytest.mark.parametrize(
    "data",
    [
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n",  # no Content-Length
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: ten\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nl: 99999999\r\n\r\n",
        b"x" * 50_000,  # no end of headers in sight
    ],
)
def test_stream_data_that_cannot_be_framed_is_an_error(data: bytes) -> None:
    with pytest.raises(StreamError):
        StreamFramer().feed(data)


@pytest.fixture
async def agent() -> AsyncIterator[UserAgent]:
    ua = UserAgent(HOST, 0, transport=TransportConfig(keepalive_s=0.05, idle_s=2.0))
    await ua.start()
    try:
        yield ua
    finally:
        ua.close()


async def _read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = await reader.read(4096)
        if not chunk:
            break
        data += chunk
    return data


async def test_options_over_tcp_is_answered_on_the_connection_it_came_on(
    agent: UserAgent,
) -> None:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(HOST, agent.port)
        writer.write(options(1)[:40])  # the request arrives in pieces
        await writer.drain()
        writer.write(options(1)[40:])
        answer = await _read_until(reader, b"\r\n\r\n")
        assert answer.startswith(b"SIP/2.0 200 OK\r\n")
        assert b"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKo1" in answer
        writer.close()


async def test_a_ping_is_answered_with_a_pong_and_garbage_closes_only_that_connection(
    agent: UserAgent,
) -> None:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(HOST, agent.port)
        writer.write(b"\r\n\r\n")
        assert await reader.readexactly(2) == b"\r\n"
        writer.write(b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n")  # no Content-Length
        assert await reader.read() == b""  # closed by the agent
        assert agent.net.malformed_streams == 1
        writer.close()
        reader2, writer2 = await asyncio.open_connection(HOST, agent.port)
        writer2.write(options(2))
        assert (await _read_until(reader2, b"\r\n\r\n")).startswith(b"SIP/2.0 200 OK")
        writer2.close()


async def test_connections_we_open_are_reused_pinged_and_closed_when_idle(
    agent: UserAgent,
) -> None:
    accepted: list[bytes] = []
    done = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while chunk := await reader.read(4096):
            data += chunk
        accepted.append(data)
        done.set()

    server = await asyncio.start_server(peer, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(10):
            dest = Addr(HOST, port, "tcp")
            agent.start_request(_request(1), dest)
            agent.start_request(_request(2), dest)
            await done.wait()  # the agent closed it after 2 s without a SIP message
    finally:
        server.close()
    [data] = accepted  # one connection carried both requests
    assert data.count(b"OPTIONS sip:") == 2
    assert data.count(b"Via: SIP/2.0/TCP ") == 2
    assert data.endswith(b"\r\n\r\n\r\n\r\n")  # CRLF pings after the requests, then the close
    assert agent.net.connections() == []


async def test_a_connection_that_cannot_be_opened_fails_the_request_at_once_with_503(
    agent: UserAgent,
) -> None:
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with asyncio.timeout(10):
        txn = agent.start_request(_request(3), Addr(HOST, port, "tcp"))
        response = await txn.result
    assert response.code == 503
    assert f"TCP connection to 127.0.0.1:{port} failed" in response.phrase


async def test_uris_choose_their_transport_and_default_port(agent: UserAgent) -> None:
    assert await agent.resolve(URI.parse("sip:a@127.0.0.1")) == Addr(HOST, 5060, "udp")
    assert await agent.resolve(URI.parse("sips:a@127.0.0.1")) == Addr(HOST, 5061, "tls")
    tcp = await agent.resolve(URI.parse("sip:127.0.0.1:5080;transport=TCP;lr"))
    assert tcp == Addr(HOST, 5080, "tcp")
    named = await agent.resolve(URI.parse("sip:localhost;transport=tls"))
    assert (named.transport, named.port, named.server_name) == ("tls", 5061, "localhost")
    with pytest.raises(OSError, match="not supported"):
        await agent.resolve(URI.parse("sip:127.0.0.1;transport=sctp"))


def _request(n: int) -> Request:
    message = Message.parse(options(n, via="UDP"))
    assert isinstance(message, Request)
    return message


async def test_a_certificate_file_openssl_cannot_load_stops_the_agent_naming_the_file(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    ua = UserAgent(HOST, 0, transport=TransportConfig(tls_cert=str(bad)))
    with pytest.raises(OSError, match=f"cannot load the TLS certificate {bad}"):
        await ua.start()
    ua.close()
