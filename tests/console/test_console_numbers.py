"""The numbers page over HTTP: routes to an IVR file or an answer URL (checked as the API
checks them), told when the call ends (notify_completed, an answer URL's only), replaced and
deleted; "try this number" runs the call with digits and call variables and shows its
transcript (variables that cannot be read are named, and nothing is called); another client's
number is a 404 (or a 409 to route it)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from support_api import MENU_AND_FAX, SALES_IVR, Api, wav
from support_console import Served, Signed

pytestmark = pytest.mark.slow
SALES = SALES_IVR
GREET = "<IVR><Speak>Hello {{ CallerName }} from {{ CallingNumber }}</Speak><Hangup/></IVR>"


@pytest.fixture
def acme(served: Served) -> Iterator[Signed]:
    client = served.client("acme")
    api = Api(served, client)
    api.put_file("ivr/sales.xml", SALES.encode())
    api.put_file("ivr/menu.xml", MENU_AND_FAX.encode())
    api.put_file("audio/hello.wav", wav())
    api.put_file("ivr/broken.xml", b"<IVR><Nope/></IVR>")
    api.put_file("ivr/greet.xml", GREET.encode())
    signed = Signed(served, served.clients["acme"])
    yield signed
    signed.http.close()


def route(acme: Signed, number: str, **fields: str) -> int:
    data = {"csrf": acme.csrf, "number": number, "target": "file", **fields}
    return acme.http.post("/ui/numbers", data=data).status_code


def test_a_route_is_added_tried_with_digits_replaced_and_deleted(acme: Signed) -> None:
    assert route(acme, "0312349001", ivr_file="ivr/sales.xml") == 303
    page = acme.http.get("/ui/numbers").text
    assert 'data-number="0312349001"' in page and "ivr/sales.xml" in page
    tried = acme.http.post(
        "/ui/numbers/simulate",
        data={"csrf": acme.csrf, "number": "0312349001", "digits": "1"},
        headers={"HX-Request": "true"},
    )
    assert tried.status_code == 200, tried.text
    assert "Press 1 for sales" in tried.text and "&#39;Sales&#39;" in tried.text
    assert "the caller pressed" in tried.text and "completed" in tried.text
    uuid = re.search(r'id="simulated-call" href="/ui/calls/([^"]+)"', tried.text)
    assert uuid and acme.http.get(f"/ui/calls/{uuid.group(1)}").status_code == 200
    other = acme.http.post(
        "/ui/numbers/simulate", data={"csrf": acme.csrf, "number": "0312349001", "digits": "2"}
    )
    assert "&#39;Support&#39;" in other.text and "<h1>Numbers</h1>" in other.text  # no htmx
    assert route(acme, "0312349001", ivr_file="ivr/menu.xml") == 303  # replaced
    assert "ivr/menu.xml" in acme.http.get("/ui/numbers").text
    faxed = acme.http.post(
        "/ui/numbers/simulate", data={"csrf": acme.csrf, "number": "0312349001", "digits": "1"}
    )
    assert "fax reception: 0 OK, 1 page(s)" in faxed.text
    gone = acme.http.post("/ui/numbers/0312349001/delete", data={"csrf": acme.csrf})
    assert gone.status_code == 303
    assert 'data-number="0312349001"' not in acme.http.get("/ui/numbers").text


def test_a_route_to_an_answer_url_is_checked_as_the_api_does(acme: Signed) -> None:
    ok = route(acme, "0312349002", target="url", answer_url="https://ivr.example.com/a")
    assert ok == 303
    for url in ("http://127.0.0.1:9/ivr", "ftp://example.com/x", ""):
        answer = acme.http.post(
            "/ui/numbers",
            data={"csrf": acme.csrf, "number": "0312349003", "target": "url", "answer_url": url},
        )
        assert answer.status_code == 422, url
        assert "<li>answer_url:" in answer.text


def test_bad_input_is_a_422_naming_the_field(acme: Signed) -> None:
    missing = acme.http.post(
        "/ui/numbers", data={"csrf": acme.csrf, "number": "0312349004", "ivr_file": "ivr/no.xml"}
    )
    assert missing.status_code == 422 and "no file ivr/no.xml" in missing.text
    broken = acme.http.post(
        "/ui/numbers",
        data={"csrf": acme.csrf, "number": "0312349004", "ivr_file": "ivr/broken.xml"},
    )
    assert broken.status_code == 422 and "not a valid IVR document" in broken.text
    bad_number = acme.http.post(
        "/ui/numbers", data={"csrf": acme.csrf, "number": "12ab", "ivr_file": "ivr/sales.xml"}
    )
    assert bad_number.status_code == 422 and "number" in bad_number.text
    assert route(acme, "0312349005", ivr_file="ivr/sales.xml") == 303
    bad_digits = acme.http.post(
        "/ui/numbers/simulate", data={"csrf": acme.csrf, "number": "0312349005", "digits": "1x"}
    )
    assert bad_digits.status_code == 422 and "digits" in bad_digits.text
    no_csrf = acme.http.post("/ui/numbers/0312349005/delete")
    assert no_csrf.status_code == 403
    assert 'data-number="0312349005"' in acme.http.get("/ui/numbers").text


def test_another_clients_number_is_not_found(served: Served, acme: Signed) -> None:
    assert route(acme, "0312349006", ivr_file="ivr/sales.xml") == 303
    Api(served, served.client("globex")).put_file("ivr/sales.xml", SALES.encode())
    globex = Signed(served, served.clients["globex"])
    try:
        assert 'data-number="0312349006"' not in globex.http.get("/ui/numbers").text
        tried = globex.http.post(
            "/ui/numbers/simulate", data={"csrf": globex.csrf, "number": "0312349006"}
        )
        assert tried.status_code == 404
        gone = globex.http.post("/ui/numbers/0312349006/delete", data={"csrf": globex.csrf})
        assert gone.status_code == 404
        taken = globex.http.post(
            "/ui/numbers",
            data={"csrf": globex.csrf, "number": "0312349006", "ivr_file": "ivr/sales.xml"},
        )
        assert taken.status_code == 409, taken.text
    finally:
        globex.http.close()
    assert 'data-number="0312349006"' in acme.http.get("/ui/numbers").text


def number_row(signed: Signed, number: str) -> str:
    """The number's row on the page ("" when it is not listed)."""
    html = signed.http.get("/ui/numbers").text
    row = re.search(rf'data-number="{re.escape(number)}".*?</tr>', html, re.S)
    return row.group(0) if row else ""


