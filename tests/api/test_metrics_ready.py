"""/healthz is liveness (no database asked), /readyz readiness (database, worker, webhook
backlog; 503 naming what is not), /metrics the Prometheus series: per queue (bounded), webhook
deliveries, HTTP requests by route template, the process."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_smoke_core import Api, _token, create_credentials

from ringback.api import metrics as metrics_module
from ringback.api.app import create_app
from ringback.api.request_log import route_template
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.config import Settings
from ringback.domain.rows import MetricsCounts
from ringback.service import Services
from ringback.store.db import Store


@pytest.fixture
async def served(
    store: Store, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_app(Services(store, clock, storage=Storage(tmp_path / "files")), Settings())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, app


async def test_readyz_is_ready_with_each_check_named(
    served: tuple[httpx.AsyncClient, object],
) -> None:
    http, _app = served
    answer = await http.get("/readyz")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ready"
    assert (
        body["checks"]["database"]["ok"]
        and "schema version" in body["checks"]["database"]["detail"]
    )
    assert body["checks"]["webhooks"] == {
        "ok": True,
        "detail": "0 pending, the oldest due 0 s ago (limit 300 s)",
    }


async def test_readyz_is_503_naming_a_stopped_worker_while_healthz_stays_200(
    served: tuple[httpx.AsyncClient, object],
) -> None:
    http, app = served
    app.state.worker_problem = lambda: "the worker has stopped"  # type: ignore[attr-defined]
    answer = await http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["worker"] == {"ok": False, "detail": "the worker has stopped"}
    assert (await http.get("/healthz")).status_code == 200


async def test_readyz_is_503_when_the_database_does_not_answer_and_healthz_is_not(
    served: tuple[httpx.AsyncClient, object], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, _app = served

    async def refused() -> int:  # what the driver raises when the server is gone
        raise ConnectionRefusedError(111, "Connect call failed")

    monkeypatch.setattr(store, "schema_version", refused)
    answer = await http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == {
        "ok": False,
        "detail": "the database does not answer",
    }
    assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_show_queues_requests_by_route_template_and_the_process(
    served: tuple[httpx.AsyncClient, object], store: Store, clock: FakeClock
) -> None:
    http, _app = served
    client_id, key, secret = await create_credentials(store, "acme", clock)
    api = Api(http, client_id, await _token(http, key, secret))
    queue = (await api.call("POST", "/task_scheduler/", json={"name": "sales"})).json()
    assert (await api.call("GET", f"/task_scheduler/{queue['id']}")).status_code == 200
    files = await api.call("PUT", "/storage/audio/a.wav", content=b"RIFF")
    assert files.status_code == 201, files.text
    text = (await http.get("/metrics")).text
    assert (
        'ringback_queue_tasks{client="acme",queue="sales",status="scheduled"}' not in text
    )  # no tasks yet
    route = "/api/ver1.0/client/{client_id}/task_scheduler/{scheduler_id}"
    assert f'ringback_http_requests_total{{method="GET",route="{route}",status="200"}} 1.0' in text
    assert f'/task_scheduler/{queue["id"]}"' not in text  # never the raw path
    storage = "/api/ver1.0/client/{client_id}/storage/{path}"
    assert (
        f'ringback_http_requests_total{{method="PUT",route="{storage}",status="201"}} 1.0' in text
    )
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
    assert "ringback_calls_in_progress 0.0" in text
    assert "ringback_webhook_oldest_pending_seconds 0.0" in text


def test_per_queue_series_are_bounded_and_the_rest_summed_under_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "MAX_LABELLED_QUEUES", 2)
    rows = [("acme", "big", "scheduled", 9), ("acme", "mid", "scheduled", 5),
            ("acme", "small", "scheduled", 1), ("beta", "tiny", "finished", 1)]  # fmt: skip
    registry = metrics_module.Metrics()
    from ringback.domain.rows import StatusReport

    clock = FakeClock()
    oldest = clock.now() - timedelta(seconds=42)
    text = registry.render(
        StatusReport(counts={}, in_flight=0, next_due=None, queues=[]),
        MetricsCounts(tasks=rows, deliveries=[("acme", "dead", 3)], oldest_pending_delivery=oldest),
        clock.now(),
    ).decode()
    found = re.findall(
        r'^ringback_queue_tasks\{client="([^"]*)",queue="([^"]*)",status="([^"]*)"\} (\S+)',
        text,
        re.M,
    )
    assert sorted(found) == sorted([
        ("acme", "big", "scheduled", "9.0"), ("acme", "mid", "scheduled", "5.0"),
        ("(other)", "(other)", "scheduled", "1.0"), ("(other)", "(other)", "finished", "1.0"),
    ])  # fmt: skip
    assert 'ringback_webhook_deliveries{client="acme",status="dead"} 3.0' in text
    assert "ringback_webhook_oldest_pending_seconds 42.0" in text


_SEGMENT = st.text(alphabet="abcdefgh0123456789._-", min_size=1, max_size=8)


@given(
    fixed=st.lists(_SEGMENT, min_size=1, max_size=4),
    values=st.lists(_SEGMENT, min_size=1, max_size=3),
    tail=st.lists(_SEGMENT, min_size=1, max_size=3),
)
def test_the_route_label_is_the_template_whatever_the_values(
    fixed: list[str], values: list[str], tail: list[str]
) -> None:
    names = [f"p{i}" for i in range(len(values))]
    template_parts = [*fixed, *(f"{{{n}}}" for n in names), "{path}"]
    path_parts = [*fixed, *values, *tail]
    params = {**dict(zip(names, values, strict=True)), "path": "/".join(tail)}
    scope = {"route": object(), "path": "/" + "/".join(path_parts), "path_params": params}
    if any(part in values or part in tail for part in fixed):
        return  # a fixed segment spelled like a value: ambiguous, not asked of real routes
    assert route_template(scope) == "/" + "/".join(template_parts)


def test_every_series_the_grafana_dashboard_asks_for_is_exported() -> None:
    from ringback.domain.rows import StatusReport

    registry, clock = metrics_module.Metrics(), FakeClock()
    registry.count_attempt("answered")  # every labelled series once
    registry.observe_request("GET", "/healthz", 200, 0.01)
    registry.observe_claim(0.01)
    registry.observe_lateness(0.01)
    text = registry.render(
        StatusReport(counts={"finished/success": 1}, in_flight=0, next_due=None, queues=[]),
        MetricsCounts(tasks=[("a", "q", "scheduled", 1)], deliveries=[("a", "pending", 1)],
                      oldest_pending_delivery=None),
        clock.now(),
    ).decode()  # fmt: skip
    exported = set(re.findall(r"^([a-z_]+)[{ ]", text, re.M))
    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:ringback|process)_[a-z_]+)\b", target["expr"])
    }
    assert len(asked) >= 10 and asked <= exported, asked - exported
