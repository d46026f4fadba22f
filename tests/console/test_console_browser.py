"""The console in a real browser (Debian's chromium), against a real ``ringback serve``:
sign in, switch a queue, change its limits, add tasks from a CSV file and watch them finish
live, open a task's calls; a wrong secret, another client's task. Each test is bounded (every
wait ≤ 20 s) and waits on conditions, never on fixed sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect
from support_console import Browser, Served, screenshot, sign_in

pytestmark = pytest.mark.slow

CSV = (
    "name,a_number,b_number,try_count,try_again_pause\n"
    "first,33611111111,33622222222,1,30\n"
    "second,33611111112,33622222223,1,30\n"
    "third,33611111113,33622222224,1,30\n"
)


def test_an_operator_switches_a_queue_adds_tasks_from_csv_and_watches_them_finish_live(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    client = served.client("acme")
    served.cli("queue", "add", "sales", "--client", "acme", "--comment", "spring campaign")
    page = browser.page
    sign_in(page, served.url, client)
    row = page.locator("tr[data-queue='sales']")
    expect(row.locator(".state")).to_have_text("off")
    row.get_by_role("button", name="Switch on").click()
    expect(row.locator(".state")).to_have_text("on")
    row.get_by_role("button", name="Switch off").click()
    expect(row.locator(".state")).to_have_text("off")
    row.get_by_role("button", name="Switch on").click()
    expect(row.locator(".state")).to_have_text("on")
    row.get_by_label("at once").fill("2")
    row.get_by_label("per second").fill("5")
    row.get_by_role("button", name="Save").click()
    expect(row.get_by_label("at once")).to_have_value("2")
    expect(row.get_by_label("per second")).to_have_value("5.0")

    tasks_csv = tmp_path / "tasks.csv"
    tasks_csv.write_text(CSV)
    page.get_by_role("link", name="Add tasks").click()
    page.locator("#upload").get_by_label("Queue").select_option(label="sales (on)")
    page.get_by_label("File (JSON or CSV)").set_input_files(str(tasks_csv))
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".added h2")).to_have_text("Added 3 task(s) to sales")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    screenshot(page, "add-tasks")

    page.locator("#added-link").click()
    rows = page.locator("tr.task")
    expect(rows).to_have_count(3)
    # the list refreshes itself: no reload from here on
    expect(page.locator("tr.task td.status", has_text="finished")).to_have_count(3)
    expect(page.locator("tr.task", has_text="success")).to_have_count(3)
    screenshot(page, "tasks")

    page.goto(f"{served.url}/ui/queues")
    expect(row.locator("[id$='-finished']")).to_have_text("3")
    expect(row.locator("[id$='-success']")).to_have_text("100 %")
    screenshot(page, "queues")

    page.goto(f"{served.url}/ui/tasks")
    page.get_by_label("Name").fill("seco")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    rows.first.locator("a").click()
    expect(page.locator("#task-status")).to_have_text("finished")
    calls = page.locator("tr.call")
    expect(calls).to_have_count(2)  # the A leg and the B leg
    expect(calls.filter(has_text="33622222223")).to_contain_text("answered")
    expect(page.locator("ol.timeline")).to_contain_text("task.finished")
    screenshot(page, "task")
    assert browser.offsite == [], f"the console asked for files elsewhere: {browser.offsite}"


def test_signing_in_with_a_wrong_secret_shows_the_error(served: Served, browser: Browser) -> None:
    client = served.client("acme")
    page = browser.page
    page.goto(f"{served.url}/")
    page.wait_for_url(f"{served.url}/ui/signin")
    page.get_by_label("client_id").fill(client.key)
    page.get_by_label("client_secret").fill(client.secret + "x")
    with page.expect_response(lambda r: r.url.endswith("/ui/signin")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("unknown client_id or wrong client_secret")
    expect(page.get_by_role("link", name="Tasks")).to_have_count(0)


def test_a_client_cannot_see_another_clients_task(served: Served, browser: Browser) -> None:
    served.client("acme")
    served.cli("queue", "add", "private", "--client", "acme")
    added = served.cli(
        "task", "add", "--client", "acme", "--queue", "private", "--a-number", "33611119999",
        "--b-number", "33622229999", "--json",
    )  # fmt: skip
    task_id = _first_id(added)
    page = browser.page
    sign_in(page, served.url, served.client("globex"))
    with page.expect_response(lambda r: r.url.endswith(f"/ui/tasks/{task_id}")) as answer:
        page.goto(f"{served.url}/ui/tasks/{task_id}")
    assert answer.value.status == 404
    expect(page.get_by_role("alert")).to_contain_text(f"no task {task_id}")
    page.goto(f"{served.url}/ui/tasks")
    expect(page.locator("#task-total")).to_have_text("0")


def _first_id(output: str) -> int:
    import json

    document = json.loads(output)
    ids = document.get("ids") or [task["id"] for task in document.get("tasks", [])]
    return int(ids[0])
