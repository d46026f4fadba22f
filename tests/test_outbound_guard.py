"""The one outbound client's address guard, end to end, against real sockets on 127.0.0.1.

A plain asyncio server on 127.0.0.1 counts the connections it gets; the IVR fetcher and the
webhook sender are pointed at many spellings of it with private destinations refused: the
listener must see no connection and every attempt must fail as "refused". With private
destinations allowed the fetcher does reach it (so these tests can fail). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from ringback.api.schemas import task_json
from ringback.clock import FakeClock
from ringback.domain.credentials import new_signing_secret as new_secret
from ringback.ivr.fetch import FetchConfig, FetchError, HttpFetcher
from ringback.outbound import BlockedAddress, OutboundClient
from ringback.service import TaskService
from ringback.service.webhooks import WebhookService
from ringback.store.db import Store
from ringback.webhooks.dispatcher import Dispatcher, DispatcherConfig

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@dataclass
class Listener:
    """A TCP listener on ``host`` counting connections; it answers any request 200 ``ok``."""

    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            async with asyncio.timeout(5):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(REPLY)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self) -> Listener:
        self.server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    running = await Listener().start()
    try:
        yield running
    finally:
        await running.stop()


def spellings(port: int) -> list[str]:
    """URLs that all point at 127.0.0.1:``port`` (or another loopback / embedded form)."""
    hosts = ["127.0.0.1", "①②⑦.0.0.1", "１２７.０.０.１", "127。0。0。1", "127．0．0．1",
             "127｡0｡0｡1", "⑫⑦.⓪.⓪.①", "0x7f.1", "0X7F.0.0.1", "2130706433", "0x7f000001",
             "0177.0.0.1", "127.1", "127.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]",
             "[::ffff:7f00:1]", "[::127.0.0.1]", "[2002:7f00:1::]",
             "[64:ff9b::7f00:1]"]  # fmt: skip
    return [f"http://{host}:{port}/x" for host in hosts]


async def test_no_spelling_of_loopback_reaches_a_listener_through_the_ivr_fetcher(
    listener: Listener,
) -> None:
    fetcher = HttpFetcher(FetchConfig(timeout_s=2.0, allow_private=False))
    for url in spellings(listener.port):
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch([url], method="GET")
        assert "refused" in str(caught.value), (url, caught.value)
    assert listener.connections == 0


async def test_with_private_destinations_allowed_the_fetcher_reaches_the_listener(
    listener: Listener,
) -> None:
    fetcher = HttpFetcher(FetchConfig(timeout_s=2.0, allow_private=True))
    result = await fetcher.fetch([f"http://①②⑦.0.0.1:{listener.port}/x"], method="GET")
    assert result.status == 200 and result.body == b"ok"
    result = await fetcher.fetch([f"http://0x7f.1:{listener.port}/x"], method="GET")
    assert result.status == 200
    assert listener.connections == 2


async def test_no_spelling_of_loopback_reaches_a_listener_through_the_webhook_sender(
    listener: Listener, store: Store, clock: FakeClock
) -> None:
    client_id = await store.ensure_client("guarded", clock.now())
    queue = await store.ensure_queue(client_id, "default", clock.now(), status="on")
    urls = spellings(listener.port)
    for url in urls:
        await store.create_subscription(
            client_id, url=url, events=["task.created"], secret=new_secret(), active=True,
            description="", now=clock.now(),
        )  # fmt: skip
    await TaskService(store, clock).add_callback_tasks(
        client_id, queue.id, [{"a_number": "0901234000", "b_number": "0907777000"}]
    )
    config = DispatcherConfig(connect_timeout_s=1.0, total_timeout_s=2.0, allow_private=False)
    dispatcher = Dispatcher(
        WebhookService(store, clock), clock, config, owner="guard-test", task_json=task_json
    )
    with structlog.testing.capture_logs() as logs:
        assert await dispatcher.run_once() == len(urls)
    dead, total = await store.page_deliveries(client_id, status="dead", limit=100)
    assert total == len(urls)
    assert all((d.last_error or "").startswith("refused: ") for d in dead), dead
    assert listener.connections == 0
    # one line per refusal, with the reason, and no traceback
    refused = [e for e in logs if e["event"] == "webhook delivery refused"]
    assert len(refused) == len(urls) and all(e["reason"] for e in refused)
    assert not [e for e in logs if e.get("exc_info") or e["log_level"] == "error"]


@dataclass
class FakeDns:
    """A ``getaddrinfo`` whose answers change from call to call (DNS rebinding)."""

    answers: list[str]
    calls: int = 0

    async def __call__(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


async def test_the_connection_goes_to_the_address_resolved_and_checked_once() -> None:
    first = await Listener("127.0.0.1").start()
    second = await Listener("127.0.0.2", first.port).start()
    try:
        dns = FakeDns(["127.0.0.1", "127.0.0.2"])
        async with OutboundClient(allow_private=True, getaddrinfo=dns, dns_ttl_s=0) as client:
            for _ in range(3):
                dns.calls = 0
                async with asyncio.timeout(5):
                    async with client.request("GET", f"http://rebind.test:{first.port}/") as got:
                        assert got.status == 200
                assert dns.calls == 1  # resolved once per request; aiohttp asked nobody else
        assert (first.connections, second.connections) == (3, 0)
    finally:
        await first.stop()
        await second.stop()


async def test_a_name_whose_first_answer_is_private_is_refused_whatever_it_answers_next(
    listener: Listener,
) -> None:
    dns = FakeDns(["127.0.0.1", "93.184.215.14"])
    async with OutboundClient(allow_private=False, getaddrinfo=dns) as client:
        with pytest.raises(BlockedAddress, match=r"rebind\.test resolves to 127\.0\.0\.1"):
            async with client.request("GET", f"http://rebind.test:{listener.port}/"):
                pass
    assert dns.calls == 1
    assert listener.connections == 0


def test_a_refused_address_says_which_setting_lets_private_networks_in() -> None:
    from ringback.domain.urlguard import check_address, literal_address

    address = literal_address("10.1.2.3")
    assert address is not None
    with pytest.raises(BlockedAddress, match=r"10\.1\.2\.3 is .*RINGBACK_ALLOW_PRIVATE=1"):
        check_address("http://10.1.2.3/x", "10.1.2.3", address)


async def test_a_names_answer_is_kept_for_the_dns_ttl_and_still_checked_each_time() -> None:
    now = [100.0]
    dns = FakeDns(["127.0.0.1", "127.0.0.2"])
    async with OutboundClient(
        allow_private=True, getaddrinfo=dns, dns_ttl_s=10.0, monotonic=lambda: now[0]
    ) as client:
        first = await client.resolve("http://kept.test:8080/a")
        again = await client.resolve("http://kept.test:8080/b")  # another URL, the same host
        assert dns.calls == 1 and first.addresses == again.addresses
        assert [str(a) for a in again.addresses] == ["127.0.0.1"]
        await client.resolve("http://kept.test:8081/")  # another port: asked again
        assert dns.calls == 2
        now[0] += 10.0  # expired: asked again, the new answer used
        later = await client.resolve("http://kept.test:8080/a")
        assert dns.calls == 3 and [str(a) for a in later.addresses] == ["127.0.0.2"]
    dns = FakeDns(["127.0.0.1"])
    async with OutboundClient(allow_private=False, getaddrinfo=dns) as client:
        for _ in range(2):  # a kept answer is refused again: the guard checks every time
            with pytest.raises(BlockedAddress, match=r"kept\.test resolves to 127\.0\.0\.1"):
                await client.resolve("http://kept.test/")
        assert dns.calls == 1
