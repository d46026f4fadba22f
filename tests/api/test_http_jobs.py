"""Jobs (the AddJob JSON: msg_call / ivr_call) over HTTP on both stores: add, read, list,
``state`` and ``attemptsMade`` as they run, invalid input (422 naming the field, nothing
stored) and Idempotency-Key."""

from __future__ import annotations

import io
import uuid
import wave
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

AUDIO = "audio/hello.wav"
ANSWERS = "+15550006006"
BUSY = "+15550006486"  # the simulator: numbers ending in 486 are busy


def _wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * round(rate * seconds))
    return buffer.getvalue()


def msg_job(called: str = ANSWERS, **options: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "type": "msg_call",
        "data": {"calling_number": "+15550005005", "called_number": called, "audio_file": AUDIO},
    }
    if options:
        job["options"] = options
    return job


@pytest.fixture(scope="module", autouse=True)
def audio_file(tenants: dict[str, Tenant]) -> None:
    answer = tenants["alice"].http.put(f"/storage/{AUDIO}", content=_wav())
    assert answer.status_code in (200, 201), answer.text


def _job(alice: Tenant, job_id: int) -> dict[str, Any]:
    answer = alice.http.get(f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _finished(alice: Tenant, rb: Any, job_id: int) -> dict[str, Any]:
    return rb.poll(
        lambda: alice.http.get(f"/jobs/{job_id}"),
        lambda job: job["state"] in ("completed", "failed"),
        what=f"job {job_id} to end",
    )


def test_add_msg_call_job_returns_201_with_state_and_attempts_made(alice: Tenant) -> None:
    answer = alice.http.post("/jobs/", json=msg_job(attempts=2))
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert isinstance(job["id"], int)
    assert job["kind"] == "msg_call"
    assert job["state"] in ("waiting", "active")
    assert job["attemptsMade"] == 0
    assert job["data"]["called_number"] == ANSWERS
    assert job["data"]["audio_file"] == AUDIO
    assert job["options"]["attempts"] == 2
    assert job["a_number"] is None  # the callback fields are not a job's


def test_a_job_goes_to_the_default_queue_which_is_made_switched_on(alice: Tenant) -> None:
    job = alice.http.post("/jobs/", json=msg_job()).json()
    queues = {q["name"]: q for q in alice.http.get("/task_scheduler/").json()["queues"]}
    assert "default" in queues, queues
    assert queues["default"]["status"] == "on"
    assert job["scheduler_id"] == queues["default"]["id"]


def test_a_job_may_name_its_queue(alice: Tenant) -> None:
    queue = alice.new_queue(status="off")
    answer = alice.http.post("/jobs/", json={**msg_job(), "queue": queue["name"]})
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["scheduler_id"] == queue["id"]
    assert job["state"] == "waiting"  # the queue is off
    assert job["blocked_reason"] == "queue_off"


def test_a_job_with_a_delay_is_delayed(alice: Tenant) -> None:
    """BullMQ: a job added with ``delay`` is in state ``delayed`` until the delay is over."""
    job = alice.http.post("/jobs/", json=msg_job(delay=600_000)).json()
    assert job["state"] == "delayed", job
    assert _job(alice, job["id"])["state"] == "delayed"


def test_a_msg_call_job_completes_after_one_attempt(alice: Tenant, rb: Any) -> None:
    job = alice.http.post("/jobs/", json=msg_job()).json()
    done = _finished(alice, rb, job["id"])
    assert done["state"] == "completed", done
    assert done["attemptsMade"] == 1
    assert done["finish_result"] == "success"
    assert done["calls"] and done["calls"][0]["to"] == ANSWERS
    assert done["calls"][0]["outcome"] == "answered"


def test_a_failing_job_is_retried_then_failed_with_every_attempt_counted(
    alice: Tenant, rb: Any
) -> None:
    job = alice.http.post(
        "/jobs/", json=msg_job(BUSY, attempts=2, backoff={"type": "fixed", "delay": 100})
    ).json()
    done = _finished(alice, rb, job["id"])
    assert done["state"] == "failed", done
    assert done["attemptsMade"] == 2
    assert done["finish_result"] == "failed"
    assert [call["outcome"] for call in done["calls"]] == ["busy", "busy"]


def test_an_ivr_call_job_with_inline_xml_completes(alice: Tenant, rb: Any) -> None:
    job = {
        "type": "ivr_call",
        "data": {
            "calling_number": "+15550005005",
            "called_number": ANSWERS,
            "ivr_xml": {"type": "inline", "data": f"<Response><Play>{AUDIO}</Play></Response>"},
        },
    }
    answer = alice.http.post("/jobs/", json=job)
    assert answer.status_code == 201, answer.text
    assert answer.json()["kind"] == "ivr_call"
    done = _finished(alice, rb, answer.json()["id"])
    assert done["state"] == "completed", done


def test_list_jobs_pages_and_filters_by_status(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue(status="off")
    made = [
        alice.http.post("/jobs/", json={**msg_job(), "queue": queue["name"]}).json()
        for _ in range(3)
    ]
    listed = alice.http.get("/jobs/", params={"limit": 1000})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] >= 3 and body["limit"] == 1000 and body["offset"] == 0
    ids = {job["id"] for job in body["jobs"]}
    assert {job["id"] for job in made} <= ids
    assert all(job["kind"] in ("msg_call", "ivr_call") for job in body["jobs"])
    assert all("state" in job and "attemptsMade" in job for job in body["jobs"])
    page = alice.http.get("/jobs/", params={"limit": 2, "offset": 1}).json()
    assert len(page["jobs"]) == 2 and page["total"] == body["total"]
    scheduled = alice.http.get("/jobs/", params={"status": "scheduled", "limit": 1000}).json()
    assert {job["id"] for job in made} <= {job["id"] for job in scheduled["jobs"]}
    assert all(job["status"] == "scheduled" for job in scheduled["jobs"])


def test_a_callback_task_is_not_a_job(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue()
    [task] = alice.add_tasks(queue["id"], rb.task())
    rb.error(alice.http.get(f"/jobs/{task['id']}"), 404, "not_found")
    listed = alice.http.get("/jobs/", params={"limit": 1000}).json()
    assert task["id"] not in {job["id"] for job in listed["jobs"]}


def test_unknown_job_is_404(alice: Tenant, rb: Any) -> None:
    rb.error(alice.http.get("/jobs/987654321"), 404, "not_found")


# --- invalid input ----------------------------------------------------------------------------


def _with(job: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``job`` with the dotted ``path`` set to ``value`` (deleted if value is ...)."""
    copy: dict[str, Any] = {
        **job,
        "data": dict(job["data"]),
        "options": dict(job.get("options", {})),
    }
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        target = target[part]
    if value is ...:
        target.pop(last, None)
    else:
        target[last] = value
    if not copy["options"]:
        del copy["options"]
    return copy


INVALID_JOBS = [
    pytest.param("type", "sms_call", ["body"], id="type-unknown"),
    pytest.param("type", ..., ["body"], id="type-missing"),
    pytest.param("data.called_number", ..., ["body", "data", "called_number"], id="no-number"),
    pytest.param("data.called_number", 5550006, ["body", "data", "called_number"], id="int"),
    pytest.param("data.called_number", "nobody", ["body", "data", "called_number"], id="words"),
    pytest.param("data.audio_file", "", ["body", "data", "audio_file"], id="audio-empty"),
    pytest.param("data.extra", 1, ["body", "data", "extra"], id="data-unknown-field"),
    pytest.param("options.attempts", 0, ["body", "options", "attempts"], id="attempts-0"),
    pytest.param("options.attempts", 51, ["body", "options", "attempts"], id="attempts-51"),
    pytest.param("options.attempts", "two", ["body", "options", "attempts"], id="attempts-str"),
    pytest.param("options.delay", -1, ["body", "options", "delay"], id="delay-negative"),
    pytest.param(
        "options.backoff",
        {"type": "linear", "delay": 1},
        ["body", "options", "backoff"],
        id="backoff-type",
    ),
    pytest.param("options.timezone", "Nowhere/Land", ["body", "options", "timezone"], id="tz"),
    pytest.param("priority", 1, ["body", "priority"], id="unknown-field"),
    pytest.param("queue", "no-such-queue", ["body", "queue"], id="queue-unknown"),
]


@pytest.mark.parametrize(("path", "value", "loc"), INVALID_JOBS)
def test_an_invalid_job_is_422_naming_the_field_and_nothing_is_added(
    alice: Tenant, rb: Any, path: str, value: Any, loc: list[str]
) -> None:
    before = alice.job_total()
    body = _with(msg_job(), path, value)
    error = rb.error(alice.http.post("/jobs/", json=body), 422, "invalid_input")
    assert any(found[: len(loc)] == loc for found in rb.locs(error)), error
    named = path.split(".")[-1]
    assert named in error["message"] or any(named in str(d) for d in error["details"]), error
    assert alice.job_total() == before


@pytest.mark.parametrize(
    "raw", [b"{", b"", b"null", b"[]"], ids=["broken", "empty", "null", "list"]
)
def test_a_job_body_that_is_not_a_json_object_is_refused(
    alice: Tenant, rb: Any, raw: bytes
) -> None:
    before = alice.job_total()
    answer = alice.http.post("/jobs/", content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 422), answer.text
    rb.error(answer, answer.status_code)
    assert alice.job_total() == before


# --- Idempotency-Key --------------------------------------------------------------------------


def test_same_idempotency_key_and_body_adds_the_job_once(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue(status="off")
    body = {**msg_job(), "queue": queue["name"]}
    key = {"Idempotency-Key": rb.unique("job")}
    before = alice.job_total()
    first = alice.http.post("/jobs/", json=body, headers=key)
    again = alice.http.post("/jobs/", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert alice.job_total() == before + 1


def test_same_idempotency_key_with_another_job_is_409(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue(status="off")
    key = {"Idempotency-Key": rb.unique("job")}
    first = alice.http.post("/jobs/", json={**msg_job(), "queue": queue["name"]}, headers=key)
    assert first.status_code == 201, first.text
    before = alice.job_total()
    other = alice.http.post(
        "/jobs/", json={**msg_job("+15550007777"), "queue": queue["name"]}, headers=key
    )
    rb.error(other, 409, "idempotency_conflict")
    assert alice.job_total() == before


STORAGE_NAMES = [
    pytest.param("../1/secret/hello.wav", "contains '..'", id="traversal"),
    pytest.param("/etc/hosts", "is absolute", id="absolute"),
    pytest.param("..\\..\\hello.wav", "contains '..'", id="backslashes"),
    pytest.param("a\x00b.wav", "NUL", id="nul"),
    pytest.param("no/such.wav", "doesn't exist", id="missing"),
    pytest.param("notes.txt", "is not an audio file ringback can play", id="not-audio"),
]


@pytest.mark.parametrize(("name", "why"), STORAGE_NAMES)
def test_a_msg_call_naming_an_unusable_storage_file_is_422_naming_audio_file(
    alice: Tenant, rb: Any, name: str, why: str
) -> None:
    alice.http.put("/storage/notes.txt", content=b"just text, not audio")
    before = alice.job_total()
    body = _with(msg_job(), "data.audio_file", name)
    error = rb.error(alice.http.post("/jobs/", json=body), 422, "invalid_input")
    # a NUL is refused before any storage check, naming the field in the message
    assert ["body", "data", "audio_file"] in rb.locs(error) or "audio_file" in error["message"]
    assert why in str(error), error
    assert alice.job_total() == before


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "doesn't exist"), (b"<IVR><Nope/></IVR>", "is not a valid IVR document: line 1")],
    ids=["missing", "invalid-xml"],
)
def test_an_ivr_call_naming_an_unusable_storage_document_is_422_naming_the_field(
    alice: Tenant, rb: Any, content: bytes | None, why: str
) -> None:
    name = f"ivr/{uuid.uuid4().hex[:8]}.xml"
    if content is not None:
        assert alice.http.put(f"/storage/{name}", content=content).status_code == 201
    body = {
        "type": "ivr_call",
        "data": {
            "calling_number": "+15550005005",
            "called_number": ANSWERS,
            "ivr_xml": {"type": "storage", "data": name},
        },
    }
    error = rb.error(alice.http.post("/jobs/", json=body), 422, "invalid_input")
    assert ["body", "data", "ivr_xml", "data"] in rb.locs(error), error
    assert why in str(error["details"]), error
