"""Through the real engine: a call failing over from a trunk answering 503 to the next trunk is
one stored leg and one attempt (write-ahead legs: the failover is inside the leg), answered on
the second trunk. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support_media import HOST, Sipp, free_udp_ports, require_program, sine, write_wav
from support_sip import scenario

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.config import SipSettings
from ringback.service import TaskService
from ringback.store.db import Store
from ringback.telephony.sip.dialer import SipDialer
from ringback.telephony.sip.trunks import load_trunks
from worker_env import make_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def clock() -> SystemClock:  # the store's clock too: call records carry real times
    return SystemClock()


async def test_a_503_failover_to_the_second_trunk_is_one_stored_leg_and_one_attempt(
    store: Store, clock: SystemClock, tmp_path: Path
) -> None:
    require_program("sipp", "sip-tester")
    storage = Storage(tmp_path / "storage")
    client_id = await store.ensure_client("acme", clock.now())
    wav = storage.resolve(client_id, "message.wav")
    wav.parent.mkdir(parents=True, exist_ok=True)
    write_wav(wav, [sine(440, 0.5, 8000)], 8000, 2)
    refusing = Sipp(scenario("uas_503"), tmp_path / "503", name="refusing").start(timeout_s=40)
    answering = Sipp(scenario("uas_answer"), tmp_path / "ok", name="answering").start(timeout_s=40)
    dialer = None
    try:
        path = tmp_path / "trunks.toml"
        path.write_text(
            f'[trunks.first]\nproxy = "{HOST}:{refusing.sip_port}"\n'
            f'[trunks.second]\nproxy = "{HOST}:{answering.sip_port}"\n'
        )
        rtp = free_udp_ports(10, even=True)
        base = SipSettings(proxy_host="", local_host=HOST, local_port=0,
                           rtp_ports=(rtp, rtp + 9), trunks_file=path)  # fmt: skip
        dialer = await SipDialer(base, clock, trunks=load_trunks(path, base)).start()
        worker = make_worker(store, dialer, storage, clock, lease_seconds=60, seed=1,
                             owner="trunk-e2e")  # fmt: skip
        [task_id] = await TaskService(store, clock).add_jobs(client_id, [{
            "type": "msg_call",
            "data": {"calling_number": "0501234000", "called_number": "5551234",
                     "audio_file": "message.wav"},
        }])  # fmt: skip
        async with asyncio.timeout(60):
            await worker.drain()
        task = await store.get_task(task_id, store.clock.now())
        for sipp in (refusing, answering):
            assert await sipp.wait_async(30) == 0, sipp.output()
            assert sipp.errors() == ""
    finally:
        if dialer is not None:
            await dialer.close()
        refusing.stop()
        answering.stop()
    assert (task.status, task.finish_result, task.attempt) == ("finished", "success", 1)
    [call] = await store.calls(task_id=task_id)  # one leg, though two INVITEs went out
    assert (call.outcome, call.sip_code) == ("answered", 200)
    assert call.detail["trunk"] == "second"
    assert [t["trunk"] for t in call.detail["failover"]] == ["first"]
    assert call.detail["failover"][0]["reason"] == "503 Service Unavailable"
