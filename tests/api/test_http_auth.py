"""OAuth2 client credentials and client isolation, over HTTP on both stores.

The isolation tests are driven by one table of every client route and method: each is called
without a token (401), with a bad token (401), with bob's token on alice's client id (404), and
with bob's token on his own client id but alice's resource ids (404); alice's data is checked
unchanged afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import LiveServer, Tenant

API = "/api/ver1.0"
FILE_BODY = b"alice's file"


# --- OAuth2 -----------------------------------------------------------------------------------


def _token_form(tenant: Tenant, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": tenant.key,
        "client_secret": tenant.secret,
        **overrides,
    }


def test_token_by_form_returns_a_bearer_token_that_works(
    anon: httpx.Client, alice: Tenant, live: LiveServer
) -> None:
    answer = anon.post("/oauth/token", data=_token_form(alice))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope"}, body
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["scope"] == "all"
    assert "no-store" in answer.headers.get("cache-control", "")
    fresh = live.client(body["access_token"])
    listed = fresh.get(f"{alice.base}/task_scheduler/")
    assert listed.status_code == 200, listed.text


def test_clients_self_names_the_tokens_client_number_and_its_path(
    anon: httpx.Client, alice: Tenant, bob: Tenant, rb: Any
) -> None:
    for tenant in (alice, bob):
        answer = anon.get(
            "/oauth/clients/self", headers={"Authorization": f"Bearer {tenant.token}"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"id": tenant.id, "base_path": f"{API}/client/{tenant.id}"}
    rb.error(anon.get("/oauth/clients/self"), 401)


def test_token_by_http_basic_returns_a_token(anon: httpx.Client, alice: Tenant, rb: Any) -> None:
    answer = anon.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": rb.basic(alice.key, alice.secret)},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"


def test_token_with_a_wrong_secret_is_401_invalid_client(
    anon: httpx.Client, alice: Tenant, rb: Any
) -> None:
    answer = anon.post("/oauth/token", data=_token_form(alice, client_secret="not-it"))
    rb.error(answer, 401, "invalid_client")


def test_token_with_wrong_basic_credentials_is_401_with_a_challenge(
    anon: httpx.Client, alice: Tenant, rb: Any
) -> None:
    answer = anon.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": rb.basic(alice.key, "wrong")},
    )
    rb.error(answer, 401, "invalid_client")
    assert answer.headers.get("www-authenticate", "").lower().startswith("basic")


def test_token_for_an_unknown_client_is_401(anon: httpx.Client, alice: Tenant, rb: Any) -> None:
    answer = anon.post("/oauth/token", data=_token_form(alice, client_id="rb_nobody"))
    rb.error(answer, 401, "invalid_client")


def test_token_with_an_unsupported_grant_type_is_400(
    anon: httpx.Client, alice: Tenant, rb: Any
) -> None:
    answer = anon.post("/oauth/token", data=_token_form(alice, grant_type="password"))
    rb.error(answer, 400, "unsupported_grant_type")


def test_token_without_grant_type_is_400(anon: httpx.Client, alice: Tenant, rb: Any) -> None:
    form = _token_form(alice)
    del form["grant_type"]
    rb.error(anon.post("/oauth/token", data=form), 400, "invalid_request")


def test_token_without_a_secret_is_400(anon: httpx.Client, alice: Tenant, rb: Any) -> None:
    form = _token_form(alice)
    del form["client_secret"]
    rb.error(anon.post("/oauth/token", data=form), 400, "invalid_request")


def test_token_request_as_json_is_400(anon: httpx.Client, alice: Tenant, rb: Any) -> None:
    rb.error(anon.post("/oauth/token", json=_token_form(alice)), 400, "invalid_request")


# --- isolation: every route -------------------------------------------------------------------


@dataclass
class Owned:
    """alice's resources the isolation table points at."""

    sid: int
    tid: int
    jid: int
    call_uuid: str
    file: str
    queue: dict[str, Any]
    task: dict[str, Any]
    webhook: dict[str, Any]
    delivery_id: int
    signing_secret: str
    number: str


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # OpenAPI path under /client/{client_id}
    body: str | None = None  # "queue", "queue_put", "tasks", "task", "job", "file"

    def path(self, ids: Owned) -> str:
        return self.template.format(
            scheduler_id=ids.sid,
            task_id=ids.tid,
            job_id=ids.jid,
            call_uuid=ids.call_uuid,
            path=ids.file,
            webhook_id=ids.webhook["id"],
            delivery_id=ids.delivery_id,
            number=ids.number,
            entry_id=ids.tid,  # no entry of anyone's has this id: 404 to another client too
        )

    def send(self, http: httpx.Client, client_id: int, ids: Owned) -> httpx.Response:
        url = f"{API}/client/{client_id}{self.path(ids)}"
        kwargs: dict[str, Any] = {}
        if self.body == "queue":
            kwargs["json"] = {"name": "intruder"}
        elif self.body == "queue_put":
            kwargs["json"] = {"name": "intruder", "status": "on"}
        elif self.body == "tasks":
            kwargs["json"] = {"tasks": [{"a_number": "+15550003003", "b_number": "+15550004004"}]}
        elif self.body == "task":
            kwargs["json"] = {"a_number": "+15550003003", "b_number": "+15550004004"}
        elif self.body == "job":
            kwargs["json"] = {
                "type": "msg_call",
                "data": {
                    "calling_number": "+15550005005",
                    "called_number": "+15550006006",
                    "audio_file": "x.wav",
                },
            }
        elif self.body == "file":
            kwargs["content"] = b"intruder"
        elif self.body == "webhook":
            kwargs["json"] = {"url": "http://127.0.0.1:9/intruder"}
        elif self.body == "webhook_put":
            kwargs["json"] = {"url": "http://127.0.0.1:9/intruder", "rotate_secret": True}
        elif self.body == "number":
            kwargs["json"] = {"answer_url": "http://127.0.0.1:9/intruder"}
        elif self.body == "simulate":
            kwargs["json"] = {"called_number": ids.number}
        elif self.body == "dnc":
            kwargs["json"] = {"entries": [{"number": "+15550009009"}]}
        elif self.body == "csv":
            kwargs["content"] = b"+15550009009\n"
        elif self.body == "priority":
            kwargs["json"] = {"priority": 1}
        elif self.body == "caps":
            kwargs["json"] = {"rules": [{"max_calls": 1, "window_seconds": 60}]}
        elif self.body == "caller_ids":
            kwargs["json"] = {"caller_ids": ["+3399*"]}
        # absolute URL: the tenant clients are rooted at their own client prefix
        return http.request(
            self.method, str(http.base_url.copy_with(raw_path=url.encode())), **kwargs
        )


