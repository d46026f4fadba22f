"""The webhooks page over HTTP, against a server that may call 127.0.0.1 and gives a delivery up
after a second: subscribe with the secret shown once, switch off and on, rotate, change the URL
and events, delete, a delivery that dies against a receiver answering 500 and is redelivered
once it answers 200, a delivery's page showing the very body the receiver got; bad input is a
422 page naming the field and changes nothing; another client's subscription or delivery is a
404."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable

import pytest
from support_console import Served, Signed

from support_webhooks import Receiver

pytestmark = pytest.mark.slow
WAIT_S = 30.0


@pytest.fixture(scope="module")
def serve_env() -> dict[str, str]:
    return {
        "RINGBACK_WEBHOOK_ALLOW_PRIVATE": "1",
        "RINGBACK_WEBHOOK_RETRY_FOR": "1",
        "RINGBACK_WEBHOOK_RETRY_BASE": "0.2",
    }


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT_S} s for {what}")
        time.sleep(0.2)  # polling another process's progress


def add_task(served: Served, acme: Signed) -> int:
    """A callback task far in the future (its task.created event is all it sends)."""
    served.cli("queue", "add", f"hooks-{time.monotonic_ns()}", "--client", "acme")
    page = acme.http.get("/ui/tasks/add").text
    queue = re.findall(r'<option value="(\d+)"', page)[-1]
    upload = (
        '[{"a_number": "33611110000", "b_number": "33622220000", '
        '"start_time_utc": "2099-01-01 00:00:00"}]'
    )
    added = acme.http.post(
        "/ui/tasks/add", data={"queue": queue, "csrf": acme.csrf},
        files={"file": ("later.json", upload.encode(), "application/json")},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    return int(re.findall(r"Ids: (\d+)", added.text)[0])


def subscribe(acme: Signed, url: str, events: str = "task.*") -> tuple[int, str]:
    answer = acme.http.post("/ui/webhooks", data={"csrf": acme.csrf, "url": url, "events": events})
    assert answer.status_code == 201, answer.text
    secret = re.search(r'<pre id="secret-value">([^<]+)</pre>', answer.text)
    assert secret, answer.text
    ids = re.findall(r'data-subscription="(\d+)"', answer.text)
    return int(ids[-1]), secret.group(1)


def test_a_dead_delivery_is_redelivered(served: Served, acme: Signed, receiver: Receiver) -> None:
    receiver.mode = "error"
    sub_id, secret = subscribe(acme, f"{receiver.url}/dies")
    assert len(secret) >= 16
    page = acme.http.get("/ui/webhooks").text
    assert secret not in page and f'data-subscription="{sub_id}"' in page  # shown once only
    task_id = add_task(served, acme)
    dead_rows = re.compile(r'<table class="deliveries dead">(.*?)</table>', re.S)

    def dead() -> list[str]:
        html = dead_rows.findall(acme.http.get("/ui/webhooks").text)[0]
        return re.findall(r'data-delivery="(\d+)"', html)

    wait_for(lambda: bool(dead()), "the delivery to die")
    html = acme.http.get("/ui/webhooks").text
    assert "HTTP 500" in html and f'href="/ui/tasks/{task_id}"' in html
    [delivery_id] = dead()
    receiver.mode = "ok"
    before = len(receiver.requests())
    answer = acme.http.post(
        f"/ui/webhooks/deliveries/{delivery_id}/redeliver", data={"csrf": acme.csrf}
    )
    assert answer.status_code == 303
    wait_for(lambda: len(receiver.requests()) > before, "the redelivery")
    wait_for(lambda: not dead(), "the dead list to empty")
    recent = acme.http.get("/ui/webhooks").text
    row = re.search(rf'data-delivery="{delivery_id}".*?</tr>', recent, re.S)
    assert row and "delivered" in row.group(0)


def test_switch_off_on_and_rotate(served: Served, acme: Signed, receiver: Receiver) -> None:
    sub_id, secret = subscribe(acme, f"{receiver.url}/switch", events="call.ended, task.finished")
    off = acme.http.post(f"/ui/webhooks/{sub_id}/active", data={"csrf": acme.csrf, "on": "false"})
    assert off.status_code == 303
    row = re.search(
        rf'data-subscription="{sub_id}".*?</tr>', acme.http.get("/ui/webhooks").text, re.S
    )
    assert row and "state-off" in row.group(0) and "Switch on" in row.group(0)
    acme.http.post(f"/ui/webhooks/{sub_id}/active", data={"csrf": acme.csrf, "on": "true"})
    row = re.search(
        rf'data-subscription="{sub_id}".*?</tr>', acme.http.get("/ui/webhooks").text, re.S
    )
    assert row and "state-on" in row.group(0)
    rotated = acme.http.post(f"/ui/webhooks/{sub_id}/rotate", data={"csrf": acme.csrf})
    assert rotated.status_code == 200 and "Secret rotated" in rotated.text
    new = re.search(r'<pre id="secret-value">([^<]+)</pre>', rotated.text)
    assert new and new.group(1) != secret
    refused = acme.http.post(f"/ui/webhooks/{sub_id}/rotate")
    assert refused.status_code == 403


def test_bad_input_names_the_field(acme: Signed) -> None:
    for url, events, field in (
        ("ftp://example.com/x", "*", "url"),
        ("http://user:pw@example.com/x", "*", "url"),
        ("https://example.com/x", "task.lost", "events"),
    ):
        answer = acme.http.post(
            "/ui/webhooks", data={"csrf": acme.csrf, "url": url, "events": events}
        )
        assert answer.status_code == 422, (url, answer.text[:500])
        assert 'id="form-error"' in answer.text and f"<li>{field}:" in answer.text
    assert "ftp://" not in acme.http.get("/ui/webhooks").text


def test_another_clients_webhooks_are_not_found(
    served: Served, acme: Signed, receiver: Receiver
) -> None:
    sub_id, _ = subscribe(acme, f"{receiver.url}/mine")
    add_task(served, acme)

    def deliveries() -> list[str]:
        return re.findall(r'data-delivery="(\d+)"', acme.http.get("/ui/webhooks").text)

    wait_for(lambda: bool(deliveries()), "a delivery")
    served.client("globex")
    globex = Signed(served, served.clients["globex"])
    try:
        assert f'data-subscription="{sub_id}"' not in globex.http.get("/ui/webhooks").text
        for action, data in (
            ("active", {"on": "false"}),
            ("rotate", {}),
            ("edit", {"url": f"{receiver.url}/stolen", "events": "*"}),
            ("delete", {}),
        ):
            answer = globex.http.post(
                f"/ui/webhooks/{sub_id}/{action}", data={"csrf": globex.csrf, **data}
            )
            assert answer.status_code == 404, action
        for delivery_id in deliveries()[:1]:
            answer = globex.http.post(
                f"/ui/webhooks/deliveries/{delivery_id}/redeliver", data={"csrf": globex.csrf}
            )
            assert answer.status_code == 404
            assert globex.http.get(f"/ui/webhooks/deliveries/{delivery_id}").status_code == 404
        row = subscription_row(acme, sub_id)
        assert f"{receiver.url}/mine" in row and "stolen" not in row and "state-on" in row
    finally:
        globex.http.close()


def subscription_row(signed: Signed, sub_id: int) -> str:
    """The subscription's row on the page ("" when it is not listed)."""
    html = signed.http.get("/ui/webhooks").text
    row = re.search(rf'data-subscription="{sub_id}".*?</tr>', html, re.S)
    return row.group(0) if row else ""


