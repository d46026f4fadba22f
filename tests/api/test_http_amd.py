"""Answering-machine detection over HTTP on both stores: a job's ``data.amd`` policy, the
result on its calls and in the call history. The simulator's rules (conftest) make numbers
ending in 0009001 an answering machine whose beep ends 2.5 s after answer, and those
ending in 0009002 a person who stays on the line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from support import wav_bytes

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import Tenant

AUDIO = "audio/amd.wav"
MACHINE = "+15550009001"
HUMAN = "+15550009002"


@pytest.fixture(scope="module", autouse=True)
def audio_file(tenants: dict[str, Tenant]) -> None:
    answer = tenants["alice"].http.put(f"/storage/{AUDIO}", content=wav_bytes())
    assert answer.status_code in (200, 201), answer.text


def _job(alice: Tenant, rb: Any, called: str, amd: str) -> dict[str, Any]:
    data = {"calling_number": "+15550005005", "called_number": called, "audio_file": AUDIO,
            "amd": amd}  # fmt: skip
    added = alice.http.post("/jobs/", json={"type": "msg_call", "data": data})
    assert added.status_code == 201, added.text
    assert added.json()["data"]["amd"] == amd
    return rb.poll(
        lambda: alice.http.get(f"/jobs/{added.json()['id']}"),
        lambda job: job["state"] in ("completed", "failed"),
        what="the job to end",
    )


def test_hangup_policy_fails_a_machine_answered_job_with_its_result_on_the_call(
    alice: Tenant, rb: Any
) -> None:
    done = _job(alice, rb, MACHINE, "hangup")
    assert (done["state"], done["finish_comment"]) == ("failed", "answering machine"), done
    [call] = done["calls"]
    assert call["amd"] == {"answered_by": "machine", "cause": "simulated", "amd_ms": 2000,
                           "beep_ms": None, "policy": "hangup"}  # fmt: skip
    assert call["played"] == []
    history = alice.http.get(f"/call_history/{call['call_uuid']}")
    assert history.status_code == 200, history.text
    [leg] = history.json()["cdr"]
    assert leg["amd"]["answered_by"] == "machine"


def test_wait_for_beep_plays_the_message_after_the_beep_and_a_human_gets_it_at_once(
    alice: Tenant, rb: Any
) -> None:
    machine = _job(alice, rb, MACHINE, "wait_for_beep")
    assert machine["state"] == "completed", machine
    assert machine["calls"][0]["amd"]["beep_ms"] == 2500
    human = _job(alice, rb, HUMAN, "wait_for_beep")
    assert human["state"] == "completed", human
    assert human["calls"][0]["amd"]["answered_by"] == "human"
    assert human["calls"][0]["amd"]["beep_ms"] is None


def test_an_unknown_amd_policy_is_422_naming_the_field(alice: Tenant, rb: Any) -> None:
    data = {"calling_number": "+15550005005", "called_number": HUMAN, "audio_file": AUDIO,
            "amd": "sometimes"}  # fmt: skip
    body = rb.error(alice.http.post("/jobs/", json={"type": "msg_call", "data": data}), 422)
    assert any(loc[-1] == "amd" for loc in rb.locs(body)), body
