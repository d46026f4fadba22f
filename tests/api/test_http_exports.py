"""CSV exports over HTTP, in process on both stores: a queue's tasks with the list's filters and
the client's calls with the history's window, every row, formula-like cells prefixed, times
UTC ISO 8601; a large export is sent in chunks of bounded size; another client's queue is 404."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringback.api.app import create_app
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.config import Settings
from ringback.domain.export import CALL_COLUMNS, TASK_COLUMNS
from ringback.domain.model import Leg, Outcome
from ringback.service import Services
from ringback.service.exports import CHUNK
from ringback.store.db import Store
from ringback.telephony.base import CallRecord

API = "/api/ver1.0/client"


class Api:
    def __init__(self, app: Any, http: httpx.AsyncClient, client_id: int, token: str) -> None:
        self.app, self.http, self.client_id = app, http, client_id
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{API}/{self.client_id}{path}"
        return await self.http.request(method, url, headers=self.auth, **kwargs)


async def _tenant(services: Services, http: httpx.AsyncClient, app: Any, name: str) -> Api:
    made = await services.clients.create_credentials(name)
    form = {"grant_type": "client_credentials", "client_id": made.key,
            "client_secret": made.secret}  # fmt: skip
    token = (await http.post("/oauth/token", data=form)).json()["access_token"]
    return Api(app, http, made.client_id, token)


@pytest.fixture
async def tenants(
    store: Store, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[Api, Api, Services]]:
    services = Services(store, clock, storage=Storage(tmp_path / "files"))
    app = create_app(services, Settings())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        alice = await _tenant(services, http, app, "alice")
        bob = await _tenant(services, http, app, "bob")
        yield alice, bob, services


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def _queue(api: Api) -> int:
    made = await api.call("POST", "/task_scheduler/", json={"name": "export", "status": "off"})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _task(name: str, to: str = "0901234000") -> dict[str, Any]:
    return {"name": name, "a_number": "0506868000", "b_number": to}


async def test_a_task_export_has_every_matching_task_with_formula_cells_prefixed(
    tenants: tuple[Api, Api, Services],
) -> None:
    alice, _, _ = tenants
    sid = await _queue(alice)
    names = ["plain", '=HYPERLINK("http://x")', "+cmd", "-2+3", "@SUM(A1)", 'a,b "q"']
    added = await alice.call("POST", f"/task_scheduler/{sid}/tasks/",
                             json={"tasks": [_task(n) for n in names]})  # fmt: skip
    assert added.status_code == 201, added.text
    ids = [t["id"] for t in added.json()["tasks"]]
    await alice.call("DELETE", f"/task_scheduler/{sid}/tasks/{ids[0]}")
    answer = await alice.call("GET", f"/task_scheduler/{sid}/tasks/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.text.splitlines()[0] == ",".join(name for name, _ in TASK_COLUMNS)
    rows = _rows(answer.text)
    assert [int(r["id"]) for r in rows] == ids
    assert [r["name"] for r in rows] == [
        "plain", "'=HYPERLINK(\"http://x\")", "'+cmd", "'-2+3", "'@SUM(A1)", "a,b \"q\"",
    ]  # fmt: skip
    assert rows[0]["status"] == "finished" and rows[0]["finish_comment"] == "canceled"
    assert rows[0]["created_at"].endswith("Z") and "T" in rows[0]["created_at"]
    assert rows[1]["called_number"] == "0901234000" and rows[1]["a_number"] == "0506868000"
    only = await alice.call("GET", f"/task_scheduler/{sid}/tasks/export.csv",
                            params={"status": "finished"})  # fmt: skip
    assert [int(r["id"]) for r in _rows(only.text)] == [ids[0]]
    named = await alice.call("GET", f"/task_scheduler/{sid}/tasks/export.csv",
                             params={"name": "+cmd"})  # fmt: skip
    assert [int(r["id"]) for r in _rows(named.text)] == [ids[2]]


async def test_a_task_export_refuses_another_clients_queue_and_bad_filters_by_name(
    tenants: tuple[Api, Api, Services],
) -> None:
    alice, bob, _ = tenants
    sid = await _queue(alice)
    assert (await bob.call("GET", f"/task_scheduler/{sid}/tasks/export.csv")).status_code == 404
    bad = await alice.call("GET", f"/task_scheduler/{sid}/tasks/export.csv",
                           params={"created_from": "yesterday"})  # fmt: skip
    assert bad.status_code == 422 and "created_from" in bad.text


async def test_a_large_task_export_is_sent_in_chunks_of_bounded_size(
    tenants: tuple[Api, Api, Services], store: Store, clock: FakeClock
) -> None:
    """Run the ASGI app by hand to see each body message: the export of 3.5 chunks of tasks
    comes as one message per chunk read, none larger than a chunk's rows."""
    alice, _, _ = tenants
    sid = await _queue(alice)
    total = CHUNK * 3 + CHUNK // 2
    for start in range(0, total, 1000):
        batch = [_task(f"t{i}") for i in range(start, min(start + 1000, total))]
        added = await alice.call("POST", f"/task_scheduler/{sid}/tasks/", json={"tasks": batch})
        assert added.status_code == 201
    path = f"{API}/{alice.client_id}/task_scheduler/{sid}/tasks/export.csv"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("test", 80), "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"test"), (b"authorization", alice.auth["Authorization"].encode())],
    }  # fmt: skip
    bodies: list[bytes] = []
    requested, done = False, asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays connected until the whole body came
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if message.get("body"):
                bodies.append(message["body"])
            if not message.get("more_body"):
                done.set()

    await alice.app(scope, receive, send)
    text = b"".join(bodies).decode()
    assert len(_rows(text)) == total
    assert len(bodies) >= 4  # the header and a message per chunk, not one body
    biggest_row = max(len(line) for line in text.splitlines()) + 2
    assert max(len(b) for b in bodies) <= CHUNK * biggest_row


