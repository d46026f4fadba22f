"""Issue 14's "Done when", over HTTP against a real ``ringback serve`` on SQLite with the
simulator (fast mode: no fax audio time passes; the T.30 sessions are real): the seed's SendFax
ivr_call job, posted unchanged, finishes ``success`` with its pages in the call record; a
received fax's TIFF and PDF are linked from the call record and download; a SendFax document
that cannot be faxed is refused when the job is added."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from PIL import Image, ImageDraw
from pydantic import TypeAdapter

from ringback.api.event_schemas import WebhookEvent
from ringback.domain.tasks import READ_BACK

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Helpers, LiveServer, Tenant

EVENTS: TypeAdapter[Any] = TypeAdapter(WebhookEvent)

#: the seed's job (shared/seeds: AddJob, "ivr_call"), as it is written there
SEED_JOB = {
    "type": "ivr_call",
    "data": {
        "calling_number": "0506868000",
        "called_number": "09012341234",
        "ivr_xml": {"type": "inline", "data": "<IVR><SendFax>some_fax.tiff</SendFax></IVR>"},
    },
}


@pytest.fixture(scope="module")
def owner(fast_sim_live: LiveServer) -> Tenant:
    name = f"fax-{uuid.uuid4().hex[:6]}"
    return fast_sim_live.make_tenants(name)[name]


def _tiff(pages: int = 2) -> bytes:
    images = []
    for number in range(pages):
        page = Image.new("L", (1000, 1300), 255)
        ImageDraw.Draw(page).rectangle((100, 100 + 80 * number, 900, 300), outline=0, width=4)
        images.append(page)
    out = io.BytesIO()
    images[0].save(out, format="TIFF", dpi=(120, 120), save_all=True, append_images=images[1:])
    return out.getvalue()


def _put(owner: Tenant, path: str, content: bytes) -> None:
    answer = owner.http.put(f"/storage/{path}", content=content)
    assert answer.status_code in (200, 201), answer.text


def _download(owner: Tenant, link: str) -> bytes:
    prefix = owner.base
    assert link.startswith(prefix + "/storage/"), link
    answer = owner.http.get(link.removeprefix(prefix))
    assert answer.status_code == 200, answer.text
    return answer.content


def test_the_seeds_sendfax_job_posted_unchanged_finishes_success_with_its_pages(
    owner: Tenant, rb: type[Helpers]
) -> None:
    _put(owner, "some_fax.tiff", _tiff(pages=2))
    answer = owner.http.post("/jobs/", json=SEED_JOB)
    assert answer.status_code == 201, answer.text
    job = rb.poll(
        lambda: owner.http.get(f"/jobs/{answer.json()['id']}"),
        lambda body: body["state"] in ("completed", "failed"),
        timeout=60.0,
        what="the fax job to end",
    )
    assert (job["finish_result"], job["finish_comment"]) == ("success", "fax sent: 2 pages"), job
    [call] = job["calls"]
    fax = call["fax"]
    assert (fax["operation"], fax["file"], fax["code"], fax["pages"]) == (
        "transmission", "some_fax.tiff", 0, 2,
    )  # fmt: skip
    assert _download(owner, fax["file_url"]) == _tiff(pages=2)
    history = owner.http.get(f"/call_history/{call['call_uuid']}")
    assert history.status_code == 200, history.text
    [leg] = history.json()["cdr"]
    assert leg["fax"]["pages"] == 2 and leg["fax"]["text"] == "OK"


def test_a_received_fax_is_linked_from_the_call_record_as_tiff_and_pdf(owner: Tenant) -> None:
    number = f"05{uuid.uuid4().int % 10**8:08d}"
    _put(owner, "fax-in.xml", b"<IVR><ReceiveFax>inbox/today.tif</ReceiveFax></IVR>")
    route = owner.http.put(f"/numbers/{number}", json={"ivr_file": "fax-in.xml"})
    assert route.status_code in (200, 201), route.text
    answer = owner.http.post(
        "/calls/simulate", json={"called_number": number, "calling_number": "0312345678"}
    )
    assert answer.status_code == 200, answer.text
    simulated = answer.json()
    assert simulated["status"] == "completed", simulated
    fax = simulated["fax"]
    assert (fax["operation"], fax["code"], fax["pages"]) == ("reception", 0, 1)
    assert fax["tiff"] == "received_faxes/inbox/today.tif"
    assert fax["pdf"] == "received_faxes/inbox/today.pdf"

    history = owner.http.get(f"/call_history/{simulated['call_uuid']}")
    assert history.status_code == 200, history.text
    [leg] = history.json()["cdr"]
    linked: dict[str, Any] = leg["fax"]
    assert linked["tiff_url"] == fax["tiff_url"] and linked["pdf_url"] == fax["pdf_url"]
    tiff = _download(owner, linked["tiff_url"])
    assert tiff[:4] in (b"II*\x00", b"MM\x00*")
    assert _download(owner, linked["pdf_url"]).startswith(b"%PDF-")
    assert _download(owner, linked["file_url"]) == tiff


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "doesn't exist"), (b"not a document at all", "cannot fax bad.tiff")],
)
def test_a_sendfax_document_that_cannot_be_faxed_is_refused_when_the_job_is_added(
    owner: Tenant, rb: type[Helpers], content: bytes | None, why: str, tmp_path: Path
) -> None:
    if content is not None:
        _put(owner, "bad.tiff", content)
    else:
        owner.http.delete("/storage/bad.tiff")
    job = {**SEED_JOB, "data": {**SEED_JOB["data"]}}
    job["data"]["ivr_xml"] = {"type": "inline", "data": "<IVR><SendFax>bad.tiff</SendFax></IVR>"}
    error = rb.error(owner.http.post("/jobs/", json=job), 422, "invalid_input")
    [detail] = error["details"]
    assert detail["loc"][-2:] == ["ivr_xml", "data"], detail
    assert "bad.tiff" in detail["msg"] and why in detail["msg"], detail


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def test_webhooks_of_a_fax_job_carry_the_fax_result(owner: Tenant, rb: type[Helpers]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _put(owner, "some_fax.tiff", _tiff(pages=2))
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        job = {
            **SEED_JOB,
            "options": {"webhooks": [{"url": url, "events": ["task.finished", "call.ended"]}]},
        }
        answer = owner.http.post("/jobs/", json=job)
        assert answer.status_code == 201, answer.text
        task_id = answer.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            types = {
                b["type"] for b in _Receiver.bodies if b["task"] and b["task"]["id"] == task_id
            }
            if types >= {"task.finished", "call.ended"}:
                break
            time.sleep(0.1)
        bodies = {
            b["type"]: b for b in _Receiver.bodies if b["task"] and b["task"]["id"] == task_id
        }
        assert set(bodies) >= {"task.finished", "call.ended"}, bodies
    finally:
        server.shutdown()
        thread.join()
    for body in bodies.values():  # as documented in /openapi.json (webhooks)
        event = EVENTS.validate_python(body, context=READ_BACK)
        assert event.model_dump(mode="json", by_alias=True, exclude_unset=True) == body
    ended = bodies["call.ended"]["call"]["fax"]
    assert (ended["operation"], ended["code"], ended["pages"]) == ("transmission", 0, 2)
    finished = bodies["task.finished"]
    assert finished["data"]["comment"] == "fax sent: 2 pages"
    [call] = finished["task"]["calls"]
    assert call["fax"]["pages"] == 2 and call["fax"]["file_url"].endswith("/storage/some_fax.tiff")
