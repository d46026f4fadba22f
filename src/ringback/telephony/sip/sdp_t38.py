"""SDP for T.38 fax (ITU-T T.38 Annex D, RFC 3362): ``m=image <port> udptl t38`` and its
``a=T38…`` attributes, offered, answered and parsed.

What peers send differs in spelling: attribute names are matched case-insensitively
(``T38FaxVersion``, ``t38faxversion``), ``T38FaxMaxRate`` is the old name of ``T38MaxBitRate``,
flags come bare or as ``:0``/``:1`` (``T38FaxFillBitRemoval``), the transport may be written
``UDPTL``. The answer rule (RFC 3264): the answer has the offer's m-lines in the offer's order;
the first ``image udptl t38`` stream is accepted, every other stream (the audio of an
audio+image offer, a second image) is rejected with port 0. Error correction, the rule:
**ringback answers with what is offered** — redundancy for ``t38UDPRedundancy``, parity FEC
for ``t38UDPFEC``, none for an offer without ``T38FaxUdpEC`` — **offers what
``RINGBACK_SIP_T38_EC`` names** (``redundancy`` by default: what every peer reads; ``fec``;
``none``: no attribute), and sends what the agreed SDP names (the answer's ``T38FaxUdpEC``
when ringback offered). Whatever is agreed, both kinds are received (:mod:`..fax.udptl`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ringback.domain.digits import ascii_digits
from ringback.telephony.sip.sdp import MAX_SDP_BYTES, SdpError, _connection_host, _port

REDUNDANCY = "t38UDPRedundancy"
FEC = "t38UDPFEC"
NO_EC = ""  # no T38FaxUdpEC attribute
RATES = (2400, 4800, 7200, 9600, 12000, 14400, 33600)
#: ``RINGBACK_SIP_T38_EC`` (the trunk's ``t38_ec``): the ``T38FaxUdpEC`` of our offers
OFFERED_EC = {"redundancy": REDUNDANCY, "fec": FEC, "none": NO_EC}


@dataclass(frozen=True, slots=True)
class T38Params:
    """The T.38 session's parameters, as in the ``a=T38…`` attributes."""

    version: int = 0
    max_bit_rate: int = 14400
    rate_management: str = "transferredTCF"  # | "localTCF"
    max_buffer: int | None = 2000
    max_datagram: int | None = 400
    udp_ec: str = REDUNDANCY  # REDUNDANCY | FEC | NO_EC
    fill_bit_removal: bool = False
    transcoding_mmr: bool = False
    transcoding_jbig: bool = False


@dataclass(frozen=True, slots=True)
class RemoteImage:
    """Where the far end wants UDPTL, and its T.38 parameters."""

    host: str
    port: int
    params: T38Params

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


def _attributes(params: T38Params) -> list[str]:
    lines = [
        f"a=T38FaxVersion:{params.version}",
        f"a=T38MaxBitRate:{params.max_bit_rate}",
    ]
    if params.fill_bit_removal:
        lines.append("a=T38FaxFillBitRemoval")
    if params.transcoding_mmr:
        lines.append("a=T38FaxTranscodingMMR")
    if params.transcoding_jbig:
        lines.append("a=T38FaxTranscodingJBIG")
    lines.append(f"a=T38FaxRateManagement:{params.rate_management}")
    if params.max_buffer is not None:
        lines.append(f"a=T38FaxMaxBuffer:{params.max_buffer}")
    if params.max_datagram is not None:
        lines.append(f"a=T38FaxMaxDatagram:{params.max_datagram}")
    if params.udp_ec:
        lines.append(f"a=T38FaxUdpEC:{params.udp_ec}")
    return lines


def _session_lines(host: str, session_id: int, version: int) -> list[str]:
    family = "IP6" if ":" in host else "IP4"
    return [
        "v=0",
        f"o=ringback {session_id} {version} IN {family} {host}",
        "s=ringback",
        f"c=IN {family} {host}",
        "t=0 0",
    ]


