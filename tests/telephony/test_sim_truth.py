"""The simulator's truth log (RINGBACK_SIM_TRUTH_LOG): one JSON line per originate, answer and
hangup, stamped with the time each was due, in dials-<pid>.jsonl."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from ringback.clock import FakeClock
from ringback.config import Settings
from ringback.telephony.base import OriginateRequest
from ringback.telephony.sim import SimDialer, load_sim_rules


def lines(directory: Path) -> list[dict[str, Any]]:
    path = directory / f"dials-{os.getpid()}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def request(number: str, leg_uuid: str) -> OriginateRequest:
    return OriginateRequest(
        to_number=number, caller_id_number="+15550000", call_uuid=f"c-{leg_uuid}", leg_uuid=leg_uuid
    )


async def test_truth_log_records_answered_busy_and_hung_up_legs(tmp_path: Path) -> None:
    clock = FakeClock()
    start = clock.now().timestamp()
    truth = tmp_path / "truth"
    dialer = SimDialer(clock, load_sim_rules(None), truth_log=truth)  # ring 1 s, talk 3 s

    answered = await dialer.originate(request("+15551000", "leg-a"))
    busy = await dialer.originate(request("+15551486", "leg-b"))
    hung_up = await dialer.originate(request("+15552000", "leg-c"))
    assert [line["ev"] for line in lines(truth)] == ["originate"] * 3

    clock.set(clock.now() + timedelta(seconds=1.5))
    assert hung_up.record.answered_at is not None
    await hung_up.hangup()
    clock.set(clock.now() + timedelta(seconds=10))
    assert answered.ended and busy.ended
    await dialer.close()

    by_leg: dict[str, list[dict[str, Any]]] = {}
    for line in lines(truth):
        assert line["pid"] == os.getpid()
        by_leg.setdefault(line["leg_uuid"], []).append(line)
    assert [(x["ev"], x["t"] - start) for x in by_leg["leg-a"]] == [
        ("originate", 0.0),
        ("answer", 1.0),
        ("hangup", 4.0),  # stamped when it was due, not when the clock was looked at
    ]
    assert by_leg["leg-a"][0]["to"] == "+15551000"
    assert by_leg["leg-a"][0]["call_uuid"] == "c-leg-a"
    assert by_leg["leg-a"][2]["disposition"] == "recv_bye"
    assert [(x["ev"], x["t"] - start) for x in by_leg["leg-b"]] == [
        ("originate", 0.0),
        ("hangup", 1.0),
    ]
    assert by_leg["leg-b"][1]["cause"] == "USER_BUSY"
    assert [x["ev"] for x in by_leg["leg-c"]] == ["originate", "answer", "hangup"]
    assert by_leg["leg-c"][2]["disposition"] == "send_bye"
    assert by_leg["leg-c"][2]["t"] - start == 1.5


async def test_no_truth_log_unless_configured(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("RINGBACK_SIM_TRUTH_LOG", raising=False)
    assert Settings.from_env().sim_truth_log is None
    dialer = SimDialer(FakeClock(), load_sim_rules(None), fast=True)
    assert dialer.truth is None
    monkeypatch.setenv("RINGBACK_SIM_TRUTH_LOG", str(tmp_path / "t"))
    assert Settings.from_env().sim_truth_log == tmp_path / "t"


def test_times_are_on_this_hosts_clock_with_ringbacks_offset_taken_out(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ringback.telephony.sim_truth import TruthLog

    log = TruthLog(tmp_path, host_offset=lambda: 0.25)  # ringback's clock 250 ms ahead
    at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    log.originate("leg", "call", "+15550100", at)
    log.close()
    [line] = [json.loads(x) for x in next(tmp_path.glob("dials-*.jsonl")).read_text().splitlines()]
    assert line["t"] == at.timestamp() - 0.25
