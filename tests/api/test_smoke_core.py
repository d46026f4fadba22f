"""Smoke tests of the core API: tokens, queues, tasks, jobs, validation, idempotency."""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ringback.api.app import create_app
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.config import Settings
from ringback.service import Services
from ringback.store.db import Store

A, B = "+15550001", "+15550002"


async def create_credentials(store: Store, name: str, clock: FakeClock) -> tuple[int, str, str]:
    """A new key and secret for the client ``name``: (client id, key, secret)."""
    made = await Services(store, clock).clients.create_credentials(name)
    return made.client_id, made.key, made.secret


class Api:
    def __init__(self, http: httpx.AsyncClient, client_id: int, token: str) -> None:
        self.http = http
        self.base = f"/api/ver1.0/client/{client_id}"
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return await self.http.request(method, self.base + path, headers=headers, **kwargs)  # type: ignore[arg-type]


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


async def _token(http: httpx.AsyncClient, key: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": key, "client_secret": secret}
    response = await http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
async def http(store: Store, clock: FakeClock, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Services(store, clock, storage=Storage(tmp_path / "files")), Settings())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient, store: Store, clock: FakeClock) -> Api:
    client_id, key, secret = await create_credentials(store, "acme", clock)
    return Api(http, client_id, await _token(http, key, secret))


