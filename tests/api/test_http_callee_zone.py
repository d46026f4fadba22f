"""The callee's time zone and holidays over HTTP on both stores (issue 18): a task shows its
zone and where it came from (given, number, queue); calling hours carry holidays, and a bad
holiday is refused with 422 naming it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Helpers, Tenant

PARIS = {
    "timezone": "Europe/Paris",
    "windows": [{"days": ["mon-fri"], "start": "09:00", "end": "18:00"}],
}
NEW_YORK_NUMBER = "+12125550123"


def _zone(task: dict[str, Any]) -> tuple[str | None, str | None]:
    return task["timezone"], task["timezone_source"]


def test_a_task_without_a_zone_takes_its_numbers_then_the_queues(
    alice: Tenant, rb: type[Helpers]
) -> None:
    queue = alice.new_queue(calling_hours=PARIS)
    by_number, by_queue, given = alice.add_tasks(
        queue["id"],
        rb.task(b_number=NEW_YORK_NUMBER),
        rb.task(b_number="0612345678"),  # no country: the queue's zone
        rb.task(b_number=NEW_YORK_NUMBER, timezone="Asia/Tokyo"),
    )
    assert _zone(by_number) == ("America/New_York", "number")
    assert _zone(by_queue) == ("Europe/Paris", "queue")
    assert _zone(given) == ("Asia/Tokyo", "given")
    shown = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{by_number['id']}").json()
    assert _zone(shown) == ("America/New_York", "number")
    # the queue's new hours move the tasks that follow the queue's zone, not the others
    tokyo = {**PARIS, "timezone": "Asia/Tokyo"}
    answer = alice.http.put(f"/task_scheduler/{queue['id']}", json={"calling_hours": tokyo})
    assert answer.status_code == 200, answer.text
    tasks = {
        t["id"]: t for t in alice.http.get(f"/task_scheduler/{queue['id']}/tasks/").json()["tasks"]
    }
    assert _zone(tasks[by_queue["id"]]) == ("Asia/Tokyo", "queue")
    assert _zone(tasks[by_number["id"]]) == ("America/New_York", "number")


def test_a_jobs_derived_zone_is_the_tasks_not_an_option(alice: Tenant) -> None:
    queue = alice.new_queue(calling_hours=PARIS)
    alice.put_wav("audio/tz.wav")
    job = {
        "type": "msg_call",
        "queue": queue["name"],
        "data": {"calling_number": "+15550005005", "called_number": "+33612345678",
                 "audio_file": "audio/tz.wav"},
    }  # fmt: skip
    answer = alice.http.post("/jobs/", json=job)
    assert answer.status_code in (200, 201), answer.text
    task = alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{answer.json()['id']}").json()
    assert _zone(task) == ("Europe/Paris", "number")
    assert task["options"]["timezone"] is None


def test_calling_hours_keep_their_holidays(alice: Tenant) -> None:
    holidays = [
        {"date": "12-25", "name": "Christmas"},
        {"date": "2026-05-01", "timezones": ["Europe/Paris"]},
    ]
    queue = alice.new_queue(calling_hours={**PARIS, "holidays": holidays})
    shown = queue["calling_hours"]["holidays"]
    assert [(h["date"], h["name"], h["timezones"]) for h in shown] == [
        ("12-25", "Christmas", None),
        ("2026-05-01", None, ["Europe/Paris"]),
    ]
    again = alice.http.get(f"/task_scheduler/{queue['id']}").json()
    assert again["calling_hours"]["holidays"] == shown
    plain = alice.new_queue(calling_hours=PARIS)
    assert plain["calling_hours"]["holidays"] == []


def test_a_bad_holiday_is_refused_naming_it(alice: Tenant, rb: type[Helpers]) -> None:
    before = alice.queue_count()
    for holiday, says in [
        ({"date": "02-30"}, "holiday 1: date"),
        ({"date": "12-25", "timezones": ["Mars/Base"]}, "holiday 1: timezones"),
    ]:
        answer = alice.http.post(
            "/task_scheduler/",
            json={"name": rb.unique("hol"), "calling_hours": {**PARIS, "holidays": [holiday]}},
        )
        body = rb.error(answer, 422)
        assert ["body", "calling_hours"] in [loc[:2] for loc in rb.locs(body)], body
        assert says in str(body), body
    assert alice.queue_count() == before
