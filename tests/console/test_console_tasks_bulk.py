"""Cancelling several tasks from the task list, over HTTP: the ticked tasks are cancelled and
those already finished are reported as not cancellable (not an error); "cancel all matching"
first asks with the count and cancels nothing, then cancels only the unfinished tasks the
filters match; nothing ticked or a bad id is a 422 naming ``ids``; no CSRF token is a 403; another
client's task or queue is a 404 and nothing changes; the list says that a name or number
search reads the newest 50,000 tasks."""

from __future__ import annotations

import json
import re
import time

import pytest
from support_console import Served, Signed

pytestmark = pytest.mark.slow
LATER = "2099-01-01 00:00:00"


def queue_id(served: Served, name: str, client: str = "acme") -> int:
    served.cli("queue", "add", name, "--client", client)
    for queue in json.loads(served.cli("queue", "list", "--client", client, "--json")):
        if queue["name"] == name:
            return int(queue["id"])
    raise AssertionError(f"no queue {name}")


def add_tasks(signed: Signed, queue: int, names: list[str], shown: int | None = None) -> list[int]:
    """Callback tasks far in the future (they wait: nothing dials them); their ids (the first
    ``shown`` of them when the page shows only those)."""
    items = [
        {"name": name, "a_number": "33611110000", "b_number": "33622220000",
         "start_time_utc": LATER}
        for name in names
    ]  # fmt: skip
    added = signed.http.post(
        "/ui/tasks/add", data={"queue": str(queue), "csrf": signed.csrf},
        files={"file": ("later.json", json.dumps(items).encode(), "application/json")},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    ids = [int(i) for i in re.findall(r"\d+", re.findall(r"Ids: ([\d, ]+)", added.text)[0])]
    assert len(ids) == (shown or len(names))
    return ids


def finished(signed: Signed, queue: int) -> int:
    """How many of the queue's tasks have finished (the list's total for that status)."""
    html = signed.http.get("/ui/tasks", params={"queue": queue, "status": "finished"}).text
    total = re.search(r'<span id="task-total">(\d+)</span>', html)
    assert total, html[:1000]
    return int(total.group(1))


def cancel(signed: Signed, **data: str | list[str]) -> tuple[int, str]:
    answer = signed.http.post("/ui/tasks/cancel", data={"csrf": signed.csrf, **data})
    return answer.status_code, answer.text


def test_ticked_tasks_are_cancelled_and_finished_ones_are_reported_not_cancellable(
    served: Served, acme: Signed
) -> None:
    queue = queue_id(served, "bulk-ticked")
    one, two, three, kept = add_tasks(acme, queue, ["t1", "t2", "t3", "kept"])
    assert acme.http.post(f"/ui/tasks/{three}/cancel", data={"csrf": acme.csrf}).status_code == 303
    status, html = cancel(acme, scope="selected", ids=[str(one), str(two), str(three)])
    assert status == 200, html[:1000]
    assert re.search(r'<span id="cancelled-count">2</span>', html)
    not_cancellable = re.search(r'<p id="not-cancellable">(.*?)</p>', html, re.S)
    assert not_cancellable and f">{three}</a>" in not_cancellable.group(1)
    assert f">{one}</a>" not in not_cancellable.group(1)
    assert finished(acme, queue) == 3
    listed = acme.http.get("/ui/tasks", params={"queue": queue, "status": "scheduled"}).text
    assert f'data-task="{kept}"' in listed and f'id="pick-{kept}"' in listed
    again, html = cancel(acme, scope="selected", ids=[str(one)])  # finished: no error
    assert again == 200 and '<span id="cancelled-count">0</span>' in html


def test_cancel_all_matching_asks_with_the_count_then_cancels_the_unfinished_ones(
    served: Served, acme: Signed
) -> None:
    queue = queue_id(served, "bulk-matching")
    other = queue_id(served, "bulk-other")
    ids = add_tasks(acme, queue, ["promo-a", "promo-b", "promo-c", "promo-d", "keep-e"])
    add_tasks(acme, other, ["promo-x"])
    assert acme.http.post(f"/ui/tasks/{ids[0]}/cancel", data={"csrf": acme.csrf}).status_code == 303
    filters = {"queue": str(queue), "q": "promo"}
    status, html = cancel(acme, scope="matching", **filters)
    assert status == 200 and 'id="confirm-cancel"' in html
    assert '<span id="matching-total">4</span>' in html
    assert '<strong id="matching-unfinished">3</strong>' in html
    assert "newest 50,000 tasks" in html  # a name search
    assert finished(acme, queue) == 1  # asking changed nothing
    status, html = cancel(acme, scope="matching", confirm="1", **filters)
    assert status == 200, html[:1000]
    assert '<span id="cancelled-count">3</span>' in html and 'id="finished-matching"' in html
    assert 'id="cancel-more"' not in html
    assert finished(acme, queue) == 4  # promo-a (before) and b, c, d
    scheduled = acme.http.get("/ui/tasks", params={"queue": queue, "status": "scheduled"}).text
    assert f'data-task="{ids[4]}"' in scheduled  # keep-e does not match
    assert finished(acme, other) == 0  # another queue: not matching


def test_nothing_ticked_or_bad_ids_are_a_422_naming_ids(acme: Signed) -> None:
    for data in ({"scope": "selected"}, {"scope": "selected", "ids": ["x1"]}):
        status, html = cancel(acme, **data)
        assert status == 422 and "ids:" in html, data
    status, html = cancel(acme, scope="matching", status="lost")
    assert status == 422 and "status:" in html


def test_no_csrf_token_is_refused_and_cancels_nothing(served: Served, acme: Signed) -> None:
    queue = queue_id(served, "bulk-csrf")
    [task] = add_tasks(acme, queue, ["csrf"])
    for data in ({"scope": "selected", "ids": str(task)}, {"scope": "matching", "confirm": "1"}):
        answer = acme.http.post("/ui/tasks/cancel", data=data)
        assert answer.status_code == 403
    assert finished(acme, queue) == 0


def test_another_clients_tasks_cannot_be_cancelled(
    served: Served, acme: Signed, globex: Signed
) -> None:
    queue = queue_id(served, f"bulk-tenant-{time.monotonic_ns()}")
    mine = add_tasks(acme, queue, ["tenant-1", "tenant-2"])
    status, _ = cancel(globex, scope="selected", ids=[str(i) for i in mine])
    assert status == 404
    globex_queue = queue_id(served, "bulk-globex", client="globex")
    [theirs] = add_tasks(globex, globex_queue, ["tenant-g"])
    status, _ = cancel(globex, scope="selected", ids=[str(theirs), str(mine[0])])
    assert status == 404  # one not theirs: nothing at all is cancelled
    assert finished(globex, globex_queue) == 0
    status, _ = cancel(globex, scope="matching", confirm="1", queue=str(queue))
    assert status == 404
    status, html = cancel(globex, scope="matching", confirm="1", q="tenant")
    assert status == 200 and '<span id="cancelled-count">1</span>' in html
    assert f">{theirs}</a>" in html and f">{mine[0]}</a>" not in html
    assert finished(acme, queue) == 0


def test_the_list_says_a_search_reads_the_newest_50000_tasks(acme: Signed) -> None:
    html = acme.http.get("/ui/tasks", params={"q": "anything"}).text
    note = re.search(r'<p class="muted" id="search-window">(.*?)</p>', html, re.S)
    assert note and "newest 50,000 tasks" in note.group(1) and "(this one did)" in note.group(1)
    plain = acme.http.get("/ui/tasks").text
    assert 'id="search-window"' in plain and "(this one did)" not in plain


def test_more_than_500_matching_tasks_are_cancelled_in_one_submission_and_one_audit_entry(
    served: Served, acme: Signed
) -> None:
    queue = queue_id(served, "bulk-large")
    add_tasks(acme, queue, [f"large-{i}" for i in range(1200)], shown=50)  # 50 ids shown
    status, html = cancel(acme, scope="matching", queue=str(queue))
    assert status == 200 and '<strong id="matching-unfinished">1200</strong>' in html
    assert "Yes, cancel 1200 task(s)" in html
    status, html = cancel(acme, scope="matching", confirm="1", queue=str(queue))
    assert status == 200, html[:1000]
    assert '<span id="cancelled-count">1200</span>' in html and 'id="cancel-more"' not in html
    assert "(1100 more)" in html  # the first 100 ids are links
    assert finished(acme, queue) == 1200
    audit = acme.http.get("/ui/audit", params={"object_type": "task", "action": "cancelled"})
    bulk = [row for row in audit.text.split('<tr class="audit-entry"') if "cancelled=1200" in row]
    assert len(bulk) == 1 and f"&#34;queue_id&#34;: {queue}" in bulk[0], audit.text[-3000:]