def _join(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def build_t38_offer(
    host: str, port: int, *, session_id: int, version: int, params: T38Params | None = None
) -> bytes:
    """An image-only offer (a re-INVITE to T.38): ``m=image port udptl t38``."""
    lines = _session_lines(host, session_id, version)
    lines.append(f"m=image {port} udptl t38")
    lines += _attributes(params or T38Params())
    return _join(lines)


def offer_params(error_correction: str) -> T38Params:
    """Our offer's parameters with the error correction a ``RINGBACK_SIP_T38_EC`` value
    (``redundancy``, ``fec``, ``none``) names; ValueError for another value."""
    try:
        return T38Params(udp_ec=OFFERED_EC[error_correction])
    except KeyError:
        raise ValueError(
            f"T.38 error correction {error_correction!r}: use one of {', '.join(OFFERED_EC)}"
        ) from None


def answer_params(offered: T38Params, ours: T38Params | None = None) -> T38Params:
    """What ringback answers to ``offered``: the lower version and bit rate, transferred TCF
    (T.38's rule for UDP), the error correction offered (redundancy, FEC or none); no
    transcoding, no fill-bit removal (spandsp's terminal does neither)."""
    ours = ours or T38Params()
    udp_ec = offered.udp_ec if offered.udp_ec in (REDUNDANCY, FEC) else NO_EC
    return replace(
        ours,
        version=min(offered.version, ours.version),
        max_bit_rate=min(offered.max_bit_rate, ours.max_bit_rate),
        rate_management="transferredTCF",
        udp_ec=udp_ec,
        fill_bit_removal=False,
        transcoding_mmr=False,
        transcoding_jbig=False,
    )


def build_t38_answer(
    offer: bytes,
    host: str,
    port: int,
    *,
    session_id: int,
    version: int,
    params: T38Params | None = None,
) -> tuple[bytes, RemoteImage]:
    """The answer to an offer holding a T.38 stream, and the far end's stream with what was
    agreed (our answer's parameters, but the far end's own buffer and datagram sizes, which
    bound what we send); the offer's other m-lines are answered with port 0 (rejected).
    :class:`SdpError` if the offer has no usable T.38 stream."""
    remote = parse_remote_image(offer)
    answer = answer_params(remote.params, params)
    lines = _session_lines(host, session_id, version)
    accepted = False
    for media, proto, formats in _media_lines(offer.decode("utf-8")):
        if not accepted and _is_t38(media, proto, formats):
            accepted = True
            lines.append(f"m=image {port} udptl t38")
            lines += _attributes(answer)
        else:
            lines.append(f"m={media} 0 {proto} {' '.join(formats)}".rstrip())
    agreed = replace(answer, max_buffer=remote.params.max_buffer)
    return _join(lines), replace(
        remote, params=replace(agreed, max_datagram=remote.params.max_datagram)
    )


def in_previous_slots(sdp: bytes, previous: bytes) -> bytes:
    """``sdp`` (ours: session lines and one media section, audio or image) laid on the m-lines
    of ``previous`` (our last SDP in the dialog), RFC 3264 §8: the m-line count never shrinks.
    The section takes the first earlier line of its kind (``audio``, or ``image … udptl t38``);
    every other earlier line is kept, disabled (port 0). With no earlier line of its kind the
    section goes first: after ``m=image …`` alone, the offer back to audio is ``m=audio …``
    then ``m=image 0 udptl t38`` (T.38 Annex D practice, as Asterisk and FreeSWITCH send it)."""
    text = sdp.decode("ascii")
    head, marker, body = text.partition("\r\nm=")
    if not marker:
        raise ValueError("our SDP has no media section")
    section = "m=" + body.rstrip("\r\n")
    media = section[2:].split(maxsplit=1)[0]
    earlier = _media_lines(previous.decode("utf-8", "replace"))
    kinds = ["image" if _is_t38(m, proto, formats) else m for m, proto, formats in earlier]
    slot = kinds.index(media) if media in kinds else -1
    lines = [head]
    if slot < 0:
        lines.append(section)
    for index, (m, proto, formats) in enumerate(earlier):
        if index == slot:
            lines.append(section)
        else:
            lines.append(f"m={m} 0 {proto} {' '.join(formats or ['0'])}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _media_lines(text: str) -> list[tuple[str, str, list[str]]]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            fields = line[2:].split()
            if len(fields) >= 3:
                out.append((fields[0], fields[2], fields[3:]))
    return out


def _is_t38(media: str, proto: str, formats: list[str]) -> bool:
    return (
        media.lower() == "image"
        and proto.lower() == "udptl"
        and [f.lower() for f in formats] == ["t38"]
    )


def has_t38(body: bytes) -> bool:
    """Whether an SDP body offers an enabled T.38 stream (a port other than 0: ``m=image 0``
    beside an audio stream is how some peers go back to audio)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    for raw in text.splitlines():
        fields = raw.strip()[2:].split() if raw.strip().startswith("m=") else []
        if len(fields) >= 3 and _is_t38(fields[0], fields[2], fields[3:]) and fields[1] != "0":
            return True
    return False


def _int(name: str, value: str) -> int:
    if not ascii_digits(value.strip()):
        raise SdpError(f"SDP a={name}:{value} is not a number")
    return int(value.strip())


def _flag(value: str | None) -> bool:
    return value is None or value.strip() not in ("0", "false")


def parse_remote_image(body: bytes) -> RemoteImage:
    """The first ``m=image … udptl t38`` stream of ``body``: its address and parameters.

    Raises :class:`SdpError` for a body that is not SDP, has no T.38 stream, a disabled one
    (port 0), no usable address, or a malformed T.38 attribute value."""
    if len(body) > MAX_SDP_BYTES:
        raise SdpError(f"SDP body of {len(body)} bytes is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP body is not UTF-8 text") from exc
    session_host: str | None = None
    media_host: str | None = None
    port: int | None = None
    in_image = seen_media = False
    values: dict[str, str | None] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            fields = value.split()
            in_image = (
                port is None and len(fields) >= 3 and _is_t38(fields[0], fields[2], fields[3:])
            )
            if in_image:
                port = _port(fields[1])
            seen_media = True
        elif kind == "c":
            if not seen_media:
                session_host = _connection_host(value)
            elif in_image:
                media_host = _connection_host(value)
        elif kind == "a" and in_image:
            name, colon, rest = value.partition(":")
            values[name.strip().lower()] = rest if colon else None
    if port is None:
        raise SdpError("SDP has no T.38 stream (m=image … udptl t38)")
    if port == 0:
        raise SdpError("SDP T.38 stream is disabled (port 0)")
    host = media_host or session_host
    if host is None:
        raise SdpError("SDP gives no connection address (c=) for T.38")
    return RemoteImage(host, port, _params(values))


def _params(values: dict[str, str | None]) -> T38Params:
    def number(*names: str) -> int | None:
        for name in names:
            if name in values:
                return _int(name, values[name] or "")
        return None

    version = number("t38faxversion")
    rate = number("t38maxbitrate", "t38faxmaxrate")
    management = (values.get("t38faxratemanagement") or "transferredTCF").strip()
    if management.lower() not in ("transferredtcf", "localtcf"):
        raise SdpError(f"SDP a=T38FaxRateManagement:{management} is neither of the two")
    ec_value = (values.get("t38faxudpec") or "").strip().lower()
    udp_ec = {"t38udpredundancy": REDUNDANCY, "t38udpfec": FEC}.get(ec_value, NO_EC)
    return T38Params(
        version=version if version is not None else 0,
        max_bit_rate=rate if rate is not None else 14400,
        rate_management="localTCF" if management.lower() == "localtcf" else "transferredTCF",
        max_buffer=number("t38faxmaxbuffer"),
        max_datagram=number("t38faxmaxdatagram"),
        udp_ec=udp_ec,
        fill_bit_removal="t38faxfillbitremoval" in values and _flag(values["t38faxfillbitremoval"]),
        transcoding_mmr="t38faxtranscodingmmr" in values and _flag(values["t38faxtranscodingmmr"]),
        transcoding_jbig="t38faxtranscodingjbig" in values
        and _flag(values["t38faxtranscodingjbig"]),
    )
