"""The console's editing forms in a real browser (Debian's chromium) against a real ``ringback
serve`` that may call 127.0.0.1: a webhook subscription's URL and events changed (a refused
change named on the page), its description and a typed secret set (a too short one refused,
the secret never shown back, the delivery signed with it), a delivery's body read, the
subscription deleted after confirming; a number told when its calls end and tried with call
variables; tasks ticked in the list (kept ticked while the list refreshes) and cancelled, then
all matching after a confirmation with the count. Each test waits on conditions (every wait
≤ 20 s)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Dialog, expect
from support_api import Api, ivr_job
from support_console import Browser, Served, Signed, reload_until, screenshot, sign_in

from support_webhooks import Receiver, signed_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve_env() -> dict[str, str]:
    return {"RINGBACK_WEBHOOK_ALLOW_PRIVATE": "1"}


@pytest.fixture(scope="module")
def api(served: Served) -> Api:
    api = Api(served, served.client("acme"))
    api.put_file("ivr/greet.xml", b"<IVR><Speak>Hello {{ CallerName }}</Speak><Hangup/></IVR>")
    return api


def test_an_operator_edits_a_webhook_reads_a_delivery_and_deletes_it(
    served: Served, browser: Browser, api: Api, receiver: Receiver
) -> None:
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill(f"{receiver.url}/first")
    page.get_by_label("Events").fill("call.ended")
    page.get_by_role("button", name="Add", exact=True).click()
    row = page.locator("tr.subscription", has_text=f"{receiver.url}/first")
    expect(row).to_have_count(1)
    sub_id = row.get_attribute("data-subscription")
    row = page.locator(f"tr[data-subscription='{sub_id}']")
    row.locator("summary", has_text="Edit").click()
    row.get_by_label("Address").fill("http://user:pw@example.com/x")
    row.get_by_role("button", name="Save changes").click()
    expect(row.locator("#edit-error")).to_contain_text("url:")
    expect(row.get_by_label("Address")).to_have_value("http://user:pw@example.com/x")
    row.get_by_label("Address").fill(f"{receiver.url}/second")
    row.get_by_label("Event patterns").fill("")
    row.get_by_role("button", name="Save changes").click()
    expect(row.locator("#edit-error")).to_contain_text("events:")
    row.get_by_label("Address").fill(f"{receiver.url}/second")
    row.get_by_label("Event patterns").fill("task.created")
    row.get_by_role("button", name="Save changes").click()
    expect(page.locator("#edit-error")).to_have_count(0)
    expect(row).to_contain_text(f"{receiver.url}/second")
    expect(row).to_contain_text("task.created")
    expect(row).not_to_contain_text("call.ended")

    typed = "Orders-0123456789-secret"  # a description and a secret typed by the operator
    row.locator("summary", has_text="Edit").click()
    row.get_by_label("Description").fill("Orders system")
    row.get_by_label("New secret").fill("too-short")
    row.get_by_role("button", name="Save changes").click()
    expect(row.locator("#edit-error")).to_contain_text("secret:")
    expect(row.get_by_label("Description")).to_have_value("Orders system")
    expect(row.get_by_label("New secret")).to_have_value("")  # never put back in the page
    row.get_by_label("New secret").fill(typed)
    row.get_by_role("button", name="Save changes").click()
    expect(page.locator("#edit-error")).to_have_count(0)
    expect(row).to_contain_text("Orders system")
    expect(row.locator("code")).to_have_text(f"{typed[:4]}…")
    assert typed not in page.content()

    task_id = ivr_job(api, "<IVR><Hangup/></IVR>", called="0901230011")
    mine = page.locator(
        f"table.recent tr.delivery:has(a[href='/ui/tasks/{task_id}'])", has_text="/second"
    )
    reload_until(page, lambda: mine.count() == 1 and bool(receiver.requests()), "the delivery")
    assert signed_with(receiver.requests(), "/second", typed)  # signed with the typed secret
    mine.locator("a[href^='/ui/webhooks/deliveries/']").click()
    body = page.locator("#delivery-body")
    expect(body).to_contain_text("task.created")
    assert json.loads(body.inner_text()) in [r.json for r in receiver.requests()]
    screenshot(page, "delivery")

    page.get_by_role("link", name="← Webhooks").click()
    # the page's deferred script asks before a delete: click once the page has loaded (a
    # click before it ran sends the form without asking, as without JavaScript)
    page.wait_for_url(re.compile(r"/ui/webhooks/?(\?.*)?$"), wait_until="load")
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#deleted")).to_contain_text(f"Subscription {sub_id} deleted")
    expect(page.locator(f"tr[data-subscription='{sub_id}']")).to_have_count(0)
    assert asked and "undelivered events are dropped" in asked[0]
    assert browser.offsite == []


def test_an_operator_sets_notify_completed_and_tries_a_number_with_variables(
    served: Served, browser: Browser, api: Api
) -> None:
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.get_by_role("link", name="Numbers").click()
    form = page.locator("#route-form")
    form.get_by_label("Number", exact=True).fill("0312348001")
    form.get_by_label("IVR file", exact=True).fill("ivr/greet.xml")
    form.get_by_label("tell the answer URL when the call ends").check()
    form.get_by_role("button", name="Save route").click()
    expect(page.locator("#form-error")).to_contain_text("notify_completed:")
    expect(page.locator("tr[data-number='0312348001']")).to_have_count(0)
    form.get_by_label("to an answer URL").check()
    form.get_by_label("answer URL", exact=True).fill("https://ivr.example.com/answer")
    form.get_by_role("button", name="Save route").click()
    expect(page.locator("tr[data-number='0312348001']")).to_contain_text("told when the call ends")
    assert api.http.get("/numbers/0312348001").json()["notify_completed"] is True

    form.get_by_label("Number", exact=True).fill("0312348002")
    form.get_by_label("to an IVR file in storage").check()
    form.get_by_label("IVR file", exact=True).fill("ivr/greet.xml")
    form.get_by_role("button", name="Save route").click()
    expect(page.locator("tr[data-number='0312348002']")).to_contain_text("ivr/greet.xml")
    trial = page.locator("#try-form")
    trial.get_by_label("Number").select_option("0312348002")
    trial.get_by_label("Variables").fill("CallerName Ada")
    trial.get_by_role("button", name="Call").click()
    expect(page.locator("#trial-error")).to_contain_text("variables: line 1")
    trial.get_by_label("Variables").fill("CallerName=Ada")
    trial.get_by_role("button", name="Call").click()
    expect(page.locator("#simulated-transcript")).to_contain_text("Hello Ada")
    expect(page.locator("#trial-error")).to_have_count(0)
    assert browser.offsite == []


def waiting_tasks(served: Served, queue: str, count: int) -> tuple[int, list[int]]:
    """A new queue of acme's with ``count`` callback tasks far in the future: its id, theirs."""
    served.cli("queue", "add", queue, "--client", "acme")
    queues = json.loads(served.cli("queue", "list", "--client", "acme", "--json"))
    [queue_id] = [int(q["id"]) for q in queues if q["name"] == queue]
    signed = Signed(served, served.clients["acme"])
    try:
        items = [
            {"name": f"{queue}-{n}", "a_number": "33611110000", "b_number": "33622220000",
             "start_time_utc": "2099-01-01 00:00:00"}
            for n in range(count)
        ]  # fmt: skip
        added = signed.http.post(
            "/ui/tasks/add", data={"queue": str(queue_id), "csrf": signed.csrf},
            files={"file": ("later.json", json.dumps(items).encode(), "application/json")},
        )  # fmt: skip
        assert added.status_code == 201, added.text
        ids = [int(i) for i in re.findall(r"Ids: ([\d, ]+)", added.text)[0].split(", ")]
    finally:
        signed.http.close()
    return queue_id, ids


