"""Campaign controls over HTTP, in process on both stores: do-not-call lists (``/suppressions/``:
add one or many, import a CSV body, list and filter by page, check a number, remove; bad input
is a 422 naming the field or the file's line), expiry and priority of tasks."""

from __future__ import annotations

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


class Api:
    def __init__(self, http: httpx.AsyncClient, client_id: int, token: str) -> None:
        self.http, self.base = http, f"/api/ver1.0/client/{client_id}/suppressions"
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str = "/", **kwargs: object) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return await self.http.request(method, self.base + path, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def api(store: Store, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Api]:
    services = Services(store, clock, storage=Storage(tmp_path / "files"))
    made = await services.clients.create_credentials("acme")
    transport = httpx.ASGITransport(create_app(services, Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        form = {"grant_type": "client_credentials", "client_id": made.key,
                "client_secret": made.secret}  # fmt: skip
        token = (await http.post("/oauth/token", data=form)).json()["access_token"]
        yield Api(http, made.client_id, token)


async def test_entries_are_added_listed_checked_and_removed(api: Api) -> None:
    body = {"entries": [
        {"number": "+33 6 12 34 56 78", "source": "crm", "expires_at": "2099-01-01 00:00:00"},
        {"number": "+4420*", "list": "uk"},
        {"number": "0312", "prefix": True, "list": "uk"},
    ]}  # fmt: skip
    added = await api.call("POST", json=body)
    assert (added.status_code, added.json()) == (201, {"added": 3})
    page = (await api.call("GET", params={"list": "uk", "limit": 1})).json()
    assert (page["total"], page["limit"], len(page["suppressions"])) == (2, 1, 1)
    first = page["suppressions"][0]
    assert (first["number"], first["prefix"], first["list"]) == ("+4420", True, "uk")
    check = (await api.call("GET", "/check", params={"number": "+33612345678"})).json()
    assert check["suppressed"] and check["list"] == "dnc" and check["entry"] == "+33612345678"
    assert check["reason"] == "suppressed: on list 'dnc' (source crm)"
    by_prefix = (await api.call("GET", "/check", params={"number": "0312000"})).json()
    assert by_prefix["entry"] == "0312*"
    assert not (await api.call("GET", "/check", params={"number": "0999"})).json()["suppressed"]
    assert (await api.call("DELETE", f"/{first['id']}")).status_code == 204
    assert (await api.call("DELETE", f"/{first['id']}")).status_code == 404
    removed = await api.call("DELETE", params={"number": "0312*", "list": "uk"})
    assert removed.json() == {"removed": 1}
    assert (await api.call("GET")).json()["total"] == 1


async def test_a_csv_body_is_imported_with_the_query_defaults(api: Api) -> None:
    csv_text = "number,list,source\n0311111111,,\n0322*,vip,web\n\n0333333333,,sheet\n"
    answer = await api.call(
        "POST", "/import", params={"list": "dnc", "source": "upload"}, content=csv_text,
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert (answer.status_code, answer.json()) == (201, {"added": 3})
    rows = (await api.call("GET")).json()["suppressions"]
    seen = [(r["number"], r["prefix"], r["list"], r["source"]) for r in rows]
    assert seen == [
        ("0311111111", False, "dnc", "upload"), ("0322", True, "vip", "web"),
        ("0333333333", False, "dnc", "sheet"),
    ]  # fmt: skip


async def test_a_file_with_a_bad_line_is_refused_whole_naming_the_line(api: Api) -> None:
    answer = await api.call("POST", "/import", content="0311111111\nhello\n0322\n")
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid_input" and "line 2" in body["message"]
    assert body["details"][0]["loc"] == ["body", "line 2", "number"]
    assert (await api.call("GET")).json()["total"] == 0


@pytest.mark.parametrize(
    ("entry", "field"),
    [({"number": "abc"}, "number"), ({"number": "031", "list": "a b"}, "list"),
     ({"number": "031", "expires_at": "2000-01-01 00:00:00"}, "expires_at"),
     ({"number": "031", "colour": "red"}, "colour")],
)  # fmt: skip
async def test_a_bad_entry_is_a_422_naming_its_field(
    api: Api, entry: dict[str, str], field: str
) -> None:
    answer = await api.call("POST", json={"entries": [{"number": "0311"}, entry]})
    assert answer.status_code == 422, answer.text
    assert any(field in [str(p) for p in d["loc"]] for d in answer.json()["details"])
    assert (await api.call("GET")).json()["total"] == 0


async def test_expiry_over_http_a_queues_ttl_and_a_tasks_expires_at(api: Api) -> None:
    base = api.base.rsplit("/", 1)[0]
    queue = await api.http.post(
        base + "/task_scheduler/", json={"name": "q", "task_ttl_seconds": 3600}, headers=api.auth
    )
    assert queue.status_code == 201 and queue.json()["task_ttl_seconds"] == 3600
    tasks_url = f"{base}/task_scheduler/{queue.json()['id']}/tasks/"
    body = {
        "tasks": [
            {"a_number": "0311", "b_number": "0322"},
            {"a_number": "0311", "b_number": "0322", "expires_at": "2099-01-01 00:00"},
        ]
    }
    added = await api.http.post(tasks_url, json=body, headers=api.auth)
    assert added.status_code == 201, added.text
    ttl_task, own = added.json()["tasks"]
    assert own["expires_at"] == "2099-01-01 00:00:00" and ttl_task["expires_at"] is not None
    read = await api.http.get(f"{tasks_url}{ttl_task['id']}", headers=api.auth)
    assert read.json()["expires_at"] == ttl_task["expires_at"]
    past = {"tasks": [{"a_number": "0311", "b_number": "0322", "expires_at": "2001-01-01 00:00"}]}
    refused = await api.http.post(tasks_url, json=past, headers=api.auth)
    assert refused.status_code == 422 and refused.json()["details"][0]["loc"][-1] == "expires_at"
    cleared = await api.http.put(
        f"{base}/task_scheduler/{queue.json()['id']}", json={"task_ttl_seconds": None},
        headers=api.auth,
    )  # fmt: skip
    assert cleared.json()["task_ttl_seconds"] is None


async def test_priority_over_http_at_creation_and_by_update(api: Api) -> None:
    base = api.base.rsplit("/", 1)[0]
    data = {"calling_number": "0311", "called_number": "0322", "audio_file": "a.wav"}
    job = {"type": "msg_call", "options": {"priority": 9}, "data": data}
    wav = await api.http.put(base + "/storage/a.wav", content=_wav(), headers=api.auth)
    assert wav.status_code in (200, 201), wav.text
    made = await api.http.post(base + "/jobs/", json=job, headers=api.auth)
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    assert made.json()["priority"] == 9
    changed = await api.http.put(f"{base}/tasks/{job_id}/priority", json={"priority": 2},
                                 headers=api.auth)  # fmt: skip
    assert changed.status_code == 200 and changed.json()["priority"] == 2
    bad = await api.http.put(f"{base}/tasks/{job_id}/priority", json={"priority": 10},
                             headers=api.auth)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["details"][0]["loc"][-1] == "priority"
    out_of_range = dict(job, options={"priority": -1})
    refused = await api.http.post(base + "/jobs/", json=out_of_range, headers=api.auth)
    assert refused.status_code == 422 and "priority" in str(refused.json()["details"])
    missing = await api.http.put(f"{base}/tasks/999999/priority", json={"priority": 1},
                                 headers=api.auth)  # fmt: skip
    assert missing.status_code == 404


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()