def test_notify_completed_is_saved_for_an_answer_url_route(served: Served, acme: Signed) -> None:
    url = "https://ivr.example.com/answer"
    answer = route(acme, "0312349101", target="url", answer_url=url, notify_completed="true")
    assert answer == 303
    assert "told when the call ends" in number_row(acme, "0312349101")
    api = Api(served, served.clients["acme"])
    assert api.http.get("/numbers/0312349101").json()["notify_completed"] is True
    assert route(acme, "0312349101", target="url", answer_url=url) == 303  # unticked: off
    assert "told when the call ends" not in number_row(acme, "0312349101")
    assert api.http.get("/numbers/0312349101").json()["notify_completed"] is False


def route_form(html: str) -> str:
    found = re.search(r'<form[^>]*id="route-form".*?</form>', html, re.S)
    assert found is not None
    return found.group(0)


def test_edit_fills_the_form_with_the_numbers_route_and_only_the_clients_own(
    served: Served, acme: Signed
) -> None:
    url = "https://ivr.example.com/a,https://ivr.example.com/b"
    answer = route(
        acme, "0312349104", target="url", answer_url=url, notify_completed="true",
        description="night line",
    )  # fmt: skip
    assert answer == 303
    assert 'href="/ui/numbers?edit=0312349104#route-form"' in number_row(acme, "0312349104")
    form = route_form(acme.http.get("/ui/numbers", params={"edit": "0312349104"}).text)
    assert 'name="number" value="0312349104"' in form
    assert 'name="target" value="url" checked' in form
    assert f'name="answer_url" value="{url}"' in form
    assert 'name="notify_completed" value="true" checked' in form
    assert 'name="description" value="night line"' in form
    assert route(acme, "0312349105", ivr_file="ivr/sales.xml") == 303
    form = route_form(acme.http.get("/ui/numbers", params={"edit": "0312349105"}).text)
    assert 'name="target" value="file" checked' in form
    assert 'name="ivr_file" value="ivr/sales.xml"' in form
    globex = Signed(served, served.clients["globex"])
    try:  # another client's number: an empty form, nothing of acme's route shown
        form = route_form(globex.http.get("/ui/numbers", params={"edit": "0312349104"}).text)
        assert 'name="number" value=""' in form and "ivr.example.com" not in form
    finally:
        globex.http.close()


