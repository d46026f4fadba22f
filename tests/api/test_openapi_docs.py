"""The OpenAPI document describes every field of the task, queue and job schemas, its examples
are bodies the API accepts, and it documents the webhook payloads in its ``webhooks`` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

from ringback.api import queue_schemas, schemas
from ringback.api.app import create_app
from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import Settings
from ringback.domain import tasks
from ringback.domain.tasks import READ_BACK
from ringback.service import Services
from ringback.webhooks.targets import EVENT_TYPES

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

#: the task, queue and job schemas: every property described
GROUP = (
    "CallbackTask", "CallbackParams", "CallbackParamsOut", "TaskOut", "TaskBatchIn",
    "TaskBatchOut", "TaskListOut", "JobOut", "JobListOut", "MsgCallJob", "IvrCallJob",
    "MsgCallData", "IvrCallData", "IvrXml", "JobOptions", "JobOptionsOut", "JobWebhook",
    "JobWebhookOut", "Backoff", "QueueCreate", "QueueUpdate", "QueueOut", "QueueListOut",
    "CallingHoursSpec", "Window", "CallOut", "CdrLeg", "FaxOut",
)  # fmt: skip
#: properties described across every component schema, as reached (it may only go up)
DESCRIBED_AT_LEAST = 506
MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        tasks.CallbackTask, tasks.MsgCallJob, tasks.IvrCallJob, schemas.TaskBatchIn,
        schemas.TaskOut, schemas.JobOut, queue_schemas.QueueCreate, queue_schemas.QueueUpdate,
        queue_schemas.QueueOut, queue_schemas.CallingHoursSpec,
    )
}  # fmt: skip
REQUESTS = ("CallbackTask", "TaskBatchIn", "MsgCallJob", "IvrCallJob", "QueueCreate",
            "QueueUpdate")  # fmt: skip


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    storage = Storage(Path(tmp_path_factory.mktemp("files")))
    app = create_app(Services(None, SystemClock(), storage=storage), Settings())
    return app.openapi()


def examples(spec: dict[str, Any], name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = spec["components"]["schemas"][name].get("examples", [])
    return found


def test_every_property_of_the_task_queue_and_job_schemas_has_a_description(
    spec: dict[str, Any],
) -> None:
    components = spec["components"]["schemas"]
    missing = {
        name: [p for p, v in components[name].get("properties", {}).items()
               if not v.get("description")]
        for name in GROUP
    }  # fmt: skip
    assert {name: props for name, props in missing.items() if props} == {}
    described = sum(
        1 for sch in components.values() for v in sch.get("properties", {}).values()
        if v.get("description")
    )  # fmt: skip
    total = sum(len(sch.get("properties", {})) for sch in components.values())
    assert described >= DESCRIBED_AT_LEAST, (
        f"{described} of {total} properties described, fewer than {DESCRIBED_AT_LEAST}"
    )


def test_no_property_description_is_blank_or_names_internal_documents(
    spec: dict[str, Any],
) -> None:
    bad = [
        f"{name}.{prop}"
        for name, sch in spec["components"]["schemas"].items()
        for prop, value in sch.get("properties", {}).items()
        if "description" in value
        and (not value["description"].strip()
             or any(w in value["description"] for w in ("seed", "DESIGN", "§")))
    ]  # fmt: skip
    assert bad == []


def test_each_request_schema_and_the_main_answers_have_examples(spec: dict[str, Any]) -> None:
    assert [n for n in (*REQUESTS, "TaskOut", "JobOut", "QueueOut") if not examples(spec, n)] == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_example_validates_against_its_model(spec: dict[str, Any], name: str) -> None:
    found = examples(spec, name)
    assert found, f"{name} has no example"
    for example in found:
        MODELS[name].model_validate(example, context=READ_BACK)


def test_the_webhooks_section_documents_every_event_type_with_its_headers(
    spec: dict[str, Any],
) -> None:
    assert spec["openapi"].startswith("3.1")
    assert list(spec["webhooks"]) == list(EVENT_TYPES)
    for name, item in spec["webhooks"].items():
        operation = item["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        model = spec["components"]["schemas"][body.rsplit("/", 1)[1]]
        assert model["properties"]["type"]["const"] == name
        assert [p for p, v in model["properties"].items() if not v.get("description")] == []
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert {"Ringback-Signature", "Ringback-Event-Id", "Ringback-Event-Type"} <= headers
        assert "422" not in operation["responses"]  # the receiver answers, not ringback
    assert "HTTPValidationError" not in spec["components"]["schemas"]


# --- the examples through the live API ------------------------------------------------------


def test_queue_examples_are_accepted_by_the_api(spec: dict[str, Any], alice: Tenant) -> None:
    for example in examples(spec, "QueueCreate"):
        answer = alice.http.post("/task_scheduler/", json=example)
        assert answer.status_code == 201, answer.text
    sid = alice.new_queue()["id"]
    for example in examples(spec, "QueueUpdate"):
        answer = alice.http.put(f"/task_scheduler/{sid}", json=example)
        assert answer.status_code == 200, answer.text


def test_task_examples_are_accepted_by_the_api(spec: dict[str, Any], alice: Tenant) -> None:
    sid = alice.new_queue(status="off")["id"]  # nothing is dialled
    for example in examples(spec, "TaskBatchIn"):
        answer = alice.http.post(f"/task_scheduler/{sid}/tasks/", json=example)
        assert answer.status_code == 201, answer.text
    for example in examples(spec, "CallbackTask"):
        [made] = alice.add_tasks(sid, example)
        answer = alice.http.put(f"/task_scheduler/{sid}/tasks/{made['id']}", json=example)
        assert answer.status_code == 200, answer.text


def test_job_examples_are_accepted_by_the_api(spec: dict[str, Any], alice: Tenant) -> None:
    """Each example as given, but sent to a switched-off queue, so that nothing is dialled."""
    alice.put_wav("audio/hello.wav")
    queue = alice.new_queue(status="off")["name"]
    for name in ("MsgCallJob", "IvrCallJob"):
        for example in examples(spec, name):
            answer = alice.http.post("/jobs/", json={**example, "queue": queue})
            assert answer.status_code == 201, answer.text
            assert answer.json()["data"] == example["data"]
