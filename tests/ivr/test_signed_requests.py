"""Signed IVR requests: the signature itself (hypothesis), and the README's verification
snippet run against the real requests of an IVR, received by a local aiohttp app server."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from http_server import serving
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.clock import FakeClock
from ringback.config import Settings
from ringback.ivr.fetch import FetchConfig
from ringback.ivr.runner import IvrSource
from ringback.ivr.signing import (
    HEADER,
    SigningFetcher,
    request_signature_header,
    signer,
    verify_request,
)
from ringback.ivr.simulate import simulate_call
from ringback.service import ClientService, SigningKeys
from ringback.service.inbound import signed_fetcher
from ringback.store.db import Store

README = Path(__file__).parents[2] / "docs" / "webhooks.md"  # the guide's webhooks page
EXAMPLES = 300  # each hypothesis test below; listed in README "Reliability"

secrets_ = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=16, max_size=64)
urls = st.builds(
    lambda host, path, query: f"https://{host}.example/{path}" + (f"?{query}" if query else ""),
    st.from_regex(r"[a-z]{1,12}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9/._%-]{0,40}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9=&%+._-]{0,40}", fullmatch=True),
)
methods = st.sampled_from(["GET", "POST"])
stamps = st.integers(1, 2**40)


@settings(max_examples=EXAMPLES)
@given(secret=secrets_, method=methods, url=urls, body=st.binary(max_size=1000), stamp=stamps)
def test_a_signed_request_verifies_with_its_secret_method_url_body_and_time(
    secret: str, method: str, url: str, body: bytes, stamp: int
) -> None:
    header = request_signature_header([secret], stamp, method, url, body)
    assert verify_request(header, method, url, body, secret, now=stamp)


@settings(max_examples=EXAMPLES)
@given(
    secret=secrets_, method=methods, url=urls, body=st.binary(max_size=500), stamp=stamps,
    other_url=urls, other_body=st.binary(max_size=500), shift=st.integers(-10**6, 10**6),
)  # fmt: skip
def test_any_change_of_url_body_method_or_timestamp_fails(
    secret: str, method: str, url: str, body: bytes, stamp: int, other_url: str,
    other_body: bytes, shift: int,
) -> None:  # fmt: skip
    header = request_signature_header([secret], stamp, method, url, body)
    if other_url != url:
        assert not verify_request(header, method, other_url, body, secret, now=stamp)
    if other_body != body:
        assert not verify_request(header, method, url, other_body, secret, now=stamp)
    other_method = "GET" if method == "POST" else "POST"
    assert not verify_request(header, other_method, url, body, secret, now=stamp)
    if shift:  # the signed time changed: the same signature under another t= fails
        moved = header.replace(f"t={stamp},", f"t={stamp + shift},")
        assert not verify_request(moved, method, url, body, secret, now=stamp + shift)
    if abs(shift) > 300:  # the time is checked too: an old or future request is refused
        assert not verify_request(header, method, url, body, secret, now=stamp + shift)


def test_the_signer_gives_the_header_with_one_v1_per_secret() -> None:
    sign = signer(["new-secret-0123456789", "old-secret-0123456789"], now=lambda: 1_700_000_000)
    header = sign("POST", "https://a.example/ivr", b"x=1")[HEADER]
    assert header.startswith("t=1700000000,v1=") and header.count("v1=") == 2
    for secret in ("new-secret-0123456789", "old-secret-0123456789"):
        assert verify_request(header, "POST", "https://a.example/ivr", b"x=1", secret,
                              now=1_700_000_000)  # fmt: skip


# --- the README snippet against real IVR requests ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    url: str
    body: bytes
    signature: str


@dataclass(slots=True)
class Receiver:
    port: int = 0
    documents: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            Received(request.method, str(request.url), body, request.headers.get(HEADER, ""))
        )
        document = self.documents.get(request.path, "<IVR/>")
        return web.Response(text=document, content_type="text/xml")


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    async with serving(server.handle) as port:
        server.port = port
        yield server


def readme_verifier() -> Callable[..., bool]:
    text = README.read_text()
    found = re.search(r"<!-- ivr-signature-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert found, "docs/webhooks.md has no IVR signature snippet"
    scope: dict[str, Any] = {}
    exec(found.group(1), scope)
    check: Callable[..., bool] = scope["verify_ringback_request"]
    return check


async def test_the_readme_snippet_verifies_real_ivr_requests_and_refuses_tampered_ones(
    store: Store, clock: FakeClock
) -> None:
    made = await ClientService(store, clock).create_credentials("acme")
    keys = SigningKeys(ClientService(store, clock))
    check = readme_verifier()
    async with receiver() as app:
        app.documents["/answer"] = (
            f"<IVR><Set var='amount' val='42'/>"
            f"<Redirect method='GET'>{app.url('/next?step=1')}</Redirect></IVR>"
        )
        app.documents["/next"] = f"<IVR><Redirect>{app.url('/last')}</Redirect></IVR>"
        app.documents["/last"] = "<IVR><Speak>bye</Speak></IVR>"
        fetcher = signed_fetcher(keys, made.client_id, Settings(webhook_allow_private=True))
        run, _ = await simulate_call(
            IvrSource("url", app.url("/answer")), clock, client_id=made.client_id,
            fetcher=fetcher, completed_url=app.url("/status"),
        )  # fmt: skip
    assert run.error is None, run.error
    methods = [(seen.method, seen.url.split("?")[0]) for seen in app.received]
    assert methods == [
        ("POST", app.url("/answer")), ("GET", app.url("/next")), ("POST", app.url("/last")),
        ("POST", app.url("/status")),
    ]  # fmt: skip
    assert "step=1" in app.received[1].url and "amount=42" in app.received[1].url
    assert app.received[0].body and app.received[1].body == b""
    for seen in app.received:
        stamp = seen.signature.partition(",")[0].removeprefix("t=")
        assert abs(int(stamp) - time.time()) < 60  # wall-clock time, not the test's clock
        assert check(seen.method, seen.url, seen.body, seen.signature, made.signing_secret)
        assert not check(seen.method, seen.url, seen.body + b"&x=1", seen.signature,
                         made.signing_secret)  # fmt: skip
        assert not check(seen.method, seen.url.replace("127.0.0.1", "localhost"), seen.body,
                         seen.signature, made.signing_secret)  # fmt: skip
        assert not check(seen.method, seen.url, seen.body, seen.signature, "whsec_other")


async def test_a_document_fetched_by_url_is_not_sent_without_a_signing_secret(
    clock: FakeClock,
) -> None:
    async def no_secret() -> list[str]:
        raise ConnectionError("database away")

    async with receiver() as app:
        fetcher = SigningFetcher(FetchConfig(allow_private=True), no_secret)
        run, _ = await simulate_call(IvrSource("url", app.url("/answer")), clock, fetcher=fetcher)
    assert app.received == []
    assert run.error is not None and "signing secret cannot be read" in run.error.message
