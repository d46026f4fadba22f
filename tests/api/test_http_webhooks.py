"""Webhooks end to end: a real ``ringback serve`` delivers to a real receiver on 127.0.0.1.

The test servers give up retrying after 3 s (RINGBACK_WEBHOOK_RETRY_FOR, instead of a day),
so that dead deliveries can be seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from ringback.webhooks.signing import verify
from support_webhooks import Received, Receiver

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import LiveServer, Tenant

OK_A, OK_B, BUSY_B = "0901234000", "0907777000", "0907777486"
SEED = ("url_before", "url_before_again", "url_success", "url_after")


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what}: not reached in {timeout} s")


def signed(request: Received, secrets: list[str]) -> bool:
    header = request.headers["Ringback-Signature"]
    return any(verify(header, request.body, s, now=time.time()) for s in secrets)


def on_queue(tenant: Tenant) -> int:
    queue: int = tenant.new_queue(status="on")["id"]
    return queue


def seed_urls(receiver: Receiver, tag: str) -> dict[str, str]:
    return {field: f"{receiver.url}/{tag}/{field}" for field in SEED}


def events_at(requests: list[Received], path: str) -> list[str]:
    return [r.json["type"] for r in requests if r.path == path]


def test_webhook_routes_create_read_change_delete_a_subscription(
    alice: Tenant, receiver: Receiver
) -> None:
    made = alice.http.post("/webhooks/", json={"url": f"{receiver.url}/a", "events": ["task.*"]})
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["active"] and hook["events"] == ["task.*"] and len(hook["secret"]) >= 16
    assert alice.http.get(f"/webhooks/{hook['id']}").json() == hook
    assert hook["id"] in [h["id"] for h in alice.http.get("/webhooks/").json()["webhooks"]]
    rotated = alice.http.put(f"/webhooks/{hook['id']}", json={"rotate_secret": True}).json()
    assert rotated["secret"] != hook["secret"] and rotated["previous_secret_valid_until"]
    off = alice.http.put(f"/webhooks/{hook['id']}", json={"active": False, "events": ["*"]})
    assert off.status_code == 200 and not off.json()["active"] and off.json()["events"] == ["*"]
    assert alice.http.delete(f"/webhooks/{hook['id']}").status_code == 204
    gone = alice.http.get(f"/webhooks/{hook['id']}")
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://user:pw@example.com/x"}, "url"),
        ({"url": "http://example.com/x", "events": ["task.exploded"]}, "events"),
        ({"url": "http://example.com/x", "colour": "red"}, "colour"),
        ({"url": "http://example.com/x", "secret": "short"}, "secret"),
        ({"url": "http://example.com/x", "description": "a\u0000b"}, "body"),
    ],
)
def test_webhook_create_refuses_bad_urls_events_and_unknown_fields(
    alice: Tenant, body: dict[str, Any], where: str
) -> None:
    answer = alice.http.post("/webhooks/", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["error"] == "invalid_input"
    assert any(where in [str(p) for p in d["loc"]] for d in error["details"]), error


def test_another_clients_webhooks_and_deliveries_answer_404(
    alice: Tenant, bob: Tenant, receiver: Receiver
) -> None:
    hook = alice.http.post("/webhooks/", json={"url": f"{receiver.url}/x"}).json()
    assert bob.http.get(f"/webhooks/{hook['id']}").status_code == 404
    assert bob.http.put(f"/webhooks/{hook['id']}", json={"active": False}).status_code == 404
    assert bob.http.delete(f"/webhooks/{hook['id']}").status_code == 404
    other = bob.http.get(f"/api/ver1.0/client/{alice.id}/webhooks/")
    assert other.status_code == 404
    assert alice.http.delete(f"/webhooks/{hook['id']}").status_code == 204


def test_live_server_delivers_seed_url_and_subscription_events_signed_and_in_order(
    alice: Tenant, receiver: Receiver
) -> None:
    key = alice.http.get("/webhook_secret").json()
    hook = alice.http.post("/webhooks/", json={"url": f"{receiver.url}/all"}).json()
    queue = on_queue(alice)
    [ok, busy] = alice.add_tasks(
        queue,
        {"a_number": OK_A, "b_number": OK_B, **seed_urls(receiver, "ok")},
        {"a_number": OK_A, "b_number": BUSY_B, "try_count": 2, "try_again_pause": 1,
         **seed_urls(receiver, "busy")},
    )  # fmt: skip
    wait_for(
        "both tasks' events",
        lambda: {"/ok/url_after", "/busy/url_after"} <= {r.path for r in receiver.requests()}
        and sum(r.json["type"] == "task.finished" for r in receiver.requests()
                if r.path == "/all") == 2,
    )  # fmt: skip
    wait_for("the last events", lambda: alice.http.get(
        "/webhook_deliveries/", params={"status": "pending"}).json()["total"] == 0)  # fmt: skip
    got = receiver.requests()
    assert all(signed(r, [key["secret"]]) for r in got if r.path != "/all")
    assert all(signed(r, [hook["secret"]]) for r in got if r.path == "/all")
    assert events_at(got, "/ok/url_before") == ["task.started"]
    assert events_at(got, "/ok/url_success") == ["task.finished"]
    assert events_at(got, "/ok/url_after") == ["task.finished"]
    assert events_at(got, "/busy/url_before") == ["task.started"]
    assert events_at(got, "/busy/url_before_again") == ["task.started"]
    assert events_at(got, "/busy/url_success") == []
    assert events_at(got, "/busy/url_after") == ["task.finished"]
    for task in (ok, busy):
        mine = [r.json for r in got if r.path == "/all" and r.json["task"]["id"] == task["id"]]
        assert [m["sequence"] for m in mine] == list(range(1, len(mine) + 1))
        assert mine[0]["type"] == "task.created" and mine[-1]["type"] == "task.finished"
    listed = alice.http.get("/webhook_deliveries/", params={"task_id": ok["id"]}).json()
    assert listed["total"] >= 3 and {d["status"] for d in listed["deliveries"]} == {"delivered"}
    one = alice.http.get(f"/webhook_deliveries/{listed['deliveries'][0]['id']}").json()
    assert one["body"]["task"]["id"] == ok["id"]


def test_dead_deliveries_are_listed_and_can_be_redelivered(alice: Tenant) -> None:
    failing = Receiver().start()
    try:
        failing.mode = "error"
        hook = alice.http.post(
            "/webhooks/", json={"url": f"{failing.url}/dead", "events": ["task.created"]}
        ).json()
        queue = alice.new_queue()["id"]  # off: only task.created happens
        [task] = alice.add_tasks(queue, {"a_number": OK_A, "b_number": OK_B})
        params = {"status": "dead", "webhook_id": hook["id"]}
        wait_for("a dead delivery", lambda: alice.http.get(
            "/webhook_deliveries/", params=params).json()["total"] == 1)  # fmt: skip
        [dead] = alice.http.get("/webhook_deliveries/", params=params).json()["deliveries"]
        assert dead["task_id"] == task["id"] and dead["last_status_code"] == 500
        assert dead["attempts"] >= 2 and len(dead["response_excerpt"]) <= 512
        failing.mode = "ok"
        again = alice.http.post(f"/webhook_deliveries/{dead['id']}/redeliver")
        assert again.status_code == 200 and again.json()["status"] == "pending"
        wait_for("the redelivery", lambda: alice.http.get(
            f"/webhook_deliveries/{dead['id']}").json()["status"] == "delivered")  # fmt: skip
        assert [r.mode for r in failing.requests()][-1] == "ok"
        twice = alice.http.post(f"/webhook_deliveries/{dead['id']}/redeliver")
        assert twice.status_code == 409 and twice.json()["error"] == "conflict"
    finally:
        failing.stop()


def test_410_gone_switches_the_subscription_off(alice: Tenant, receiver: Receiver) -> None:
    receiver.mode = "gone"
    hook = alice.http.post("/webhooks/", json={"url": f"{receiver.url}/gone"}).json()
    alice.add_tasks(alice.new_queue()["id"], {"a_number": OK_A, "b_number": OK_B})
    wait_for("the webhook switched off", lambda: not alice.http.get(
        f"/webhooks/{hook['id']}").json()["active"])  # fmt: skip
    assert "410" in alice.http.get(f"/webhooks/{hook['id']}").json()["disabled_reason"]
    assert alice.http.delete(f"/webhooks/{hook['id']}").status_code == 204


def test_a_job_names_its_own_webhook_urls_in_its_options(alice: Tenant, receiver: Receiver) -> None:
    key = alice.http.get("/webhook_secret").json()
    job = {
        "type": "msg_call",
        "data": {
            "calling_number": "100",
            "called_number": OK_B,
            "audio_file": alice.put_wav("hi.wav"),
        },
        "options": {"webhooks": [{"url": f"{receiver.url}/job", "events": ["task.finished"]}]},
    }
    made = alice.http.post("/jobs/", json=job)
    assert made.status_code == 201, made.text
    assert made.json()["options"]["webhooks"] == job["options"]["webhooks"]  # type: ignore[index]
    wait_for("the job's webhook", lambda: events_at(receiver.requests(), "/job") != [])
    [request] = [r for r in receiver.requests() if r.path == "/job"]
    assert (
        request.json["type"] == "task.finished" and request.json["task"]["id"] == made.json()["id"]
    )
    assert signed(request, [key["secret"]])


def test_rotating_the_client_secret_signs_with_both_secrets_for_a_while(
    alice: Tenant, receiver: Receiver
) -> None:
    old = alice.http.get("/webhook_secret").json()["secret"]
    new = alice.http.post("/webhook_secret/rotate").json()
    assert new["secret"] != old and new["previous_secret"] == old
    queue = on_queue(alice)
    alice.add_tasks(queue, {"a_number": OK_A, "b_number": OK_B,
                            "url_before": f"{receiver.url}/rot"})  # fmt: skip
    wait_for("the url_before call", lambda: events_at(receiver.requests(), "/rot") != [])
    [request] = [r for r in receiver.requests() if r.path == "/rot"]
    assert request.headers["Ringback-Signature"].count("v1=") == 2
    assert signed(request, [old]) and signed(request, [new["secret"]])


@pytest.mark.slow
def test_a_server_killed_9_while_delivering_loses_no_event(
    own_live: LiveServer, receiver: Receiver
) -> None:
    alice = own_live.make_tenants("alice")["alice"]
    receiver.mode = "slow"  # the first deliveries hang: they are in flight at the kill
    receiver.slow_s = 30.0
    alice.http.post("/webhooks/", json={"url": f"{receiver.url}/all"})
    queue = on_queue(alice)
    tasks = alice.add_tasks(
        queue, *({"a_number": OK_A, "b_number": OK_B, **seed_urls(receiver, f"k{i}")}
                 for i in range(5))
    )  # fmt: skip
    wait_for("deliveries in flight", lambda: len(receiver.requests()) >= 5)
    wait_for("the tasks finished", lambda: all(
        alice.http.get(f"/task_scheduler/{queue}/tasks/{t['id']}").json()["status"] == "finished"
        for t in tasks))  # fmt: skip
    receiver.mode = "ok"
    own_live.kill_and_restart()
    wait_for("every task's url_after", lambda: all(
        events_at(receiver.requests(), f"/k{i}/url_after") for i in range(5)), 90)  # fmt: skip
    pending = {"status": "pending"}
    wait_for("nothing pending", lambda: alice.http.get(
        "/webhook_deliveries/", params=pending).json()["total"] == 0, 90)  # fmt: skip
    got = receiver.requests()
    for i, task in enumerate(tasks):
        for field, expected in (("url_before", "task.started"), ("url_success", "task.finished"),
                                ("url_after", "task.finished")):  # fmt: skip
            assert set(events_at(got, f"/k{i}/{field}")) == {expected}
        mine = [r.json for r in got if r.path == "/all" and r.json["task"]["id"] == task["id"]]
        first: list[int] = []
        for m in mine:
            if m["sequence"] not in first:
                first.append(m["sequence"])
        assert first == list(range(1, len(first) + 1)) and mine[-1]["type"] == "task.finished"
