"""Inbound routing (``/numbers/``) and simulated inbound calls (``/calls/simulate``) over HTTP,
against a real ``ringback serve`` on both stores."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Helpers, Tenant

SEED_XML = Path(__file__).parent.parent / "ivr" / "documents" / "valid_seed_addjob_callback.xml"
#: a mono 16-bit 8 kHz WAV of 0.5 s of silence
SILENCE_WAV = (
    b"RIFF" + (36 + 8000).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    + b"data" + (8000).to_bytes(4, "little") + bytes(8000)
)  # fmt: skip


def new_number() -> str:
    return "050" + str(uuid.uuid4().int)[:8]


def upload(tenant: Tenant, path: str, content: bytes) -> None:
    answer = tenant.http.put(f"/storage/{path}", content=content)
    assert answer.status_code in (200, 201), answer.text


def route(tenant: Tenant, number: str, **body: Any) -> dict[str, Any]:
    answer = tenant.http.put(f"/numbers/{number}", json=body)
    assert answer.status_code in (200, 201), answer.text
    made: dict[str, Any] = answer.json()
    return made


def test_a_number_is_routed_read_listed_replaced_and_deleted(alice: Tenant) -> None:
    number = new_number()
    upload(alice, "ivr/menu.xml", b"<IVR><Speak>hello</Speak></IVR>")
    made = alice.http.put(f"/numbers/{number}", json={"ivr_file": "ivr/menu.xml"})
    assert made.status_code == 201, made.text
    assert made.json()["ivr_file"] == "ivr/menu.xml" and made.json()["answer_url"] is None
    assert alice.http.get(f"/numbers/{number}").json() == made.json()
    assert number in [n["number"] for n in alice.http.get("/numbers/").json()["numbers"]]

    replaced = alice.http.put(
        f"/numbers/{number}",
        json={"answer_url": "http://127.0.0.1:9/a, http://127.0.0.1:9/b", "notify_completed": True},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["answer_url"] == "http://127.0.0.1:9/a,http://127.0.0.1:9/b"
    assert replaced.json()["ivr_file"] is None and replaced.json()["notify_completed"] is True

    assert alice.http.delete(f"/numbers/{number}").status_code == 204
    assert alice.http.get(f"/numbers/{number}").status_code == 404
    assert alice.http.delete(f"/numbers/{number}").status_code == 404


def test_a_number_routed_by_one_client_is_refused_to_another_and_invisible_to_it(
    alice: Tenant, bob: Tenant, rb: type[Helpers]
) -> None:
    number = new_number()
    upload(alice, "x.xml", b"<IVR><Hangup/></IVR>")
    upload(bob, "y.xml", b"<IVR><Hangup/></IVR>")
    route(alice, number, ivr_file="x.xml")
    rb.error(bob.http.put(f"/numbers/{number}", json={"ivr_file": "y.xml"}), 409, "conflict")
    rb.error(bob.http.get(f"/numbers/{number}"), 404, "not_found")
    rb.error(bob.http.delete(f"/numbers/{number}"), 404, "not_found")
    assert alice.http.get(f"/numbers/{number}").json()["ivr_file"] == "x.xml"


def test_a_route_to_a_missing_or_broken_ivr_file_is_refused_naming_the_field(
    alice: Tenant, rb: type[Helpers]
) -> None:
    number = new_number()
    missing = rb.error(alice.http.put(f"/numbers/{number}", json={"ivr_file": "nope.xml"}), 422)
    assert missing["details"][0]["loc"] == ["body", "ivr_file"]
    assert "upload it first" in missing["details"][0]["msg"]
    upload(alice, "broken.xml", b"<IVR><Play>a.wav</Pla></IVR>")
    broken = rb.error(alice.http.put(f"/numbers/{number}", json={"ivr_file": "broken.xml"}), 422)
    assert "broken.xml is not a valid IVR document: line 1" in broken["details"][0]["msg"]
    rb.error(alice.http.get(f"/numbers/{number}"), 404, "not_found")  # nothing stored


def test_a_bad_route_is_refused_naming_the_field_and_stores_nothing(
    alice: Tenant, rb: type[Helpers]
) -> None:
    number = new_number()
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "body"),
        ({"ivr_file": "a.xml", "answer_url": "http://127.0.0.1/x"}, "body"),
        ({"answer_url": "ftp://example.com/x"}, "answer_url"),
        ({"answer_url": "http://user:pw@127.0.0.1/x"}, "answer_url"),
        ({"ivr_file": "../etc/passwd"}, "ivr_file"),
        ({"ivr_file": "a.xml", "notify_completed": True}, "body"),
        ({"ivr_file": "a.xml", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        error = rb.error(alice.http.put(f"/numbers/{number}", json=body), 422, "invalid_input")
        assert any(field in [str(p) for p in loc] for loc in rb.locs(error)), (body, error)
    rb.error(alice.http.put("/numbers/12ab", json={"ivr_file": "a.xml"}), 422, "invalid_input")
    assert alice.http.get(f"/numbers/{number}").status_code == 404


def test_simulating_a_call_to_an_unrouted_number_answers_404(
    alice: Tenant, rb: type[Helpers]
) -> None:
    answer = alice.http.post("/calls/simulate", json={"called_number": new_number()})
    rb.error(answer, 404, "not_found")


def test_the_seed_example_as_an_inbound_call_books_the_call_back_and_it_plays(
    alice: Tenant, rb: type[Helpers]
) -> None:
    """Seed 000: the caller hears the confirmation; a msg_call to the caller's number is due
    10 s later; once it has run, its call record shows the message played."""
    queue = alice.new_queue(status="on")  # AddJob puts jobs on the client's job queue
    assert queue["id"]
    number, caller = new_number(), "0901112222"
    upload(alice, "seed.xml", SEED_XML.read_bytes())
    upload(alice, "some_message.wav", SILENCE_WAV)
    route(alice, number, ivr_file="seed.xml")

    before = datetime.now().astimezone()
    answer = alice.http.post(
        "/calls/simulate", json={"called_number": number, "calling_number": caller}
    )
    assert answer.status_code == 200, answer.text
    call = answer.json()
    assert call["status"] == "completed" and call["error"] is None, call
    spoken = [e["detail"] for e in call["trace"] if e["element"] == "Speak"]
    assert spoken == ["'Hi, thank you for calling. I am calling you back in a few seconds.'"]
    assert [p.get("text") for p in call["played"] if p.get("type") == "speak"] == [
        "Hi, thank you for calling. I am calling you back in a few seconds."
    ]
    [task_id] = call["jobs_added"]

    job = alice.http.get(f"/jobs/{task_id}").json()
    assert job["data"]["called_number"] == caller and job["data"]["calling_number"] == number
    due = datetime.fromisoformat(job["next_run_at"].replace(" ", "T") + "+00:00")
    assert timedelta(seconds=8) <= due - before <= timedelta(seconds=15), (due, before)

    finished = rb.poll(
        lambda: alice.http.get(f"/jobs/{task_id}"),
        lambda body: body["status"] == "finished",
        timeout=60,
        what="the call-back task finished",
    )
    assert finished["finish_result"] == "success", finished
    history = alice.http.get("/call_history/", params={"limit": 1000}).json()["calls"]
    inbound = [c for c in history if c["call_uuid"] == call["call_uuid"]]
    assert len(inbound) == 1, history
    assert inbound[0]["flow"] == "in" and inbound[0]["from_username"] == caller, inbound
    trace = inbound[0]["cdr"][0]["detail"]["ivr_trace"]
    assert any("AddJob: task" in line for line in trace), trace
    outbound = [c for c in history if c.get("task_id") == task_id]
    assert outbound, history
    played = [leg["played"] for leg in outbound[-1]["cdr"]]
    assert any(re.search("some_message.wav", str(item)) for legs in played for item in legs), (
        outbound
    )


class AnswerServer:
    """An XML server on 127.0.0.1: answers every POST with ``xml`` and keeps the forms."""

    def __init__(self, xml: str) -> None:
        self.xml = xml.encode()
        self.forms: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                server.forms.append(form)
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(server.xml)))
                self.end_headers()
                self.wfile.write(server.xml)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ivr"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


MENU = """<IVR>
  <Set var="lang" val="en"/>
  <GetDigits numDigits="1" timeout="3" validDigits="12">
    <Speak>Press 1 or 2</Speak>
  </GetDigits>
  <Switch expr="Digits">
    <Case val="1"><Speak>Sales</Speak></Case>
    <Default><Speak>Support</Speak></Default>
  </Switch>
