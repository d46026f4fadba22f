"""Settings from the environment (``RINGBACK_*``), with defaults for a single machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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
    if not raw.isdigit() or not 0 < int(raw) < 65536:
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


@dataclass(slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    storage_dir: Path = field(default_factory=lambda: Path("./storage"))
    dialer: str = "sim"
    sim_rules: Path | None = None
    sim_fast: bool = False
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
    webhook_per_host: int = 16
    webhook_max_in_flight: int = 256
    webhook_lease_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> Settings:
        dialer = os.environ.get("RINGBACK_DIALER", "sim")
        if dialer != "sim":
            raise ConfigError(
                f"RINGBACK_DIALER={dialer!r}: only the 'sim' dialer exists in this version "
                "(the SIP dialer is not supported yet)"
            )
        rules = os.environ.get("RINGBACK_SIM_RULES")
        return cls(
            database_url=os.environ.get("RINGBACK_DATABASE_URL") or DEFAULT_DATABASE_URL,
            storage_dir=Path(os.environ.get("RINGBACK_STORAGE_DIR") or "./storage"),
            dialer=dialer,
            sim_rules=Path(rules) if rules else None,
            sim_fast=_env_bool("RINGBACK_SIM_FAST", False),
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
            webhook_per_host=int(_env_float("RINGBACK_WEBHOOK_PER_HOST", 16)),
            webhook_max_in_flight=int(_env_float("RINGBACK_WEBHOOK_MAX_IN_FLIGHT", 256)),
            webhook_lease_seconds=_env_float("RINGBACK_WEBHOOK_LEASE_SECONDS", 60.0),
        )
