"""Smoke tests of the call-history and storage routes, on SQLite and PostgreSQL.

A minimal app holds just these two routers; call records come from tasks run through the
engine with the simulator in fast mode.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringback.api import errors
from ringback.api.routes import call_history
from ringback.api.routes import storage as storage_routes
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.task_rules import format_seed_time
from ringback.service import Services, token_digest
from ringback.store.db import Store
from worker_env import B_NUMBER, BUSY, CALLER, OK, WorkerEnv, worker_env

PREFIX = "/api/ver1.0"


@dataclass
class Api(WorkerEnv):
    http: httpx.AsyncClient
    other_id: int
    app: FastAPI

    @property
    def base(self) -> str:
        return f"/client/{self.client_id}"


@pytest.fixture
async def api(store: Store, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Api]:
    work = await worker_env(store, clock, tmp_path)
    client_id, storage = work.client_id, work.storage
    other_id = await store.ensure_client("other", clock.now())
    expires = clock.now() + timedelta(days=1)
    for owner, token in ((client_id, "t0k"), (other_id, "other-t0k")):
        key = f"rb_{token}"
        await store.add_credential(owner, key, "scrypt$unused", clock.now())
        credential = await store.find_credential(key)
        assert credential is not None
        await store.add_token(token_digest(token), credential, expires, clock.now())
    app = FastAPI()
    errors.install(app)
    app.include_router(call_history.router, prefix=PREFIX)
    app.include_router(storage_routes.router, prefix=PREFIX)
    app.state.services = Services(store, clock, storage=storage)
    app.state.clock, app.state.storage = clock, storage
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url=f"http://test{PREFIX}",
        headers={"Authorization": "Bearer t0k"},
    ) as http:
        yield Api(**work.parts(), http=http, other_id=other_id, app=app)


# --- call history -------------------------------------------------------------------------


async def _three_calls(api: Api) -> tuple[int, int, int]:
    """A msg_call now, a connected callback a minute later, a callback to a busy B after
    two minutes."""
    msg = await api.msg_call()
    assert await api.worker.drain() == 1
    api.clock.advance(60)
    connected = await api.callback()
    assert await api.worker.drain() == 1
    api.clock.advance(60)
    busy = await api.callback(b_number=BUSY, try_count=1)
    assert await api.worker.drain() == 1
    return msg, connected, busy


async def test_call_history_records_sum_up_the_legs(api: Api) -> None:
    t0 = api.clock.now()
    msg_id, connected_id, busy_id = await _three_calls(api)

    got = await api.http.get(f"{api.base}/call_history/")
    assert got.status_code == 200, got.text
    page = got.json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 100, 0)
    msg, connected, busy = page["calls"]

    assert msg["task_id"] == msg_id and msg["attempt"] == 1
    assert msg["flow"] == "out" and msg["client_owner_id"] == api.client_id
    assert (msg["from_username"], msg["to_username"]) == (CALLER, OK)
    assert (msg["result"], msg["application"]) == ("answered", "msg_call")
    assert msg["start_time_gmt"] == format_seed_time(t0)
    assert msg["answer_time_gmt"] == msg["start_time_gmt"]  # fast simulator: no ringing
    assert msg["end_time_gmt"] is not None and msg["duration"] == 0
    assert msg["bridged_time_gmt"] is None and msg["bridged_duration"] is None
    assert msg["bridged_username"] is None
    [leg] = msg["cdr"]
    assert (leg["leg"], leg["from"], leg["to"], leg["sip_code"]) == ("main", CALLER, OK, 200)
    assert leg["outcome"] == "answered" and leg["billsec"] == 0 and leg["duration"] == 0
    assert leg["played"] and leg["start_time_gmt"] == msg["start_time_gmt"]
    assert set(leg) >= {"hangup_cause", "hangup_disposition", "ring_time_gmt", "dtmf_received"}

    assert connected["task_id"] == connected_id and connected["application"] == "callback"
    assert (connected["from_username"], connected["to_username"]) == (OK, B_NUMBER)
    assert connected["result"] == "answered"
    assert connected["start_time_gmt"] == format_seed_time(t0 + timedelta(seconds=60))
    assert connected["bridged_username"] == B_NUMBER
    assert connected["bridged_time_gmt"] is not None and connected["bridged_duration"] == 0
    legs = {leg["leg"]: leg for leg in connected["cdr"]}
    assert set(legs) == {"a", "b"}
    assert legs["a"]["bridged_with"] == legs["b"]["leg_uuid"]
    assert legs["a"]["to"] == OK and legs["b"]["to"] == B_NUMBER

    assert busy["task_id"] == busy_id and busy["application"] == "callback"
    assert (busy["to_username"], busy["result"]) == (BUSY, "busy")
    assert (
        busy["hangup_cause"]
        == next(leg for leg in busy["cdr"] if leg["leg"] == "b")["hangup_cause"]
    )
    assert busy["bridged_time_gmt"] is None and busy["bridged_username"] is None

    one = await api.http.get(f"{api.base}/call_history/{connected['call_uuid']}")
    assert one.status_code == 200 and one.json() == connected


async def test_call_history_filters_by_period_and_pages(api: Api) -> None:
    t0 = api.clock.now()
    await _three_calls(api)

    async def uuids(**params: Any) -> tuple[list[str], int]:
        got = await api.http.get(f"{api.base}/call_history/", params=params)
        assert got.status_code == 200, got.text
        body = got.json()
        return [call["call_uuid"] for call in body["calls"]], body["total"]

    every, total = await uuids()
    assert total == 3 and len(every) == 3
    later = format_seed_time(t0 + timedelta(seconds=30))
    assert await uuids(start=later) == (every[1:], 2)
    iso_end = (t0 + timedelta(seconds=90)).astimezone().isoformat()  # any zone will do
    assert await uuids(start=later, end=iso_end) == (every[1:2], 1)
    assert await uuids(end=format_seed_time(t0)) == ([], 0)  # end is exclusive
    assert await uuids(start=later, end=format_seed_time(t0)) == ([], 0)  # empty, not an error
    assert await uuids(limit=1, offset=1) == (every[1:2], 3)
    assert await uuids(limit=2, offset=2) == (every[2:], 3)
    assert await uuids(offset=10) == ([], 3)

    bad = await api.http.get(f"{api.base}/call_history/", params={"start": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_input"
    assert bad.json()["details"][0]["loc"] == ["query", "start"]
    naive = await api.http.get(f"{api.base}/call_history/", params={"end": "2026-01-05T12:00"})
    assert naive.status_code == 422 and naive.json()["details"][0]["loc"] == ["query", "end"]
    for limit in (0, 1001):
        got = await api.http.get(f"{api.base}/call_history/", params={"limit": limit})
        assert got.status_code == 422 and "limit" in got.json()["message"]
    # a time before year 1 once in UTC is still a time: no calls before it, not an error
    early = await api.http.get(
        f"{api.base}/call_history/", params={"end": "0001-01-01T00:00:00+05:00"}
    )
    assert early.status_code == 200 and early.json()["total"] == 0
    late = await api.http.get(
        f"{api.base}/call_history/", params={"start": "9999-12-31T23:00:00-05:00"}
    )
    assert late.status_code == 200 and late.json()["total"] == 0


async def test_call_history_is_private_to_its_client(api: Api) -> None:
    await api.msg_call()
    await api.worker.drain()
    [call] = (await api.http.get(f"{api.base}/call_history/")).json()["calls"]
    path = f"{api.base}/call_history/{call['call_uuid']}"

    other = {"Authorization": "Bearer other-t0k"}
    assert (await api.http.get(path, headers=other)).status_code == 404
    theirs = await api.http.get(f"/client/{api.other_id}/call_history/", headers=other)
    assert theirs.status_code == 200 and theirs.json()["total"] == 0
    via_other = f"/client/{api.other_id}/call_history/{call['call_uuid']}"
    got = await api.http.get(via_other, headers=other)
    assert got.status_code == 404 and got.json()["error"] == "not_found"

    anonymous = await api.http.get(path, headers={"Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
    unknown = await api.http.get(f"{api.base}/call_history/no-such-call")
    assert unknown.status_code == 404
    assert (await api.http.get(f"{api.base}/call_history/x%00y")).status_code == 404
    newline = await api.http.get(f"{api.base}/call_history/%0A")  # not the list
    assert newline.status_code == 404


# --- storage ------------------------------------------------------------------------------


async def test_storage_put_get_list_delete(api: Api) -> None:
    url = f"{api.base}/storage/audio/greeting.wav"
    created = await api.http.put(url, content=b"RIFF1234", headers={"Content-Type": "audio/wav"})
    assert created.status_code == 201, created.text
    assert created.json()["path"] == "audio/greeting.wav" and created.json()["size"] == 8
    assert created.json()["modified_utc"].count(":") == 2
    on_disk = api.storage.client_dir(api.client_id) / "audio" / "greeting.wav"
    assert on_disk.read_bytes() == b"RIFF1234"

    replaced = await api.http.put(url, content=b"RIFF5678xx")
    assert replaced.status_code == 200 and replaced.json()["size"] == 10

    got = await api.http.get(url)
    assert got.status_code == 200 and got.content == b"RIFF5678xx"
    assert got.headers["content-type"].startswith("audio/")
    assert got.headers["content-length"] == "10"
    xml = await api.http.put(f"{api.base}/storage/ivr/menu.xml", content=b"<Response/>")
    assert xml.status_code == 201
    blob = await api.http.put(f"{api.base}/storage/data/blob", content=b"\x00\x01")
    assert blob.status_code == 201
    got = await api.http.get(f"{api.base}/storage/data/blob")
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.content == b"\x00\x01"

    listing = (await api.http.get(f"{api.base}/storage/")).json()
    paths = [item["path"] for item in listing["files"]]
    assert paths == ["audio/greeting.wav", "data/blob", "hi.wav", "ivr/menu.xml"]
    assert listing["total"] == 4
    audio = (await api.http.get(f"{api.base}/storage/", params={"prefix": "audio/"})).json()
    assert [item["path"] for item in audio["files"]] == ["audio/greeting.wav"]
    assert audio["files"][0]["size"] == 10

    assert (await api.http.delete(url)).status_code == 204
    assert (await api.http.get(url)).status_code == 404
    missing = await api.http.delete(url)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert not on_disk.exists()

    folder = await api.http.put(f"{api.base}/storage/audio", content=b"x")
    assert folder.status_code == 409
    assert (await api.http.get(f"{api.base}/storage/audio")).status_code == 404
    under_file = await api.http.put(f"{api.base}/storage/data/blob/inner", content=b"x")
    assert under_file.status_code == 409


async def test_storage_is_private_to_its_client(api: Api) -> None:
    url = f"{api.base}/storage/hi.wav"
    other = {"Authorization": "Bearer other-t0k"}
    assert (await api.http.get(url, headers=other)).status_code == 404
    assert (await api.http.put(url, content=b"x", headers=other)).status_code == 404
    assert (await api.http.delete(url, headers=other)).status_code == 404
    assert (await api.http.get(url, headers={"Authorization": ""})).status_code == 401
    theirs = await api.http.get(f"/client/{api.other_id}/storage/", headers=other)
    assert theirs.json() == {"files": [], "total": 0}
    assert api.storage.resolve(api.client_id, "hi.wav").stat().st_size > 8


@pytest.mark.parametrize(
    "path",
    [
        "%2E%2E/%2E%2E/escape.txt",
        "a/%2E%2E/%2E%2E/escape.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "a%00b",
        "..%5C..%5Cescape.txt",
        "C:%5Cescape.txt",
        "%20",
        "%2E",
        "a/%2E%2E",
    ],
)
async def test_storage_refuses_paths_that_leave_the_client_folder(api: Api, path: str) -> None:
    url = f"{api.base}/storage/{path}"
    for method in ("PUT", "GET", "DELETE"):
        got = await api.http.request(method, url, content=b"x" if method == "PUT" else None)
        if path == "" and method == "GET":
            assert got.status_code == 200  # the listing
            continue
        assert got.status_code == 400, (method, got.text)
        assert got.json()["error"] == "bad_path"
    outside = api.storage.root
    assert not (outside / "escape.txt").exists() and not (outside.parent / "escape.txt").exists()


async def test_storage_needs_a_file_path_and_a_body(api: Api) -> None:
    folder = f"{api.base}/storage/"
    for method in ("PUT", "DELETE"):
        got = await api.http.request(method, folder, content=b"x" if method == "PUT" else None)
        assert got.status_code == 405 and got.headers["allow"] == "GET"
    assert (await api.http.post(f"{api.base}/storage/hi.wav", content=b"x")).status_code == 405
    newline = await api.http.put(f"{api.base}/storage/a%0A", content=b"x")
    assert newline.status_code == 400 and newline.json()["error"] == "bad_path"
    empty = await api.http.put(f"{api.base}/storage/empty.txt", content=b"")
    assert empty.status_code == 422 and empty.json()["details"][0]["loc"] == ["body"]
    long_name = await api.http.put(f"{api.base}/storage/{'n' * 241}", content=b"x")
    assert long_name.status_code == 400 and long_name.json()["error"] == "bad_path"
    longest = await api.http.put(f"{api.base}/storage/d/{'n' * 240}", content=b"x")
    assert longest.status_code == 201


async def test_storage_refuses_symlinks_out_of_the_folder(api: Api, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (api.storage.client_dir(api.client_id) / "link.txt").symlink_to(secret)
    got = await api.http.get(f"{api.base}/storage/link.txt")
    assert got.status_code == 400 and got.json()["error"] == "bad_path"
    put = await api.http.put(f"{api.base}/storage/link.txt", content=b"overwrite")
    assert put.status_code == 400 and secret.read_text() == "secret"
    listing = (await api.http.get(f"{api.base}/storage/")).json()
    assert [item["path"] for item in listing["files"]] == ["hi.wav"]


async def test_storage_refuses_files_over_the_size_limit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{api.base}/storage/big.bin"
    limit = storage_routes.MAX_FILE_BYTES
    assert limit == 16 * 1024 * 1024  # the API's one body limit (README)
    exact = await api.http.put(url, content=b"\x00" * limit)
    assert exact.status_code == 201 and exact.json()["size"] == limit
    over = await api.http.put(f"{api.base}/storage/bigger.bin", content=b"\x00" * (limit + 1))
    assert over.status_code == 413 and over.json()["error"] == "too_large"

    monkeypatch.setattr(storage_routes, "MAX_FILE_BYTES", 1000)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(5):
            yield b"\x00" * 300

    streamed = await api.http.put(f"{api.base}/storage/streamed.bin", content=chunked())
    assert streamed.status_code == 413 and streamed.json()["error"] == "too_large"
    listing = (await api.http.get(f"{api.base}/storage/")).json()
    assert [item["path"] for item in listing["files"]] == ["big.bin", "hi.wav"]


def test_openapi_describes_every_response(api: Api) -> None:
    schema = api.app.openapi()
    paths = schema["paths"]
    history = paths[f"{PREFIX}/client/{{client_id}}/call_history/"]["get"]["responses"]
    assert {"200", "401", "404", "422"} <= set(history)
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert history["422"]["content"]["application/json"]["schema"] == error_ref
    files = paths[f"{PREFIX}/client/{{client_id}}/storage/{{path}}"]
    assert {"200", "201", "400", "401", "404", "413", "422"} <= set(files["put"]["responses"])
    assert "*/*" in files["get"]["responses"]["200"]["content"]
    assert set(files["delete"]["responses"]) >= {"204", "400", "401", "404"}
    body = files["put"]["requestBody"]["content"]
    assert body["application/octet-stream"]["schema"]["format"] == "binary"


_TRICKY = st.text(alphabet=st.sampled_from(list("/\\.: \t\n\x00\x7faZ:é")), max_size=12)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    relpath=_TRICKY
    | st.text(max_size=60)
    | st.sampled_from(["a" * 240, "a" * 241, "x/" + "b" * 241])
)
def test_documented_path_pattern_is_what_the_routes_accept(tmp_path: Path, relpath: str) -> None:
    storage = Storage(tmp_path / "storage")
    documented = re.fullmatch(storage_routes.PATH_PATTERN, relpath) is not None
    try:
        storage_routes._resolve(storage, 1, relpath)
    except errors.ApiError as exc:
        assert exc.status_code == 400
        accepted = False
    else:
        accepted = True
    assert documented == accepted, relpath