</IVR>"""


def test_a_number_routed_to_an_answer_url_gets_the_call_posted_and_completed_notified(
    alice: Tenant,
) -> None:
    server = AnswerServer(MENU)
    try:
        number, caller = new_number(), "0903334444"
        route(alice, number, answer_url=f"http://127.0.0.1:9/down,{server.url}",
              notify_completed=True)  # fmt: skip
        answer = alice.http.post(
            "/calls/simulate",
            json={"called_number": number, "calling_number": caller, "digits": "1"},
        )
        assert answer.status_code == 200, answer.text
        call = answer.json()
        assert call["status"] == "completed", call
        spoken = [e["detail"] for e in call["trace"] if e["element"] == "Speak"]
        assert spoken == ["'Press 1 or 2'", "'Sales'"], call["trace"]
        assert call["variables"] == {"lang": "en"}
        first, *rest = server.forms
        assert first["CallingNumber"] == caller and first["CalledNumber"] == number
        assert first["Direction"] == "inbound" and first["CallUUID"] == call["call_uuid"]
        [completed] = [f for f in rest if f.get("CallStatus") == "completed"]
        assert completed["var_lang"] == "en"
    finally:
        server.close()


#: the security review's trace-amplification document (a 99,999-character value round a loop)
LOOP_XML = (
    b"<IVR>\n<Section name='loop'>\n<Set var='a' expr=\"'x' * 99999\"/>\n"
    b"<Set var='b' expr='a'/>\n<GoTo>loop</GoTo>\n</Section>\n</IVR>"
)
#: the same loop with a value under the cap: it runs up to the jump bound
GROWING_XML = (
    b"<IVR>\n<Set var='a' expr=\"'x' * 60000\"/>\n<Section name='loop'>\n"
    b"<Set var='b' expr='a'/>\n<Set var='c' val='{{b}}'/>\n<GoTo>loop</GoTo>\n</Section>\n</IVR>"
)


@pytest.mark.parametrize(
    ("xml", "error"),
    [
        (LOOP_XML, "Cannot execute Set. value too large (more than 65536 characters"),
        (GROWING_XML, "The IVR jumped more than 1000 times"),
    ],
    ids=["over-the-value-cap", "under-the-value-cap"],
)
def test_a_looping_ivr_ends_with_a_clear_error_and_its_answer_and_stored_detail_stay_small(
    alice: Tenant, xml: bytes, error: str
) -> None:
    number = new_number()
    upload(alice, "loop.xml", xml)
    route(alice, number, ivr_file="loop.xml")
    answer = alice.http.post("/calls/simulate", json={"called_number": number})
    assert answer.status_code == 200, answer.text[:500]
    assert len(answer.content) < 2_000_000
    call = answer.json()
    assert call["status"] == "error" and error in call["error"], call["error"]
    [last] = [e for e in call["trace"] if e["element"] == "error"]
    assert last["detail"] == call["error"] and last["line"] in (3, 6)

    stored = alice.http.get(f"/call_history/{call['call_uuid']}")
    assert stored.status_code == 200
    assert len(stored.content) < 2_000_000
    detail = stored.json()["cdr"][0]["detail"]
    assert len(json.dumps(detail).encode()) <= 1024 * 1024
    assert any(error in line for line in detail["ivr_trace"])
