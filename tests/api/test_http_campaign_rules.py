"""A client's campaign rules over HTTP, in process on both stores: frequency caps
(``/frequency_caps/``) and allowed caller ids (``/caller_ids/``) replaced and read back; bad
rules are a 422 naming the field; a task or job naming a caller id off the list is refused
with a 422 naming the field, and nothing is added."""

from __future__ import annotations

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
from support import make_wav


class Api:
    def __init__(self, http: httpx.AsyncClient, client_id: int, token: str) -> None:
        self.http, self.base = http, f"/api/ver1.0/client/{client_id}"
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        return await self.http.request(method, self.base + path, headers=self.auth, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def api(store: Store, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Api]:
    storage = Storage(tmp_path / "files")
    services = Services(store, clock, storage=storage)
    made = await services.clients.create_credentials("acme")
    make_wav(storage.resolve(made.client_id, "hi.wav"), seconds=0.5)
    transport = httpx.ASGITransport(create_app(services, Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        form = {"grant_type": "client_credentials", "client_id": made.key,
                "client_secret": made.secret}  # fmt: skip
        token = (await http.post("/oauth/token", data=form)).json()["access_token"]
        yield Api(http, made.client_id, token)


async def test_frequency_caps_are_replaced_and_read_back(api: Api) -> None:
    assert (await api.call("GET", "/frequency_caps/")).json() == {"rules": []}
    body = {"rules": [{"max_calls": 3, "window_seconds": 86400},
                      {"max_calls": 1, "window_seconds": 3600}]}  # fmt: skip
    put = await api.call("PUT", "/frequency_caps/", json=body)
    assert put.status_code == 200
    assert [r["text"] for r in put.json()["rules"]] == ["1/1h", "3/1d"]
    assert (await api.call("GET", "/frequency_caps/")).json() == put.json()
    assert (await api.call("PUT", "/frequency_caps/", json={"rules": []})).json() == {"rules": []}


async def test_a_bad_cap_is_a_422_naming_the_rule(api: Api) -> None:
    zero = await api.call("PUT", "/frequency_caps/",
                          json={"rules": [{"max_calls": 0, "window_seconds": 60}]})  # fmt: skip
    assert zero.status_code == 422
    assert zero.json()["details"] == [
        {"loc": ["body", "rules", 0], "msg": "max_calls is 1 to 1000"}
    ]
    same = [{"max_calls": 1, "window_seconds": 60}, {"max_calls": 2, "window_seconds": 60}]
    twice = await api.call("PUT", "/frequency_caps/", json={"rules": same})
    assert twice.status_code == 422 and twice.json()["details"][0]["loc"] == ["body", "rules"]


async def test_caller_ids_are_replaced_and_a_bad_one_is_a_422_naming_its_index(api: Api) -> None:
    put = await api.call("PUT", "/caller_ids/", json={"caller_ids": ["+33 1 84 80 00 00", "0506*"]})
    assert put.json() == {"caller_ids": ["+33184800000", "0506*"]}
    assert (await api.call("GET", "/caller_ids/")).json() == put.json()
    bad = await api.call("PUT", "/caller_ids/", json={"caller_ids": ["0506*", "sales"]})
    assert bad.status_code == 422
    assert bad.json()["details"][0]["loc"] == ["body", "caller_ids", 1]
    assert (await api.call("GET", "/caller_ids/")).json() == put.json()  # nothing changed


async def test_a_job_or_task_naming_a_caller_id_off_the_list_is_refused_naming_the_field(
    api: Api,
) -> None:
    await api.call("PUT", "/caller_ids/", json={"caller_ids": ["0506868*"]})
    job = {"type": "msg_call", "data": {"calling_number": "0999000000",
           "called_number": "0901234000", "audio_file": "hi.wav"}}  # fmt: skip
    refused = await api.call("POST", "/jobs/", json=job)
    assert refused.status_code == 422
    [detail] = refused.json()["details"]
    assert detail["loc"] == ["body", "data", "calling_number"]
    assert "'0999000000' is not on the client's allowed caller ids" in detail["msg"]
    job["data"]["calling_number"] = "0506868000"  # type: ignore[index]
    assert (await api.call("POST", "/jobs/", json=job)).status_code == 201
    queue = (await api.call("POST", "/task_scheduler/", json={"name": "cb"})).json()
    task = {"a_number": "0901234000", "b_number": "0907777000",
            "callback_params": {"caller_id_number": "0506868001"},
            "attempts_dst_ani_numbers": ["0506868002", "0123456789"]}  # fmt: skip
    tasks = await api.call("POST", f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": [task]})
    assert tasks.status_code == 422
    assert [d["loc"] for d in tasks.json()["details"]] == [[0, "attempts_dst_ani_numbers", 1]]
    assert "attempts_dst_ani_numbers" in tasks.json()["message"]
    listed = await api.call("GET", f"/task_scheduler/{queue['id']}/tasks/")
    assert listed.json()["total"] == 0  # nothing added
    await api.call("PUT", "/caller_ids/", json={"caller_ids": []})  # any caller id again
    tasks = await api.call("POST", f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": [task]})
    assert tasks.status_code == 201
