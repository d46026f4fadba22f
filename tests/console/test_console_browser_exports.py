"""The console's Download CSV links in a real browser (Debian's chromium) against a real
``ringback serve``: filtering the calls page by an outcome and clicking the link downloads a
CSV export of that filter. Each wait is bounded (≤ 20 s)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect
from support_console import WAIT_MS, Browser, Served, sign_in

pytestmark = pytest.mark.slow


def test_the_download_csv_link_downloads_the_filtered_list(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    client = served.client("acme")
    page = browser.page
    sign_in(page, served.url, client)
    page.goto(f"{served.url}/ui/calls?outcome=busy")
    link = page.get_by_role("link", name="Download CSV")
    expect(link).to_have_attribute("href", "/ui/calls/export.csv?outcome=busy", timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as started:
        link.click()
    download = started.value
    assert download.suggested_filename == "calls.csv"
    saved = tmp_path / "calls.csv"
    download.save_as(saved)
    header = next(csv.reader(io.StringIO(saved.read_text())))
    assert header[:3] == ["call_uuid", "direction", "from_number"]
    page.goto(f"{served.url}/ui/tasks?status=finished")
    tasks_link = page.get_by_role("link", name="Download CSV")
    expect(tasks_link).to_have_attribute("href", "/ui/tasks/export.csv?status=finished")
