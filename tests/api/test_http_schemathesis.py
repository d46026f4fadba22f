"""Schemathesis (CLI, v4) against the live server's /openapi.json, SQLite only.

alice's token and client id are fixed (``tests/api/schemathesis.toml``), as are ids of a queue,
tasks, a job and a call she owns, so the generated requests reach the handlers. Checks: no 5xx,
responses conform to the schema, documented status codes and content types. The run must make
at least 1,000 requests (counted twice: in schemathesis' HAR report and in the server's access
log) and no check may fail; failures are printed one per operation with a curl to reproduce.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest.py is not importable at run time (every one is "conftest")
    from conftest import LiveServer, Tenant

CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
]
MIN_REQUESTS = 1000
MAX_EXAMPLES = int(os.environ.get("RB_SCHEMATHESIS_MAX_EXAMPLES", "12"))
SEED = os.environ.get("RB_SCHEMATHESIS_SEED", "20240501")
RUN_TIMEOUT_S = 480  # an upper bound: ~2 min on a loaded 2-core machine, 4 under more load
#: the API's access line (api/request_log.py): ``… request … method=GET path=/… status=200``
ACCESS_LINE = re.compile(
    r"\brequest\b.*\bmethod=(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS)\b.*\bstatus=\d{3}"
)

pytestmark = pytest.mark.parametrize("live", ["sqlite"], indirect=True)


def _owned_ids(alice: Tenant, rb: Any) -> dict[str, str]:
    """Things of alice's the fixed path parameters point at."""
    running = alice.new_queue(status="on")
    [done] = alice.add_tasks(running["id"], rb.task(name="history"))
    finished = rb.poll(
        lambda: alice.http.get(f"/task_scheduler/{running['id']}/tasks/{done['id']}"),
        lambda task: task["status"] == "finished",
        what="a call for the call history",
    )
    queue = alice.new_queue(status="off")
    task, doomed = alice.add_tasks(queue["id"], rb.task(name="fixed"), rb.task(name="doomed"))
    job = alice.http.post(
        "/jobs/",
        json={
            "type": "msg_call",
            "queue": queue["name"],
            "data": {
                "calling_number": "+15550005005",
                "called_number": "+15550006006",
                "audio_file": alice.put_wav("a.wav"),
            },
        },
    )
    assert job.status_code == 201, job.text
    return {
        "RB_ST_QUEUE_ID": str(queue["id"]),
        "RB_ST_TASK_ID": str(task["id"]),
        "RB_ST_DOOMED_TASK_ID": str(doomed["id"]),
        "RB_ST_JOB_ID": str(job.json()["id"]),
        "RB_ST_CALL_UUID": finished["cdr"],
    }


def _access_lines(live: LiveServer) -> int:
    return sum(1 for line in live.log_path.read_text(errors="replace").splitlines()
               if ACCESS_LINE.search(line))  # fmt: skip


def _describe(output: str, failures: list[dict[str, Any]], errors: list[dict[str, Any]]) -> str:
    """The failures readably: the CLI's ERRORS and FAILURES sections (operation, check,
    response, curl to reproduce), else the JSON report's summary of them."""
    section = re.search(
        r"(=+ (?:ERRORS|FAILURES) =+.*?)(?:=+ (?:WARNINGS|SUMMARY) =+)", output, re.S
    )
    if section:
        return section.group(1)
    return json.dumps({"failures": failures, "errors": errors}, indent=2, default=str)


def test_schemathesis_finds_no_server_errors_or_schema_violations_in_1000_requests(
    live: LiveServer, alice: Tenant, rb: Any, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **_owned_ids(alice, rb),
        "RB_ST_TOKEN": alice.token,
        "RB_ST_CLIENT_ID": str(alice.id),
        "NO_COLOR": "1",
    }
    reports = tmp_path / "reports"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(CONFIG),
        "run", f"{live.url}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", SEED,
        "--workers", "1",
        "--report", "json,har",
        "--report-dir", str(reports),
        "--no-color",
    ]  # fmt: skip
    served_before = _access_lines(live)
    try:
        run = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=RUN_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # subprocess.run kills it (by PID) on timeout
        pytest.fail(f"schemathesis ran longer than {RUN_TIMEOUT_S} s:\n{exc.stdout!r}"[-6000:])
    output = run.stdout + run.stderr
    served = _access_lines(live) - served_before

    [har_path] = reports.glob("har-*.json")
    [json_path] = reports.glob("json-*.json")
    requests = len(json.loads(har_path.read_text())["log"]["entries"])
    report = json.loads(json_path.read_text())
    failures, errors = report["failures"], report["errors"]
    summary = (
        f"schemathesis exit {run.returncode}: {requests} requests in its HAR, {served} in the "
        f"server log, {report['test_cases']['generated']} test cases, "
        f"{len(failures)} failures, {len(errors)} errors"
    )
    print(summary)

    assert requests >= MIN_REQUESTS, f"{summary}\n{output[-3000:]}"
    assert served >= MIN_REQUESTS, summary
    assert report["operations"]["tested"] == report["operations"]["selected"], report["operations"]
    assert not failures and not errors, f"{summary}\n{_describe(output, failures, errors)}"
    assert run.returncode == 0, f"{summary}\n{output[-8000:]}"
    assert live.process.poll() is None, live.log()