def test_notify_completed_with_an_ivr_file_is_refused_naming_the_field(acme: Signed) -> None:
    answer = acme.http.post(
        "/ui/numbers",
        data={"csrf": acme.csrf, "number": "0312349102", "target": "file",
              "ivr_file": "ivr/sales.xml", "notify_completed": "true"},
    )  # fmt: skip
    assert answer.status_code == 422 and "<li>notify_completed:" in answer.text
    assert 'name="notify_completed" value="true" checked' in answer.text  # the form kept
    assert number_row(acme, "0312349102") == ""


def test_call_variables_reach_the_ivr(acme: Signed) -> None:
    assert route(acme, "0312349103", ivr_file="ivr/greet.xml") == 303
    tried = acme.http.post(
        "/ui/numbers/simulate",
        data={"csrf": acme.csrf, "number": "0312349103",
              "variables": "CallerName=Ada Lovelace\n\nCallingNumber=0311112222\n"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert tried.status_code == 200, tried.text
    assert "Hello Ada Lovelace from 0311112222" in tried.text
    assert 'id="simulated-given"' in tried.text and "CallerName=Ada Lovelace" in tried.text


def test_bad_call_variables_are_named_and_nothing_is_called(acme: Signed) -> None:
    assert route(acme, "0312349104", ivr_file="ivr/greet.xml") == 303
    calls_before = acme.http.get("/ui/calls").text.count('class="call"')
    too_many = "\n".join(f"V{i}=x" for i in range(51))
    for variables, says in (
        ("CallerName Ada", "line 1"),
        ("A=1\n2nd=x", "line 2"),
        ("A=1\nA=2", "A is given twice"),
        ("A=" + "x" * 1001, "at most 1000 characters"),
        (too_many, "at most 50 variables"),
    ):
        for htmx in (False, True):
            answer = acme.http.post(
                "/ui/numbers/simulate",
                data={"csrf": acme.csrf, "number": "0312349104", "variables": variables},
                headers={"HX-Request": "true"} if htmx else {},
            )
            assert answer.status_code == 422, (variables, answer.text[:300])
            assert 'id="trial-error"' in answer.text and "<li>variables:" in answer.text
            assert says in answer.text and 'id="simulated-call"' not in answer.text
    assert acme.http.get("/ui/calls").text.count('class="call"') == calls_before


def test_another_clients_number_cannot_be_changed_by_the_new_fields(
    served: Served, acme: Signed
) -> None:
    assert route(acme, "0312349105", ivr_file="ivr/greet.xml") == 303
    served.client("globex")
    globex = Signed(served, served.clients["globex"])
    try:
        taken = globex.http.post(
            "/ui/numbers",
            data={"csrf": globex.csrf, "number": "0312349105", "target": "url",
                  "answer_url": "https://evil.example.com/a", "notify_completed": "true"},
        )  # fmt: skip
        assert taken.status_code == 409, taken.text
        tried = globex.http.post(
            "/ui/numbers/simulate",
            data={"csrf": globex.csrf, "number": "0312349105", "variables": "CallerName=Eve"},
        )
        assert tried.status_code == 404
    finally:
        globex.http.close()
    row = number_row(acme, "0312349105")
    assert "ivr/greet.xml" in row and "evil" not in row and "told when" not in row
