"""Settings from the environment (``RINGBACK_*``), with defaults for a single machine."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ringback.domain.digits import ascii_digits

DEFAULT_DATABASE_URL = "sqlite:///./ringback.db"


class ConfigError(ValueError):
    """A setting has a value ringback cannot use; the message says which and why."""


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than 0")
    return value


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not ascii_digits(raw) or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")


@dataclass(frozen=True, slots=True)
class SipSettings:
    """The ``sip`` dialer's settings (``RINGBACK_SIP_*``)."""

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
    # T.38 fax: "off" (a T.38 re-INVITE gets 488: the far end stays on G.711), "accept" (the
    # default: answer one with m=image; a fax step moves to T.38 with it), "offer" (accept, and
    # re-INVITE to T.38 when a fax starts; opt-in: some carriers mishandle re-INVITEs)
    t38: str = "accept"
    # the error correction ringback's own T.38 offers name (T38FaxUdpEC): "redundancy" (the
    # default, t38UDPRedundancy), "fec" (t38UDPFEC) or "none"; an answer follows the offer
    t38_ec: str = "redundancy"
    # SRTP (SDES, docs/sip-srtp.md): "off" (the default), "optional" (offer keys, accept plain
    # RTP), "required" (RTP/SAVP only: a call without keys fails, an offer without gets 488)
    srtp: str = "off"
    # NAT: the public address advertised in Contact, Via and SDP (sockets still bind local_host)
    external_address: str | None = None
    symmetric_rtp: bool = True  # send RTP to where the far end's RTP comes from (latching)
    # registration (docs/sip-dialogs.md): REGISTER each of ``register_users`` (else the digest
    # user name, else the caller id) as sip:<user>@<domain> at ``registrar`` (host[:port]; the
    # proxy when not set), refreshed at half the granted lifetime, retried with back-off
    register: bool = False
    registrar: str | None = None
    register_users: tuple[str, ...] = ()
    register_expires: int = 3600
    register_retry_s: float = 30.0
    register_retry_max_s: float = 600.0
    # session timers (RFC 4028): the interval we ask for (0: off) and the lowest we accept
    session_expires: int = 1800
    min_se: int = 90
    # SIP transport (docs/sip-transports.md): "udp" (the default), "tcp" or "tls" for URIs
    # that name none; TLS listens on tls_port (None: local_port + 1) when tls_cert is set
    transport: str = "udp"
    tls_port: int | None = None
    tls_ca: str | None = None  # CA bundle (PEM) that verifies the far end; None: the system's
    tls_cert: str | None = None  # our certificate chain (PEM): TLS client and TLS listener
    tls_key: str | None = None  # its private key (PEM); None: in tls_cert
    tls_verify: bool = True  # verify the far end's certificate and host name
    # the name the far end's TLS certificate must show: the trunk's domain (RFC 5922), also when
    # NAPTR/SRV sent the call to an address; set it when the proxy is given as an address
    tls_server_name: str | None = None
    keepalive_s: float = 30.0  # CRLF ping on the TCP/TLS connections we opened; 0: none
    tcp_idle_s: float = 600.0  # a TCP/TLS connection with no SIP message this long closes
    # trunks (docs/sip-trunks.md): NAPTR/SRV for proxy_host (a name given without a port), how
    # long a failed target is tried last, OPTIONS pings (0: none), name servers ((ip, port),
    # none: the system's) and the trunks file (without it: this one trunk, named "default")
    srv: bool = False
    blacklist_s: float = 30.0
    options_interval_s: float = 0.0
    dns_servers: tuple[tuple[str, int], ...] = ()
    trunks_file: Path | None = None

    @property
    def from_domain(self) -> str:
        return self.domain or self.proxy_host


