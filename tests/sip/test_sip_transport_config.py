"""The sip dialer's transport settings: RINGBACK_SIP_TRANSPORT, RINGBACK_SIP_TLS_* and the
connection keep-alive and idle settings, with one clear line for a value that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringback.config import ConfigError, sip_settings_from_env


@pytest.fixture(autouse=True)
def _trunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGBACK_SIP_PROXY", "trunk.example.net")


def test_transport_defaults_to_udp_with_tls_verification_on() -> None:
    settings = sip_settings_from_env()
    assert (settings.transport, settings.proxy_port, settings.tls_verify) == ("udp", 5060, True)
    assert (settings.tls_port, settings.tls_ca, settings.tls_cert) == (None, None, None)
    assert (settings.keepalive_s, settings.tcp_idle_s) == (30.0, 600.0)


def test_tls_settings_are_read_and_a_tls_trunk_defaults_to_port_5061(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("pem")
    env = {
        "RINGBACK_SIP_TRANSPORT": "TLS",
        "RINGBACK_SIP_TLS_PORT": "5071",
        "RINGBACK_SIP_TLS_CA": str(tmp_path / "ca.pem"),
        "RINGBACK_SIP_TLS_CERT": str(tmp_path / "cert.pem"),
        "RINGBACK_SIP_TLS_KEY": str(tmp_path / "key.pem"),
        "RINGBACK_SIP_TLS_VERIFY": "off",
        "RINGBACK_SIP_KEEPALIVE": "0",
        "RINGBACK_SIP_TCP_IDLE": "120",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = sip_settings_from_env()
    assert (settings.transport, settings.proxy_port, settings.tls_port) == ("tls", 5061, 5071)
    assert settings.tls_ca == str(tmp_path / "ca.pem")
    assert (settings.tls_cert, settings.tls_key) == (
        str(tmp_path / "cert.pem"),
        str(tmp_path / "key.pem"),
    )
    assert (settings.tls_verify, settings.keepalive_s, settings.tcp_idle_s) == (False, 0.0, 120.0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RINGBACK_SIP_TRANSPORT", "sctp", "'tcp' or 'tls'"),
        ("RINGBACK_SIP_TLS_PORT", "70000", "is not a TCP port"),
        ("RINGBACK_SIP_TLS_CA", "/nonexistent/ca.pem", "no readable file there"),
        ("RINGBACK_SIP_TLS_CERT", "/nonexistent/cert.pem", "no readable file there"),
        ("RINGBACK_SIP_TLS_VERIFY", "maybe", "use 1/0, true/false"),
        ("RINGBACK_SIP_KEEPALIVE", "-1", "must be greater than 0"),
        ("RINGBACK_SIP_TCP_IDLE", "soon", "is not a number"),
    ],
)
def test_a_bad_transport_setting_is_one_clear_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as raised:
        sip_settings_from_env()
    assert name in str(raised.value) and "\n" not in str(raised.value)


def test_a_tls_key_without_its_certificate_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "key.pem").write_text("pem")
    monkeypatch.setenv("RINGBACK_SIP_TLS_KEY", str(tmp_path / "key.pem"))
    with pytest.raises(ConfigError, match="needs RINGBACK_SIP_TLS_CERT"):
        sip_settings_from_env()
