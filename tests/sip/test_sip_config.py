"""RINGBACK_DIALER=sip and the RINGBACK_SIP_* settings."""

from __future__ import annotations

import re

import pytest

from ringback.config import ConfigError, Settings, SipSettings


def test_sip_dialer_reads_every_sip_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "RINGBACK_DIALER": "sip",
        "RINGBACK_SIP_PROXY": "trunk.example.net:5080",
        "RINGBACK_SIP_USERNAME": "alice",
        "RINGBACK_SIP_PASSWORD": "s3cret",
        "RINGBACK_SIP_LOCAL_HOST": "10.0.0.5",
        "RINGBACK_SIP_LOCAL_PORT": "5062",
        "RINGBACK_SIP_RTP_PORTS": "30000-30999",
        "RINGBACK_SIP_CALLER_ID": "+4930123456",
        "RINGBACK_SIP_DOMAIN": "example.net",
        "RINGBACK_SIP_RING_TIMEOUT": "45",
        "RINGBACK_SIP_T38": "Offer",
        "RINGBACK_SIP_T38_EC": " FEC ",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.dialer == "sip"
    assert settings.sip == SipSettings(
        proxy_host="trunk.example.net",
        proxy_port=5080,
        username="alice",
        password="s3cret",
        local_host="10.0.0.5",
        local_port=5062,
        rtp_ports=(30000, 30999),
        caller_id="+4930123456",
        domain="example.net",
        max_ring_timeout_s=45.0,
        t38="offer",
        t38_ec="fec",
    )


def test_sip_defaults_need_only_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGBACK_DIALER", "sip")
    monkeypatch.setenv("RINGBACK_SIP_PROXY", "192.0.2.1")
    sip = Settings.from_env().sip
    assert sip == SipSettings(proxy_host="192.0.2.1")
    assert sip.from_domain == "192.0.2.1"
    assert sip.t38 == "accept"  # a gateway's T.38 re-INVITE is taken; ringback offers none
    assert sip.t38_ec == "redundancy"  # what ringback's offers (with "offer") name


def test_sim_dialer_has_no_sip_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RINGBACK_DIALER", raising=False)
    assert Settings.from_env().sip is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RINGBACK_DIALER": "freeswitch"}, "use 'sim' (the default) or 'sip'"),
        ({"RINGBACK_DIALER": "sip"}, "needs RINGBACK_SIP_PROXY"),
        ({"RINGBACK_SIP_PROXY": "host:99999"}, "the port is not 1-65535"),
        ({"RINGBACK_SIP_PROXY": "a b"}, "is not host or host:port"),
        ({"RINGBACK_SIP_RTP_PORTS": "30000"}, "is not a port range"),
        ({"RINGBACK_SIP_RTP_PORTS": "40000-30000"}, "the first lower"),
        ({"RINGBACK_SIP_LOCAL_PORT": "sip"}, "is not a UDP port"),
        ({"RINGBACK_SIP_USERNAME": "alice"}, "set both RINGBACK_SIP_USERNAME"),
        ({"RINGBACK_SIP_T38": "yes"}, "use 'off', 'accept' (the default) or 'offer'"),
        (
            {"RINGBACK_SIP_T38_EC": "parity"},
            "RINGBACK_SIP_T38_EC='parity': use 'redundancy' (the default), 'fec' or 'none'",
        ),
    ],
)
def test_bad_sip_settings_say_which_and_why(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("RINGBACK_DIALER", "sip")
    monkeypatch.setenv("RINGBACK_SIP_PROXY", "127.0.0.1")
    for name, value in env.items():
        if name == "RINGBACK_DIALER" and value == "sip":
            monkeypatch.delenv("RINGBACK_SIP_PROXY")
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env()