ROUTES = [
    Route("POST", "/task_scheduler/", "queue"),
    Route("GET", "/task_scheduler/"),
    Route("GET", "/task_scheduler/{scheduler_id}"),
    Route("PUT", "/task_scheduler/{scheduler_id}", "queue_put"),
    Route("DELETE", "/task_scheduler/{scheduler_id}?force=true"),
    Route("POST", "/task_scheduler/{scheduler_id}/tasks/", "tasks"),
    Route("GET", "/task_scheduler/{scheduler_id}/tasks/"),
    Route("GET", "/task_scheduler/{scheduler_id}/tasks/{task_id}"),
    Route("PUT", "/task_scheduler/{scheduler_id}/tasks/{task_id}", "task"),
    Route("DELETE", "/task_scheduler/{scheduler_id}/tasks/{task_id}"),
    Route("POST", "/jobs/", "job"),
    Route("GET", "/jobs/"),
    Route("GET", "/jobs/{job_id}"),
    Route("GET", "/call_history/"),
    Route("GET", "/call_history/{call_uuid}"),
    Route("GET", "/storage/"),
    Route("PUT", "/storage/{path}", "file"),
    Route("GET", "/storage/{path}"),
    Route("DELETE", "/storage/{path}"),
    Route("POST", "/webhooks/", "webhook"),
    Route("GET", "/webhooks/"),
    Route("GET", "/webhooks/{webhook_id}"),
    Route("PUT", "/webhooks/{webhook_id}", "webhook_put"),
    Route("DELETE", "/webhooks/{webhook_id}"),
    Route("GET", "/webhook_deliveries/"),
    Route("GET", "/webhook_deliveries/{delivery_id}"),
    Route("POST", "/webhook_deliveries/{delivery_id}/redeliver"),
    Route("GET", "/webhook_secret"),
    Route("POST", "/webhook_secret/rotate"),
    Route("GET", "/numbers/"),
    Route("GET", "/numbers/{number}"),
    Route("PUT", "/numbers/{number}", "number"),
    Route("DELETE", "/numbers/{number}"),
    Route("POST", "/calls/simulate", "simulate"),
    Route("POST", "/suppressions/", "dnc"),
    Route("POST", "/suppressions/import", "csv"),
    Route("GET", "/suppressions/"),
    Route("GET", "/suppressions/check?number=15550009009"),
    Route("DELETE", "/suppressions/?list=intruder"),
    Route("DELETE", "/suppressions/{entry_id}"),
    Route("PUT", "/tasks/{task_id}/priority", "priority"),
    Route("GET", "/task_scheduler/{scheduler_id}/tasks/export.csv"),
    Route("GET", "/call_history/export.csv"),
    Route("GET", "/audit/"),
    Route("GET", "/frequency_caps/"),
    Route("PUT", "/frequency_caps/", "caps"),
    Route("GET", "/caller_ids/"),
    Route("PUT", "/caller_ids/", "caller_ids"),
    Route("GET", "/sip/trunks"),
]
ROUTE_IDS = [f"{r.method} {r.template.split('?')[0]}" for r in ROUTES]
# routes naming one of alice's resources (a list or create under bob's own id is bob's own)