def test_an_operator_cancels_ticked_tasks_then_all_matching(
    served: Served, browser: Browser, api: Api
) -> None:
    queue_id, (one, two, three) = waiting_tasks(served, "bulk-browser", 3)
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.goto(f"{served.url}/ui/tasks?queue={queue_id}")
    expect(page.locator("#search-window")).to_contain_text("newest 50,000 tasks")
    page.get_by_label(f"select task {one}").check()
    page.get_by_label(f"select task {two}").check()
    swapped = (
        "new Promise(done => document.body.addEventListener('htmx:afterSwap', done, {once: true}))"
    )
    page.evaluate(swapped)  # the list refreshed (every 2 s) ...
    expect(page.get_by_label(f"select task {one}")).to_be_checked()  # ... and kept the ticks
    expect(page.get_by_label(f"select task {two}")).to_be_checked()
    expect(page.get_by_label(f"select task {three}")).not_to_be_checked()
    page.get_by_role("button", name="Cancel selected").click()
    expect(page.locator("#cancelled-count")).to_have_text("2")
    page.get_by_role("link", name="Back to the list").click()
    expect(page.locator(f"tr[data-task='{one}'] .status")).to_have_text("finished")
    expect(page.get_by_label(f"select task {one}")).to_have_count(0)
    page.get_by_role("button", name="Cancel all matching…").click()
    expect(page.locator("#matching-total")).to_have_text("3")
    expect(page.locator("#matching-unfinished")).to_have_text("1")
    screenshot(page, "tasks-cancel-confirm")
    page.get_by_role("button", name="Yes, cancel 1 task(s)").click()
    expect(page.locator("#cancelled-count")).to_have_text("1")
    expect(page.locator("#finished-matching")).to_contain_text("2 matching task(s)")
    page.get_by_role("link", name="Back to the list").click()
    expect(page.locator(f"tr[data-task='{three}'] .status")).to_have_text("finished")
    assert browser.offsite == []
