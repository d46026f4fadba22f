"""The header readers behind PRACK, session timers and strict routing (docs/sip-dialogs.md):
every input gives an answer or None, never an exception, and well-formed values round-trip."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sipmessage import Address, Response

from ringback.telephony.sip.early_dialogs import strict_route
from ringback.telephony.sip.prack import rseq_of
from ringback.telephony.sip.session_timer import parse_session_expires

_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters=","),
    max_size=40,
)


def _response(code: int, **headers: str) -> Response:
    response = Response(code, "X")
    for name, value in headers.items():
        response.headers.set(name.replace("_", "-"), value)
    return response


@given(
    interval=st.integers(min_value=0, max_value=2**31),
    refresher=st.sampled_from([None, "uac", "uas", "UAC", "bogus"]),
    spaces=st.sampled_from(["", " "]),
)
def test_session_expires_reads_the_interval_and_a_valid_refresher(
    interval: int, refresher: str | None, spaces: str
) -> None:
    raw = f"{interval}" + (f"{spaces};{spaces}refresher={refresher}" if refresher else "")
    found = parse_session_expires(_response(200, Session_Expires=raw))
    expected = refresher.lower() if refresher and refresher.lower() in ("uac", "uas") else None
    assert found == (interval, expected)


@given(raw=_HEADER_TEXT)
def test_session_expires_never_raises_on_any_text(raw: str) -> None:
    found = parse_session_expires(_response(200, Session_Expires=raw))
    assert found is None or (found[0] >= 0 and found[1] in (None, "uac", "uas"))


@given(
    code=st.integers(min_value=100, max_value=699),
    rseq=_HEADER_TEXT,
    require=st.sampled_from(["100rel", "timer", "timer, 100rel", ""]),
)
def test_only_a_18x_requiring_100rel_with_a_numeric_rseq_is_reliable(
    code: int, rseq: str, require: str
) -> None:
    headers = {"RSeq": rseq} | ({"Require": require} if require else {})
    found = rseq_of(_response(code, **headers))
    reliable = 100 < code < 200 and "100rel" in require and rseq.strip().isdigit()
    if found is not None:
        assert reliable and found == int(rseq.strip())
    else:
        assert not reliable or not 0 < int(rseq.strip()) < 2**31


def test_a_route_set_is_strict_when_its_first_uri_lacks_lr() -> None:
    loose = Address.parse("<sip:proxy.example;lr>")
    strict = Address.parse("<sip:proxy.example>")
    assert strict_route([]) is None
    assert strict_route([loose, strict]) is None  # only the first hop matters
    error = strict_route([strict, loose])
    assert error is not None and "strict routing is not supported" in error
    assert "sip:proxy.example" in error
