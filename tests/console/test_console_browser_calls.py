"""The console's newer pages in a real browser (Debian's chromium) against a real ``ringback
serve`` that may call 127.0.0.1 and gives a webhook delivery up after a second: a task's call
and its transcript, a received fax's pages and PDF, a dead webhook redelivered, a number routed
and tried with digits, the dashboard's charts. Each test waits on conditions (every wait ≤ 20 s)
and stays under a minute."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from support_api import SALES_IVR, Api, fax_call, ivr_job, wav
from support_console import Browser, Served, reload_until, screenshot, sign_in

from support_webhooks import Receiver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve_env() -> dict[str, str]:
    return {
        "RINGBACK_WEBHOOK_ALLOW_PRIVATE": "1",
        "RINGBACK_WEBHOOK_RETRY_FOR": "1",
        "RINGBACK_WEBHOOK_RETRY_BASE": "0.2",
    }


@pytest.fixture(scope="module")
def api(served: Served) -> Api:
    api = Api(served, served.client("acme"))
    api.put_file("audio/hello.wav", wav(0.1))  # within the callee's 0.5 s
    api.put_file("ivr/sales.xml", SALES_IVR.encode())
    return api


def test_an_operator_opens_a_tasks_call_and_reads_its_transcript(
    served: Served, browser: Browser, api: Api
) -> None:
    task_id = ivr_job(api, "<IVR><Play>audio/hello.wav</Play><Hangup/></IVR>")
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.goto(f"{served.url}/ui/tasks/{task_id}")
    expect(page.locator("#task-status")).to_have_text("finished")  # the page refreshes itself
    page.locator("tr.call a", has_text="main").click()
    expect(page.locator("h1")).to_contain_text("0901230001")
    transcript = page.locator("ol.transcript")
    expect(transcript.locator("li.step-said")).to_have_text(
        ["the IVR said Play audio/hello.wav line 1"]
    )
    # how it ended: the Hangup, or the callee hanging up first (its 0.5 s talk time)
    expect(transcript.locator("li.step-call").first).to_contain_text("call ")
    audio = page.locator("ul.played audio")
    expect(audio).to_have_count(1)
    src = audio.get_attribute("src")
    assert src and page.request.get(served.url + src).body()[:4] == b"RIFF"
    page.get_by_role("link", name="Calls").first.click()
    expect(page.locator("tr.call").first).to_contain_text("ivr_call")
    screenshot(page, "calls")
    assert browser.offsite == []


def test_a_fax_call_shows_its_pages_and_its_pdf(served: Served, browser: Browser, api: Api) -> None:
    call = fax_call(api, "0312348001")
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.goto(f"{served.url}/ui/calls?outcome=answered")
    row = page.locator(f"tr[data-call='{call['call_uuid']}']")
    expect(row).to_contain_text("reception: 1 p.")
    row.locator("a").first.click()
    expect(page.locator("#fax-pages")).to_have_text("1")
    expect(page.locator("#fax-result")).to_have_text("0 OK")
    expect(page.locator("ol.transcript")).to_contain_text("the caller pressed")
    href = page.locator("a.fax-pdf").get_attribute("href")
    assert href
    pdf = page.request.get(served.url + href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body()[:5] == b"%PDF-"
    tiff = page.locator("a.fax-tiff").get_attribute("href")
    assert tiff and page.request.get(served.url + tiff).status == 200
    screenshot(page, "call")
    assert browser.offsite == []


def test_an_operator_redelivers_a_dead_webhook(
    served: Served, browser: Browser, api: Api, receiver: Receiver
) -> None:
    receiver.mode = "error"
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill(f"{receiver.url}/hooks")
    page.get_by_label("Events").fill("task.created")
    page.get_by_role("button", name="Add", exact=True).click()
    secret = page.locator("#secret-value")
    expect(secret).to_have_count(1)
    shown = secret.inner_text()
    page.goto(f"{served.url}/ui/webhooks")
    expect(page.locator("#secret-value")).to_have_count(0)
    assert shown not in page.content()
    ivr_job(api, "<IVR><Hangup/></IVR>", called="0901230002")
    dead = page.locator("table.dead tr.delivery")
    reload_until(page, lambda: dead.count() > 0, "the delivery to die")
    expect(dead.first).to_contain_text("HTTP 500")
    delivery = dead.first.get_attribute("data-delivery")
    receiver.mode = "ok"
    dead.first.get_by_role("button", name="Redeliver").click()
    recent = page.locator(f"table.recent tr[data-delivery='{delivery}'] .delivery-status")
    reload_until(page, lambda: recent.inner_text() == "delivered", "the redelivery")
    expect(page.locator(f"table.dead tr[data-delivery='{delivery}']")).to_have_count(0)
    assert any(r.mode == "ok" for r in receiver.requests())
    assert browser.offsite == []


def test_an_operator_routes_a_number_and_tries_it_with_digits(
    served: Served, browser: Browser, api: Api
) -> None:
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.get_by_role("link", name="Numbers").click()
    form = page.locator("#route-form")
    form.get_by_label("Number", exact=True).fill("0312347001")
    form.get_by_label("IVR file", exact=True).fill("ivr/sales.xml")
    form.get_by_role("button", name="Save route").click()
    expect(page.locator("tr[data-number='0312347001']")).to_contain_text("ivr/sales.xml")
    trial = page.locator("#try-form")
    trial.get_by_label("Number").select_option("0312347001")
    trial.get_by_label("Digits").fill("2")
    trial.get_by_role("button", name="Call").click()
    transcript = page.locator("#simulated-transcript")
    expect(transcript).to_contain_text("the caller pressed")
    expect(transcript).to_contain_text("'Support'")
    screenshot(page, "numbers")
    page.locator("#simulated-call").click()
    expect(page.locator("ol.transcript")).to_contain_text("'Support'")
    assert browser.offsite == []


def test_the_dashboard_renders_its_charts(served: Served, browser: Browser, api: Api) -> None:
    task_id = ivr_job(api, "<IVR><Hangup/></IVR>", called="0901230003")
    page = browser.page
    sign_in(page, served.url, served.clients["acme"])
    page.goto(f"{served.url}/ui/tasks/{task_id}")
    expect(page.locator("#task-status")).to_have_text("finished")
    page.get_by_role("link", name="Dashboard").click()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(3)
    for box in ("#chart-throughput", "#chart-outcomes", "#chart-lateness"):
        expect(page.locator(box + " svg.chart")).to_be_visible()
    expect(page.locator("#chart-throughput rect.bar").first).to_be_visible()
    expect(page.locator("#chart-outcomes ul.legend")).to_contain_text("success")
    assert int(page.locator("#finished-hour").inner_text()) >= 1
    screenshot(page, "dashboard")
    assert browser.offsite == []
