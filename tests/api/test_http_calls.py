"""Tasks that really run (the server's own workers, the simulator dialer) and their call history,
over HTTP on both stores.

The simulator answers every number after 0.05 s and hangs up after 1 s of talk, except numbers
ending in a SIP code (``…486`` busy). Every wait is a bounded poll.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

SEED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
A_OK, B_OK, B_BUSY = "+15550001001", "+15550002002", "+15550002486"
A_BUSY = "+15550001486"


def _seed(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _all_finished(alice: Tenant, rb: Any, sid: int, count: int) -> list[dict[str, Any]]:
    body = rb.poll(
        lambda: alice.http.get(
            f"/task_scheduler/{sid}/tasks/", params={"status": "finished", "limit": 1000}
        ),
        lambda page: page["total"] >= count,
        timeout=60.0,
        what=f"{count} tasks of queue {sid} to finish",
    )
    tasks: list[dict[str, Any]] = body["tasks"]
    return tasks


@pytest.fixture(scope="module")
def ran(tenants: dict[str, Tenant], rb: Any) -> dict[str, Any]:
    """Two tasks that connect and one whose B number is busy, run to the end on a queue that
    was switched on when they were added."""
    alice = tenants["alice"]
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    queue = alice.new_queue(status="on", concurrent_task_limit=10)
    added = alice.add_tasks(
        queue["id"],
        rb.task(name="ok-1", a_number=A_OK, b_number=B_OK),
        rb.task(name="ok-2", a_number=A_OK, b_number="+15550002003"),
        rb.task(name="busy", a_number=A_OK, b_number=B_BUSY),
    )
    finished = {t["name"]: t for t in _all_finished(alice, rb, queue["id"], 3)}
    ended = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    return {
        "queue": queue,
        "added": added,
        "tasks": finished,
        "started": started,
        "ended": ended,
    }


def test_tasks_on_a_switched_on_queue_finish_with_a_result(ran: dict[str, Any]) -> None:
    tasks = ran["tasks"]
    for name in ("ok-1", "ok-2"):
        task = tasks[name]
        assert task["status"] == "finished"
        assert task["finish_result"] == "success", task
        assert task["cdr"], task
        assert task["tries_used"] == 1
        assert SEED_TIME.match(task["finish_date_utc"] or ""), task
        assert {call["leg"] for call in task["calls"]} == {"a", "b"}, task["calls"]
    busy = tasks["busy"]
    assert busy["finish_result"] == "failed", busy
    assert busy["finish_comment"], busy
    b_leg = [call for call in busy["calls"] if call["leg"] == "b"]
    assert b_leg and b_leg[0]["outcome"] == "busy" and b_leg[0]["sip_code"] == 486, busy["calls"]


def test_queue_counters_show_the_last_call(alice: Tenant, ran: dict[str, Any]) -> None:
    queue = alice.http.get(f"/task_scheduler/{ran['queue']['id']}").json()
    assert queue["task_count"] == 3
    assert queue["sched_task_count"] == 0
    assert SEED_TIME.match(queue["last_call_date"] or ""), queue


def test_call_history_of_a_finished_task_is_readable_by_its_cdr(
    alice: Tenant, ran: dict[str, Any]
) -> None:
    task = ran["tasks"]["ok-1"]
    answer = alice.http.get(f"/call_history/{task['cdr']}")
    assert answer.status_code == 200, answer.text
    call = answer.json()
    assert call["call_uuid"] == task["cdr"]
    assert call["application"] == "callback"
    assert call["flow"] == "out"
    assert call["task_id"] == task["id"]
    assert call["attempt"] == 1
    assert call["client_owner_id"] == alice.id
    assert call["from_username"] == A_OK
    assert call["to_username"] == B_OK
    assert call["bridged_username"] == B_OK
    assert call["bridged_duration"] is not None and call["bridged_duration"] >= 0
    assert SEED_TIME.match(call["start_time_gmt"]), call
    assert SEED_TIME.match(call["bridged_time_gmt"] or ""), call
    legs = {leg["leg"]: leg for leg in call["cdr"]}
    assert set(legs) == {"a", "b"}, call["cdr"]
    assert legs["a"]["to"] == A_OK and legs["b"]["to"] == B_OK
    assert legs["a"]["outcome"] == legs["b"]["outcome"] == "answered"


def test_call_history_of_a_busy_b_leg_shows_no_bridge(alice: Tenant, ran: dict[str, Any]) -> None:
    task = ran["tasks"]["busy"]
    assert task["cdr"], task
    call = alice.http.get(f"/call_history/{task['cdr']}").json()
    assert call["result"] == "busy", call
    assert call["bridged_duration"] is None
    assert call["bridged_time_gmt"] is None


def test_call_history_lists_the_period_in_both_time_formats(
    alice: Tenant, ran: dict[str, Any]
) -> None:
    uuids = {task["cdr"] for task in ran["tasks"].values()}
    for start, end in (
        (_seed(ran["started"]), _seed(ran["ended"])),
        (ran["started"].isoformat(), ran["ended"].isoformat()),
        (
            ran["started"].astimezone(timezone(timedelta(hours=5))).isoformat(),
            ran["ended"].astimezone(timezone(timedelta(hours=-3))).isoformat(),
        ),
    ):
        answer = alice.http.get(
            "/call_history/", params={"start": start, "end": end, "limit": 1000}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert uuids <= {call["call_uuid"] for call in body["calls"]}, (start, end, body)
        assert body["total"] >= 3


def test_call_history_outside_the_period_is_empty(alice: Tenant, ran: dict[str, Any]) -> None:
    later = ran["ended"] + timedelta(days=1)
    answer = alice.http.get("/call_history/", params={"start": _seed(later)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["calls"] == [] and answer.json()["total"] == 0
    earlier = alice.http.get("/call_history/", params={"end": _seed(ran["started"])})
    assert earlier.json()["total"] == 0


def test_call_history_pages(alice: Tenant, ran: dict[str, Any]) -> None:
    params = {"start": _seed(ran["started"]), "end": _seed(ran["ended"])}
    whole = alice.http.get("/call_history/", params=params).json()
    seen: list[str] = []
    for offset in range(whole["total"]):
        page = alice.http.get("/call_history/", params={**params, "limit": 1, "offset": offset})
        body = page.json()
        assert body["limit"] == 1 and body["offset"] == offset and body["total"] == whole["total"]
        assert len(body["calls"]) == 1
        seen.append(body["calls"][0]["call_uuid"])
    assert len(seen) == len(set(seen)) == whole["total"]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2031-13-01 00:00:00"}, "end"),
        ({"start": "2031-05-01T09:30:00"}, "start"),  # ISO without a zone
        ({"limit": 0}, "limit"),
        ({"limit": "all"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_call_history_with_an_invalid_query_is_422_naming_it(
    alice: Tenant, rb: Any, params: dict[str, Any], name: str
) -> None:
    error = rb.error(alice.http.get("/call_history/", params=params), 422, "invalid_input")
    assert ["query", name] in rb.locs(error), error


def test_unknown_call_is_404(alice: Tenant, rb: Any) -> None:
    rb.error(alice.http.get("/call_history/no-such-call"), 404, "not_found")


def test_finished_filters_select_tasks_by_finish_time(alice: Tenant, ran: dict[str, Any]) -> None:
    url = f"/task_scheduler/{ran['queue']['id']}/tasks/"
    inside = alice.http.get(
        url, params={"finished_from": _seed(ran["started"]), "finished_to": _seed(ran["ended"])}
    ).json()
    assert inside["total"] == 3
    after = alice.http.get(url, params={"finished_from": _seed(ran["ended"])}).json()
    assert after["total"] == 0


def _worker_looked_for_work(alice: Tenant, rb: Any) -> None:
    """Proof that the server's worker has looked for due work since this call began: a task
    added now to a queue that is on (its A number busy, so it ends at once) has finished."""
    queue = alice.new_queue(status="on")
    alice.add_tasks(queue["id"], rb.task(name="witness", a_number=A_BUSY, try_count=1))
    _all_finished(alice, rb, queue["id"], 1)


def test_switching_a_queue_on_runs_its_waiting_tasks(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue(status="off")
    [task] = alice.add_tasks(queue["id"], rb.task(name="waits"))
    _worker_looked_for_work(alice, rb)  # and passed this task by: its queue is off
    waiting = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{task['id']}").json()
    assert waiting["status"] == "scheduled" and waiting["blocked_reason"] == "queue_off"
    assert waiting["calls"] == []
    switched = alice.http.put(f"/task_scheduler/{queue['id']}", json={"status": "on"})
    assert switched.status_code == 200, switched.text
    [done] = _all_finished(alice, rb, queue["id"], 1)
    assert done["finish_result"] == "success", done


def test_a_task_waits_for_its_start_time(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue(status="on")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    [task] = alice.add_tasks(queue["id"], rb.task(start_time_utc=_seed(start)))
    assert (task["start_time_utc"], task["next_run_at"]) == (_seed(start), _seed(start))
    [done] = _all_finished(alice, rb, queue["id"], 1)
    assert done["finish_result"] == "success", done
    # no call before the start time (this is what shows that it waited, however slow the
    # machine: a check of "not called yet" a while after adding it could only be skipped)
    first_call = min(call["start_time_utc"] for call in done["calls"])
    assert first_call >= _seed(start), (first_call, _seed(start), done)


def test_concurrent_task_limit_holds_while_tasks_run(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue(status="on", concurrent_task_limit=1)
    alice.add_tasks(queue["id"], *[rb.task(name=f"c{i}") for i in range(3)])
    most = 0
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        page = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/").json()
        statuses = [task["status"] for task in page["tasks"]]
        most = max(most, statuses.count("executed"))
        if statuses.count("finished") == 3:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the tasks did not finish: {statuses}")
    assert most <= 1, most
    assert all(task["finish_result"] == "success" for task in page["tasks"]), page


def test_canceling_a_running_queue_task_finishes_it_canceled(alice: Tenant, rb: Any) -> None:
    queue = alice.new_queue(status="on")
    later = _seed(datetime.now(UTC) + timedelta(hours=1))
    [task] = alice.add_tasks(queue["id"], rb.task(start_time_utc=later))
    answer = alice.http.delete(f"/task_scheduler/{queue['id']}/tasks/{task['id']}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["finish_comment"] == "canceled"
    _worker_looked_for_work(alice, rb)  # and did not run it
    again = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{task['id']}").json()
    assert again["status"] == "finished" and again["calls"] == []
