"""The ``sip`` dialer's settings (``RINGBACK_SIP_*``; read by :mod:`ringback.config`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SipSettings:
    proxy_host: str  # the trunk or proxy every new call goes to
    proxy_port: int = 5060
    username: str | None = None  # digest credentials, used when challenged (401/407)
    password: str | None = None
    local_host: str = "127.0.0.1"  # the address SIP and RTP bind to and advertise
    local_port: int = 5060  # 0: any free port
    rtp_ports: tuple[int, int] = (20000, 29999)
    caller_id: str | None = None  # From user when a task gives none
    domain: str | None = None  # From / To host; the proxy host when not set
    max_ring_timeout_s: float = 120.0  # caps the ring timeout a task asks for

    @property
    def from_domain(self) -> str:
        return self.domain or self.proxy_host
