"""The do-not-call and audit pages over HTTP against a real ``ringback serve``: an entry added
on the page is what the CLI's check sees (and what the page's own check shows); a CSV import is
all or nothing and names the bad line; removing an entry or a whole list takes it off; another
client's entry is a 404; every change is on the audit page, with the console as its channel,
and only the client's own entries are."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from support_console import Served, Signed

pytestmark = pytest.mark.slow


def _entry_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-entry="(\d+)"', html)]


def test_an_entry_added_on_the_page_suppresses_the_number_for_the_cli_too(
    served: Served, acme: Signed
) -> None:
    added = acme.http.post(
        "/ui/dnc",
        data={"csrf": acme.csrf, "number": "+33 6 12 34 56 78", "list": "optout",
              "source": "call 42"},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    assert "1 entry added" in added.text and "+33612345678" in added.text
    checked = acme.http.get("/ui/dnc", params={"check": "+33612345678"})
    assert "is suppressed: list <code>optout</code> (source call 42)" in checked.text
    clear = acme.http.get("/ui/dnc", params={"check": "+33700000000"})
    assert "is on no list" in clear.text
    cli = subprocess.run(
        [sys.executable, "-m", "ringback", "dnc", "check", "+33612345678", "--client", "acme"],
        env=served.env, cwd=served.workdir, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert cli.returncode == 1, cli.stderr  # exit 1: suppressed
    assert "on list 'optout' (source call 42)" in cli.stdout + cli.stderr


def test_a_prefix_suppresses_every_number_under_it(acme: Signed) -> None:
    added = acme.http.post("/ui/dnc", data={"csrf": acme.csrf, "number": "+44207*"})
    assert added.status_code == 201, added.text
    checked = acme.http.get("/ui/dnc", params={"check": "+44 20 7946 0000"})
    assert "is suppressed: list <code>dnc</code>, prefix +44207" in checked.text


def test_a_bad_number_is_refused_naming_the_field(acme: Signed) -> None:
    before = acme.http.get("/ui/dnc").text
    refused = acme.http.post("/ui/dnc", data={"csrf": acme.csrf, "number": "call me"})
    assert refused.status_code == 422
    assert "number" in refused.text
    assert _entry_ids(acme.http.get("/ui/dnc").text) == _entry_ids(before)


def test_a_csv_import_is_all_or_nothing_and_names_the_bad_line(acme: Signed) -> None:
    bad = "+33611000001\n+33611000002,campaign\nnot-a-number\n"
    refused = acme.http.post(
        "/ui/dnc/import", data={"csrf": acme.csrf, "list": "imported"},
        files={"file": ("optouts.csv", bad.encode(), "text/csv")},
    )  # fmt: skip
    assert refused.status_code == 422
    assert "line 3" in refused.text
    listed = acme.http.get("/ui/dnc", params={"number": "+33611"})
    assert "+33611000001" not in listed.text
    good = "+33611000001\n+33611000002,campaign,crm\n"
    imported = acme.http.post(
        "/ui/dnc/import", data={"csrf": acme.csrf, "list": "imported"},
        files={"file": ("optouts.csv", good.encode(), "text/csv")},
    )  # fmt: skip
    assert imported.status_code == 201, imported.text
    assert "2 entries added" in imported.text
    listed = acme.http.get("/ui/dnc", params={"number": "+33611"}).text
    assert "+33611000001" in listed and "campaign" in listed and "imported" in listed


def test_removing_an_entry_and_a_list_takes_them_off(acme: Signed) -> None:
    for number in ("+33622000001", "+33622000002"):
        added = acme.http.post(
            "/ui/dnc", data={"csrf": acme.csrf, "number": number, "list": "gone"}
        )
        assert added.status_code == 201, added.text
    entries = _entry_ids(acme.http.get("/ui/dnc", params={"list": "gone"}).text)
    assert len(entries) == 2
    removed = acme.http.post(f"/ui/dnc/{entries[0]}/remove", data={"csrf": acme.csrf})
    assert removed.status_code == 303
    assert _entry_ids(acme.http.get("/ui/dnc", params={"list": "gone"}).text) == entries[1:]
    whole = acme.http.post("/ui/dnc/remove-list", data={"csrf": acme.csrf, "list": "gone"})
    assert "List gone: 1 entry removed" in whole.text
    assert _entry_ids(acme.http.get("/ui/dnc", params={"list": "gone"}).text) == []


def test_changes_without_the_csrf_token_are_refused(acme: Signed) -> None:
    refused = acme.http.post("/ui/dnc", data={"number": "+33633000000"})
    assert refused.status_code == 403
    assert "+33633000000" not in acme.http.get("/ui/dnc").text


def test_another_clients_entries_are_neither_listed_nor_removable(
    acme: Signed, globex: Signed
) -> None:
    added = acme.http.post(
        "/ui/dnc", data={"csrf": acme.csrf, "number": "+33644000000", "list": "private"}
    )
    assert added.status_code == 201
    mine = _entry_ids(acme.http.get("/ui/dnc", params={"list": "private"}).text)
    assert mine
    assert _entry_ids(globex.http.get("/ui/dnc", params={"list": "private"}).text) == []
    refused = globex.http.post(f"/ui/dnc/{mine[0]}/remove", data={"csrf": globex.csrf})
    assert refused.status_code == 404
    checked = globex.http.get("/ui/dnc", params={"check": "+33644000000"})
    assert "is on no list" in checked.text


def test_the_audit_page_shows_the_clients_own_changes_from_the_console(
    acme: Signed, globex: Signed
) -> None:
    added = acme.http.post(
        "/ui/dnc", data={"csrf": acme.csrf, "number": "+33655000000", "list": "audited"}
    )
    assert added.status_code == 201
    page = acme.http.get("/ui/audit", params={"object_type": "suppression"})
    assert page.status_code == 200
    rows = re.findall(r'<tr class="audit-entry".*?</tr>', page.text, re.S)
    assert any("created" in row and "console" in row and "audited" in row for row in rows)
    others = globex.http.get("/ui/audit", params={"object_type": "suppression"}).text
    assert "audited" not in others
    refused = acme.http.get("/ui/audit", params={"object_type": "everything"})
    assert refused.status_code == 422 and "object_type" in refused.text
