"""SDP offer/answer for G.711 audio (PCMU 0, PCMA 8) and RFC 4733 telephone-event (RFC 3264)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ringback.domain.digits import ascii_digits
from ringback.telephony.sip.sdes import CryptoAttribute, CryptoError, parse_crypto

#: static payload types of the codecs ringback speaks
STATIC_CODECS: dict[int, str] = {0: "PCMU", 8: "PCMA"}
SUPPORTED_CODECS = frozenset(STATIC_CODECS.values())
DTMF_PAYLOAD_TYPE = 101
MAX_SDP_BYTES = 16_384


class SdpError(ValueError):
    """An SDP body ringback cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class OfferedStream:
    """One ``m=`` line of an offer: an answer has one line per offered line, in the same
    order (RFC 3264 §6); the streams ringback does not take are answered with port 0."""

    media: str  # "audio", "video", "image", "application", …
    proto: str  # "RTP/AVP", "udptl", …
    formats: tuple[str, ...]

    def rejected(self) -> str:
        """The answer's line refusing this stream (port 0; its formats are ignored, but SDP
        wants at least one)."""
        return f"m={self.media} 0 {self.proto} {' '.join(self.formats or ('0',))}"


@dataclass(frozen=True, slots=True)
class RemoteMedia:
    """Where the far end wants audio and in which of our codecs."""

    host: str
    port: int
    codec: str  # "PCMU" | "PCMA"
    payload_type: int
    dtmf_payload_type: int | None
    on_hold: bool = False
    profile: str = "RTP/AVP"  # "RTP/SAVP" (or SAVPF): SRTP required by the far end
    crypto: tuple[CryptoAttribute, ...] = ()  # the usable a=crypto lines, in their order
    crypto_refused: tuple[str, ...] = ()  # why the other a=crypto lines are not usable
    streams: tuple[OfferedStream, ...] = ()  # every m= line of the body, in order
    audio_index: int = 0  # which of ``streams`` is this audio stream

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


