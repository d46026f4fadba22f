"""Tasks of a queue over HTTP on both stores: add (1..10,000, all or nothing), list with filters
and pages, read, replace, cancel, invalid input (422 naming the index and field, nothing
stored) and Idempotency-Key.

Tasks here go to switched-off queues, so nothing is dialled and they stay ``scheduled``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from ringback.api.schemas import TaskListOut

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

SEED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
MAX_BATCH = 10_000


def _seed(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _until_the_clock_reads(moment: datetime) -> None:
    """Wait until this machine's clock (the server's) reads ``moment`` or later."""
    while (left := (moment - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(left, 0.05))


@pytest.fixture
def queue(alice: Tenant) -> dict[str, Any]:
    return alice.new_queue(status="off")


# --- add --------------------------------------------------------------------------------------


def test_add_one_task_returns_201_with_the_task_resource(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    answer = alice.http.post(
        f"/task_scheduler/{queue['id']}/tasks/",
        json={"tasks": [rb.task(name="first", extension_id=101)]},
    )
    assert answer.status_code == 201, answer.text
    [task] = answer.json()["tasks"]
    assert isinstance(task["id"], int)
    assert task["scheduler_id"] == queue["id"]
    assert task["kind"] == "callback"
    assert task["name"] == "first"
    assert task["a_number"] == "+15550001001"
    assert task["b_number"] == "+15550002002"
    assert task["extension_id"] == 101
    assert task["status"] == "scheduled"
    assert task["blocked_reason"] == "queue_off"  # the queue is switched off
    assert task["try_count"] == 1  # seed default
    assert task["finish_result"] is None
    assert task["cdr"] is None
    assert SEED_TIME.match(task["create_date_utc"]), task
    assert task["calls"] == []


def test_add_task_echoes_the_seed_fields(alice: Tenant, queue: dict[str, Any], rb: Any) -> None:
    spec = rb.task(
        name="all-fields",
        try_count=3,
        try_again_pause=30,
        try_count_caller=2,
        try_again_pause_caller=15,
        url_before="http://127.0.0.1:9/before",
        url_after="https://example.invalid/after",
        start_time_utc="2031-02-03 04:05:06",
        callback_params={"caller_id_name": "Desk", "extended_a_numbers": ["+15550009009"]},
        variables={"order": "42"},
        attempts_src_ani_numbers=["+15550001111"],
    )
    [task] = alice.add_tasks(queue["id"], spec)
    assert task["try_count"] == 3
    assert task["try_again_pause"] == 30
    assert task["try_count_caller"] == 2
    assert task["try_again_pause_caller"] == 15
    assert task["url_before"] == "http://127.0.0.1:9/before"
    assert task["url_after"] == "https://example.invalid/after"
    assert task["start_time_utc"] == "2031-02-03 04:05:06"
    assert task["callback_params"]["caller_id_name"] == "Desk"
    assert task["callback_params"]["extended_a_numbers"] == ["+15550009009"]
    assert task["variables"] == {"order": "42"}
    assert task["attempts_src_ani_numbers"] == ["+15550001111"]
    fetched = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{task['id']}").json()
    for field in ("try_count", "start_time_utc", "callback_params", "variables", "url_before"):
        assert fetched[field] == task[field], field


def test_try_again_pause_may_be_a_string_of_seconds(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    [task] = alice.add_tasks(queue["id"], rb.task(try_again_pause="45"))
    assert task["try_again_pause"] == 45


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2031-05-01 09:30:00", "2031-05-01 09:30:00"),
        ("2031-05-01T09:30:00+02:00", "2031-05-01 07:30:00"),
        ("2031-05-01T09:30:00Z", "2031-05-01 09:30:00"),
        ("2031-05-01T09:30:00-05:00", "2031-05-01 14:30:00"),
    ],
)
def test_start_time_accepts_the_seed_format_and_iso_8601_with_a_zone(
    alice: Tenant, queue: dict[str, Any], rb: Any, given: str, stored: str
) -> None:
    [task] = alice.add_tasks(queue["id"], rb.task(start_time_utc=given))
    assert task["start_time_utc"] == stored


def test_add_many_tasks_in_one_request(alice: Tenant, queue: dict[str, Any], rb: Any) -> None:
    specs = [rb.task(name=f"bulk-{i}") for i in range(250)]
    added = alice.add_tasks(queue["id"], *specs)
    assert [t["name"] for t in added] == [s["name"] for s in specs]
    assert len({t["id"] for t in added}) == 250
    assert alice.task_total(queue["id"]) == 250
    counted = alice.http.get(f"/task_scheduler/{queue['id']}").json()
    assert counted["task_count"] == 250
    assert counted["sched_task_count"] == 250


def test_a_batch_of_exactly_10000_tasks_is_accepted(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue()
    specs = [rb.task() for _ in range(MAX_BATCH)]
    answer = alice.http.post(
        f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": specs}, timeout=120
    )
    assert answer.status_code == 201, answer.text[:500]
    assert len(answer.json()["tasks"]) == MAX_BATCH
    assert alice.task_total(queue["id"]) == MAX_BATCH
    gone = alice.http.delete(
        f"/task_scheduler/{queue['id']}", params={"force": "true"}, timeout=120
    )
    assert gone.status_code == 204, gone.text


def test_adding_to_an_unknown_queue_is_404(alice: Tenant, rb: Any) -> None:
    answer = alice.http.post("/task_scheduler/987654321/tasks/", json={"tasks": [rb.task()]})
    rb.error(answer, 404, "not_found")


# --- invalid input ----------------------------------------------------------------------------

INVALID_TASKS = [
    pytest.param({"a_number": 15550001001}, "a_number", id="a_number-not-a-string"),
    pytest.param({"a_number": "call me"}, "a_number", id="a_number-not-a-number"),
    pytest.param({"b_number": None}, "b_number", id="b_number-null"),
    pytest.param({"b_number": "+15550001001"}, None, id="a_and_b-the-same"),
    pytest.param({"try_count": 0}, "try_count", id="try_count-0"),
    pytest.param({"try_count": 51}, "try_count", id="try_count-51"),
    pytest.param({"try_count": "many"}, "try_count", id="try_count-not-a-number"),
    pytest.param({"try_count_caller": -1}, "try_count_caller", id="try_count_caller-negative"),
    pytest.param(
        {"try_again_pause_caller": 864_001}, "try_again_pause_caller", id="caller-pause>10d"
    ),
    pytest.param({"try_again_pause": "soon"}, "try_again_pause", id="pause-not-seconds"),
    pytest.param({"start_time_utc": "2031-13-01 00:00:00"}, "start_time_utc", id="month-13"),
    pytest.param({"start_time_utc": "2031-02-30 00:00:00"}, "start_time_utc", id="feb-30"),
    pytest.param({"start_time_utc": "tomorrow"}, "start_time_utc", id="date-words"),
    pytest.param({"start_time_utc": "2031-05-01T09:30:00"}, "start_time_utc", id="iso-no-zone"),
    pytest.param({"start_time_utc": 1700000000}, "start_time_utc", id="date-a-number"),
    pytest.param({"url_before": "ftp://example.com/x"}, "url_before", id="url-not-http"),
    pytest.param({"variables": {"v": "x" * 201}}, "variables", id="variable>200"),
    pytest.param({"variables": {"v": 5}}, "variables", id="variable-not-a-string"),
    pytest.param({"callback_params": {"colour": 1}}, "callback_params", id="params-unknown"),
    pytest.param({"extension_id": "ext"}, "extension_id", id="extension_id-not-int"),
    pytest.param({"timezone": "Mars/Olympus"}, "timezone", id="bad-timezone"),
    pytest.param({"colour": "red"}, "colour", id="unknown-field"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_TASKS)
def test_an_invalid_task_is_422_naming_its_index_and_field_and_nothing_is_added(
    alice: Tenant, queue: dict[str, Any], rb: Any, change: dict[str, Any], field: str | None
) -> None:
    alice.add_tasks(queue["id"], rb.task(name="already there"))
    before = alice.task_total(queue["id"])
    batch = [rb.task(name="ok-0"), rb.task(name="ok-1"), {**rb.task(name="bad"), **change}]
    answer = alice.http.post(f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": batch})
    error = rb.error(answer, 422, "invalid_input")
    found = rb.locs(error)
    assert any(loc[:3] == ["body", "tasks", 2] for loc in found), error
    assert not any(loc[:3] in (["body", "tasks", 0], ["body", "tasks", 1]) for loc in found)
    if field is not None:
        assert any(len(loc) > 3 and loc[3] == field for loc in found), error
    assert alice.task_total(queue["id"]) == before


def test_a_missing_number_is_named_in_the_error(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    answer = alice.http.post(
        f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": [{"a_number": "+15550001001"}]}
    )
    error = rb.error(answer, 422, "invalid_input")
    assert ["body", "tasks", 0, "b_number"] in rb.locs(error), error
    assert "b_number" in error["message"]
    assert alice.task_total(queue["id"]) == 0


def test_errors_are_reported_for_every_bad_index(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    batch = [rb.task(try_count=0), rb.task(), rb.task(try_count=99)]
    error = rb.error(
        alice.http.post(f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": batch}), 422
    )
    indexes = {loc[2] for loc in rb.locs(error) if loc[:2] == ["body", "tasks"]}
    assert indexes == {0, 2}, error
    assert alice.task_total(queue["id"]) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"tasks": []}, id="empty-list"),
        pytest.param({}, id="no-tasks-key"),
        pytest.param({"tasks": {"a_number": "+15550001001"}}, id="tasks-not-a-list"),
        pytest.param(
            {"tasks": [{"a_number": "+15550001001", "b_number": "+15550002002"}], "x": 1},
            id="unknown-top-field",
        ),
        pytest.param({"tasks": ["not an object"]}, id="task-not-an-object"),
    ],
)
def test_a_malformed_batch_is_422_naming_tasks_and_nothing_is_added(
    alice: Tenant, queue: dict[str, Any], rb: Any, body: dict[str, Any]
) -> None:
    error = rb.error(alice.http.post(f"/task_scheduler/{queue['id']}/tasks/", json=body), 422)
    assert any(len(loc) > 1 and loc[1] in ("tasks", "x") for loc in rb.locs(error)), error
    assert alice.task_total(queue["id"]) == 0


def test_a_batch_of_10001_tasks_is_refused_and_nothing_is_added(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    specs = [rb.task() for _ in range(MAX_BATCH + 1)]
    answer = alice.http.post(
        f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": specs}, timeout=120
    )
    error = rb.error(answer, 422, "invalid_input")
    assert any(loc[:2] == ["body", "tasks"] for loc in rb.locs(error)), error
    assert "10000" in str(error["details"]) or "10,000" in str(error["details"]), error
    assert alice.task_total(queue["id"]) == 0


@pytest.mark.parametrize(
    "raw", [b'{"tasks": [', b"tasks=1", b""], ids=["truncated", "form", "empty"]
)
def test_a_body_that_is_not_json_is_refused_and_nothing_is_added(
    alice: Tenant, queue: dict[str, Any], rb: Any, raw: bytes
) -> None:
    answer = alice.http.post(
        f"/task_scheduler/{queue['id']}/tasks/",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code in (400, 422), answer.text
    rb.error(answer, answer.status_code)
    assert alice.task_total(queue["id"]) == 0


# --- list -------------------------------------------------------------------------------------


def test_list_pages_with_limit_offset_and_total(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    added = alice.add_tasks(queue["id"], *[rb.task(name=f"p{i}") for i in range(7)])
    seen: list[int] = []
    for offset in (0, 3, 6):
        page = alice.http.get(
            f"/task_scheduler/{queue['id']}/tasks/", params={"limit": 3, "offset": offset}
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["total"] == 7
        assert body["limit"] == 3
        assert body["offset"] == offset
        assert len(body["tasks"]) == (1 if offset == 6 else 3)
        TaskListOut.model_validate(body)  # the documented response model
        for shown in body["tasks"]:  # each task as a read of it shows it
            url = f"/task_scheduler/{queue['id']}/tasks/{shown['id']}"
            assert shown == alice.http.get(url).json()
        seen += [t["id"] for t in body["tasks"]]
    assert sorted(seen) == sorted(t["id"] for t in added)  # every task once
    beyond = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/", params={"offset": 100})
    assert beyond.json()["tasks"] == [] and beyond.json()["total"] == 7


def test_list_filters_by_status_and_name(alice: Tenant, queue: dict[str, Any], rb: Any) -> None:
    tasks = alice.add_tasks(
        queue["id"], rb.task(name="keep"), rb.task(name="keep"), rb.task(name="drop")
    )
    alice.http.delete(f"/task_scheduler/{queue['id']}/tasks/{tasks[2]['id']}")

    def ids(**params: Any) -> set[int]:
        page = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/", params=params)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == len(page.json()["tasks"])
        return {t["id"] for t in page.json()["tasks"]}

    assert ids(status="scheduled") == {tasks[0]["id"], tasks[1]["id"]}
    assert ids(status="finished") == {tasks[2]["id"]}
    assert ids(name="keep") == {tasks[0]["id"], tasks[1]["id"]}
    assert ids(name="drop", status="scheduled") == set()


def test_list_filters_by_creation_and_finish_time_in_both_formats(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    [early] = alice.add_tasks(queue["id"], rb.task(name="early"))
    # times have whole seconds: the second after early's creation, and late made a second later
    created = datetime.strptime(early["create_date_utc"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    middle = created + timedelta(seconds=1)
    _until_the_clock_reads(middle + timedelta(seconds=1))
    [late] = alice.add_tasks(queue["id"], rb.task(name="late"))
    alice.http.delete(f"/task_scheduler/{queue['id']}/tasks/{late['id']}")
    url = f"/task_scheduler/{queue['id']}/tasks/"

    def ids(**params: str) -> set[int]:
        page = alice.http.get(url, params=params)
        assert page.status_code == 200, page.text
        return {t["id"] for t in page.json()["tasks"]}

    assert ids(created_to=_seed(middle)) == {early["id"]}
    assert ids(created_from=_seed(middle)) == {late["id"]}
    assert ids(created_from=middle.isoformat()) == {late["id"]}
    in_paris = middle.astimezone(ZoneInfo("Europe/Paris"))
    assert ids(created_to=in_paris.isoformat()) == {early["id"]}
    assert ids(finished_from=_seed(middle)) == {late["id"]}
    assert ids(finished_to=_seed(middle)) == set()
    hour_ago, in_an_hour = middle - timedelta(hours=1), middle + timedelta(hours=1)
    assert ids(created_from=_seed(hour_ago), created_to=_seed(in_an_hour)) == {
        early["id"],
        late["id"],
    }


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"status": "sleeping"}, "status"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2031-13-01 00:00:00"}, "created_to"),
        ({"finished_from": "2031-05-01T09:30:00"}, "finished_from"),
        ({"finished_to": "x"}, "finished_to"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_list_with_an_invalid_query_is_422_naming_the_parameter(
    alice: Tenant, queue: dict[str, Any], rb: Any, params: dict[str, Any], name: str
) -> None:
    answer = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/", params=params)
    error = rb.error(answer, 422, "invalid_input")
    assert ["query", name] in rb.locs(error), error


# --- read, replace, cancel --------------------------------------------------------------------


def test_get_one_task_matches_what_was_added(alice: Tenant, queue: dict[str, Any], rb: Any) -> None:
    [task] = alice.add_tasks(queue["id"], rb.task(name="one"))
    fetched = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{task['id']}")
    assert fetched.status_code == 200, fetched.text
    for field in ("id", "name", "a_number", "b_number", "status", "create_date_utc"):
        assert fetched.json()[field] == task[field], field


def test_unknown_task_is_404(alice: Tenant, queue: dict[str, Any], rb: Any) -> None:
    base = f"/task_scheduler/{queue['id']}/tasks/987654321"
    rb.error(alice.http.get(base), 404, "not_found")
    rb.error(alice.http.put(base, json=rb.task()), 404, "not_found")
    rb.error(alice.http.delete(base), 404, "not_found")


def test_put_replaces_a_scheduled_task(alice: Tenant, queue: dict[str, Any], rb: Any) -> None:
    [task] = alice.add_tasks(queue["id"], rb.task(name="before", try_count=1))
    replacement = rb.task(
        name="after", a_number="+15550003003", try_count=5, start_time_utc="2032-01-01 00:00:00"
    )
    answer = alice.http.put(f"/task_scheduler/{queue['id']}/tasks/{task['id']}", json=replacement)
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["id"] == task["id"]
    assert changed["name"] == "after"
    assert changed["a_number"] == "+15550003003"
    assert changed["try_count"] == 5
    assert changed["start_time_utc"] == "2032-01-01 00:00:00"
    assert changed["status"] == "scheduled"
    fetched = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{task['id']}").json()
    assert fetched["name"] == "after" and fetched["try_count"] == 5


def test_put_with_invalid_input_is_422_and_changes_nothing(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    [task] = alice.add_tasks(queue["id"], rb.task(name="stays"))
    url = f"/task_scheduler/{queue['id']}/tasks/{task['id']}"
    error = rb.error(alice.http.put(url, json=rb.task(name="x", try_count=51)), 422)
    assert any(loc and loc[-1] == "try_count" for loc in rb.locs(error)), error
    assert alice.http.get(url).json()["name"] == "stays"


def test_put_on_a_finished_task_is_409(alice: Tenant, queue: dict[str, Any], rb: Any) -> None:
    [task] = alice.add_tasks(queue["id"], rb.task(name="done"))
    url = f"/task_scheduler/{queue['id']}/tasks/{task['id']}"
    assert alice.http.delete(url).status_code == 200
    rb.error(alice.http.put(url, json=rb.task(name="too late")), 409, "conflict")
    assert alice.http.get(url).json()["name"] == "done"


def test_delete_cancels_the_task_as_failed_canceled(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    [task] = alice.add_tasks(queue["id"], rb.task())
    url = f"/task_scheduler/{queue['id']}/tasks/{task['id']}"
    answer = alice.http.delete(url)
    assert answer.status_code == 200, answer.text
    canceled = answer.json()
    assert canceled["status"] == "finished"
    assert canceled["finish_result"] == "failed"
    assert canceled["finish_comment"] == "canceled"
    assert SEED_TIME.match(canceled["finish_date_utc"] or ""), canceled
    assert alice.http.get(url).json()["status"] == "finished"
    rb.error(alice.http.delete(url), 409, "conflict")  # already finished


# --- Idempotency-Key --------------------------------------------------------------------------


def test_same_idempotency_key_and_body_adds_the_tasks_once(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    key = {"Idempotency-Key": rb.unique("tasks")}
    body = {"tasks": [rb.task(name="i1"), rb.task(name="i2")]}
    url = f"/task_scheduler/{queue['id']}/tasks/"
    first = alice.http.post(url, json=body, headers=key)
    again = alice.http.post(url, json=body, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert alice.task_total(queue["id"]) == 2


def test_same_idempotency_key_with_another_body_is_409_and_adds_nothing(
    alice: Tenant, queue: dict[str, Any], rb: Any
) -> None:
    key = {"Idempotency-Key": rb.unique("tasks")}
    url = f"/task_scheduler/{queue['id']}/tasks/"
    assert alice.http.post(url, json={"tasks": [rb.task()]}, headers=key).status_code == 201
    other = alice.http.post(url, json={"tasks": [rb.task(), rb.task()]}, headers=key)
    rb.error(other, 409, "idempotency_conflict")
    assert alice.task_total(queue["id"]) == 1


def test_same_idempotency_key_on_another_queue_is_409(alice: Tenant, rb: Any) -> None:
    one, two = alice.new_queue(), alice.new_queue()
    key = {"Idempotency-Key": rb.unique("tasks")}
    body = {"tasks": [rb.task()]}
    assert (
        alice.http.post(f"/task_scheduler/{one['id']}/tasks/", json=body, headers=key).status_code
        == 201
    )
    other = alice.http.post(f"/task_scheduler/{two['id']}/tasks/", json=body, headers=key)
    rb.error(other, 409, "idempotency_conflict")
    assert alice.task_total(two["id"]) == 0
