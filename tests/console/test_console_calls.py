"""The calls pages over HTTP: the call history with its filters, a call's transcript, the
audio it played and the fax it received (the PDF in place, the TIFF downloaded), and one
client never reaching another's call or files."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support_api import Api, fax_call
from support_console import Served, Signed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def acme_call(served: Served) -> dict[str, Any]:
    client = served.client("acme")
    return fax_call(Api(served, client), "0312340001")


def test_the_history_lists_the_call_and_filters_it(acme: Signed, acme_call: dict[str, Any]) -> None:
    uuid = acme_call["call_uuid"]
    listed = acme.http.get("/ui/calls")
    assert listed.status_code == 200
    assert f'data-call="{uuid}"' in listed.text and "reception: 1 p." in listed.text
    answered = acme.http.get("/ui/calls", params={"outcome": "answered"}).text
    assert f'data-call="{uuid}"' in answered
    busy = acme.http.get("/ui/calls", params={"outcome": "busy"}).text
    assert f'data-call="{uuid}"' not in busy and "No call matches" in busy
    future = acme.http.get("/ui/calls", params={"start": "2099-01-01T00:00"}).text
    assert f'data-call="{uuid}"' not in future
    window = {"start": "2000-01-01T00:00", "end": "2099-01-01T00:00"}
    past = acme.http.get("/ui/calls", params=window)
    assert f'data-call="{uuid}"' in past.text
    bad = acme.http.get(
        "/ui/calls", params={"start": "yesterday", "outcome": "lost", "before": "1.x"}
    )
    assert bad.status_code == 422
    assert "start" in bad.text and "outcome" in bad.text and "before" in bad.text
    older = acme.http.get("/ui/calls", params={"before": "1.1"})  # older than anything
    assert older.status_code == 200 and "No call matches" in older.text
    backwards = acme.http.get(
        "/ui/calls", params={"start": "2026-01-02T00:00", "end": "2026-01-01T00:00"}
    )
    assert backwards.status_code == 422 and "ends before it starts" in backwards.text


def test_a_call_shows_its_transcript_audio_and_fax(acme: Signed, acme_call: dict[str, Any]) -> None:
    uuid = acme_call["call_uuid"]
    page = acme.http.get(f"/ui/calls/{uuid}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "the IVR said" in html and "Press 1 to send us a fax" in html
    assert "the caller pressed" in html and "try 1: &#39;1&#39;" in html
    assert '<audio controls preload="none" src="/ui/calls/' in html
    assert 'id="fax-pages">1<' in html and 'id="fax-result">0 OK' in html
    audio = acme.http.get(f"/ui/calls/{uuid}/file", params={"name": "audio/hello.wav"})
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    fax = acme_call["fax"]
    assert isinstance(fax, dict)
    pdf = acme.http.get(f"/ui/calls/{uuid}/file", params={"name": fax["pdf"]})
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline")
    tiff = acme.http.get(f"/ui/calls/{uuid}/file", params={"name": fax["tiff"], "download": "1"})
    assert tiff.status_code == 200 and tiff.content[:2] in (b"II", b"MM")
    assert tiff.headers["content-disposition"].startswith("attachment")


def test_only_the_files_a_call_names_are_given(
    acme: Signed, acme_call: dict[str, Any], served: Served
) -> None:
    uuid = acme_call["call_uuid"]
    Api(served, served.clients["acme"]).put_file("private/notes.txt", b"secret")
    for name in ("private/notes.txt", "ivr/menu.xml", "../acme.db", "/etc/passwd"):
        answer = acme.http.get(f"/ui/calls/{uuid}/file", params={"name": name})
        assert answer.status_code == 404, name


def test_another_clients_call_is_not_found(served: Served, acme_call: dict[str, Any]) -> None:
    uuid = acme_call["call_uuid"]
    served.client("globex")
    globex = Signed(served, served.clients["globex"])
    try:
        assert globex.http.get(f"/ui/calls/{uuid}").status_code == 404
        answer = globex.http.get(f"/ui/calls/{uuid}/file", params={"name": "audio/hello.wav"})
        assert answer.status_code == 404
        assert f'data-call="{uuid}"' not in globex.http.get("/ui/calls").text
    finally:
        globex.http.close()


def call_count(signed: Signed, **params: str) -> str:
    """The history's "N calls" for these filters."""
    answer = signed.http.get("/ui/calls", params=params)
    assert answer.status_code == 200, answer.text[:500]
    found = re.search(r'<strong id="call-count"[^>]*>([^<]+)</strong>', answer.text)
    assert found, answer.text[:2000]
    return found.group(1)


def test_the_history_counts_the_calls_its_filters_match_the_clients_own_only(
    served: Served, acme: Signed, acme_call: dict[str, Any]
) -> None:
    api = Api(served, served.clients["acme"])
    before = int(call_count(acme).split()[0].replace(",", ""))
    assert before >= 1
    second = api.simulate("0312340001", digits="2")  # another call to the same route
    assert second["call_uuid"] != acme_call["call_uuid"]
    assert call_count(acme) == f"{before + 1} calls"
    answered = int(call_count(acme, outcome="answered").split()[0])
    assert 2 <= answered <= before + 1
    assert call_count(acme, outcome="busy") == "0 calls"
    assert call_count(acme, start="2099-01-01T00:00") == "0 calls"
    window = {"start": "2000-01-01T00:00", "end": "2099-01-01T00:00"}
    assert call_count(acme, **window) == f"{before + 1} calls"
    assert call_count(acme, before="1.1") == f"{before + 1} calls"  # every page: the same total
    served.client("globex")
    globex = Signed(served, served.clients["globex"])
    try:
        assert call_count(globex) == "0 calls"
    finally:
        globex.http.close()