@dataclass(slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    storage_dir: Path = field(default_factory=lambda: Path("./storage"))
    dialer: str = "sim"
    sim_rules: Path | None = None
    sim_fast: bool = False
    # the simulator's truth log: a directory for dials-<pid>.jsonl (see telephony/sim_truth.py)
    sim_truth_log: Path | None = None
    lease_seconds: float = 60.0
    max_in_flight: int = 150
    ring_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 30.0
    claim_batch: int = 200
    worker_processes: int = 1
    host: str = "127.0.0.1"
    port: int = 8080
    # private, loopback and link-local destinations allowed for webhooks and IVR fetches
    webhook_allow_private: bool = False
    ivr_fetch_timeout: float = 5.0
    ivr_fetch_max_bytes: int = 1024 * 1024
    webhook_connect_timeout: float = 5.0
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 5.0
    webhook_retry_for: float = 86400.0
    ready_webhook_lag: float = 300.0
    webhook_per_host: int = 16
    webhook_max_in_flight: int = 256
    webhook_lease_seconds: float = 60.0
    # failed secret checks (/oauth/token, rotation): token buckets per client_id and address
    token_client_burst: int = 10
    token_client_per_second: float = 0.2
    token_address_burst: int = 30
    token_address_per_second: float = 1.0
    token_verify_threads: int = 2  # scrypt checks at once per API process
    sip: SipSettings | None = None  # the sip dialer's settings (RINGBACK_DIALER=sip)

    @classmethod
    def from_env(cls) -> Settings:
        dialer = _env_choice("RINGBACK_DIALER", ("sim", "sip"), "sim")
        rules = os.environ.get("RINGBACK_SIM_RULES")
        truth = os.environ.get("RINGBACK_SIM_TRUTH_LOG")
        return cls(
            database_url=os.environ.get("RINGBACK_DATABASE_URL") or DEFAULT_DATABASE_URL,
            storage_dir=Path(os.environ.get("RINGBACK_STORAGE_DIR") or "./storage"),
            dialer=dialer,
            sim_rules=Path(rules) if rules else None,
            sim_fast=_env_bool("RINGBACK_SIM_FAST", False),
            sim_truth_log=Path(truth) if truth else None,
            lease_seconds=_env_float("RINGBACK_LEASE_SECONDS", 60.0),
            max_in_flight=int(_env_float("RINGBACK_MAX_IN_FLIGHT", 150)),
            ring_timeout_seconds=_env_float("RINGBACK_RING_TIMEOUT", 30.0),
            shutdown_grace_seconds=_env_float("RINGBACK_SHUTDOWN_GRACE", 30.0),
            claim_batch=int(_env_float("RINGBACK_CLAIM_BATCH", 200)),
            worker_processes=int(_env_float("RINGBACK_WORKER_PROCESSES", 1)),
            host=os.environ.get("RINGBACK_HOST") or "127.0.0.1",
            port=_env_port("RINGBACK_PORT", 8080),
            webhook_allow_private=_env_bool(
                "RINGBACK_ALLOW_PRIVATE", _env_bool("RINGBACK_WEBHOOK_ALLOW_PRIVATE", False)
            ),
            ivr_fetch_timeout=_env_float("RINGBACK_IVR_FETCH_TIMEOUT", 5.0),
            ivr_fetch_max_bytes=int(_env_float("RINGBACK_IVR_FETCH_MAX_BYTES", 1024 * 1024)),
            webhook_connect_timeout=_env_float("RINGBACK_WEBHOOK_CONNECT_TIMEOUT", 5.0),
            webhook_timeout=_env_float("RINGBACK_WEBHOOK_TIMEOUT", 10.0),
            webhook_retry_base=_env_float("RINGBACK_WEBHOOK_RETRY_BASE", 5.0),
            webhook_retry_for=_env_float("RINGBACK_WEBHOOK_RETRY_FOR", 86400.0),
            ready_webhook_lag=_env_float("RINGBACK_READY_WEBHOOK_LAG", 300.0),
            webhook_per_host=int(_env_float("RINGBACK_WEBHOOK_PER_HOST", 16)),
            webhook_max_in_flight=int(_env_float("RINGBACK_WEBHOOK_MAX_IN_FLIGHT", 256)),
            webhook_lease_seconds=_env_float("RINGBACK_WEBHOOK_LEASE_SECONDS", 60.0),
            token_client_burst=max(1, int(_env_float("RINGBACK_TOKEN_CLIENT_BURST", 10))),
            token_client_per_second=_env_float("RINGBACK_TOKEN_CLIENT_PER_SECOND", 0.2),
            token_address_burst=max(1, int(_env_float("RINGBACK_TOKEN_ADDRESS_BURST", 30))),
            token_address_per_second=_env_float("RINGBACK_TOKEN_ADDRESS_PER_SECOND", 1.0),
            token_verify_threads=max(1, int(_env_float("RINGBACK_TOKEN_VERIFY_THREADS", 2))),
            sip=sip_settings_from_env() if dialer == "sip" else None,
        )


def sip_settings_from_env() -> SipSettings:
    """The ``RINGBACK_SIP_*`` settings; ``RINGBACK_SIP_PROXY`` (host or host:port) is required."""
    proxy = os.environ.get("RINGBACK_SIP_PROXY") or ""
    trunks = os.environ.get("RINGBACK_SIP_TRUNKS") or None
    if not proxy and not trunks:
        raise ConfigError(
            "RINGBACK_DIALER=sip needs RINGBACK_SIP_PROXY: the trunk or proxy as host or host:port"
            " (or RINGBACK_SIP_TRUNKS: a trunks file)"
        )
    transport = _env_choice("RINGBACK_SIP_TRANSPORT", SIP_TRANSPORTS, "udp")
    default_port = 5061 if transport == "tls" else 5060
    proxy_host, proxy_port = (
        _host_port("RINGBACK_SIP_PROXY", proxy, default_port) if proxy else ("", 0)
    )
    username = os.environ.get("RINGBACK_SIP_USERNAME") or None
    password = os.environ.get("RINGBACK_SIP_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError("set both RINGBACK_SIP_USERNAME and RINGBACK_SIP_PASSWORD, or neither")
    local_port = os.environ.get("RINGBACK_SIP_LOCAL_PORT") or "5060"
    if not ascii_digits(local_port) or int(local_port) > 65535:
        raise ConfigError(f"RINGBACK_SIP_LOCAL_PORT={local_port!r} is not a UDP port (0-65535)")
    settings = SipSettings(
        proxy_host=proxy_host,
        proxy_port=proxy_port,
        username=username,
        password=password,
        local_host=os.environ.get("RINGBACK_SIP_LOCAL_HOST") or "127.0.0.1",
        local_port=int(local_port),
        rtp_ports=_port_range("RINGBACK_SIP_RTP_PORTS", (20000, 29999)),
        caller_id=os.environ.get("RINGBACK_SIP_CALLER_ID") or None,
        domain=os.environ.get("RINGBACK_SIP_DOMAIN") or None,
        max_ring_timeout_s=_env_float("RINGBACK_SIP_RING_TIMEOUT", 120.0),
        t38=_env_choice("RINGBACK_SIP_T38", T38_MODES, "accept"),
        t38_ec=_env_choice("RINGBACK_SIP_T38_EC", T38_EC_MODES, "redundancy"),
        srtp=_env_choice("RINGBACK_SIP_SRTP", SRTP_POLICIES, "off"),
        external_address=_external_address(os.environ.get("RINGBACK_SIP_EXTERNAL_ADDRESS")),
        symmetric_rtp=_env_bool("RINGBACK_SIP_SYMMETRIC_RTP", True),
        register=(os.environ.get("RINGBACK_SIP_REGISTER") or "").strip().lower()
        in ("1", "true", "yes", "on"),
        registrar=os.environ.get("RINGBACK_SIP_REGISTRAR") or None,
        register_users=tuple(
            user.strip()
            for user in (os.environ.get("RINGBACK_SIP_REGISTER_USERS") or "").split(",")
            if user.strip()
        ),
        register_expires=int(_env_float("RINGBACK_SIP_REGISTER_EXPIRES", 3600)),
        session_expires=_session_expires(os.environ.get("RINGBACK_SIP_SESSION_EXPIRES")),
        min_se=int(_env_float("RINGBACK_SIP_MIN_SE", 90)),
        transport=transport,
        srv=bool(proxy) and proxy_port_missing(proxy),
        blacklist_s=_env_float("RINGBACK_SIP_DNS_BLACKLIST", 30.0),
        options_interval_s=(
            _env_float("RINGBACK_SIP_OPTIONS_INTERVAL", 1.0)
            if os.environ.get("RINGBACK_SIP_OPTIONS_INTERVAL", "0") not in ("", "0")
            else 0.0
        ),
        dns_servers=_nameservers(os.environ.get("RINGBACK_SIP_DNS_SERVERS") or ""),
        trunks_file=Path(trunks) if trunks else None,
    )
    if settings.register and not (settings.register_users or username or settings.caller_id):
        raise ConfigError(
            "RINGBACK_SIP_REGISTER=1 needs the users to register: set RINGBACK_SIP_REGISTER_USERS"
        )
    return _sip_tls_from_env(settings)


SIP_TRANSPORTS = ("udp", "tcp", "tls")
SRTP_POLICIES = ("off", "optional", "required")
T38_MODES = ("off", "accept", "offer")
#: RINGBACK_SIP_T38_EC: what T38FaxUdpEC ringback's T.38 offers name (docs/fax.md, "T.38")
T38_EC_MODES = ("redundancy", "fec", "none")


def _env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices`` (any case), ``default`` when unset; ConfigError listing them."""
    raw = os.environ.get(name) or default
    value = raw.strip().lower()
    if value not in choices:
        named = [f"{c!r} (the default)" if c == default else repr(c) for c in choices]
        raise ConfigError(f"{name}={raw!r}: use {', '.join(named[:-1])} or {named[-1]}")
    return value


def _sip_tls_from_env(settings: SipSettings) -> SipSettings:
    """The TLS and connection settings of the sip dialer (RINGBACK_SIP_TLS_*, KEEPALIVE,
    TCP_IDLE); every file named must be readable."""
    files: dict[str, str | None] = {}
    for key, name in (("tls_ca", "CA"), ("tls_cert", "CERT"), ("tls_key", "KEY")):
        value = os.environ.get(f"RINGBACK_SIP_TLS_{name}") or None
        if value is not None and not os.access(value, os.R_OK):
            raise ConfigError(f"RINGBACK_SIP_TLS_{name}={value!r}: no readable file there")
        files[key] = value
    if files["tls_key"] is not None and files["tls_cert"] is None:
        raise ConfigError("RINGBACK_SIP_TLS_KEY needs RINGBACK_SIP_TLS_CERT (its certificate)")
    keepalive = os.environ.get("RINGBACK_SIP_KEEPALIVE")
    return dataclasses.replace(
        settings,
        tls_ca=files["tls_ca"],
        tls_cert=files["tls_cert"],
        tls_key=files["tls_key"],
        tls_port=_env_port("RINGBACK_SIP_TLS_PORT", 0) or None,
        tls_verify=_env_bool("RINGBACK_SIP_TLS_VERIFY", True),
        tls_server_name=os.environ.get("RINGBACK_SIP_TLS_SERVER_NAME") or None,
        keepalive_s=0.0 if keepalive == "0" else _env_float("RINGBACK_SIP_KEEPALIVE", 30.0),
        tcp_idle_s=_env_float("RINGBACK_SIP_TCP_IDLE", 600.0),
    )


def _session_expires(raw: str | None) -> int:
    if raw is None or raw.strip() == "":
        return 1800
    value = raw.strip()
    if not ascii_digits(value) or 0 < int(value) < 90:
        raise ConfigError(
            f"RINGBACK_SIP_SESSION_EXPIRES={raw!r}: seconds, at least 90 (RFC 4028), or 0 for off"
        )
    return int(value)


def _external_address(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw.strip().strip("[]")))
    except ValueError:
        raise ConfigError(
            f"RINGBACK_SIP_EXTERNAL_ADDRESS={raw!r} is not an IP address: give the public "
            "IPv4 or IPv6 address the far end reaches this host at"
        ) from None


def proxy_port_missing(raw: str) -> bool:
    """Whether ``raw`` (host or host:port) is a name without a port: looked up with
    NAPTR/SRV (RFC 3263); an IP address or an explicit port is used as it is."""
    _host, colon, port = raw.rpartition(":")
    if colon and "]" not in port and ascii_digits(port):
        return False
    name = raw.strip("[]")
    return not (ascii_digits(name.replace(".", "")) or ":" in name)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _nameservers(raw: str) -> tuple[tuple[str, int], ...]:
    """``RINGBACK_SIP_DNS_SERVERS``: comma-separated ``ip`` or ``ip:port``."""
    servers = []
    for entry in (part.strip() for part in raw.split(",") if part.strip()):
        host, colon, port = entry.rpartition(":")
        if not colon or "]" in port or (":" in host and not host.startswith("[")):
            host, port = entry, "53"
        if not ascii_digits(port) or not 0 < int(port) < 65536 or not _is_ip(host.strip("[]")):
            raise ConfigError(
                f"RINGBACK_SIP_DNS_SERVERS={raw!r}: {entry!r} is not an IP address or address:port"
            )
        servers.append((host.strip("[]"), int(port)))
    return tuple(servers)


def _host_port(name: str, raw: str, default_port: int) -> tuple[str, int]:
    host, colon, port = raw.rpartition(":")
    if not colon or "]" in port:  # no port, or a bare IPv6 address in brackets
        host, port = raw, ""
    host = host.strip("[]")
    if not host or any(ch.isspace() for ch in host):
        raise ConfigError(f"{name}={raw!r} is not host or host:port")
    if port == "":
        return host, default_port
    if not ascii_digits(port) or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={raw!r}: the port is not 1-65535")
    return host, int(port)


def _port_range(name: str, default: tuple[int, int]) -> tuple[int, int]:
    raw = os.environ.get(name)
    if not raw:
        return default
    low, dash, high = raw.partition("-")
    if not (dash and ascii_digits(low.strip()) and ascii_digits(high.strip())):
        raise ConfigError(f"{name}={raw!r} is not a port range like 20000-29999")
    first, last = int(low), int(high)
    if not 1024 <= first < last <= 65535:
        raise ConfigError(f"{name}={raw!r}: use two ports from 1024 to 65535, the first lower")
    return first, last
