"""URLs a client gives for later use are checked when stored (README: the address guard).

Every URL ringback will call later (a job's answer URL and webhooks, a scheduler task's seed
URLs, webhook subscriptions, a number's answer URL) is refused with 422 naming the field when
ringback could never call it: control characters, a host IDNA cannot encode, another scheme,
credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

IMPOSSIBLE = {
    "control_character": "http://hooks.example/a\x07b",
    "newline": "http://hooks.example/a\nHost: evil",
    "idna_unencodable_host": "https://\u05d0a.example/",
    "ftp_scheme": "ftp://hooks.example/x",
    "credentials": "http://user:pw@hooks.example/x",
}
CASES = pytest.mark.parametrize("url", list(IMPOSSIBLE.values()), ids=list(IMPOSSIBLE))


def _refused(answer: Any, *field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["error"] == "invalid_input", error
    assert any(d["loc"][-len(field) :] == list(field) for d in error["details"]), error


def _ivr_job(url: str) -> dict[str, Any]:
    return {
        "type": "ivr_call",
        "data": {
            "calling_number": "0901234000",
            "called_number": "0907777000",
            "ivr_xml": {"type": "url", "data": url},
        },
    }


@CASES
def test_an_impossible_answer_url_of_a_job_is_refused_naming_the_field(
    alice: Tenant, url: str
) -> None:
    _refused(alice.http.post("/jobs/", json=_ivr_job(url)), "ivr_xml", "data")
    # also as the second URL of a fallback list
    _refused(
        alice.http.post("/jobs/", json=_ivr_job(f"https://ok.example/,{url}")), "ivr_xml", "data"
    )


@CASES
def test_an_impossible_job_webhook_url_is_refused_naming_the_field(alice: Tenant, url: str) -> None:
    job = _ivr_job("https://ok.example/answer")
    job["options"] = {"webhooks": [{"url": url}]}
    _refused(alice.http.post("/jobs/", json=job), "webhooks", 0, "url")  # type: ignore[arg-type]


@CASES
def test_an_impossible_seed_url_of_a_scheduler_task_is_refused_naming_the_field(
    alice: Tenant, rb: Any, url: str
) -> None:
    queue = alice.new_queue(status="off")
    task = rb.task(url_after=url)
    answer = alice.http.post(f"/task_scheduler/{queue['id']}/tasks/", json={"tasks": [task]})
    _refused(answer, "url_after")


@CASES
def test_an_impossible_webhook_subscription_url_is_refused_naming_the_field(
    alice: Tenant, url: str
) -> None:
    _refused(alice.http.post("/webhooks/", json={"url": url}), "url")
    hook = alice.http.post("/webhooks/", json={"url": "https://ok.example/hook"})
    assert hook.status_code == 201, hook.text
    _refused(alice.http.put(f"/webhooks/{hook.json()['id']}", json={"url": url}), "url")


@CASES
def test_an_impossible_number_answer_url_is_refused_naming_the_field(
    alice: Tenant, url: str
) -> None:
    answer = alice.http.put("/numbers/+15550009999", json={"answer_url": url})
    _refused(answer, "answer_url")


def test_a_possible_idn_url_is_stored(alice: Tenant) -> None:
    hook = alice.http.post("/webhooks/", json={"url": "https://bücher.example/hook"})
    assert hook.status_code == 201, hook.text