def build_sdp(
    host: str,
    port: int,
    *,
    session_id: int,
    version: int,
    codecs: tuple[tuple[int, str], ...] = ((0, "PCMU"), (8, "PCMA")),
    dtmf_payload_type: int | None = DTMF_PAYLOAD_TYPE,
    profile: str = "RTP/AVP",
    crypto: tuple[CryptoAttribute, ...] = (),
    answering: RemoteMedia | None = None,
) -> bytes:
    """An offer (every codec we speak) or an answer (``codecs`` = the one chosen); with
    ``crypto``, SDES ``a=crypto`` lines (RFC 4568) under ``profile`` (RTP/SAVP or RTP/AVP).
    An answer to ``answering`` has one ``m=`` line per offered line, in the offer's order
    (RFC 3264 §6): the audio stream taken, every other stream refused with port 0."""
    family = "IP6" if ":" in host else "IP4"
    formats = [str(pt) for pt, _ in codecs]
    lines = [
        "v=0",
        f"o=ringback {session_id} {version} IN {family} {host}",
        "s=ringback",
        f"c=IN {family} {host}",
        "t=0 0",
    ]
    if dtmf_payload_type is not None:
        formats.append(str(dtmf_payload_type))
    streams = answering.streams if answering is not None else ()
    index = answering.audio_index if answering is not None else 0
    lines += [stream.rejected() for stream in streams[:index]]
    lines.append(f"m=audio {port} {profile} {' '.join(formats)}")
    lines += [f"a=crypto:{attribute.line()}" for attribute in crypto]
    for pt, name in codecs:
        lines.append(f"a=rtpmap:{pt} {name}/8000")
    if dtmf_payload_type is not None:
        lines.append(f"a=rtpmap:{dtmf_payload_type} telephone-event/8000")
        lines.append(f"a=fmtp:{dtmf_payload_type} 0-16")
    lines += ["a=ptime:20", "a=sendrecv"]
    lines += [stream.rejected() for stream in streams[index + 1 :]]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def parse_remote_media(body: bytes) -> RemoteMedia:
    """The first audio stream of ``body`` with a codec we speak (its preferred one).

    Raises :class:`SdpError` for a body that is not SDP, has no audio stream, no usable
    address, or offers only codecs ringback does not speak.
    """
    if len(body) > MAX_SDP_BYTES:
        raise SdpError(f"SDP body of {len(body)} bytes is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP body is not UTF-8 text") from exc
    session_host: str | None = None
    media_host: str | None = None
    audio: tuple[int, list[int]] | None = None
    rtpmap: dict[int, str] = {}
    direction_hold = False
    profile = "RTP/AVP"
    crypto: list[CryptoAttribute] = []
    refused: list[str] = []
    in_audio = False
    seen_audio = False
    streams: list[OfferedStream] = []
    audio_index = 0
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            in_audio = False
            fields = value.split()
            if len(fields) >= 3:
                streams.append(OfferedStream(fields[0], fields[2], tuple(fields[3:])))
            if not seen_audio and len(fields) >= 4 and fields[0] == "audio":
                seen_audio = in_audio = True
                audio_index = len(streams) - 1
                audio = (_port(fields[1]), [_payload_type(f) for f in fields[3:]])
                profile = fields[2].upper()
        elif kind == "c":
            host = _connection_host(value)
            if audio is None and not seen_audio:
                session_host = host
            elif in_audio:
                media_host = host
        elif kind == "a" and (in_audio or not seen_audio):
            if value.startswith("rtpmap:"):
                pt_text, _, encoding = value[7:].partition(" ")
                rtpmap[_payload_type(pt_text)] = encoding.split("/")[0].strip().upper()
            elif value in ("sendonly", "inactive"):
                direction_hold = True
            elif value.startswith("crypto:") and in_audio:
                try:
                    crypto.append(parse_crypto(value[7:]))
                except CryptoError as exc:
                    refused.append(str(exc))
    if audio is None:
        raise SdpError("SDP has no audio stream (m=audio)")
    port, formats = audio
    address = media_host or session_host
    if address is None:
        raise SdpError("SDP gives no connection address (c=)")
    hold = direction_hold or address in ("0.0.0.0", "::")
    codec: tuple[int, str] | None = None
    dtmf: int | None = None
    for pt in formats:
        name = rtpmap.get(pt) or STATIC_CODECS.get(pt, "")
        if codec is None and name in SUPPORTED_CODECS:
            codec = (pt, name)
        elif dtmf is None and name == "TELEPHONE-EVENT":
            dtmf = pt
    if codec is None:
        raise SdpError(f"SDP offers no codec ringback speaks (PCMU, PCMA): formats {formats}")
    if port == 0:
        raise SdpError("SDP audio stream is disabled (port 0)")
    if profile.startswith(("UDP/TLS/", "TCP/")):
        raise SdpError(
            f"SDP audio profile {profile[:24]!r} is not supported (DTLS-SRTP and RTP over TCP "
            "are not supported: RTP/AVP or RTP/SAVP with a=crypto)"
        )
    return RemoteMedia(
        address,
        port,
        codec[1],
        codec[0],
        dtmf,
        on_hold=hold,
        profile=profile,
        crypto=tuple(crypto),
        crypto_refused=tuple(refused),
        streams=tuple(streams),
        audio_index=audio_index,
    )


def _port(text: str) -> int:
    port_text = text.split("/")[0]
    if not ascii_digits(port_text) or int(port_text) > 65535:
        raise SdpError(f"SDP media port {text!r} is not a port")
    return int(port_text)


def _payload_type(text: str) -> int:
    if not ascii_digits(text) or int(text) > 127:
        raise SdpError(f"SDP payload type {text!r} is not a number from 0 to 127")
    return int(text)


def _connection_host(value: str) -> str:
    fields = value.split()
    if len(fields) != 3 or fields[0] != "IN" or fields[1] not in ("IP4", "IP6"):
        raise SdpError(f"SDP connection line c={value!r} is not 'IN IP4|IP6 address'")
    host = fields[2].split("/")[0]
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise SdpError(f"SDP connection address {host!r} is not an IP address") from exc
    return host
