"""Queues (``/task_scheduler/``) over HTTP on both stores: CRUD, defaults, counters, deletion
rules, invalid input (nothing stored) and Idempotency-Key."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

SEED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
HOURS = {
    "timezone": "Europe/Paris",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}],
}


def test_create_queue_returns_201_with_the_seed_defaults(alice: Tenant) -> None:
    answer = alice.http.post("/task_scheduler/", json={"name": "plain"})
    assert answer.status_code == 201, answer.text
    queue = answer.json()
    assert isinstance(queue["id"], int) and queue["id"] > 0
    assert queue["name"] == "plain"
    assert queue["status"] == "off"  # seed B3.3: default off
    assert queue["comment"] == ""
    assert isinstance(queue["concurrent_task_limit"], int) and queue["concurrent_task_limit"] >= 1
    assert queue["max_calls_per_second"] is None
    assert queue["calling_hours"] is None
    assert queue["redial_interrupted"] is False  # a call cut by a fault is not placed again
    assert queue["task_count"] == 0
    assert queue["sched_task_count"] == 0
    assert queue["last_call_date"] is None
    assert SEED_TIME.match(queue["create_date_utc"]), queue["create_date_utc"]


def test_create_queue_keeps_every_field_given(alice: Tenant) -> None:
    body = {
        "name": "full",
        "comment": "all fields",
        "status": "on",
        "concurrent_task_limit": 3,
        "max_calls_per_second": 2.5,
        "calling_hours": HOURS,
        "redial_interrupted": True,
    }
    queue = alice.http.post("/task_scheduler/", json=body).json()
    for field, value in body.items():
        if field == "calling_hours":
            assert queue[field]["timezone"] == "Europe/Paris"
            assert queue[field]["windows"][0]["start"] == "09:00"
            assert queue[field]["windows"][0]["end"] == "18:00"
        else:
            assert queue[field] == value, (field, queue)


def test_create_queue_accepts_calling_hours_as_a_string(alice: Tenant) -> None:
    answer = alice.http.post(
        "/task_scheduler/",
        json={"name": "hours-text", "calling_hours": "Europe/Paris mon-fri 09:00-18:00"},
    )
    assert answer.status_code == 201, answer.text
    hours = answer.json()["calling_hours"]
    assert hours["timezone"] == "Europe/Paris"
    assert hours["windows"] and hours["windows"][0]["start"] == "09:00"


def test_list_and_get_return_the_created_queue(alice: Tenant) -> None:
    created = alice.new_queue(comment="listed")
    listed = alice.http.get("/task_scheduler/")
    assert listed.status_code == 200, listed.text
    by_id = {q["id"]: q for q in listed.json()["queues"]}
    assert by_id[created["id"]] == created
    one = alice.http.get(f"/task_scheduler/{created['id']}")
    assert one.status_code == 200, one.text
    assert one.json() == created


def test_put_changes_only_the_fields_sent(alice: Tenant) -> None:
    queue = alice.new_queue(comment="before", concurrent_task_limit=4)
    answer = alice.http.put(f"/task_scheduler/{queue['id']}", json={"status": "on"})
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["status"] == "on"
    assert changed["comment"] == "before"
    assert changed["concurrent_task_limit"] == 4
    assert changed["name"] == queue["name"]
    assert alice.http.get(f"/task_scheduler/{queue['id']}").json() == changed


def test_put_can_rename_and_change_limits(alice: Tenant) -> None:
    queue = alice.new_queue()
    body = {"name": "renamed", "comment": "c2", "concurrent_task_limit": 7, "status": "off"}
    changed = alice.http.put(f"/task_scheduler/{queue['id']}", json=body).json()
    for field, value in body.items():
        assert changed[field] == value, (field, changed)


def test_put_null_clears_rate_and_calling_hours(alice: Tenant) -> None:
    queue = alice.new_queue(max_calls_per_second=5, calling_hours=HOURS)
    answer = alice.http.put(
        f"/task_scheduler/{queue['id']}",
        json={"max_calls_per_second": None, "calling_hours": None},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["max_calls_per_second"] is None
    assert answer.json()["calling_hours"] is None
    assert answer.json()["name"] == queue["name"]


def test_delete_an_empty_queue_is_204_and_it_is_gone(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue()
    answer = alice.http.delete(f"/task_scheduler/{queue['id']}")
    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    rb.error(alice.http.get(f"/task_scheduler/{queue['id']}"), 404, "not_found")
    ids = [q["id"] for q in alice.http.get("/task_scheduler/").json()["queues"]]
    assert queue["id"] not in ids
    rb.error(alice.http.delete(f"/task_scheduler/{queue['id']}"), 404, "not_found")


def test_delete_refuses_a_queue_with_unfinished_tasks_with_409(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue()
    alice.add_tasks(queue["id"], rb.task())
    rb.error(alice.http.delete(f"/task_scheduler/{queue['id']}"), 409, "conflict")
    still = alice.http.get(f"/task_scheduler/{queue['id']}")
    assert still.status_code == 200, still.text
    assert still.json()["task_count"] == 1


def test_delete_with_force_removes_a_queue_with_unfinished_tasks(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue()
    alice.add_tasks(queue["id"], rb.task(), rb.task())
    answer = alice.http.delete(f"/task_scheduler/{queue['id']}", params={"force": "true"})
    assert answer.status_code == 204, answer.text
    rb.error(alice.http.get(f"/task_scheduler/{queue['id']}"), 404, "not_found")
    rb.error(alice.http.get(f"/task_scheduler/{queue['id']}/tasks/"), 404, "not_found")


def test_delete_is_allowed_once_every_task_finished(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue()
    [task] = alice.add_tasks(queue["id"], rb.task())
    canceled = alice.http.delete(f"/task_scheduler/{queue['id']}/tasks/{task['id']}")
    assert canceled.status_code == 200, canceled.text
    answer = alice.http.delete(f"/task_scheduler/{queue['id']}")
    assert answer.status_code == 204, answer.text


def test_counters_count_all_and_scheduled_tasks(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue()
    tasks = alice.add_tasks(queue["id"], rb.task(), rb.task(), rb.task())
    alice.http.delete(f"/task_scheduler/{queue['id']}/tasks/{tasks[0]['id']}")
    counted = alice.http.get(f"/task_scheduler/{queue['id']}").json()
    assert counted["task_count"] == 3
    assert counted["sched_task_count"] == 2


def test_unknown_queue_is_404(alice: Tenant, rb: Any) -> None:
    for method in ("GET", "PUT", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"comment": "x"}} if method == "PUT" else {}
        rb.error(alice.http.request(method, "/task_scheduler/987654321", **kwargs), 404)


# --- invalid input: 422 naming the field, nothing stored --------------------------------------

INVALID_CREATE = [
    pytest.param({}, ["body", "name"], id="name-missing"),
    pytest.param({"name": ""}, ["body", "name"], id="name-empty"),
    pytest.param({"name": 42}, ["body", "name"], id="name-not-a-string"),
    pytest.param({"name": "x" * 101}, ["body", "name"], id="name-too-long"),
    pytest.param({"name": "q", "status": "maybe"}, ["body", "status"], id="status-unknown"),
    pytest.param(
        {"name": "q", "concurrent_task_limit": 0}, ["body", "concurrent_task_limit"], id="limit-0"
    ),
    pytest.param(
        {"name": "q", "concurrent_task_limit": "ten"},
        ["body", "concurrent_task_limit"],
        id="limit-not-a-number",
    ),
    pytest.param(
        {"name": "q", "max_calls_per_second": -1}, ["body", "max_calls_per_second"], id="rate<0"
    ),
    pytest.param(
        {"name": "q", "calling_hours": {"timezone": "Mars/Olympus", "windows": []}},
        ["body", "calling_hours"],
        id="hours-bad-zone",
    ),
    pytest.param(
        {"name": "q", "calling_hours": "whenever"}, ["body", "calling_hours"], id="hours-garbage"
    ),
    pytest.param({"name": "q", "colour": "red"}, ["body", "colour"], id="unknown-field"),
]


@pytest.mark.parametrize(("body", "loc"), INVALID_CREATE)
def test_create_queue_with_invalid_input_is_422_naming_the_field_and_stores_nothing(
    alice: Tenant, rb: Any, body: dict[str, Any], loc: list[str]
) -> None:
    before = alice.queue_count()
    error = rb.error(alice.http.post("/task_scheduler/", json=body), 422, "invalid_input")
    assert any(found[: len(loc)] == loc for found in rb.locs(error)), error
    assert loc[-1] in error["message"], error
    assert alice.queue_count() == before


def test_unknown_field_error_says_unknown_field(alice: Tenant, rb: Any) -> None:
    error = rb.error(alice.http.post("/task_scheduler/", json={"name": "q", "colour": 1}), 422)
    assert any("unknown field" in d["msg"] and "colour" in d["msg"] for d in error["details"])


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"[1, 2]", b'"a string"', b"\xff\xfe"],
    ids=["broken", "empty", "array", "string", "binary"],
)
def test_create_queue_with_a_body_that_is_not_a_json_object_is_4xx_and_stores_nothing(
    alice: Tenant, rb: Any, raw: bytes
) -> None:
    before = alice.queue_count()
    answer = alice.http.post(
        "/task_scheduler/", content=raw, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code in (400, 422), answer.text
    rb.error(answer, answer.status_code)
    assert alice.queue_count() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "maybe"}, "status"),
        ({"concurrent_task_limit": -3}, "concurrent_task_limit"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_put_with_invalid_input_is_422_and_changes_nothing(
    alice: Tenant, rb: Any, body: dict[str, Any], field: str
) -> None:
    queue = alice.new_queue(comment="unchanged")
    error = rb.error(alice.http.put(f"/task_scheduler/{queue['id']}", json=body), 422)
    assert any(field in loc for loc in rb.locs(error)), error
    assert alice.http.get(f"/task_scheduler/{queue['id']}").json() == queue


# --- Idempotency-Key --------------------------------------------------------------------------


def test_same_idempotency_key_and_body_replays_the_first_answer(alice: Tenant, rb: Any) -> None:
    before = alice.queue_count()
    key = {"Idempotency-Key": rb.unique("queue")}
    body = {"name": rb.unique("idem"), "comment": "once"}
    first = alice.http.post("/task_scheduler/", json=body, headers=key)
    again = alice.http.post("/task_scheduler/", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert alice.queue_count() == before + 1


def test_same_idempotency_key_with_another_body_is_409(alice: Tenant, rb: Any) -> None:
    key = {"Idempotency-Key": rb.unique("queue")}
    first = alice.http.post("/task_scheduler/", json={"name": "one"}, headers=key)
    assert first.status_code == 201, first.text
    before = alice.queue_count()
    other = alice.http.post("/task_scheduler/", json={"name": "two"}, headers=key)
    rb.error(other, 409, "idempotency_conflict")
    assert alice.queue_count() == before


def test_a_refused_request_does_not_use_up_its_idempotency_key(alice: Tenant, rb: Any) -> None:
    key = {"Idempotency-Key": rb.unique("queue")}
    rb.error(alice.http.post("/task_scheduler/", json={"name": ""}, headers=key), 422)
    answer = alice.http.post("/task_scheduler/", json={"name": "second try"}, headers=key)
    assert answer.status_code == 201, answer.text


def test_an_invalid_idempotency_key_is_422(alice: Tenant, rb: Any) -> None:
    before = alice.queue_count()
    answer = alice.http.post(
        "/task_scheduler/", json={"name": "k"}, headers={"Idempotency-Key": "x" * 300}
    )
    rb.error(answer, 422)
    assert alice.queue_count() == before
