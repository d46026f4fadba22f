"""Hostile path segments: an id with a control character (``%0A`` …) or one that matches no
route answers 404 or 422 JSON on every resource route, never the collection's list."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

#: every collection of the API under /client/{id} ({sid}: a queue of the client); storage
#: paths are checked by the storage routes themselves (400 bad_path, tests/api/test_http_storage)
COLLECTIONS = [
    "/task_scheduler/",
    "/task_scheduler/{sid}/tasks/",
    "/jobs/",
    "/numbers/",
    "/webhooks/",
    "/webhook_deliveries/",
    "/call_history/",
]
BAD_SEGMENTS = ["%0A", "%0D", "%0D%0A", "%00", "%09", "1%0A", "%7F", "x%20y", "-1", "%25"]


@pytest.mark.parametrize("segment", BAD_SEGMENTS)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_a_bad_id_segment_on_every_resource_route_answers_404_or_422_json_never_the_list(
    alice: Tenant, collection: str, segment: str
) -> None:
    queue = alice.new_queue() if "{sid}" in collection else {"id": 0}
    path = collection.format(sid=queue["id"]) + segment
    for method in ("GET", "PUT", "DELETE"):
        answer = alice.http.request(method, path, json={} if method == "PUT" else None)
        assert answer.status_code in (404, 405, 422), (method, path, answer.status_code)
        body = answer.json()
        assert set(body) >= {"error", "message"}, (method, path, body)
        assert not any(key in body for key in ("queues", "tasks", "numbers", "calls")), body


@pytest.mark.parametrize("path", ["/webhook_secret%0A", "/task_scheduler%0A", "/jobs%0A"])
def test_a_control_character_after_a_fixed_route_answers_404_json(alice: Tenant, path: str) -> None:
    answer = alice.http.get(path)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
