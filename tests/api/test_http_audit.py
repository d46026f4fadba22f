"""The audit log over HTTP, in process on both stores: each kind of change (queues, tasks, one
entry per batch of tasks, numbers, webhook subscriptions, do-not-call entries) leaves an entry
naming the client, the token's credential, the operator header and the channel; no secret is
ever kept; a change that changed nothing leaves none; a client reads only its own entries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringback.api.app import create_app
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.config import Settings
from ringback.service import Services
from ringback.store.db import Store

API = "/api/ver1.0/client"
SECRET = "s3cr3t-signing-value-0123456789"


class Api:
    def __init__(self, http: httpx.AsyncClient, client_id: int, token: str, key: str) -> None:
        self.http, self.client_id, self.key = http, client_id, key
        self.headers = {"Authorization": f"Bearer {token}", "Ringback-Operator": "jane doe"}

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{API}/{self.client_id}{path}"
        return await self.http.request(method, url, headers=self.headers, **kwargs)

    async def audit(self, **params: Any) -> list[dict[str, Any]]:
        answer = await self.call("GET", "/audit/", params=params)
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["entries"]
        return entries


@pytest.fixture
async def tenants(
    store: Store, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[Api, Api, Services]]:
    services = Services(store, clock, storage=Storage(tmp_path / "files"))
    app = create_app(services, Settings(webhook_allow_private=True))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        made = []
        for name in ("alice", "bob"):
            cred = await services.clients.create_credentials(name)
            form = {"grant_type": "client_credentials", "client_id": cred.key,
                    "client_secret": cred.secret}  # fmt: skip
            token = (await http.post("/oauth/token", data=form)).json()["access_token"]
            made.append(Api(http, cred.client_id, token, cred.key))
        yield made[0], made[1], services


async def _credential_id(services: Services, api: Api) -> int:
    [cred] = [c for c in await services.clients.list_credentials() if c.key == api.key]
    return cred.id


async def test_queue_and_task_changes_are_recorded_with_the_credential_and_operator(
    tenants: tuple[Api, Api, Services],
) -> None:
    alice, _, services = tenants
    made = await alice.call("POST", "/task_scheduler/", json={"name": "audited", "status": "off"})
    sid = made.json()["id"]
    await alice.call("PUT", f"/task_scheduler/{sid}", json={"concurrent_task_limit": 7})
    batch = [{"a_number": "0506868000", "b_number": f"09012340{i:02d}"} for i in range(50)]
    added = await alice.call("POST", f"/task_scheduler/{sid}/tasks/", json={"tasks": batch})
    ids = [t["id"] for t in added.json()["tasks"]]
    await alice.call("PUT", f"/tasks/{ids[1]}/priority", json={"priority": 8})
    assert (await alice.call("DELETE", f"/task_scheduler/{sid}/tasks/{ids[0]}")).status_code == 200
    again = await alice.call("DELETE", f"/task_scheduler/{sid}/tasks/{ids[0]}")
    assert again.status_code == 409  # already finished: nothing changed, nothing recorded
    entries = await alice.audit()
    shown = [(e["action"], e["object_type"], e["object_id"]) for e in reversed(entries)]
    assert shown == [
        ("created", "queue", str(sid)), ("changed", "queue", str(sid)),
        ("created", "task", str(ids[0])), ("changed", "task", str(ids[1])),
        ("cancelled", "task", str(ids[0])),
    ]  # fmt: skip
    credential = await _credential_id(services, alice)
    assert {(e["channel"], e["credential_id"], e["operator"]) for e in entries} == {
        ("api", credential, "jane doe")
    }
    batch_entry = entries[2]["summary"]
    assert batch_entry == {"count": 50, "first_id": ids[0], "last_id": ids[-1], "queue_id": sid}
    assert entries[3]["summary"]["concurrent_task_limit"] == 7
    assert entries[0]["occurred_at"].endswith("Z")
    only = await alice.audit(object_type="task", object_id=str(ids[0]))
    assert [e["action"] for e in only] == ["cancelled", "created"]
    assert [e["action"] for e in await alice.audit(action="changed")] == ["changed", "changed"]
    first = await alice.audit(limit=2)
    page = await alice.call("GET", "/audit/", params={"limit": 2})
    nxt = page.json()["next_before_id"]
    assert nxt == first[-1]["id"]
    rest = await alice.audit(before_id=nxt, limit=100)
    assert [e["id"] for e in first + rest] == [e["id"] for e in entries]


async def test_webhook_number_and_list_changes_are_recorded_without_secrets(
    tenants: tuple[Api, Api, Services],
) -> None:
    alice, _, _ = tenants
    hook = await alice.call("POST", "/webhooks/", json={
        "url": "http://127.0.0.1:9/hook?token=abc", "secret": SECRET,
    })  # fmt: skip
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["id"]
    changed = await alice.call("PUT", f"/webhooks/{hook_id}", json={"secret": SECRET + "x"})
    assert changed.status_code == 200, changed.text
    await alice.call("PUT", f"/webhooks/{hook_id}", json={"rotate_secret": True})
    await alice.call("DELETE", f"/webhooks/{hook_id}")
    put = await alice.call("PUT", "/numbers/0505550001",
                           json={"answer_url": "http://127.0.0.1:9/ivr?key=k1"})  # fmt: skip
    assert put.status_code in (200, 201), put.text
    await alice.call("DELETE", "/numbers/0505550001")
    await alice.call("POST", "/suppressions/", json={"entries": [
        {"number": "+33612345678"}, {"number": "+4420*", "list": "uk"}]})  # fmt: skip
    await alice.call("DELETE", "/suppressions/", params={"list": "uk"})
    entries = await alice.audit()
    shown = [(e["action"], e["object_type"]) for e in reversed(entries)]
    assert shown == [
        ("created", "webhook"), ("changed", "webhook"), ("changed", "webhook"),
        ("deleted", "webhook"), ("changed", "number"), ("deleted", "number"),
        ("created", "suppression"), ("deleted", "suppression"),
    ]  # fmt: skip
    text = json.dumps(entries)
    for secret in (SECRET, "token=abc", "key=k1"):
        assert secret not in text
    assert entries[-1]["summary"]["url"] == "http://127.0.0.1:9/hook"
    assert entries[-2]["summary"]["secret"] == "[redacted]"
    assert entries[1]["summary"] == {
        "count": 2, "lists": ["dnc", "uk"], "first": ["+33612345678", "+4420*"],
        "imported": False,
    }  # fmt: skip
    assert entries[0]["summary"] == {"list": "uk"}


async def test_a_client_reads_only_its_own_audit_log(tenants: tuple[Api, Api, Services]) -> None:
    alice, bob, _ = tenants
    await alice.call("POST", "/task_scheduler/", json={"name": "mine", "status": "off"})
    assert await bob.audit() == []
    other = await bob.http.get(f"{API}/{alice.client_id}/audit/", headers=bob.headers)
    assert other.status_code == 404
    bad = await alice.call("GET", "/audit/", params={"object_type": "client"})
    assert bad.status_code == 422 and "object_type" in bad.text
