"""The console's "Download CSV" links over plain HTTP: the tasks and calls pages link to an
export keeping their current filters; the export holds every matching task (all pages), and
another client's queue is a 404."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest
from support_console import Served, Signed

pytestmark = pytest.mark.slow
LINK = re.compile(r'href="(/ui/(?:tasks|calls)/export\.csv[^"]*)"')


def _queue_id(served: Served, name: str) -> int:
    served.cli("queue", "add", name, "--client", "acme")
    for queue in json.loads(served.cli("queue", "list", "--client", "acme", "--json")):
        if queue["name"] == name:
            return int(queue["id"])
    raise AssertionError(f"no queue {name}")


def test_the_download_link_exports_every_task_the_filters_keep(
    served: Served, acme: Signed
) -> None:
    queue_id = _queue_id(served, "export-q")
    other_id = _queue_id(served, "export-other")
    rows = [{"a_number": "33611110000", "b_number": f"336222{i:05d}", "name": f"=t{i}",
             "start_time_utc": "2099-01-01 00:00:00"} for i in range(60)]  # fmt: skip
    for target, tasks in ((queue_id, rows), (other_id, rows[:2])):
        added = acme.http.post(
            "/ui/tasks/add", data={"queue": str(target), "csrf": acme.csrf},
            files={"file": ("t.json", json.dumps(tasks).encode(), "application/json")},
        )  # fmt: skip
        assert added.status_code == 201, added.text
    page = acme.http.get("/ui/tasks", params={"queue": str(queue_id)}).text
    [link] = LINK.findall(page)
    link = html.unescape(link)
    assert f"queue={queue_id}" in link
    answer = acme.http.get(link)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    exported = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(exported) == 60  # more than a page of the list (50)
    assert {r["queue_id"] for r in exported} == {str(queue_id)}
    assert exported[0]["name"] == "'=t0"
    served.client("globex")
    globex = Signed(served, served.clients["globex"])
    try:
        assert globex.http.get(link).status_code == 404
    finally:
        globex.http.close()


def test_the_calls_page_links_to_its_export_with_its_window(acme: Signed) -> None:
    page = acme.http.get("/ui/calls", params={"outcome": "busy"}).text
    [link] = LINK.findall(page)
    assert "outcome=busy" in html.unescape(link)
    answer = acme.http.get(html.unescape(link))
    assert answer.status_code == 200 and answer.text.startswith("call_uuid,")