async def test_token_flow(http: httpx.AsyncClient, store: Store, clock: FakeClock) -> None:
    _, key, secret = await create_credentials(store, "acme", clock)
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    ok = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == "all"
    wrong = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": key, "client_secret": "nope"},
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = await http.post("/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    missing = await http.post("/oauth/token", data={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


async def test_auth_required_and_clients_isolated(
    api: Api, http: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    assert (await http.get(api.base + "/task_scheduler/")).status_code == 401
    bad = await http.get(api.base + "/task_scheduler/", headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401
    queue = (await api.call("POST", "/task_scheduler/", json={"name": "q"})).json()
    other_id, key, secret = await create_credentials(store, "other", clock)
    other = Api(http, other_id, await _token(http, key, secret))
    theirs = await http.get(api.base + "/task_scheduler/", headers=other.auth)
    assert theirs.status_code == 404
    mine = await other.call("GET", f"/task_scheduler/{queue['id']}")
    assert mine.status_code == 404


async def test_queue_crud(api: Api) -> None:
    created = await api.call(
        "POST",
        "/task_scheduler/",
        json={"name": "sales", "calling_hours": "Europe/Paris mon-fri 09:00-18:00"},
    )
    assert created.status_code == 201, created.text
    queue = created.json()
    assert queue["status"] == "off" and queue["concurrent_task_limit"] == 10
    assert queue["calling_hours"]["timezone"] == "Europe/Paris"
    qid = queue["id"]
    dup = await api.call("POST", "/task_scheduler/", json={"name": "sales"})
    assert dup.status_code == 409
    bad = await api.call("POST", "/task_scheduler/", json={"name": "x", "calling_hours": "nope"})
    assert bad.status_code == 422 and bad.json()["details"][0]["loc"][-1] == "calling_hours"
    extra = await api.call("POST", "/task_scheduler/", json={"name": "x", "colour": "red"})
    assert extra.status_code == 422 and "colour" in extra.json()["details"][0]["msg"]
    changed = await api.call(
        "PUT", f"/task_scheduler/{qid}", json={"status": "on", "calling_hours": None}
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "on" and changed.json()["calling_hours"] is None
    listed = await api.call("GET", "/task_scheduler/")
    assert [q["id"] for q in listed.json()["queues"]] == [qid]
    await api.call(
        "POST", f"/task_scheduler/{qid}/tasks/", json={"tasks": [{"a_number": A, "b_number": B}]}
    )
    assert (await api.call("DELETE", f"/task_scheduler/{qid}")).status_code == 409
    gone = await api.call("DELETE", f"/task_scheduler/{qid}", params={"force": "true"})
    assert gone.status_code == 204
    assert (await api.call("GET", f"/task_scheduler/{qid}")).status_code == 404


async def test_tasks(api: Api, clock: FakeClock) -> None:
    qid = (await api.call("POST", "/task_scheduler/", json={"name": "q"})).json()["id"]
    path = f"/task_scheduler/{qid}/tasks/"
    added = await api.call(
        "POST",
        path,
        json={
            "tasks": [
                {"name": "one", "a_number": A, "b_number": B, "try_count": 3},
                {"a_number": A, "b_number": B, "start_time_utc": "2026-02-01T10:00:00+01:00"},
            ]
        },
    )
    assert added.status_code == 201, added.text
    first, second = added.json()["tasks"]
    assert first["status"] == "scheduled" and first["try_count"] == 3
    assert second["start_time_utc"] == "2026-02-01 09:00:00"
    for created in (first, second):  # built without reading back: must match what GET says
        assert (await api.call("GET", f"{path}{created['id']}")).json() == created
    listed = (await api.call("GET", path, params={"name": "one"})).json()
    assert listed["total"] == 1 and listed["tasks"][0]["id"] == first["id"]
    page = (await api.call("GET", path, params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 2 and [t["id"] for t in page["tasks"]] == [second["id"]]
    bad_time = await api.call("GET", path, params={"created_from": "soon"})
    assert bad_time.status_code == 422
    assert bad_time.json()["details"][0]["loc"] == ["query", "created_from"]
    got = await api.call("GET", f"{path}{first['id']}")
    assert got.status_code == 200 and got.json()["name"] == "one" and got.json()["calls"] == []
    put = await api.call(
        "PUT", f"{path}{first['id']}", json={"name": "renamed", "a_number": A, "b_number": B}
    )
    assert put.status_code == 200 and put.json()["name"] == "renamed"
    assert put.json()["try_count"] == 1
    canceled = await api.call("DELETE", f"{path}{first['id']}")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "finished"
    assert canceled.json()["finish_result"] == "failed"
    assert (await api.call("DELETE", f"{path}{first['id']}")).status_code == 409
    assert (
        await api.call("PUT", f"{path}{first['id']}", json={"a_number": A, "b_number": B})
    ).status_code == 409
    assert (await api.call("GET", f"{path}999")).status_code == 404


async def test_invalid_batch_adds_nothing(api: Api) -> None:
    qid = (await api.call("POST", "/task_scheduler/", json={"name": "q"})).json()["id"]
    path = f"/task_scheduler/{qid}/tasks/"
    good = {"a_number": A, "b_number": B}
    tasks = [good, good, good, {**good, "try_count": 99}]
    response = await api.call("POST", path, json={"tasks": tasks})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert body["details"][0]["loc"] == ["body", "tasks", 3, "try_count"]
    assert (await api.call("GET", path)).json()["total"] == 0
    assert (await api.call("POST", path, json={"tasks": []})).status_code == 422


async def test_job_with_state(api: Api) -> None:
    job = {
        "type": "msg_call",
        "data": {"calling_number": A, "called_number": B, "audio_file": "hello.wav"},
        "options": {"attempts": 2, "backoff": {"type": "fixed", "delay": 1000}},
    }
    missing = await api.call("POST", "/jobs/", json=job)  # the job's file is checked at once
    assert missing.status_code == 422 and "hello.wav doesn't exist" in missing.text
    stored = await api.call("PUT", "/storage/hello.wav", content=_wav())
    assert stored.status_code == 201, stored.text
    created = await api.call("POST", "/jobs/", json=job)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["state"] == "waiting" and body["attemptsMade"] == 0
    assert body["kind"] == "msg_call" and body["data"]["audio_file"] == "hello.wav"
    assert body["options"]["attempts"] == 2
    got = await api.call("GET", f"/jobs/{body['id']}")
    assert got.status_code == 200 and got.json()["state"] == "waiting"
    listed = (await api.call("GET", "/jobs/")).json()
    assert listed["total"] == 1 and listed["jobs"][0]["id"] == body["id"]
    bad = await api.call("POST", "/jobs/", json={**job, "queue": "missing"})
    assert bad.status_code == 422 and bad.json()["details"][0]["loc"] == ["body", "queue"]


async def test_idempotency_key(api: Api) -> None:
    key = {"Idempotency-Key": "abc-1"}
    first = await api.call("POST", "/task_scheduler/", json={"name": "q"}, headers=key)
    again = await api.call("POST", "/task_scheduler/", json={"name": "q"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = await api.call("POST", "/task_scheduler/", json={"name": "q2"}, headers=key)
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    assert len((await api.call("GET", "/task_scheduler/")).json()["queues"]) == 1


async def test_service_endpoints(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200 and 'ringback_tasks{status="scheduled"}' in metrics.text
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "ringback"
    too_big = await http.post(
        "/api/ver1.0/client/1/task_scheduler/",
        content=b"x" * (16 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"
    wrong = await http.patch("/api/ver1.0/client/1/task_scheduler/")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, POST"