def _names_a_resource(route: Route) -> bool:
    # PUT /storage/{path} under bob's id stores bob's own file: see the test for it below;
    # PUT /numbers/{number} of alice's number under bob's id is 409 (tests/api/test_http_numbers)
    if route.method == "PUT" and ("storage" in route.template or "numbers" in route.template):
        return False
    # simulating a call to alice's number under bob's id: the number is not bob's, 404
    return "{" in route.template or route.body == "simulate"


BY_ID = [route for route in ROUTES if _names_a_resource(route)]


@pytest.fixture(scope="module")
def owned(tenants: dict[str, Tenant], rb: Any) -> Owned:
    alice = tenants["alice"]
    # a call of alice's, to have a call_uuid
    running = alice.new_queue(status="on")
    [done] = alice.add_tasks(running["id"], rb.task(name="for-history"))
    finished = rb.poll(
        lambda: alice.http.get(f"/task_scheduler/{running['id']}/tasks/{done['id']}"),
        lambda task: task["status"] == "finished",
        what="the history task to finish",
    )
    assert finished["cdr"], finished
    # a webhook (to a closed port) that gets the waiting task's task.created: a delivery
    webhook = alice.http.post(
        "/webhooks/", json={"url": "http://127.0.0.1:9/alice", "events": ["task.created"]}
    ).json()
    signing_secret = alice.http.get("/webhook_secret").json()["secret"]
    # a switched-off queue with a waiting task
    queue = alice.new_queue(status="off", comment="alice's")
    [task] = alice.add_tasks(queue["id"], rb.task(name="waiting"))
    job = alice.http.post(
        "/jobs/",
        json={
            "type": "msg_call",
            "data": {
                "calling_number": "+15550007007",
                "called_number": "+15550008008",
                "audio_file": alice.put_wav("owned.wav"),
            },
        },
    )
    assert job.status_code == 201, job.text
    stored = alice.http.put("/storage/private/a.txt", content=FILE_BODY)
    assert stored.status_code == 201, stored.text
    deliveries = rb.poll(
        lambda: alice.http.get("/webhook_deliveries/", params={"webhook_id": webhook["id"]}),
        lambda page: page["total"] >= 1,
        what="alice's webhook delivery",
    )
    number = "0" + str(uuid.uuid4().int)[:10]
    ivr = alice.http.put("/storage/ivr.xml", content=b"<IVR><Hangup/></IVR>")
    assert ivr.status_code == 201, ivr.text
    routed = alice.http.put(f"/numbers/{number}", json={"ivr_file": "ivr.xml"})
    assert routed.status_code == 201, routed.text
    return Owned(
        number=number,
        sid=queue["id"],
        tid=task["id"],
        jid=job.json()["id"],
        call_uuid=finished["cdr"],
        file="private/a.txt",
        queue=queue,
        task=task,
        webhook=webhook,
        delivery_id=deliveries["deliveries"][0]["id"],
        signing_secret=signing_secret,
    )


def _assert_alice_untouched(alice: Tenant, ids: Owned) -> None:
    queue = alice.http.get(f"/task_scheduler/{ids.sid}")
    assert queue.status_code == 200, queue.text
    for field in ("name", "status", "comment", "concurrent_task_limit"):
        assert queue.json()[field] == ids.queue[field], queue.json()
    assert queue.json()["task_count"] == 1, queue.json()
    task = alice.http.get(f"/task_scheduler/{ids.sid}/tasks/{ids.tid}")
    assert task.status_code == 200, task.text
    assert task.json()["status"] == "scheduled", task.json()
    assert task.json()["a_number"] == ids.task["a_number"]
    stored = alice.http.get(f"/storage/{ids.file}")
    assert stored.status_code == 200 and stored.content == FILE_BODY, stored.text
    webhook = alice.http.get(f"/webhooks/{ids.webhook['id']}")
    assert webhook.status_code == 200, webhook.text
    for field in ("url", "secret", "events", "active"):
        assert webhook.json()[field] == ids.webhook[field], webhook.json()
    assert alice.http.get("/webhook_secret").json()["secret"] == ids.signing_secret
    number = alice.http.get(f"/numbers/{ids.number}")
    assert number.status_code == 200 and number.json()["ivr_file"] == "ivr.xml", number.text
    delivery = alice.http.get(f"/webhook_deliveries/{ids.delivery_id}")
    assert delivery.status_code == 200 and delivery.json()["attempts"] < 1000, delivery.text