def test_an_edit_changes_the_url_and_events(acme: Signed, receiver: Receiver) -> None:
    sub_id, secret = subscribe(acme, f"{receiver.url}/before", events="task.*")
    answer = acme.http.post(
        f"/ui/webhooks/{sub_id}/edit",
        data={"csrf": acme.csrf, "url": f"{receiver.url}/after", "events": "call.ended task.*"},
    )
    assert answer.status_code == 303, answer.text[:500]
    row = subscription_row(acme, sub_id)
    assert f"{receiver.url}/after" in row and f"{receiver.url}/before" not in row
    assert "call.ended, task.*" in row and f"<code>{secret[:4]}…</code>" in row  # same secret


def test_a_refused_edit_names_the_field_and_changes_nothing(
    acme: Signed, receiver: Receiver
) -> None:
    sub_id, _ = subscribe(acme, f"{receiver.url}/kept", events="task.finished")
    before = subscription_row(acme, sub_id)
    for url, events, field in (
        ("ftp://example.com/x", "*", "url"),
        ("not a url", "*", "url"),
        (f"{receiver.url}/other", "", "events"),
        (f"{receiver.url}/other", " , ", "events"),
        (f"{receiver.url}/other", "task.lost", "events"),
    ):
        answer = acme.http.post(
            f"/ui/webhooks/{sub_id}/edit", data={"csrf": acme.csrf, "url": url, "events": events}
        )
        assert answer.status_code == 422, (url, events, answer.text[:500])
        assert 'id="edit-error"' in answer.text and f"<li>{field}:" in answer.text
        assert f'value="{url}"' in answer.text  # what was typed is kept in the form
    after = subscription_row(acme, sub_id)
    assert f"{receiver.url}/kept" in after and "task.finished" in after and after == before
    refused = acme.http.post(
        f"/ui/webhooks/{sub_id}/edit", data={"url": f"{receiver.url}/x", "events": "*"}
    )
    assert refused.status_code == 403 and subscription_row(acme, sub_id) == before


