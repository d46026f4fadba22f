"""SIP message parsing (on ``sipmessage``) with the checks a UA needs before trusting a datagram,
and the identifiers RFC 3261 asks for (random Call-IDs, tags and ``z9hG4bK`` branches)."""

from __future__ import annotations

import secrets
from typing import NamedTuple

from sipmessage import Address, CSeq, Message, Request, Response, Via

from ringback.domain.digits import ascii_digits
from ringback.telephony.sip.sdes import redact_sdp

#: the Content-Type (and Accept) of a session description
SDP = "application/sdp"

TRANSPORTS = ("udp", "tcp", "tls")


class Addr(NamedTuple):
    """Where a message goes or came from: an address, a port and the transport it travels on.

    ``server_name`` is the host name a TLS connection verifies the certificate against (the
    name before resolution); requests and responses on a stream go over the connection kept
    for (transport, host, port)."""

    host: str
    port: int
    transport: str = "udp"  # one of TRANSPORTS
    server_name: str | None = None

    @property
    def reliable(self) -> bool:
        """TCP and TLS deliver or fail: no retransmissions (RFC 3261 §17)."""
        return self.transport != "udp"

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


#: RFC 3261 §8.1.1.7: branches starting with this cookie are unique per transaction
BRANCH_COOKIE = "z9hG4bK"
#: larger datagrams are dropped unread (a UDP SIP message should stay under 1300 bytes)
MAX_DATAGRAM = 65_507
MAX_HEADER_LINES = 200
MAX_HEADER_LINE = 8_192
REQUIRED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    603: "Decline",
}

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK"


class SipParseError(ValueError):
    """A datagram that is not a SIP message ringback can act on."""


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id() -> str:
    return secrets.token_hex(16)


def parse_datagram(data: bytes) -> Request | Response:
    """One UDP datagram as a SIP message whose mandatory headers all parse.

    Raises :class:`SipParseError` for anything else (the caller drops the datagram).
    """
    if len(data) > MAX_DATAGRAM:
        raise SipParseError(f"datagram of {len(data)} bytes is too large")
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipParseError("no end of headers (CRLF CRLF)")
    lines = head.count(b"\r\n") + 1
    if lines > MAX_HEADER_LINES:
        raise SipParseError(f"{lines} header lines is too many")
    if any(len(line) > MAX_HEADER_LINE for line in head.split(b"\r\n")):
        raise SipParseError("a header line is too long")
    try:
        message = Message.parse(data)
        for name in REQUIRED_HEADERS:
            if message.headers.get(name) is None:
                raise SipParseError(f"no {name} header")
        vias = message.via
        if not vias:
            raise SipParseError("no Via header")
        cseq = message.cseq
        # every header the agent reads parses here, or the datagram is dropped
        message.from_address  # noqa: B018
        message.to_address  # noqa: B018
        message.contact  # noqa: B018
        message.record_route  # noqa: B018
        message.route  # noqa: B018
    except SipParseError:
        raise
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SipParseError(redact_sdp(f"malformed SIP message: {exc}")) from exc
    length = message.content_length if _has_int(message, "Content-Length") else None
    if length is not None:
        if length < 0 or length > len(message.body):
            raise SipParseError("Content-Length is larger than the body")
        message.body = message.body[:length]
    if isinstance(message, Request) and message.method != cseq.method:
        raise SipParseError("the CSeq method does not match the request method")
    return message


def _has_int(message: Message, name: str) -> bool:
    value = message.headers.get(name)
    if value is None:
        return False
    if not ascii_digits(value.strip()):
        raise SipParseError(f"{name} {value!r} is not a number")
    return True


def top_branch(message: Message) -> str:
    branch = message.via[0].parameters.get("branch")
    return branch or ""


def tag_of(address: Address) -> str | None:
    return address.parameters.get("tag")


def with_tag(address: Address, tag: str) -> Address:
    return Address(
        uri=address.uri, name=address.name, parameters=address.parameters.replace(tag=tag)
    )


def response_to(
    request: Request,
    code: int,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response copying Via, From, To (with ``to_tag`` when it has none), Call-ID and CSeq."""
    response = Response(code, REASONS.get(code, "Unknown"))
    response.headers.setlist("Via", list(request.headers.getlist("Via")))
    response.headers.set("From", request.headers["From"])
    to = request.to_address
    if to_tag is not None and tag_of(to) is None and code != 100:
        to = with_tag(to, to_tag)
    response.headers.set("To", str(to))
    response.headers.set("Call-ID", request.call_id)
    response.headers.set("CSeq", request.headers["CSeq"])
    if content_type is not None:
        response.headers.set("Content-Type", content_type)
    response.body = body
    response.headers.set("Content-Length", str(len(body)))
    return response


def via(host: str, port: int, branch: str) -> Via:
    return Via.parse(f"SIP/2.0/UDP {host}:{port};branch={branch};rport")


def cseq(number: int, method: str) -> CSeq:
    return CSeq(number, method)
