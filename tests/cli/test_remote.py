"""``ringback remote …`` against a real ``ringback serve`` (SQLite), no mock of the API.

Each command group: its happy path, and one refusal with the exit code and, under ``--json``,
the error as JSON on stderr. Login: the profile file is 0600 and the secret never printed.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_support import Operator, Ran, logged_in, remote_server, unique, wait_for

from support import wav_bytes

pytestmark = pytest.mark.slow  # a server of the module's own


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with remote_server(tmp_path_factory, "remote-cli") as live:
        yield live


@pytest.fixture(scope="module")
def creds(server: Any) -> Any:
    return server.make_tenants(unique("acme"))


@pytest.fixture
def rb(server: Any, creds: Any, tmp_path: Path) -> Operator:
    """A profile 'default' logged in to the server, in this test's own config folder."""
    [tenant] = creds.values()
    return logged_in(server, tenant, tmp_path / "config")


def test_login_saves_a_0600_profile_and_never_prints_the_secret(
    server: Any, creds: Any, tmp_path: Path
) -> None:
    [tenant] = creds.values()
    operator = Operator(tmp_path / "cfg", server.url, tenant.key, tenant.secret, tenant.id)
    ran = operator(
        "remote", "--profile", "prod", "login", "--url", server.url, "--client-id", tenant.key,
        "--client-secret", tenant.secret, real=True,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert tenant.secret not in ran.stdout + ran.stderr
    path = tmp_path / "cfg" / "ringback" / "profiles.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    saved = tomllib.loads(path.read_text())["profiles"]["prod"]
    assert saved == {"url": server.url, "client_id": tenant.key, "client_secret": tenant.secret,
                     "client": tenant.id}  # fmt: skip
    listed = operator("remote", "profiles", "--json", real=True)
    assert tenant.secret not in listed.stdout + listed.stderr
    assert [p["name"] for p in listed.json()] == ["prod"]
    chosen = operator("remote", "--profile", "prod", "queue", "list", "--json")
    assert chosen.json() == []


def test_login_with_a_wrong_secret_is_refused_with_exit_1_and_saves_nothing(
    rb: Operator,
) -> None:
    body = rb.login(client_secret="wrong-secret").error(1)
    assert body["error"] == "invalid_client" and "check --client-id" in body["message"]
    assert rb.login().code == 0  # the saved profile still works


def test_an_unreachable_server_is_one_line_with_exit_2(rb: Operator, tmp_path: Path) -> None:
    from support_webhooks import free_port

    ran = rb("remote", "login", "--url", f"http://127.0.0.1:{free_port()}", "--client-id", "k",
             "--client-secret", "s", real=True)  # fmt: skip
    assert ran.code == 2 and "cannot reach" in ran.stderr and "Traceback" not in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1


def test_queue_holidays_are_set_replaced_removed_and_bad_ones_refused(rb: Operator) -> None:
    name = unique("hols")
    hours = "Europe/Paris mon-fri 09:00-18:00"
    added = rb("remote", "queue", "add", name, "--hours", hours, "--holiday", "12-25=Christmas",
               "--json").json()  # fmt: skip
    assert added["calling_hours"]["holidays"] == [
        {"date": "12-25", "name": "Christmas", "timezones": None}
    ]
    changed = rb("remote", "queue", "set", name, "--holiday", "2026-05-01@Europe/Paris",
                 "--json").json()  # fmt: skip
    assert changed["calling_hours"]["timezone"] == "Europe/Paris"
    assert changed["calling_hours"]["holidays"] == [
        {"date": "2026-05-01", "name": None, "timezones": ["Europe/Paris"]}
    ]
    cleared = rb("remote", "queue", "set", name, "--no-holidays", "--json").json()
    assert cleared["calling_hours"]["holidays"] == []
    body = rb("remote", "queue", "set", name, "--holiday", "13-01", "--json").error(1)
    assert "holiday '13-01': date" in body["message"]
    plain = rb("remote", "queue", "add", unique("nohours"), "--holiday", "12-25", real=True)
    assert plain.code == 1 and plain.stderr.startswith("error: calling hours: holidays need")


def test_a_missing_profile_exits_2_naming_the_login_command(rb: Operator) -> None:
    body = rb("remote", "--profile", "nope", "queue", "list", "--json").error(2)
    assert "ringback remote login" in body["message"] and "--profile nope" in body["message"]


def test_queue_add_list_set_on_off_show_and_bad_hours_refused(rb: Operator) -> None:
    name = unique("sales")
    added = rb("remote", "queue", "add", name, "--limit", "3", "--json").json()
    assert added["status"] == "off" and added["concurrent_task_limit"] == 3
    assert name in [q["name"] for q in rb("remote", "queue", "list", "--json").json()]
    changed = rb("remote", "queue", "set", name, "--limit", "7", "--max-cps", "2.5",
                 "--hours", "Europe/Paris mon-fri 09:00-18:00", "--json").json()  # fmt: skip
    assert changed["concurrent_task_limit"] == 7 and changed["max_calls_per_second"] == 2.5
    assert changed["calling_hours"]
    assert (
        rb("remote", "queue", "set", name, "--no-hours", "--json").json()["calling_hours"] is None
    )
    assert rb("remote", "queue", "on", name, "--json").json()["status"] == "on"
    assert rb("remote", "queue", "off", name, "--json").json()["status"] == "off"
    assert rb("remote", "queue", "show", name, "--json").json()["id"] == added["id"]
    table = rb("remote", "queue", "list")
    assert table.code == 0 and name in table.stdout
    body = rb("remote", "queue", "set", name, "--hours", "whenever", "--json").error(1)
    assert body["details"][0]["loc"][-1] == "calling_hours"
    plain = rb("remote", "queue", "show", "no-such-queue", real=True)
    assert plain.code == 1 and plain.stderr.startswith("error: no queue named 'no-such-queue'")


def _queue(rb: Operator, *, on: bool = False) -> str:
    name = unique("q")
    rb("remote", "queue", "add", name, *(["--on"] if on else []), "--json").json()
    return name


def test_task_add_list_show_cancel_and_a_second_cancel_refused(rb: Operator) -> None:
    queue = _queue(rb)
    [task] = rb("remote", "task", "add", "-q", queue, "--a-number", "15550001001",
                "--b-number", "15550002002", "--name", "lead-1", "--json").json()  # fmt: skip
    listed = rb("remote", "task", "list", "-q", queue, "--json").json()
    assert listed["total"] == 1 and listed["tasks"][0]["name"] == "lead-1"
    shown = rb("remote", "task", "show", str(task["id"]), "--json").json()
    assert shown["id"] == task["id"] and shown["queue"] == queue and shown["calls"] == []
    human = rb("remote", "task", "show", str(task["id"]))
    assert "events: not supported by this server" in human.stdout
    canceled = rb("remote", "task", "cancel", str(task["id"]), "--json").json()
    assert canceled["status"] == "finished"
    again = rb("remote", "task", "cancel", str(task["id"]), "--json").error(1)
    assert again["status"] == 409
    bad = rb("remote", "task", "add", "-q", queue, "--a-number", "abc", "--b-number", "1555",
             "--json").error(1)  # fmt: skip
    assert bad["details"][0]["loc"][-1] == "a_number"


def test_task_retry_says_not_supported_by_this_server(rb: Operator) -> None:
    body = rb("remote", "task", "retry", "1", "--json").error(1)
    assert body["error"] == "not_supported" and "not supported by this server" in body["message"]


def test_job_add_finishes_and_its_call_is_in_the_history(rb: Operator) -> None:
    sound = rb.config.parent / "hello.wav"
    sound.write_bytes(wav_bytes())
    stored = rb("remote", "storage", "put", str(sound), "--json").json()
    assert stored["path"] == "hello.wav"
    queue = _queue(rb, on=True)
    job = rb("remote", "job", "add", "--to", "15550003003", "--from", "100", "--audio-file",
             "hello.wav", "-q", queue, "--json").json()  # fmt: skip

    def finished() -> dict[str, Any] | None:
        shown: dict[str, Any] = rb("remote", "job", "show", str(job["id"]), "--json").json()
        return shown if shown["status"] == "finished" else None

    done = wait_for(finished, what="the job finishing")
    assert done["finish_result"] == "success", done
    assert job["id"] in [j["id"] for j in rb("remote", "job", "list", "--json").json()["jobs"]]
    calls = rb("remote", "history", "list", "--json").json()["calls"]
    mine = [call for call in calls if call["task_id"] == job["id"]]
    assert mine, calls
    record = rb("remote", "history", "show", mine[0]["call_uuid"], "--json").json()
    assert record["call_uuid"] == mine[0]["call_uuid"] and record["cdr"]
    assert rb("remote", "history", "show", "no-such-call", "--json").error(1)["status"] == 404
    missing = rb("remote", "job", "add", "--to", "1555", "--from", "100", "--json").error(1)
    assert "--audio-file" in missing["message"]


def test_number_put_list_simulate_delete_and_an_unknown_number_refused(rb: Operator) -> None:
    document = rb.config.parent / "menu.xml"
    document.write_text("<Response><Hangup/></Response>")
    rb("remote", "storage", "put", str(document), "menu.xml", "--json").json()
    put = rb("remote", "number", "put", "15557770000", "--ivr-file", "menu.xml",
             "--description", "front desk", "--json").json()  # fmt: skip
    assert put["ivr_file"] == "menu.xml"
    assert "15557770000" in [n["number"] for n in rb("remote", "number", "list", "--json").json()]
    simulated = rb("remote", "number", "simulate", "15557770000", "--from", "100", "--json").json()
    assert simulated["status"] and simulated["trace"]
    assert rb("remote", "number", "delete", "15557770000", "--json").json()["deleted"]
    assert rb("remote", "number", "delete", "15557770000", "--json").error(1)["status"] == 404


def test_webhook_add_list_disable_rotate_delete_and_a_bad_url_refused(rb: Operator) -> None:
    hook = rb("remote", "webhook", "add", "http://127.0.0.1:9/hook", "--event", "task.finished",
              "--json").json()  # fmt: skip
    assert hook["events"] == ["task.finished"] and hook["secret"]
    listed = rb("remote", "webhook", "list")
    assert listed.code == 0 and hook["secret"] not in listed.stdout
    assert rb("remote", "webhook", "disable", str(hook["id"]), "--json").json()["active"] is False
    assert rb("remote", "webhook", "enable", str(hook["id"]), "--json").json()["active"] is True
    rotated = rb("remote", "webhook", "rotate", str(hook["id"]), "--json").json()
    assert rotated["secret"] != hook["secret"] and rotated["previous_secret_valid_until"]
    assert rb("remote", "webhook", "delete", str(hook["id"]), "--json").json()["deleted"]
    bad = rb("remote", "webhook", "add", "not a url", "--json").error(1)
    assert bad["details"], bad


def test_deliveries_list_dead_show_redeliver_and_an_unknown_one_refused(rb: Operator) -> None:
    from support_webhooks import free_port

    hook = rb("remote", "webhook", "add", f"http://127.0.0.1:{free_port()}/down", "--json").json()
    queue = _queue(rb)
    [task] = rb("remote", "task", "add", "-q", queue, "--a-number", "15550001001",
                "--b-number", "15550002002", "--json").json()  # fmt: skip

    def dead() -> list[dict[str, Any]]:
        page = rb("remote", "delivery", "dead", "--webhook", str(hook["id"]), "--json").json()
        return [d for d in page["deliveries"] if d["task_id"] == task["id"]]

    found = wait_for(dead, timeout=40, what="a dead delivery (the receiver is down)")
    listed = rb("remote", "delivery", "list", "--task", str(task["id"]), "--json").json()
    assert found[0]["id"] in [d["id"] for d in listed["deliveries"]]
    shown = rb("remote", "delivery", "show", str(found[0]["id"]), "--json").json()
    assert shown["status"] == "dead"
    again = rb("remote", "delivery", "redeliver", str(found[0]["id"]), "--json").json()
    assert again["status"] == "pending"
    assert rb("remote", "delivery", "redeliver", "999999", "--json").error(1)["status"] == 404
    rb("remote", "webhook", "delete", str(hook["id"]), "--json").json()


def test_storage_put_ls_get_rm_and_a_missing_file_refused(rb: Operator, tmp_path: Path) -> None:
    local = tmp_path / "note.txt"
    local.write_bytes(b"call list notes")
    rb("remote", "storage", "put", str(local), "docs/note.txt", "--json").json()
    listing = rb("remote", "storage", "ls", "docs/", "--json").json()
    assert [f["path"] for f in listing["files"]] == ["docs/note.txt"]
    copy = tmp_path / "copy.txt"
    rb("remote", "storage", "get", "docs/note.txt", str(copy), "--json").json()
    assert copy.read_bytes() == b"call list notes"
    assert rb("remote", "storage", "rm", "docs/note.txt", "--json").json()["deleted"]
    gone: Ran = rb("remote", "storage", "get", "docs/note.txt", str(copy), "--json")
    assert gone.error(1)["status"] == 404


def test_credentials_revoked_on_the_server_exit_2_naming_the_login_command(
    server: Any, tmp_path: Path
) -> None:
    [tenant] = server.make_tenants(unique("revoked")).values()
    operator = Operator(tmp_path / "config", server.url, tenant.key, tenant.secret, tenant.id)
    operator.login().json()
    code, _, stderr = server.cli_in_process("client", "rotate-secret", tenant.key, "--json")
    assert code == 0, stderr
    body = operator("remote", "queue", "list", "--json").error(2)
    assert body["status"] == 401 and "ringback remote login --profile default" in body["message"]
