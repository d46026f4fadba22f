"""The webhook payloads documented in ``/openapi.json`` (``api/event_schemas.py``) are what a
real ``ringback serve`` sends: every event type is provoked, received on 127.0.0.1 and read
back through its model without losing or changing a value."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import TypeAdapter

from ringback.api.event_schemas import EVENT_MODELS, WebhookEvent, event_type
from ringback.domain.tasks import READ_BACK
from ringback.webhooks.targets import EVENT_TYPES
from support_webhooks import Receiver

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

OK_A, OK_B, BUSY_B = "0901234000", "0907777000", "0907777486"
EVENTS: TypeAdapter[Any] = TypeAdapter(WebhookEvent)


def closed_hours() -> str:
    """Calling hours (UTC) that open two hours from now: a task due now waits."""
    hour = (datetime.now(UTC).hour + 2) % 24
    return f"UTC daily {hour:02d}:00-{hour:02d}:30"


def differences(got: Any, sent: Any, where: str = "") -> list[str]:
    """Where ``got`` (read back through the model) and ``sent`` differ."""
    if isinstance(got, dict) and isinstance(sent, dict):
        return [
            found
            for key in sorted(set(got) | set(sent))
            for found in (
                differences(got[key], sent[key], f"{where}.{key}")
                if key in got and key in sent
                else [f"{where}.{key}: only {'read back' if key in got else 'sent'}"]
            )
        ]
    if isinstance(got, list) and isinstance(sent, list) and len(got) == len(sent):
        return [d for i, (g, s) in enumerate(zip(got, sent, strict=True))
                for d in differences(g, s, f"{where}[{i}]")]  # fmt: skip
    return [] if got == sent else [f"{where}: {got!r} != {sent!r}"]


def test_every_event_type_has_a_documented_model() -> None:
    assert [event_type(model) for model in EVENT_MODELS] == list(EVENT_TYPES)


def test_real_webhook_bodies_of_every_event_type_match_their_documented_models(
    alice: Tenant, receiver: Receiver
) -> None:
    alice.http.post("/webhooks/", json={"url": f"{receiver.url}/all"}).raise_for_status()
    on = alice.new_queue(status="on")["id"]
    later = "2099-01-01 00:00:00"
    alice.add_tasks(
        on,
        {"a_number": OK_A, "b_number": OK_B},  # created, started, call.*, finished
        {"a_number": OK_A, "b_number": BUSY_B, "try_count": 2, "try_again_pause": 1},  # retry
    )
    [waiting, canceled] = alice.add_tasks(
        on,
        {"a_number": OK_A, "b_number": OK_B, "start_time_utc": later},
        {"a_number": OK_A, "b_number": OK_B, "start_time_utc": later},
    )
    answer = alice.http.put(
        f"/task_scheduler/{on}/tasks/{waiting['id']}",
        json={"a_number": OK_A, "b_number": OK_B, "start_time_utc": later, "name": "changed"},
    )
    assert answer.status_code == 200, answer.text  # task.updated
    answer = alice.http.delete(f"/task_scheduler/{on}/tasks/{canceled['id']}")
    assert answer.status_code in (200, 204), answer.text  # task.canceled
    closed = alice.new_queue(status="on", calling_hours=closed_hours())["id"]
    alice.add_tasks(closed, {"a_number": OK_A, "b_number": OK_B})  # task.delayed

    deadline = time.monotonic() + 60
    while {r.json["type"] for r in receiver.requests()} < set(EVENT_TYPES):
        if time.monotonic() > deadline:
            seen = {r.json["type"] for r in receiver.requests()}
            pytest.fail(f"not every event type arrived in 60 s: missing {set(EVENT_TYPES) - seen}")
        time.sleep(0.1)

    for request in receiver.requests():
        body = request.json
        event = EVENTS.validate_python(body, context=READ_BACK)
        assert differences(event.model_dump(mode="json", by_alias=True, exclude_unset=True),
                           body) == [], body  # fmt: skip
        assert request.headers["Ringback-Event-Type"] == body["type"]
        assert request.headers["Ringback-Event-Id"] == body["id"]
        assert request.headers["Ringback-Signature"].startswith("t=")