def test_route_table_covers_every_client_route(anon: httpx.Client) -> None:
    document = anon.get("/openapi.json").json()
    prefix = f"{API}/client/{{client_id}}"
    served = {
        (method.upper(), path.removeprefix(prefix))
        for path, item in document["paths"].items()
        if path.startswith(prefix)
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    tabled = {(r.method, r.template.split("?")[0]) for r in ROUTES}
    assert served == tabled, {"not in the table": served - tabled, "not served": tabled - served}


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_without_a_token_is_401(
    route: Route, anon: httpx.Client, alice: Tenant, owned: Owned, rb: Any
) -> None:
    answer = route.send(anon, alice.id, owned)
    rb.error(answer, 401)
    assert answer.headers.get("www-authenticate", "").lower().startswith("bearer")
    _assert_alice_untouched(alice, owned)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_with_a_bad_token_is_401(
    route: Route, live: LiveServer, alice: Tenant, owned: Owned, rb: Any
) -> None:
    forged = live.client("forged" + alice.token)
    rb.error(route.send(forged, alice.id, owned), 401, "invalid_token")
    _assert_alice_untouched(alice, owned)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_with_another_clients_token_on_alices_client_id_is_404(
    route: Route, alice: Tenant, bob: Tenant, owned: Owned, rb: Any
) -> None:
    answer = route.send(bob.http, alice.id, owned)
    rb.error(answer, 404, "not_found")
    _assert_alice_untouched(alice, owned)


@pytest.mark.parametrize("route", BY_ID, ids=[f"{r.method} {r.template}" for r in BY_ID])
def test_every_route_with_alices_resource_ids_under_bobs_client_is_404(
    route: Route, alice: Tenant, bob: Tenant, owned: Owned, rb: Any
) -> None:
    rb.error(route.send(bob.http, bob.id, owned), 404, "not_found")
    _assert_alice_untouched(alice, owned)


def test_alices_task_id_under_bobs_own_queue_is_404(
    alice: Tenant, bob: Tenant, owned: Owned, rb: Any
) -> None:
    queue = bob.new_queue()
    for method in ("GET", "PUT", "DELETE"):
        kwargs: dict[str, Any] = {"json": rb.task()} if method == "PUT" else {}
        answer = bob.http.request(
            method, f"/task_scheduler/{queue['id']}/tasks/{owned.tid}", **kwargs
        )
        rb.error(answer, 404, "not_found")
    _assert_alice_untouched(alice, owned)


def test_alices_task_id_under_her_other_queue_is_404(alice: Tenant, owned: Owned, rb: Any) -> None:
    other = alice.new_queue()
    rb.error(alice.http.get(f"/task_scheduler/{other['id']}/tasks/{owned.tid}"), 404, "not_found")


def test_bobs_lists_show_nothing_of_alices(bob: Tenant, owned: Owned) -> None:
    queues = bob.http.get("/task_scheduler/").json()["queues"]
    assert owned.sid not in [q["id"] for q in queues]
    jobs = bob.http.get("/jobs/").json()
    assert owned.jid not in [j["id"] for j in jobs["jobs"]]
    calls = bob.http.get("/call_history/").json()
    assert owned.call_uuid not in [c["call_uuid"] for c in calls["calls"]]
    files = bob.http.get("/storage/").json()
    assert owned.file not in [f["path"] for f in files["files"]]


def test_bob_storing_at_alices_path_keeps_her_file(
    alice: Tenant, bob: Tenant, owned: Owned
) -> None:
    answer = bob.http.put(f"/storage/{owned.file}", content=b"bob's own")
    assert answer.status_code == 201, answer.text  # a new file in bob's own storage
    assert bob.http.get(f"/storage/{owned.file}").content == b"bob's own"
    assert alice.http.get(f"/storage/{owned.file}").content == FILE_BODY
    assert bob.http.delete(f"/storage/{owned.file}").status_code == 204
    assert alice.http.get(f"/storage/{owned.file}").content == FILE_BODY


def test_alices_idempotency_key_is_not_bobs(alice: Tenant, bob: Tenant) -> None:
    key = {"Idempotency-Key": "shared-key-1"}
    first = alice.http.post("/task_scheduler/", json={"name": "idem-a"}, headers=key)
    second = bob.http.post("/task_scheduler/", json={"name": "idem-b"}, headers=key)
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert second.headers.get("idempotent-replayed") is None
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["name"] == "idem-b"
