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
from support_api import Api
from support_console import Served, Signed

from support_webhooks import Receiver, signed_with

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
            (
                "edit",
                {
                    "url": f"{receiver.url}/mine",
                    "events": "*",
                    "description": "stolen",
                    "secret": "Stolen-secret-0123456789",
                },
            ),
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
        assert "Stol" not in row
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


def test_an_edit_sets_the_description_and_a_typed_secret_shown_only_by_its_first_4_characters(
    served: Served, acme: Signed, receiver: Receiver
) -> None:
    sub_id, old = subscribe(acme, f"{receiver.url}/typed", events="task.created")
    typed = "Mine-0123456789-abcdefXYZ"
    answer = acme.http.post(
        f"/ui/webhooks/{sub_id}/edit",
        data={"csrf": acme.csrf, "url": f"{receiver.url}/typed", "events": "task.created",
              "description": "  Billing <system>  ", "secret": f" {typed} "},
    )  # fmt: skip
    assert answer.status_code == 303, answer.text[:500]
    page = acme.http.get("/ui/webhooks").text
    row = subscription_row(acme, sub_id)
    assert "<td>Billing &lt;system&gt;</td>" in row  # stripped, escaped
    assert f"<code>{typed[:4]}…</code>" in row and typed not in page and old not in page
    audit = acme.http.get("/ui/audit").text
    assert typed not in audit  # the audit entry names the change, not the secret
    add_task(served, acme)
    wait_for(lambda: signed_with(receiver.requests(), "/typed", typed), "a delivery signed")


def test_an_empty_secret_field_keeps_the_secret_and_an_absent_description_field_keeps_it(
    acme: Signed, receiver: Receiver
) -> None:
    sub_id, secret = subscribe(acme, f"{receiver.url}/keep")
    first = acme.http.post(
        f"/ui/webhooks/{sub_id}/edit",
        data={"csrf": acme.csrf, "url": f"{receiver.url}/keep", "events": "*",
              "description": "kept text", "secret": "   "},
    )  # fmt: skip
    assert first.status_code == 303
    second = acme.http.post(
        f"/ui/webhooks/{sub_id}/edit",
        data={"csrf": acme.csrf, "url": f"{receiver.url}/keep2", "events": "*"},
    )
    assert second.status_code == 303
    row = subscription_row(acme, sub_id)
    assert "<td>kept text</td>" in row and f"<code>{secret[:4]}…</code>" in row
    cleared = acme.http.post(
        f"/ui/webhooks/{sub_id}/edit",
        data={"csrf": acme.csrf, "url": f"{receiver.url}/keep2", "events": "*",
              "description": ""},
    )  # fmt: skip
    assert cleared.status_code == 303 and "kept text" not in subscription_row(acme, sub_id)


BAD_SECRETS = (
    "short-15-chars!",  # 15 characters
    "x" * 201,
    "has a space in-it-0123",
    "non-ascii-é-0123456789",
    "tab\tinside-0123456789",
)
BAD_DESCRIPTIONS = ("d" * 501, "a NUL \x00 inside")


def test_a_refused_description_or_secret_names_the_field_keeps_what_was_typed_and_changes_nothing(
    acme: Signed, receiver: Receiver
) -> None:
    sub_id, secret = subscribe(acme, f"{receiver.url}/fields", events="task.finished")
    acme.http.post(
        f"/ui/webhooks/{sub_id}/edit",
        data={"csrf": acme.csrf, "url": f"{receiver.url}/fields", "events": "task.finished",
              "description": "before"},
    )  # fmt: skip
    before = subscription_row(acme, sub_id)
    tries = [("ok description", bad, "secret") for bad in BAD_SECRETS]
    tries += [(bad, "Good-secret-0123456789", "description") for bad in BAD_DESCRIPTIONS]
    for description, typed, field in tries:
        answer = acme.http.post(
            f"/ui/webhooks/{sub_id}/edit",
            data={"csrf": acme.csrf, "url": f"{receiver.url}/moved", "events": "call.*",
                  "description": description, "secret": typed},
        )  # fmt: skip
        assert answer.status_code == 422, (description, typed, answer.text[:500])
        row = re.search(rf'data-subscription="{sub_id}".*?</tr>', answer.text, re.S)
        assert row and 'id="edit-error"' in row.group(0), answer.text[:1000]
        assert f"<li>{field}:" in row.group(0)
        assert f'value="{receiver.url}/moved"' in row.group(0) and 'value="call.*"' in row.group(0)
        if "\x00" not in description:
            assert f'value="{html.escape(description)}"' in row.group(0)
        assert html.escape(typed) not in answer.text  # the secret typed is never shown back
        assert 'id="secret-not-kept"' in row.group(0)
    assert subscription_row(acme, sub_id) == before and f"<code>{secret[:4]}…</code>" in before
    refused = acme.http.post(
        f"/ui/webhooks/{sub_id}/edit",
        data={"url": f"{receiver.url}/fields", "events": "*", "secret": "Good-secret-0123456789"},
    )
    assert refused.status_code == 403 and subscription_row(acme, sub_id) == before


def test_the_console_accepts_and_refuses_a_secret_and_a_description_as_the_api_does(
    served: Served, acme: Signed, receiver: Receiver
) -> None:
    sub_id, _ = subscribe(acme, f"{receiver.url}/same")
    api = Api(served, served.clients["acme"])
    try:
        good = ("0123456789abcdef", "~" * 200, "  padded-0123456789  ", "!#$%&'()*+,-./:;<=>?@")
        for secret in (*good, *BAD_SECRETS):
            by_api = api.http.put(f"/webhooks/{sub_id}", json={"secret": secret}).status_code
            by_console = acme.http.post(
                f"/ui/webhooks/{sub_id}/edit",
                data={"csrf": acme.csrf, "url": f"{receiver.url}/same", "events": "*",
                      "secret": secret},
            ).status_code  # fmt: skip
            assert (by_api, by_console) in ((200, 303), (422, 422)), (secret, by_api, by_console)
            assert (by_api == 200) == (secret in good), secret
        for description in ("", " e " * 166 + "   ", "é" * 500, *BAD_DESCRIPTIONS):
            by_api = api.http.put(
                f"/webhooks/{sub_id}", json={"description": description}
            ).status_code
            by_console = acme.http.post(
                f"/ui/webhooks/{sub_id}/edit",
                data={"csrf": acme.csrf, "url": f"{receiver.url}/same", "events": "*",
                      "description": description},
            ).status_code  # fmt: skip
            assert (by_api, by_console) in ((200, 303), (422, 422)), (description, by_api)
            assert (by_api == 200) == (description not in BAD_DESCRIPTIONS), description
    finally:
        api.http.close()