async def test_a_calls_export_has_one_row_per_call_in_the_window_oldest_first(
    tenants: tuple[Api, Api, Services], store: Store, clock: FakeClock
) -> None:
    alice, bob, _ = tenants
    t0 = clock.now()

    def leg(call: str, leg_uuid: str, seconds: int, which: Leg, to: str) -> CallRecord:
        return CallRecord(
            leg_uuid=leg_uuid, call_uuid=call, leg=which, direction="outbound",
            from_number="=1+1", to_number=to, caller_id_name=None,
            started_at=t0 + timedelta(seconds=seconds),
            ended_at=t0 + timedelta(seconds=seconds + 4), outcome=Outcome.ANSWERED, sip_code=200,
        )  # fmt: skip

    await store.save_calls(alice.client_id, [leg("c1", "c1-a", 0, Leg.A, "0501"),
                                             leg("c1", "c1-b", 2, Leg.B, "0902")])  # fmt: skip
    await store.save_calls(alice.client_id, [leg("c2", "c2-m", 10, Leg.MAIN, "0903")])
    await store.save_calls(bob.client_id, [leg("x", "x-m", 5, Leg.MAIN, "0904")])
    answer = await alice.call("GET", "/call_history/export.csv")
    assert answer.status_code == 200, answer.text
    assert answer.text.splitlines()[0] == ",".join(name for name, _ in CALL_COLUMNS)
    rows = _rows(answer.text)
    assert [(r["call_uuid"], r["legs"], r["to_number"]) for r in rows] == [
        ("c1", "2", "0902"), ("c2", "1", "0903"),
    ]  # fmt: skip
    assert rows[0]["from_number"] == "0501"  # a callback's A number
    assert rows[1]["from_number"] == "'=1+1"
    assert rows[0]["started_at"] == t0.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    assert rows[0]["duration_s"] == "6"
    late = await alice.call("GET", "/call_history/export.csv",
                            params={"start": (t0 + timedelta(seconds=5)).isoformat()})  # fmt: skip
    assert [r["call_uuid"] for r in _rows(late.text)] == ["c2"]
    bad = await alice.call("GET", "/call_history/export.csv", params={"end": "soon"})
    assert bad.status_code == 422 and "end" in bad.text
