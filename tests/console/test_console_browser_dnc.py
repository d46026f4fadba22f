"""The do-not-call page in a real browser (Debian's chromium) against a real ``ringback serve``:
the menu leads there, a number typed into the add form is listed, the check panel says it is
suppressed, and its change is on the audit page. Each wait is bounded (≤ 20 s)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from support_console import WAIT_MS, Browser, Served, sign_in

pytestmark = pytest.mark.slow


def test_a_number_added_in_the_browser_is_listed_checked_and_audited(
    served: Served, browser: Browser
) -> None:
    client = served.client("acme")
    page = browser.page
    sign_in(page, served.url, client)
    page.get_by_role("link", name="Do not call").click()
    expect(page.get_by_role("heading", name="Do not call", level=1)).to_be_visible(timeout=WAIT_MS)
    form = page.locator("#dnc-add")
    form.get_by_label("Number").fill("+33 6 99 88 77 66")
    form.get_by_label("List").fill("browser")
    form.get_by_role("button", name="Add").click()
    expect(page.locator("#dnc-added")).to_contain_text("1 entry added", timeout=WAIT_MS)
    expect(page.locator("tr.dnc-entry", has_text="+33699887766")).to_contain_text("browser")
    check = page.locator("#dnc-check")
    check.get_by_label("Number").fill("+33699887766")
    check.get_by_role("button", name="Check").click()
    expect(page.locator("#dnc-checked")).to_contain_text("is suppressed", timeout=WAIT_MS)
    page.get_by_role("link", name="Audit").click()
    expect(page.locator("tr.audit-entry").first).to_contain_text("suppression", timeout=WAIT_MS)
    expect(page.locator("tr.audit-entry").first).to_contain_text("console")
