"""Registration (RFC 3261 §10) against sipp registrars on 127.0.0.1: digest challenges answered,
the Contact's granted lifetime honoured and refreshed at half of it (the clock is moved, not
waited for), 503 backed off, 423 raised to Min-Expires, and the binding removed on shutdown."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support_media import HOST, free_udp_ports
from support_sip import bounded, sipp_peer

from ringback.clock import FakeClock
from ringback.config import SipSettings
from ringback.telephony.sip.dialer import SipDialer
from ringback.telephony.sip.registration import Registration, RegistrationSpec, specs_for

pytestmark = pytest.mark.slow


def _settings(registrar_port: int, **extra: object) -> SipSettings:
    rtp = free_udp_ports(4, even=True)
    values: dict[str, object] = {
        "proxy_host": HOST,
        "proxy_port": registrar_port,
        "local_host": HOST,
        "local_port": 0,
        "rtp_ports": (rtp, rtp + 3),
        "register": True,
        **extra,
    }
    return SipSettings(**values)  # type: ignore[arg-type]


async def _until(predicate: object, registration: Registration) -> None:
    assert callable(predicate)
    while not predicate():
        registration.changed.clear()
        if predicate():
            return
        await registration.changed.wait()


@bounded(60)
async def test_register_answers_401_honours_the_contact_expires_refreshes_at_half_unregisters(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with sipp_peer(tmp_path, "uas_register") as sipp:
        settings = _settings(sipp.sip_port, username="alice", password="s3cret")
        dialer = await SipDialer(settings, clock).start()
        try:
            [registration] = dialer.registrations
            status = registration.status
            await _until(lambda: status.registrations >= 1, registration)
            assert status.state == "registered" and status.aor == f"sip:alice@{HOST}"
            assert status.granted_expires == 60  # the Contact's expires beats Expires: 3600
            assert status.expires_at == clock.now() + timedelta(seconds=60)
            assert clock.sleepers == 1  # the wait for the refresh, set before the event
            clock.advance(29)  # not yet half of 60 s: no refresh
            await asyncio.sleep(0)
            assert clock.sleepers == 1 and status.registrations == 1
            clock.advance(1)
            await _until(lambda: status.registrations >= 2, registration)
            assert status.state == "registered" and status.last_error is None
        finally:
            await dialer.close()  # the un-REGISTER: Expires: 0, challenged and answered
        assert registration.status.state == "unregistered"
        code = await sipp.wait_async(30)
        assert code == 0, sipp.output()
        assert sipp.errors() == ""


@bounded(60)
async def test_a_failed_register_backs_off_with_jitter_then_a_423_raises_expires_to_min_expires(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with sipp_peer(tmp_path, "uas_register_fail_then_ok") as sipp:
        settings = _settings(
            sipp.sip_port, register_users=("2001",), register_expires=300, register_retry_s=30.0
        )
        dialer = SipDialer(settings, clock)
        [registration] = dialer.registrations
        registration.rng = lambda: 0.0  # the shortest jitter: half the base
        await dialer.start()
        try:
            status = registration.status
            await _until(lambda: status.failures >= 1, registration)
            assert status.state == "failed"
            assert status.last_error == "503 Service Unavailable"
            assert clock.sleepers == 1  # the back-off, set before the event
            clock.advance(14)  # the back-off is 15 s (30 s base, jitter drew its minimum)
            await asyncio.sleep(0)
            assert clock.sleepers == 1 and status.state == "failed"
            clock.advance(1)
            await _until(lambda: status.registrations >= 1, registration)
            assert status.state == "registered" and status.granted_expires == 1800
            assert status.failures == 0 and status.last_error is None
        finally:
            await dialer.close()
        code = await sipp.wait_async(30)
        assert code == 0, sipp.output()
        assert sipp.errors() == ""


@given(
    failures=st.integers(min_value=1, max_value=40),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    base=st.floats(min_value=0.5, max_value=120.0),
)
def test_backoff_doubles_per_failure_is_capped_and_jitters_between_half_and_all(
    failures: int, draw: float, base: float
) -> None:
    spec = RegistrationSpec(HOST, 5060, "2001", HOST, retry_base_s=base, retry_max_s=600.0)
    registration = Registration(None, spec, FakeClock(), rng=lambda: draw)
    ceiling = min(600.0, base * 2 ** (failures - 1))
    delay = registration.backoff(failures)
    assert ceiling / 2 <= delay <= ceiling


def test_registration_is_off_unless_asked_and_uses_the_registrar_and_users_given() -> None:
    assert specs_for(SipSettings(proxy_host="pbx.example")) == []
    specs = specs_for(
        SipSettings(
            proxy_host="pbx.example",
            register=True,
            registrar="reg.example:5070",
            register_users=("2001", "2002"),
            username="trunk",
            password="pw",
            register_expires=120,
        )
    )
    assert [(s.registrar_host, s.registrar_port, s.aor, s.expires) for s in specs] == [
        ("reg.example", 5070, "sip:2001@pbx.example", 120),
        ("reg.example", 5070, "sip:2002@pbx.example", 120),
    ]
    [default] = specs_for(SipSettings(proxy_host="pbx.example", register=True, username="u1"))
    assert (default.registrar_host, default.registrar_port, default.user) == (
        "pbx.example",
        5060,
        "u1",
    )


def test_registration_and_session_timer_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ringback.config import ConfigError, sip_settings_from_env

    monkeypatch.setenv("RINGBACK_SIP_PROXY", "pbx.example:5070")
    monkeypatch.setenv("RINGBACK_SIP_REGISTER", "1")
    monkeypatch.setenv("RINGBACK_SIP_REGISTRAR", "reg.example")
    monkeypatch.setenv("RINGBACK_SIP_REGISTER_USERS", "2001, 2002")
    monkeypatch.setenv("RINGBACK_SIP_REGISTER_EXPIRES", "600")
    monkeypatch.setenv("RINGBACK_SIP_SESSION_EXPIRES", "0")
    settings = sip_settings_from_env()
    assert settings.register and settings.registrar == "reg.example"
    assert settings.register_users == ("2001", "2002") and settings.register_expires == 600
    assert settings.session_expires == 0
    assert [spec.registrar_port for spec in specs_for(settings)] == [5060, 5060]
    monkeypatch.setenv("RINGBACK_SIP_SESSION_EXPIRES", "60")
    with pytest.raises(ConfigError, match="RINGBACK_SIP_SESSION_EXPIRES"):
        sip_settings_from_env()
    monkeypatch.setenv("RINGBACK_SIP_SESSION_EXPIRES", "1800")
    monkeypatch.delenv("RINGBACK_SIP_REGISTER_USERS")
    with pytest.raises(ConfigError, match="RINGBACK_SIP_REGISTER_USERS"):
        sip_settings_from_env()  # registration on, and nobody to register


def test_registration_state_is_exported_as_gauges_per_aor() -> None:
    from ringback.api.metrics import Metrics
    from ringback.domain.rows import MetricsCounts, StatusReport
    from ringback.telephony.sip.registration import gauge_rows

    clock = FakeClock()
    bound = Registration(None, RegistrationSpec(HOST, 5060, "2001", "pbx"), clock)
    bound.status.state = "registered"
    bound.status.expires_at = clock.now() + timedelta(seconds=42)
    failed = Registration(None, RegistrationSpec(HOST, 5060, "2002", "pbx"), clock)
    failed.status.state = "failed"
    metrics = Metrics()
    metrics.watch_sip_registrations(lambda: gauge_rows([bound, failed], clock.now()))
    text = metrics.render(
        StatusReport(counts={}, in_flight=0, next_due=None, queues=[]),
        MetricsCounts(tasks=[], deliveries=[], oldest_pending_delivery=None),
        clock.now(),
    ).decode()
    assert 'ringback_sip_registered{aor="sip:2001@pbx"} 1.0' in text
    assert 'ringback_sip_registered{aor="sip:2002@pbx"} 0.0' in text
    assert 'ringback_sip_registration_expires_seconds{aor="sip:2001@pbx"} 42.0' in text


def test_serve_exports_the_sip_dialers_registrations_in_its_metrics() -> None:
    from ringback.api.metrics import Metrics
    from ringback.cli.serve import _watch_registrations
    from ringback.domain.rows import MetricsCounts, StatusReport

    clock = FakeClock()
    settings = SipSettings(proxy_host="pbx.example", register=True, register_users=("2001",))
    metrics = Metrics()
    _watch_registrations(metrics, SipDialer(settings, clock), clock)
    text = metrics.render(
        StatusReport(counts={}, in_flight=0, next_due=None, queues=[]),
        MetricsCounts(tasks=[], deliveries=[], oldest_pending_delivery=None),
        clock.now(),
    ).decode()
    assert 'ringback_sip_registered{aor="sip:2001@pbx.example"} 0.0' in text  # not started
