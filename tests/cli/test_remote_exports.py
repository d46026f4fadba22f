"""``ringback remote task export``, ``remote calls export`` and ``remote audit`` against a
real ``ringback serve`` (SQLite): the CSV goes to stdout or a file, filters pass through, an
unknown queue is refused with exit 1, and the audit log lists the changes with the operator
named by RINGBACK_OPERATOR."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_support import Operator, logged_in, remote_server, unique

pytestmark = pytest.mark.slow  # a server of the module's own


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with remote_server(tmp_path_factory, "remote-export") as live:
        yield live


@pytest.fixture(scope="module")
def creds(server: Any) -> Any:
    return server.make_tenants(unique("acme"))


@pytest.fixture
def rb(server: Any, creds: Any, tmp_path: Path) -> Operator:
    [tenant] = creds.values()
    return logged_in(server, tenant, tmp_path / "config")


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_task_export_writes_the_queues_tasks_to_a_file_or_stdout_with_filters(
    rb: Operator, tmp_path: Path
) -> None:
    queue = unique("q")
    rb("remote", "queue", "add", queue, "--json").json()
    for name in ("one", "=two"):
        rb("remote", "task", "add", "-q", queue, "--a-number", "15550001001",
           "--b-number", "15550002002", "--name", name, "--json").json()  # fmt: skip
    target = tmp_path / "tasks.csv"
    done = rb("remote", "task", "export", "-q", queue, "-o", target)
    assert done.code == 0, done.stderr
    assert [r["name"] for r in _rows(target.read_text())] == ["one", "'=two"]
    assert "exported" in done.stderr and str(target) in done.stderr
    only = rb("remote", "task", "export", "-q", queue, "--name", "one", "--quiet")
    assert [r["name"] for r in _rows(only.stdout)] == ["one"]
    missing = rb("remote", "task", "export", "-q", unique("none"), "--quiet")
    assert missing.code == 1


def test_calls_export_writes_the_header_and_a_bad_time_is_refused(rb: Operator) -> None:
    done = rb("remote", "calls", "export", "--quiet")
    assert done.code == 0 and done.stdout.startswith("call_uuid,direction,")
    same = rb("remote", "history", "export", "--quiet")
    assert same.stdout == done.stdout
    bad = rb("remote", "calls", "export", "--start", "soon")
    assert bad.code == 1 and "start" in bad.stderr


def test_audit_lists_the_changes_with_the_operator(
    rb: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RINGBACK_OPERATOR", "jane")
    queue = unique("audited")
    made = rb("remote", "queue", "add", queue, "--json").json()
    page = rb("remote", "audit", "--type", "queue", "--id", str(made["id"]), "--json").json()
    [entry] = page["entries"]
    assert (entry["action"], entry["channel"], entry["operator"]) == ("created", "api", "jane")
    human = rb("remote", "audit", "--limit", "5")
    assert human.code == 0 and "created" in human.stdout
