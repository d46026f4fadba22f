"""Client storage over HTTP on both stores: put / get / list / delete, paths that would leave
the client's folder (400, nothing written), and the size limit (413)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import LiveServer, Tenant

SEED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _files(tenant: Tenant, **params: str) -> dict[str, dict[str, Any]]:
    answer = tenant.http.get("/storage/", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == len(body["files"])
    return {item["path"]: item for item in body["files"]}


def _raw(tenant: Tenant, live: LiveServer, method: str, raw_path: str, **kw: Any) -> httpx.Response:
    """A request whose path is sent exactly as written (no dot-segment clean-up by httpx)."""
    url = httpx.URL(f"{live.url}{tenant.base}/storage/").copy_with(
        raw_path=f"{tenant.base}/storage/{raw_path}".encode()
    )
    return tenant.http.request(method, url, **kw)


def _documented_limit(live: LiveServer) -> int:
    document = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    put = document["paths"]["/api/ver1.0/client/{client_id}/storage/{path}"]["put"]
    found = re.search(r"(\d+) bytes", put["requestBody"]["description"])
    assert found, put["requestBody"]
    return int(found.group(1))


def _everything_under(root: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(folder, name), root)
        for folder, dirs, files in os.walk(root)
        for name in files + dirs
    }


def test_put_stores_a_new_file_201_then_replaces_it_200(alice: Tenant) -> None:
    first = alice.http.put("/storage/audio/greeting.wav", content=b"RIFF-one")
    assert first.status_code == 201, first.text
    info = first.json()
    assert info["path"] == "audio/greeting.wav"
    assert info["size"] == 8
    assert SEED_TIME.match(info["modified_utc"]), info
    second = alice.http.put("/storage/audio/greeting.wav", content=b"RIFF-second")
    assert second.status_code == 200, second.text
    assert second.json()["size"] == 11
    assert alice.http.get("/storage/audio/greeting.wav").content == b"RIFF-second"


def test_get_returns_the_bytes_with_a_content_type_from_the_name(alice: Tenant) -> None:
    data = bytes(range(256)) * 40
    alice.http.put("/storage/bin/blob.wav", content=data)
    alice.http.put("/storage/ivr/menu.xml", content=b"<Response/>")
    alice.http.put("/storage/raw/no-extension", content=b"?")
    wav = alice.http.get("/storage/bin/blob.wav")
    assert wav.status_code == 200, wav.text
    assert wav.content == data
    assert int(wav.headers["content-length"]) == len(data)
    assert "wav" in wav.headers["content-type"]
    assert "xml" in alice.http.get("/storage/ivr/menu.xml").headers["content-type"]
    plain = alice.http.get("/storage/raw/no-extension").headers["content-type"]
    assert plain == "application/octet-stream"


def test_list_shows_every_file_with_its_size_and_filters_by_prefix(alice: Tenant) -> None:
    alice.http.put("/storage/list/a.txt", content=b"aa")
    alice.http.put("/storage/list/deep/b.txt", content=b"bbb")
    alice.http.put("/storage/other/c.txt", content=b"c")
    files = _files(alice)
    assert files["list/a.txt"]["size"] == 2
    assert files["list/deep/b.txt"]["size"] == 3
    assert "other/c.txt" in files
    assert list(files) == sorted(files)
    only = _files(alice, prefix="list/")
    assert set(only) == {"list/a.txt", "list/deep/b.txt"}


def test_an_empty_body_is_422_and_stores_nothing(alice: Tenant, rb: Any) -> None:
    error = rb.error(alice.http.put("/storage/empty.txt", content=b""), 422, "invalid_input")
    assert ["body"] in rb.locs(error), error
    assert "empty.txt" not in _files(alice)


def test_delete_removes_the_file(alice: Tenant, rb: Any) -> None:
    alice.http.put("/storage/gone/x.txt", content=b"x")
    answer = alice.http.delete("/storage/gone/x.txt")
    assert answer.status_code == 204, answer.text
    rb.error(alice.http.get("/storage/gone/x.txt"), 404, "not_found")
    assert "gone/x.txt" not in _files(alice)
    rb.error(alice.http.delete("/storage/gone/x.txt"), 404, "not_found")


def test_missing_file_is_404(alice: Tenant, rb: Any) -> None:
    rb.error(alice.http.get("/storage/never/was.txt"), 404, "not_found")


def test_a_folder_is_not_a_file(alice: Tenant, rb: Any) -> None:
    alice.http.put("/storage/folder/inside.txt", content=b"x")
    rb.error(alice.http.get("/storage/folder"), 404, "not_found")
    rb.error(alice.http.put("/storage/folder", content=b"x"), 409, "conflict")
    assert alice.http.get("/storage/folder/inside.txt").content == b"x"


ESCAPES = [
    pytest.param("..%2F..%2Fescape.txt", id="dotdot-encoded-slash"),
    pytest.param("%2E%2E/%2E%2E/escape.txt", id="encoded-dotdot"),
    pytest.param("a/%2E%2E/%2E%2E/%2E%2E/escape.txt", id="dotdot-after-a-folder"),
    pytest.param("%2E%2E", id="dotdot-alone"),
    pytest.param("%2Fetc%2Fpasswd", id="absolute-encoded"),
    pytest.param("/etc/passwd", id="absolute-double-slash"),
    pytest.param("..%5C..%5Cescape.txt", id="backslashes"),
    pytest.param("C:%5Cescape.txt", id="windows-drive"),
    pytest.param("a%00b.txt", id="nul-byte"),
]


@pytest.mark.parametrize("raw_path", ESCAPES)
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_a_path_leaving_the_client_folder_is_400_and_nothing_is_written(
    alice: Tenant, live: LiveServer, rb: Any, raw_path: str, method: str
) -> None:
    root = live.workdir
    before = _everything_under(root / "storage")
    outside = _everything_under(root) - {p for p in _everything_under(root) if "storage" in p}
    kwargs: dict[str, Any] = {"content": b"escaped!"} if method == "PUT" else {}
    answer = _raw(alice, live, method, raw_path, **kwargs)
    rb.error(answer, 400, "bad_path")
    assert _everything_under(root / "storage") == before
    assert not (root / "escape.txt").exists() and not (root.parent / "escape.txt").exists()
    now_outside = {p for p in _everything_under(root) if "storage" not in p}
    assert now_outside - outside <= {"ringback.db-journal"}, now_outside - outside


def test_a_symlink_out_of_the_folder_is_refused_and_not_listed(
    alice: Tenant, live: LiveServer, rb: Any, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    folder = live.workdir / "storage" / str(alice.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link.txt").symlink_to(secret)
    try:
        rb.error(alice.http.get("/storage/link.txt"), 400, "bad_path")
        rb.error(alice.http.put("/storage/link.txt", content=b"overwrite"), 400, "bad_path")
        assert secret.read_text() == "not yours"
        assert "link.txt" not in _files(alice)
    finally:
        (folder / "link.txt").unlink()


# --- size -------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_413_and_not_stored(
    alice: Tenant, live: LiveServer, rb: Any
) -> None:
    limit = _documented_limit(live)
    answer = alice.http.put("/storage/big/over.bin", content=b"\0" * (limit + 1), timeout=120)
    rb.error(answer, 413, "too_large")
    assert "big/over.bin" not in _files(alice)


def test_a_streamed_file_over_the_size_limit_is_413_and_not_stored(
    alice: Tenant, live: LiveServer, rb: Any
) -> None:
    limit = _documented_limit(live)
    chunk = b"\0" * (1024 * 1024)

    def body() -> Iterator[bytes]:  # no Content-Length: the server must count while reading
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    answer = alice.http.put("/storage/big/streamed.bin", content=body(), timeout=120)
    rb.error(answer, 413, "too_large")
    assert "big/streamed.bin" not in _files(alice)


def test_a_file_of_exactly_the_documented_limit_is_stored(alice: Tenant, live: LiveServer) -> None:
    limit = _documented_limit(live)
    answer = alice.http.put("/storage/big/limit.bin", content=b"\1" * limit, timeout=120)
    assert answer.status_code == 201, f"{limit} bytes: {answer.status_code} {answer.text[:300]}"
    assert _files(alice)["big/limit.bin"]["size"] == limit
    alice.http.delete("/storage/big/limit.bin")
