"""GET /client/{id}/sip/trunks and the ringback_sip_trunk_* metrics show the sip dialer's trunks
as this process sees them (OPTIONS ping state and latency, calls, Retry-After pauses); a
service on the simulator has none (404), and a client needs its token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_smoke_core import Api, _token, create_credentials

from ringback.api.app import create_app
from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.config import Settings, SipSettings
from ringback.service import Services
from ringback.store.db import Store
from ringback.telephony.sip.trunk_select import TrunkPool
from ringback.telephony.sip.trunks import Trunk


@pytest.fixture
async def served(
    store: Store, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Api]]:
    app = create_app(Services(store, clock, storage=Storage(tmp_path / "files")), Settings())
    transport = httpx.ASGITransport(app)
    client_id, key, secret = await create_credentials(store, "acme", clock)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http, app, Api(http, client_id, await _token(http, key, secret))


def _pool(clock: FakeClock) -> TrunkPool:
    settings = SipSettings(proxy_host="192.0.2.1")
    pool = TrunkPool(
        [Trunk("carrier-a", settings, max_concurrent_calls=30), Trunk("backup", settings)], clock
    )
    live, dead = pool.states["carrier-a"], pool.states["backup"]
    live.up, live.latency_s, live.checked_at, live.calls = True, 0.0125, clock.now(), 3
    dead.up, dead.last_error = False, "OPTIONS to 192.0.2.1: no answer"
    pool.pause(pool.trunks[1], 60)
    return pool


async def test_sip_trunks_lists_each_trunks_state_latency_calls_and_pause(
    served: tuple[httpx.AsyncClient, Any, Api], clock: FakeClock
) -> None:
    _http, app, api = served
    pool = _pool(clock)
    app.state.sip_trunks = pool.report
    answer = await api.call("GET", "/sip/trunks")
    assert answer.status_code == 200, answer.text
    live, dead = answer.json()["trunks"]
    assert live["name"] == "carrier-a" and live["state"] == "up" and live["latency_ms"] == 12.5
    assert live["calls"] == 3 and live["max_concurrent_calls"] == 30
    assert dead["state"] == "down" and dead["latency_ms"] is None
    assert dead["last_error"] == "OPTIONS to 192.0.2.1: no answer"
    assert dead["paused_until"] is not None


async def test_sip_trunk_metrics_carry_a_trunk_label_with_state_and_latency(
    served: tuple[httpx.AsyncClient, Any, Api], clock: FakeClock
) -> None:
    http, app, _api = served
    app.state.metrics.watch_sip_trunks(_pool(clock).report)
    text = (await http.get("/metrics")).text
    assert 'ringback_sip_trunk_up{trunk="carrier-a"} 1.0' in text
    assert 'ringback_sip_trunk_up{trunk="backup"} 0.0' in text
    assert 'ringback_sip_trunk_latency_seconds{trunk="carrier-a"} 0.0125' in text
    assert 'ringback_sip_trunk_latency_seconds{trunk="backup"}' not in text
    assert 'ringback_sip_trunk_calls{trunk="carrier-a"} 3.0' in text


async def test_sip_trunks_is_404_on_the_simulator_and_401_without_a_token(
    served: tuple[httpx.AsyncClient, Any, Api],
) -> None:
    http, _app, api = served
    answer = await api.call("GET", "/sip/trunks")
    assert answer.status_code == 404
    assert "does not use the sip dialer" in answer.json()["message"]
    assert (await http.get(f"{api.base}/sip/trunks")).status_code == 401
