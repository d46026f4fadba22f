"""/oauth/token limits, revocation of credentials and a client's own rotation (in process)."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ringback.api import limits
from ringback.api.app import create_app
from ringback.api.limits import SecretChecker
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.config import Settings
from ringback.domain.credentials import DUMMY_HASH
from ringback.service import ClientService, NewCredentials, Services
from ringback.store.db import Store

TOKEN = "/oauth/token"


def _form(key: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": key, "client_secret": secret}


def _basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


@pytest.fixture
async def app_client(
    store: Store, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.ASGITransport]]:
    app = create_app(Services(store, clock, storage=Storage(tmp_path / "files")), Settings())
    transport = httpx.ASGITransport(app, client=("198.51.100.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, transport


@pytest.fixture
def http(app_client: tuple[httpx.AsyncClient, httpx.ASGITransport]) -> httpx.AsyncClient:
    return app_client[0]


@pytest.fixture
async def made(store: Store, clock: FakeClock) -> NewCredentials:
    return await ClientService(store, clock).create_credentials("acme")


async def _token(http: httpx.AsyncClient, made: NewCredentials) -> str:
    answer = await http.post(TOKEN, data=_form(made.key, made.secret))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def _queues(http: httpx.AsyncClient, made: NewCredentials, token: str) -> int:
    path = f"/api/ver1.0/client/{made.client_id}/task_scheduler/"
    return (await http.get(path, headers={"Authorization": f"Bearer {token}"})).status_code


async def test_sixtieth_wrong_secret_in_ten_seconds_gets_429(
    http: httpx.AsyncClient, made: NewCredentials, clock: FakeClock
) -> None:
    answers = []
    for n in range(60):  # 60 tries spread over 9.9 s
        if n:
            clock.advance(seconds=9.9 / 59)
        answers.append(await http.post(TOKEN, data=_form(made.key, "wrong")))
    statuses = [answer.status_code for answer in answers]
    assert statuses[0] == 401 and statuses[-1] == 429
    assert set(statuses) == {401, 429} and statuses.count(401) <= 13
    refused = answers[-1]
    body = refused.json()
    assert body["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    assert body["details"] == [{"loc": ["body", "client_id"], "msg": "rate limited"}]
    # even the right secret waits: the limit comes before any check
    assert (await http.post(TOKEN, data=_form(made.key, made.secret))).status_code == 429


async def test_after_retry_after_seconds_the_client_id_may_try_again(
    http: httpx.AsyncClient, made: NewCredentials, clock: FakeClock
) -> None:
    answer = None
    for _ in range(20):
        answer = await http.post(TOKEN, data=_form(made.key, "wrong"))
        if answer.status_code == 429:
            break
    assert answer is not None and answer.status_code == 429
    clock.advance(seconds=int(answer.headers["Retry-After"]))
    assert (await http.post(TOKEN, data=_form(made.key, made.secret))).status_code == 200


async def test_spraying_client_ids_from_one_address_gets_429(
    app_client: tuple[httpx.AsyncClient, httpx.ASGITransport],
) -> None:
    http, transport = app_client
    statuses = []
    for n in range(45):  # a new client_id each time, in no time at all
        statuses.append((await http.post(TOKEN, data=_form(f"rb_guess{n}", "x"))).status_code)
    assert statuses[0] == 401 and statuses[-1] == 429
    last = await http.post(TOKEN, data=_form("rb_guess_last", "x"))
    assert last.json()["details"] == [{"loc": ["client", "address"], "msg": "rate limited"}]
    transport.client = ("203.0.113.9", 4000)  # another address is not held back
    assert (await http.post(TOKEN, data=_form("rb_guess_other", "x"))).status_code == 401


async def test_right_secrets_are_not_counted_against_the_limits(
    http: httpx.AsyncClient, made: NewCredentials
) -> None:
    for _ in range(40):
        assert (await http.post(TOKEN, data=_form(made.key, made.secret))).status_code == 200


async def test_an_unknown_client_id_costs_a_secret_check_like_a_known_one(
    http: httpx.AsyncClient, made: NewCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = limits.verify_secret

    def counting(secret: str, stored: str) -> bool:
        checked.append(stored)
        return real(secret, stored)

    monkeypatch.setattr(limits, "verify_secret", counting)
    assert (await http.post(TOKEN, data=_form("rb_nobody", "x"))).status_code == 401
    assert (await http.post(TOKEN, data=_form(made.key, "x"))).status_code == 401
    assert len(checked) == 2 and checked[0] == DUMMY_HASH != checked[1]


async def test_secret_checks_run_in_threads_at_most_two_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    inside: list[int] = []
    lock = threading.Lock()
    running = [0]

    def slow(secret: str, stored: str) -> bool:
        with lock:
            running[0] += 1
            inside.append(running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return False

    monkeypatch.setattr(limits, "verify_secret", slow)
    checker = SecretChecker(concurrency=2, max_waiting=3)
    checks = [asyncio.create_task(checker.verify("s", "h")) for _ in range(5)]
    for _ in range(500):  # until two threads are in (bounded)
        if running[0] == 2:
            break
        await asyncio.sleep(0.01)
    assert running[0] == 2
    with pytest.raises(limits.Busy):  # 2 checking, 3 waiting: the next is refused
        await checker.verify("s", "h")
    release.set()
    assert await asyncio.gather(*checks) == [False] * 5
    assert max(inside) == 2


async def test_token_of_disabled_client_is_refused_at_once(
    http: httpx.AsyncClient, made: NewCredentials, store: Store, clock: FakeClock
) -> None:
    token = await _token(http, made)
    assert await _queues(http, made, token) == 200
    clients = ClientService(store, clock)
    await clients.disable(made.key)
    assert await _queues(http, made, token) == 401
    refused = await http.post(TOKEN, data=_form(made.key, made.secret))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    await clients.enable(made.key)
    assert await _queues(http, made, token) == 200


async def test_token_of_deleted_client_is_refused_at_once(
    http: httpx.AsyncClient, made: NewCredentials, store: Store, clock: FakeClock
) -> None:
    token = await _token(http, made)
    await ClientService(store, clock).delete(made.key)
    assert await _queues(http, made, token) == 401
    assert (await http.post(TOKEN, data=_form(made.key, made.secret))).status_code == 401


async def test_token_issued_before_rotation_stops_working(
    http: httpx.AsyncClient, made: NewCredentials
) -> None:
    token = await _token(http, made)
    rotated = await http.post("/oauth/clients/self/rotate", headers=_basic(made.key, made.secret))
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["client_id"] == made.key and body["secret_version"] == 2
    assert body["client_secret"] != made.secret and body["signing_secret"] != made.signing_secret
    assert rotated.headers["Cache-Control"] == "no-store"
    assert await _queues(http, made, token) == 401
    assert (await http.post(TOKEN, data=_form(made.key, made.secret))).status_code == 401
    new = await http.post(TOKEN, data=_form(made.key, body["client_secret"]))
    assert new.status_code == 200
    assert await _queues(http, made, new.json()["access_token"]) == 200


async def test_rotation_needs_the_secret_not_a_token(
    http: httpx.AsyncClient, made: NewCredentials
) -> None:
    token = await _token(http, made)
    answer = await http.post(
        "/oauth/clients/self/rotate", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert [d["loc"] for d in answer.json()["details"]] == [
        ["body", "client_id"], ["body", "client_secret"],
    ]  # fmt: skip
    wrong = await http.post("/oauth/clients/self/rotate", data={"client_id": made.key,
                                                                "client_secret": "x"})  # fmt: skip
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


async def test_a_client_reads_its_own_signing_secret_and_the_previous_one_after_rotation(
    http: httpx.AsyncClient, made: NewCredentials
) -> None:
    token = await _token(http, made)
    path = "/oauth/clients/self/signing_secret"
    mine = await http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200 and mine.json()["secret"] == made.signing_secret
    assert (await http.get(path)).status_code == 401
    rotated = (
        await http.post("/oauth/clients/self/rotate", data=_form(made.key, made.secret))
    ).json()
    token = await _token(http, NewCredentials(made.client_id, made.key, rotated["client_secret"],
                                              2, rotated["signing_secret"]))  # fmt: skip
    after = (await http.get(path, headers={"Authorization": f"Bearer {token}"})).json()
    assert after["secret"] == rotated["signing_secret"]
    assert after["previous_secret"] == made.signing_secret
    assert after["previous_secret_valid_until"] is not None
