"""``/docs`` and ``/redoc`` render in a real browser with nothing but the server reachable,
and Swagger UI's "Authorize" gets a token by the client-credentials flow."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from support_console import Browser, Served

pytestmark = pytest.mark.slow


def test_swagger_ui_renders_offline_and_authorizes_with_client_credentials(
    served: Served, browser: Browser
) -> None:
    client = served.client("docs-acme")
    page = browser.page
    page.goto(f"{served.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ringback")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.locator("#client_id_clientCredentials").fill(client.key)
    dialog.locator("#client_secret_clientCredentials").fill(client.secret)
    with page.expect_response(lambda r: r.url.endswith("/oauth/token")) as answer:
        dialog.get_by_label("Apply given OAuth2 credentials").click()
    assert answer.value.status == 200, answer.value.text()
    expect(dialog.get_by_role("heading", name="Authorized")).to_be_visible()
    token = answer.value.json()["access_token"]
    queues = page.request.get(
        f"{served.url}/api/ver1.0/client/{client.id}/task_scheduler/",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert queues.status == 200, queues.text()
    assert browser.offsite == [], f"the page asked for files elsewhere: {browser.offsite}"


def test_redoc_renders_offline(served: Served, browser: Browser) -> None:
    page = browser.page
    page.goto(f"{served.url}/redoc")
    expect(page.locator("h1").first).to_contain_text("ringback")
    expect(page.get_by_text("/oauth/token").first).to_be_attached()
    assert browser.offsite == [], f"the page asked for files elsewhere: {browser.offsite}"
