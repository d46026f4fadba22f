"""Service endpoints over HTTP: /healthz, /metrics, /openapi.json, /docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import LiveServer, Tenant

API = "/api/ver1.0"

# every route of the API: (method, path as in the OpenAPI document)
CLIENT = f"{API}/client/{{client_id}}"
EXPECTED_ROUTES = {
    ("post", "/oauth/token"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("post", f"{CLIENT}/task_scheduler/"),
    ("get", f"{CLIENT}/task_scheduler/"),
    ("get", f"{CLIENT}/task_scheduler/{{scheduler_id}}"),
    ("put", f"{CLIENT}/task_scheduler/{{scheduler_id}}"),
    ("delete", f"{CLIENT}/task_scheduler/{{scheduler_id}}"),
    ("post", f"{CLIENT}/task_scheduler/{{scheduler_id}}/tasks/"),
    ("get", f"{CLIENT}/task_scheduler/{{scheduler_id}}/tasks/"),
    ("get", f"{CLIENT}/task_scheduler/{{scheduler_id}}/tasks/{{task_id}}"),
    ("put", f"{CLIENT}/task_scheduler/{{scheduler_id}}/tasks/{{task_id}}"),
    ("delete", f"{CLIENT}/task_scheduler/{{scheduler_id}}/tasks/{{task_id}}"),
    ("post", f"{CLIENT}/jobs/"),
    ("get", f"{CLIENT}/jobs/"),
    ("get", f"{CLIENT}/jobs/{{job_id}}"),
    ("get", f"{CLIENT}/call_history/"),
    ("get", f"{CLIENT}/call_history/{{call_uuid}}"),
    ("get", f"{CLIENT}/storage/"),
    ("put", f"{CLIENT}/storage/{{path}}"),
    ("get", f"{CLIENT}/storage/{{path}}"),
    ("delete", f"{CLIENT}/storage/{{path}}"),
}


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }


def test_healthz_answers_ok_without_a_token(anon: httpx.Client) -> None:
    answer = anon.get("/healthz")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ok"}


def test_metrics_are_prometheus_text_with_task_gauges(anon: httpx.Client, alice: Tenant) -> None:
    queue = alice.new_queue()
    alice.add_tasks(queue["id"], {"a_number": "+15550001001", "b_number": "+15550002002"})
    answer = anon.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain"), answer.headers
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    assert "ringback_tasks" in families, sorted(families)
    scheduled = [
        sample.value
        for sample in families["ringback_tasks"].samples
        if sample.labels.get("status") == "scheduled"
    ]
    assert scheduled and scheduled[0] >= 1, families["ringback_tasks"].samples


def test_metrics_count_the_attempts_of_the_servers_own_workers(
    anon: httpx.Client, alice: Tenant, rb: Any
) -> None:
    """``ringback serve`` runs the workers in the API's process: their instruments (attempts
    by outcome, claim time) must reach /metrics."""
    queue = alice.new_queue(status="on")
    [task] = alice.add_tasks(queue["id"], rb.task(name="metered"))
    rb.poll(
        lambda: alice.http.get(f"/task_scheduler/{queue['id']}/tasks/{task['id']}"),
        lambda body: body["status"] == "finished",
        what="the metered task to finish",
    )
    text = anon.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    attempts = families.get("ringback_attempts")
    answered = [
        s.value
        for s in (attempts.samples if attempts else [])
        if s.name == "ringback_attempts_total" and s.labels.get("outcome") == "answered"
    ]
    assert answered and answered[0] >= 1, f"no ringback_attempts_total{{outcome=answered}}:\n{text}"
    claims = [
        s.value for s in families["ringback_claim_seconds"].samples if s.name.endswith("_count")
    ]
    assert claims and claims[0] >= 1, text


def test_openapi_json_lists_every_route(anon: httpx.Client) -> None:
    answer = anon.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["openapi"].startswith("3.")
    missing = EXPECTED_ROUTES - _operations(document)
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"


def test_openapi_declares_the_bearer_scheme_and_the_error_shape(anon: httpx.Client) -> None:
    document = anon.get("/openapi.json").json()
    schemes = document.get("components", {}).get("securitySchemes", {})
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values()), schemes
    error = document["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"error", "message", "details"}


def test_docs_page_is_served(anon: httpx.Client) -> None:
    answer = anon.get("/docs")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in answer.text


def test_unknown_path_is_a_json_404(anon: httpx.Client, rb: Any) -> None:
    rb.error(anon.get("/no/such/path"), 404, "not_found")


def test_server_runs_on_the_store_under_test(live: LiveServer) -> None:
    expected = "sqlite" if live.store == "sqlite" else "postgresql"
    assert live.env["RINGBACK_DATABASE_URL"].startswith(expected)
    assert live.process.poll() is None, live.log()
