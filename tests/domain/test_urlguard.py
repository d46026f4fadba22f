"""The address guard's rules (ringback.domain.urlguard): spellings of forbidden addresses.

The hypothesis test writes forbidden addresses the ways an attacker would (Unicode circled and
fullwidth digits, ideographic / fullwidth / halfwidth full stops, decimal / hex / octal / short
IPv4 forms, IPv6 forms that embed an IPv4 address, mixed case, brackets) and checks that none
passes :func:`check_literal` with private destinations refused.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringback.domain.urlguard import BlockedAddress, check_literal, check_url, embedded_ipv4

FORBIDDEN_V4 = ["127.0.0.1", "127.1.2.3", "127.255.255.254", "10.0.0.1", "10.255.1.2",
                "169.254.169.254", "0.0.0.0", "192.168.1.1", "172.16.0.1",
                "100.64.0.1"]  # fmt: skip
FORBIDDEN_V6 = ["::1", "fe80::1", "fe80::abcd:1", "fd00:ec2::254", "::", "fc00::1"]

CIRCLED = {str(d): chr(0x2460 + d - 1) for d in range(1, 10)} | {"0": "\u24ea"}
FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
DOTS = [".", "\u3002", "\uff0e", "\uff61"]  # ideographic, fullwidth, halfwidth full stops


def _v4_numeric_forms(address: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """Spellings ``inet_aton`` reads as ``address``: dotted, decimal, hex, octal, short."""
    value = int(address)
    octets = list(address.packed)

    def part(number: int, style: str) -> str:
        if style == "hex":
            return hex(number)
        if style == "HEX":
            return "0X" + format(number, "X")
        if style == "oct":
            return "0" + format(number, "o")
        return str(number)

    styles = st.sampled_from(["dec", "hex", "HEX", "oct"])
    four = st.tuples(*[styles] * 4).map(
        lambda s: ".".join(part(o, t) for o, t in zip(octets, s, strict=True))
    )
    whole = styles.map(lambda s: part(value, s))
    three = st.tuples(*[styles] * 3).map(
        lambda s: ".".join(
            [part(octets[0], s[0]), part(octets[1], s[1]), part(value & 0xFFFF, s[2])]
        )
    )
    two = st.tuples(styles, styles).map(
        lambda s: f"{part(octets[0], s[0])}.{part(value & 0xFFFFFF, s[1])}"
    )
    return st.one_of(four, whole, three, two)


def _unicode_dotted(address: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """The dotted decimal form written with circled or fullwidth digits and odd full stops."""
    digits = st.sampled_from(["ascii", "circled", "fullwidth"])

    def write(octet: int, kind: str) -> str:
        text = str(octet)
        if kind == "circled" and "0" not in text[:-1]:  # ⓪ only stands alone
            return "".join(CIRCLED[c] for c in text) if octet else CIRCLED["0"]
        if kind == "fullwidth":
            return "".join(FULLWIDTH[c] for c in text)
        return text

    return st.tuples(st.tuples(*[digits] * 4), st.tuples(*[st.sampled_from(DOTS)] * 3)).map(
        lambda kd: (
            write(address.packed[0], kd[0][0])
            + "".join(kd[1][i] + write(address.packed[i + 1], kd[0][i + 1]) for i in range(3))
        )
    )


def _embedded_v6(address: ipaddress.IPv4Address) -> list[str]:
    """IPv6 forms that carry ``address``: mapped, compatible, 6to4, NAT64 (both), Teredo."""
    value = int(address)
    packed = address.packed
    return [
        f"::ffff:{address}",
        str(ipaddress.IPv6Address((0xFFFF << 32) | value)),
        str(ipaddress.IPv6Address(value)) if value > 1 else f"::ffff:{address}",
        str(ipaddress.IPv6Address((0x2002 << 112) | (value << 80))),
        str(ipaddress.IPv6Address((0x0064FF9B << 96) | value)),
        str(
            ipaddress.IPv6Address(
                bytes.fromhex("0064ff9b0001") + packed[:2] + b"\0" + packed[2:] + bytes(5)
            )
        ),
        str(ipaddress.IPv6Address((0x20010000 << 96) | (0x41364E78 << 64) | (value ^ 0xFFFFFFFF))),
    ]


def _mixed_case(text: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if f else c
        for c, f in zip(text, (flips + [False] * len(text))[: len(text)], strict=True)
    )


@st.composite
def forbidden_hosts(draw: st.DrawFn) -> str:
    """A URL host that is a forbidden address, spelled one of many ways (brackets included)."""
    kind = draw(st.sampled_from(["v4_numeric", "v4_unicode", "v6", "v6_embedded"]))
    if kind == "v6":
        text = str(ipaddress.IPv6Address(draw(st.sampled_from(FORBIDDEN_V6))).exploded)
        text = draw(st.sampled_from([text, str(ipaddress.IPv6Address(text))]))
        return "[" + _mixed_case(text, draw(st.lists(st.booleans(), max_size=40))) + "]"
    v4 = ipaddress.IPv4Address(draw(st.sampled_from(FORBIDDEN_V4)))
    if kind == "v6_embedded":
        text = draw(st.sampled_from(_embedded_v6(v4)))
        return "[" + _mixed_case(text, draw(st.lists(st.booleans(), max_size=40))) + "]"
    if kind == "v4_unicode":
        return draw(_unicode_dotted(v4))
    return draw(_v4_numeric_forms(v4))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    host=forbidden_hosts(),
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    port=st.sampled_from(["", ":80", ":8080"]),
)
def test_no_spelling_of_a_forbidden_address_passes_the_guard(
    host: str, scheme: str, port: str
) -> None:
    url = f"{scheme}://{host}{port}/x"
    with pytest.raises(BlockedAddress):
        check_literal(url, allow_private=False)
    # refused for the address it is, not for its form: it is read as an address
    assert check_literal(url, allow_private=True).address is not None


@pytest.mark.parametrize(
    "host",
    ["①②⑦.0.0.1", "１２７.０.０.１", "127。0。0。1", "①⑥⑨.②⑤④.①⑥⑨.②⑤④", "0x7f.1", "2130706433",
     "0177.0.0.1", "127.1", "[2002:7f00:1::]", "[2002:a9fe:a9fe::]", "[::ffff:127.0.0.1]",
     "[64:ff9b::a9fe:a9fe]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "[::127.0.0.1]"],
)  # fmt: skip
def test_unicode_numeric_and_embedded_spellings_of_private_addresses_are_refused(
    host: str,
) -> None:
    with pytest.raises(BlockedAddress):
        check_literal(f"http://{host}:8000/", allow_private=False)
    check_literal(f"http://{host}:8000/", allow_private=True)  # allowed when told


@pytest.mark.parametrize(
    ("v6", "v4"),
    [("::ffff:93.184.215.14", "93.184.215.14"), ("2002:5db8:d70e::", "93.184.215.14"),
     ("64:ff9b::5db8:d70e", "93.184.215.14"), ("64:ff9b:1:5db8:d7:e00::", "93.184.215.14"),
     ("2001:0:4136:e378:8000:63bf:a247:28f1", "93.184.215.14"), ("::5db8:d70e", "93.184.215.14"),
     ("2606:4700::1111", None), ("::1", None)],
)  # fmt: skip
def test_ipv6_forms_are_judged_by_the_ipv4_address_they_embed(v6: str, v4: str | None) -> None:
    found = embedded_ipv4(ipaddress.IPv6Address(v6))
    assert found == (None if v4 is None else ipaddress.IPv4Address(v4))
    if v4 is not None:  # a public embedded address passes
        check_literal(f"http://[{v6}]/", allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["http://a.example/\x00", "http://a.example/\x7f", "http://a.example/\x85", "https://אa.example/",
     "ftp://a.example/", "http://user:pw@a.example/", "http://user@a.example/", "http:///x",
     "http://1.2.3.4.5/", "http://a%0a.example/"],
)  # fmt: skip
def test_urls_ringback_could_never_call_are_refused_by_form(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_url(url)


def test_the_host_is_read_as_the_http_client_reads_it() -> None:
    assert check_url("http://ＥＸＡＭＰＬＥ。com/").host == "example.com"
    assert check_url("https://bücher.example/").host == "xn--bcher-kva.example"
    assert str(check_url("http://0x7f.1/").address) == "127.0.0.1"
