"""The console's rules over plain HTTP (no browser needed): pages need a session, every POST
needs its CSRF token, bad input is a 4xx page naming the problem, one client never reaches
another's data; cancel and run now; and how long the pages take (printed)."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
import wave
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from support_console import HOST, Served, Signed, free_port, wait_healthy

from support import stop_process

pytestmark = pytest.mark.slow


def _queue_id(served: Served, name: str, client: str = "acme") -> int:
    import json

    served.cli("queue", "add", name, "--client", client)
    for queue in json.loads(served.cli("queue", "list", "--client", client, "--json")):
        if queue["name"] == name:
            return int(queue["id"])
    raise AssertionError(f"no queue {name}")


def test_pages_without_a_session_lead_to_the_sign_in(served: Served) -> None:
    for path in ("/ui/queues", "/ui/tasks", "/ui/tasks/1", "/ui/tasks/add", "/ui/nothing"):
        answer = httpx.get(f"{served.url}{path}")
        assert (answer.status_code, answer.headers.get("location")) == (303, "/ui/signin"), path
    answer = httpx.get(f"{served.url}/ui/queues/counts", headers={"HX-Request": "true"})
    assert answer.headers.get("HX-Redirect") == "/ui/signin"
    forged = httpx.get(f"{served.url}/ui/queues", cookies={"rb_console": "1.token.00"})
    assert forged.status_code == 303


def test_a_post_without_the_csrf_token_is_refused(served: Served, acme: Signed) -> None:
    queue_id = _queue_id(served, "csrf-q")
    refused = acme.http.post(f"/ui/queues/{queue_id}/status", data={"status": "on"})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    wrong = acme.http.post(f"/ui/queues/{queue_id}/status", data={"status": "on", "csrf": "0" * 64})
    assert wrong.status_code == 403
    assert 'data-queue="csrf-q"' in acme.http.get("/ui/queues").text
    assert "state-off" in _row(acme.http.get("/ui/queues").text, "csrf-q")
    done = acme.http.post(
        f"/ui/queues/{queue_id}/status", data={"status": "on"},
        headers={"X-CSRF-Token": acme.csrf},
    )  # fmt: skip
    assert done.status_code == 303
    assert "state-on" in _row(acme.http.get("/ui/queues").text, "csrf-q")
    signin = httpx.post(
        f"{served.url}/ui/signin", data={"client_id": "x", "client_secret": "y"}
    )  # no form token, no cookie: a cross-site sign-in is refused as well
    assert signin.status_code == 403


def _row(html: str, queue: str) -> str:
    start = html.index(f'data-queue="{queue}"')
    return html[start : html.index("</tr>", start)]


def test_an_upload_with_bad_rows_adds_nothing_and_names_each_line(
    served: Served, acme: Signed
) -> None:
    queue_id = _queue_id(served, "upload-q")
    bad = "name,a_number,b_number\nok,33611111111,33622222222\nbad,abc,33622222222\n,,\nx,1\n"
    answer = acme.http.post(
        "/ui/tasks/add", data={"queue": str(queue_id), "csrf": acme.csrf},
        files={"file": ("tasks.csv", bad.encode(), "text/csv")},
    )  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert "line 3.a_number" in answer.text
    assert "line 5.b_number" in answer.text
    assert "nothing was added" in answer.text
    listed = acme.http.get("/ui/tasks", params={"queue": str(queue_id)})
    assert '<span id="task-total">0</span>' in listed.text
    not_json = acme.http.post(
        "/ui/tasks/add", data={"queue": str(queue_id), "csrf": acme.csrf},
        files={"file": ("tasks.json", b"[{", "application/json")},
    )  # fmt: skip
    assert not_json.status_code == 422 and "not valid JSON" in not_json.text


def test_the_add_one_form_adds_a_task_of_each_kind_and_names_a_bad_field(
    served: Served, acme: Signed
) -> None:
    queue_id = _queue_id(served, "form-q")
    base = {"queue": str(queue_id), "csrf": acme.csrf}
    callback = acme.http.post(
        "/ui/tasks/add-one",
        data={**base, "type": "callback", "name": "by form", "a_number": "33611111111",
              "b_number": "33622222222", "try_count": "2", "called_number": ""},
    )  # fmt: skip
    assert callback.status_code == 201, callback.text
    folder = served.workdir / "storage" / str(served.clients["acme"].id)
    folder.mkdir(parents=True, exist_ok=True)
    with wave.open(str(folder / "hello.wav"), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0\0" * 800)
    message = acme.http.post(
        "/ui/tasks/add-one",
        data={**base, "type": "msg_call", "calling_number": "100",
              "called_number": "33612345678", "audio_file": "hello.wav", "attempts": "2"},
    )  # fmt: skip
    assert message.status_code == 201, message.text
    ids = [int(re.findall(r"Ids: (\d+)", answer.text)[0]) for answer in (callback, message)]
    first = acme.http.get(f"/ui/tasks/{ids[0]}").text
    assert "by form" in first and "33622222222" in first
    assert "msg_call" in acme.http.get(f"/ui/tasks/{ids[1]}").text
    bad = acme.http.post(
        "/ui/tasks/add-one",
        data={**base, "type": "callback", "a_number": "abc", "b_number": "33622222222"},
    )
    assert bad.status_code == 422 and "form.a_number" in bad.text
    listed = acme.http.get("/ui/tasks", params={"queue": str(queue_id)})
    assert '<span id="task-total">2</span>' in listed.text


def test_the_time_window_filter_lists_the_tasks_created_in_it(served: Served, acme: Signed) -> None:
    queue_id = _queue_id(served, "window-q")
    added = acme.http.post(
        "/ui/tasks/add-one",
        data={"queue": str(queue_id), "csrf": acme.csrf, "a_number": "33611111111",
              "b_number": "33622222222"},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    now = datetime.now(UTC)
    around = {"queue": str(queue_id),
              "created_from": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
              "created_to": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    listed = acme.http.get("/ui/tasks", params=around)
    assert '<span id="task-total">1</span>' in listed.text
    assert f'value="{around["created_from"]}"' in listed.text  # the form keeps the window
    before = {**around, "created_to": (now - timedelta(hours=1)).strftime("%Y-%m-%d")}
    assert '<span id="task-total">0</span>' in acme.http.get("/ui/tasks", params=before).text
    finished = {"queue": str(queue_id), "finished_from": around["created_from"]}
    assert '<span id="task-total">0</span>' in acme.http.get("/ui/tasks", params=finished).text


def test_bad_filters_are_a_422_page_naming_the_field(acme: Signed) -> None:
    answer = acme.http.get("/ui/tasks", params={"status": "lost", "number": "12ab"})
    assert answer.status_code == 422
    assert "status" in answer.text and "number" in answer.text
    for bad in ("yesterday", "2026-02-30"):
        answer = acme.http.get("/ui/tasks", params={"created_from": bad})
        assert answer.status_code == 422 and "created_from" in answer.text, bad
    assert acme.http.get("/ui/tasks", params={"queue": "999999"}).status_code == 404


def test_a_webhook_to_a_private_address_is_refused_as_the_api_does(acme: Signed) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook"):
        answer = acme.http.post("/ui/webhooks", data={"csrf": acme.csrf, "url": url})
        assert answer.status_code == 422, url
        assert "<li>url:" in answer.text
    assert "No subscription yet" in acme.http.get("/ui/webhooks").text


def test_an_edit_to_a_private_address_is_refused_and_changes_nothing(acme: Signed) -> None:
    added = acme.http.post(
        "/ui/webhooks",
        data={"csrf": acme.csrf, "url": "https://hooks.example.com/in", "events": "*"},
    )
    assert added.status_code == 201
    [sub_id] = re.findall(r'data-subscription="(\d+)"', added.text)
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://[::1]/h"):
        answer = acme.http.post(
            f"/ui/webhooks/{sub_id}/edit", data={"csrf": acme.csrf, "url": url, "events": "*"}
        )
        assert answer.status_code == 422, url
        assert 'id="edit-error"' in answer.text and "<li>url:" in answer.text
    page = acme.http.get("/ui/webhooks").text
    assert "https://hooks.example.com/in" in page and "127.0.0.1" not in page
    deleted = acme.http.post(f"/ui/webhooks/{sub_id}/delete", data={"csrf": acme.csrf})
    assert deleted.status_code == 200


def test_cancel_and_run_now_act_on_the_clients_own_task_only(served: Served, acme: Signed) -> None:
    queue_id = _queue_id(served, "later-q")
    upload = (
        '[{"a_number": "33611110000", "b_number": "33622220000", '
        '"start_time_utc": "2099-01-01 00:00:00"}]'
    )
    added = acme.http.post(
        "/ui/tasks/add", data={"queue": str(queue_id), "csrf": acme.csrf},
        files={"file": ("later.json", upload.encode(), "application/json")},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    task_id = int(re.findall(r"Ids: (\d+)", added.text)[0])
    page = acme.http.get(f"/ui/tasks/{task_id}").text
    assert "switched off" in page  # why it is not dialling
    served.client("globex")
    globex = Signed(served, served.clients["globex"])
    try:
        for action in ("cancel", "run-now"):
            refused = globex.http.post(f"/ui/tasks/{task_id}/{action}", data={"csrf": globex.csrf})
            assert refused.status_code == 404, action
        assert globex.http.get(f"/ui/tasks/{task_id}").status_code == 404
    finally:
        globex.http.close()
    ran = acme.http.post(f"/ui/tasks/{task_id}/run-now", data={"csrf": acme.csrf})
    assert ran.status_code == 303
    assert "run_now=True" in acme.http.get(f"/ui/tasks/{task_id}").text
    canceled = acme.http.post(f"/ui/tasks/{task_id}/cancel", data={"csrf": acme.csrf})
    assert canceled.status_code == 303
    page = acme.http.get(f"/ui/tasks/{task_id}").text
    assert "canceled" in page
    again = acme.http.post(f"/ui/tasks/{task_id}/cancel", data={"csrf": acme.csrf})
    assert again.status_code == 409 and "already finished" in again.text


def test_the_task_page_shows_the_callees_zone_and_the_holidays_it_waits_over(
    served: Served, acme: Signed
) -> None:
    import json
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()  # yesterday to tomorrow: whatever the date when it runs
    days = [f"--holiday={d:%m-%d}=Rest" for d in (today + timedelta(n) for n in (-1, 0, 1))]
    served.cli("queue", "add", "rest-q", "--client", "acme", "--on",
               "--hours", "UTC daily 00:00-24:00", *days)  # fmt: skip
    queues = json.loads(served.cli("queue", "list", "--client", "acme", "--json"))
    queue_id = next(q["id"] for q in queues if q["name"] == "rest-q")
    upload = '[{"a_number": "33611110000", "b_number": "33622220000", "timezone": "UTC"}]'
    added = acme.http.post(
        "/ui/tasks/add", data={"queue": str(queue_id), "csrf": acme.csrf},
        files={"file": ("rest.json", upload.encode(), "application/json")},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    task_id = int(re.findall(r"Ids: (\d+)", added.text)[0])
    page = acme.http.get(f"/ui/tasks/{task_id}").text
    assert re.search(r'id="task-zone">UTC \(given\)<', page), page
    why = re.search(r'id="task-why">([^<]*)<', page)
    assert why and "holiday: Rest (" in why.group(1), page


def test_sign_out_ends_the_session(served: Served) -> None:
    served.client("leaver")
    signed = Signed(served, served.clients["leaver"])
    try:
        out = signed.http.post("/ui/signout", data={"csrf": signed.csrf})
        assert (out.status_code, out.headers["location"]) == (303, "/ui/signin")
        assert signed.http.get("/ui/queues").status_code == 303
    finally:
        signed.http.close()


def test_a_session_holds_on_another_server_process_and_signing_out_revokes_its_token(
    served: Served,
) -> None:
    """No signing key lives in a process: a second ``serve`` on the same database (a restart,
    or another API host) accepts the browser's session; signing out there ends the token
    everywhere, the API included."""
    client = served.client("traveller")
    signed = Signed(served, client)
    cookie = signed.http.cookies["rb_console"]
    token = cookie.partition(".")[2]
    api = f"{served.url}/api/ver1.0/client/{client.id}/task_scheduler/"
    bearer = {"Authorization": f"Bearer {token}"}
    log_path, port = served.workdir / "second.log", free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ringback", "serve", "--host", HOST, "--port", str(port)],
            env=served.env, cwd=served.workdir,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    second = Served(f"http://{HOST}:{port}", served.env, served.workdir, log_path, process)
    try:
        wait_healthy(second)
        other = httpx.Client(base_url=second.url, cookies={"rb_console": cookie}, timeout=30.0)
        with other:
            page = other.get("/ui/queues")
            assert page.status_code == 200, page.text[:500]
            assert httpx.get(api, headers=bearer).status_code == 200
            out = other.post("/ui/signout", data={"csrf": signed.csrf})
            assert (out.status_code, out.headers["location"]) == (303, "/ui/signin")
        assert signed.http.get("/ui/queues").status_code == 303  # the first server too
        assert httpx.get(api, headers=bearer).status_code == 401
    finally:
        stop_process(process, timeout_s=10.0, group=True)
        signed.http.close()


def test_page_timings_are_printed(served: Served, acme: Signed) -> None:
    """How long each page takes here (p50 / p95 of 40 requests), printed for the report; a
    loose bound only (the 1,000,000-task benchmark of issue 15 is still to come)."""
    queue_id = _queue_id(served, "timing-q")
    paths = [
        "/ui/queues", "/ui/queues/counts", "/ui/tasks", f"/ui/tasks?queue={queue_id}",
        "/ui/tasks/rows?q=first", "/ui/tasks/add", "/docs",
    ]  # fmt: skip
    for path in paths:
        times = []
        for _ in range(40):
            start = time.perf_counter()
            answer = acme.http.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200, (path, answer.text[:300])
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"page {path}: p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms")
        assert p95 < 1000, path
