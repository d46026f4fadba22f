"""``ringback remote caps`` and ``ringback remote callerid`` against a real ``ringback serve``
(SQLite): caps and allowed caller ids set, shown and cleared; a bad cap, and a job naming a
caller id off the list, refused with exit 1 (the error as JSON under ``--json``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_support import Operator, logged_in, remote_server, unique

pytestmark = pytest.mark.slow  # a server of the module's own


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with remote_server(tmp_path_factory, "remote-caps") as live:
        yield live


@pytest.fixture
def rb(server: Any, tmp_path: Path) -> Operator:
    [tenant] = server.make_tenants(unique("acme")).values()
    return logged_in(server, tenant, tmp_path / "config")


def test_caps_are_set_shown_cleared_and_a_bad_one_refused(rb: Operator) -> None:
    done = rb("remote", "caps", "set", "3/24h", "1/1h", "--json").json()
    assert [r["text"] for r in done["rules"]] == ["1/1h", "3/1d"]
    assert rb("remote", "caps", "show").stdout.strip() == "1/1h, 3/1d"
    bad = rb("remote", "caps", "set", "0/1h", "--json").error(1)
    assert "max_calls is 1 to 1000" in bad["message"]
    twice = rb("remote", "caps", "set", "1/1h", "2/60m", "--json").error(1)
    assert twice["status"] == 422 and twice["details"][0]["loc"] == ["body", "rules"]
    assert rb("remote", "caps", "clear", "--json").json() == {"rules": []}


def test_a_job_naming_a_caller_id_off_the_list_is_refused_naming_the_field(
    rb: Operator,
) -> None:
    done = rb("remote", "callerid", "set", "0506868*", "--json").json()
    assert done == {"caller_ids": ["0506868*"]}
    job = ("remote", "job", "add", "--to", "0901234000", "--from", "0999000000",
           "--audio-file", "hi.wav", "--json")  # fmt: skip
    refused = rb(*job).error(1)
    assert refused["status"] == 422
    assert refused["details"][0]["loc"] == ["body", "data", "calling_number"]
    human = rb(*job[:-1])
    assert human.code == 1 and "calling_number" in human.stderr
    assert rb("remote", "callerid", "clear").stdout.strip() == "any caller id (no list)"