def test_adding_with_no_events_chosen_is_refused(acme: Signed, receiver: Receiver) -> None:
    answer = acme.http.post(
        "/ui/webhooks", data={"csrf": acme.csrf, "url": f"{receiver.url}/none", "events": ""}
    )
    assert answer.status_code == 422 and "<li>events:" in answer.text
    assert f"{receiver.url}/none</td>" not in acme.http.get("/ui/webhooks").text


def test_a_deleted_subscription_is_gone(acme: Signed, receiver: Receiver) -> None:
    sub_id, _ = subscribe(acme, f"{receiver.url}/deleted")
    refused = acme.http.post(f"/ui/webhooks/{sub_id}/delete")
    assert refused.status_code == 403 and subscription_row(acme, sub_id)
    answer = acme.http.post(f"/ui/webhooks/{sub_id}/delete", data={"csrf": acme.csrf})
    assert answer.status_code == 200 and 'id="deleted"' in answer.text
    assert subscription_row(acme, sub_id) == ""
    again = acme.http.post(f"/ui/webhooks/{sub_id}/delete", data={"csrf": acme.csrf})
    assert again.status_code == 404


def test_a_deliverys_page_shows_the_body_the_receiver_got(
    served: Served, acme: Signed, receiver: Receiver
) -> None:
    sub_id, _ = subscribe(acme, f"{receiver.url}/bodies", events="task.created")
    task_id = add_task(served, acme)
    wait_for(lambda: bool(receiver.requests()), "the delivery")
    [sent] = [r for r in receiver.requests() if r.path == "/bodies"]
    page = acme.http.get("/ui/webhooks").text
    rows = re.findall(r'data-delivery="(\d+)">(.*?)</tr>', page, re.S)
    [delivery_id] = {
        found for found, cells in rows if f'/ui/tasks/{task_id}"' in cells and "/bodies" in cells
    }
    assert f'href="/ui/webhooks/deliveries/{delivery_id}"' in page
    answer = acme.http.get(f"/ui/webhooks/deliveries/{delivery_id}")
    assert answer.status_code == 200
    body = re.search(r'<pre id="delivery-body">(.*?)</pre>', answer.text, re.S)
    assert body, answer.text
    assert json.loads(html.unescape(body.group(1))) == sent.json
    assert "task.created" in answer.text and f"subscription {sub_id}" in answer.text
    assert acme.http.get("/ui/webhooks/deliveries/999999999").status_code == 404
