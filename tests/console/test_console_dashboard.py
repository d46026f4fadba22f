"""The dashboard over HTTP: its three charts are inline SVG of the client's last hour (tasks it
finished show in throughput and outcomes), its fragment refreshes, another client sees none of
it; and the charts' scale (unit tests)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from support_console import Served, Signed

from ringback.console.charts import lines, nice_top, stacked_bars

pytestmark = pytest.mark.slow


def test_the_dashboard_charts_the_clients_finished_tasks(served: Served, acme: Signed) -> None:
    served.cli("queue", "add", "dash-q", "--client", "acme", "--on")
    page = acme.http.get("/ui/tasks/add").text
    queue = re.findall(r'<option value="(\d+)">dash-q ', page)[0]
    csv = "a_number,b_number\n33611110001,33622220001\n33611110002,33622220002\n"
    added = acme.http.post(
        "/ui/tasks/add", data={"queue": queue, "csrf": acme.csrf},
        files={"file": ("two.csv", csv.encode(), "text/csv")},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    deadline = time.monotonic() + 40
    while True:
        html = acme.http.get("/ui/dashboard").text
        finished = int(re.search(r'id="finished-hour">(\d+)<', html).group(1))  # type: ignore[union-attr]
        if finished >= 2:
            break
        assert time.monotonic() < deadline, "the tasks did not finish"
        time.sleep(0.3)  # polling the worker's progress
    for chart in ("chart-throughput", "chart-outcomes", "chart-lateness"):
        assert f'id="{chart}"' in html
    assert html.count('<svg class="chart"') == 3
    assert 'class="bar series-finished"' in html and re.search(r'class="bar series-\w+"', html)
    assert re.search(r'class="line series-(average|largest)"', html)
    fragment = acme.http.get("/ui/dashboard/charts", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and fragment.text.startswith('<div id="dashboard"')
    served.client("globex")
    globex = Signed(served, served.clients["globex"])
    try:
        assert 'id="finished-hour">0<' in globex.http.get("/ui/dashboard").text
    finally:
        globex.http.close()


def test_nice_tops_and_empty_charts() -> None:
    assert [nice_top(v) for v in (0, 1, 3, 7, 12, 99, 101)] == [1, 1, 5, 10, 20, 100, 200]
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    end = start + timedelta(minutes=60)
    empty = stacked_bars("t", [{}] * 60, ["finished"], start, end)
    assert "<rect" not in empty and "10:00" in empty and "11:00 UTC" in empty
    dotted = lines("l", {"average": [None, 2.0, None, 1.0, 3.0]}, start, end, unit=" s")
    assert dotted.count("<circle") == 1 and dotted.count("<polyline") == 1
    assert "<script" not in lines("<script>", {"<b>": [1.0]}, start, end)
