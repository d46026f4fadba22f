"""Answering-machine detection benchmark: a corpus of 40 recordings played over real SIP.

The corpus (``ringback.telephony.amd_corpus``: short human greetings, voicemail greetings
ending with a beep, silence, line noise; espeak-ng and sox, made in a temporary folder at run
time) is played by a **callee**: a ringback SIP dialer listening on 127.0.0.1 that answers
each INVITE and plays the recording its number names, over RTP (G.711). The **caller**, the
ringback SIP dialer under test, places one call per recording, runs the detection on the
audio it receives (``sip/amd_tap.py``, policy ``wait_for_beep``: a machine's beep is awaited
too) and hangs up. Calls run ``--concurrency`` at a time.

Figures: accuracy (answered_by as expected), the confusion per class, decision time (ms of
audio after answer) median / p95, the beeps found (within 250 ms of where the recording's
beep ends), the detectors' own CPU cost per 20 ms frame (AMD and beep detectors, the corpus
fed to them directly), and this process's CPU per call-second while the calls run (both
dialers: RTP in and out).
Targets (issue 18): accuracy >= 90 %, decision time <= 3.5 s. Progress on stderr; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ringback.clock import SystemClock
from ringback.config import SipSettings
from ringback.domain.model import Outcome
from ringback.telephony.amd import AmdDetector, AmdSettings, BeepDetector, pcm_frames
from ringback.telephony.amd_call import AmdOutcome, detect_answering_machine
from ringback.telephony.amd_corpus import Recording, make_corpus, tools_available
from ringback.telephony.base import OriginateRequest
from ringback.telephony.sip.audio import load_audio_pcm8k
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer

HOST = "127.0.0.1"
BEEP_TOLERANCE_MS = 250


def _settings(rtp_low: int, proxy_port: int = 5060) -> SipSettings:
    return SipSettings(
        proxy_host=HOST, proxy_port=proxy_port, local_host=HOST, local_port=0,
        rtp_ports=(rtp_low, rtp_low + 199), caller_id="4930123456",
    )  # fmt: skip


async def _callee(by_number: dict[str, Recording]) -> SipDialer:
    async def play(call: SipCall, called: str, calling: str) -> None:
        recording = by_number.get(called)
        if recording is None:
            await call.hangup("UNALLOCATED_NUMBER")
            return
        await call.answer()
        try:
            await call.play(recording.path)
            await call.wait(30.0)  # the line stays open until the caller hangs up
        except Exception:
            return

    dialer = SipDialer(_settings(31000), SystemClock(), on_inbound=play)
    await dialer.start()
    return dialer


async def _one(caller: SipDialer, number: str, settings: AmdSettings) -> AmdOutcome | None:
    call = await caller.originate(
        OriginateRequest(to_number=number, caller_id_number="4930123456", ring_timeout_s=10)
    )
    try:
        if await call.wait_answer() is not Outcome.ANSWERED:
            return None
        return await detect_answering_machine(
            call, settings, wait_for_beep=True, beep_timeout_s=15.0
        )
    finally:
        await call.hangup()
        await call.wait_ended()


def _detector_cost_us(corpus: list[Recording], settings: AmdSettings) -> float:
    frames = [frame for r in corpus for frame in pcm_frames(load_audio_pcm8k(r.path))]
    started = time.process_time()
    detector, beep = AmdDetector(settings), BeepDetector(settings)
    for frame in frames:  # every frame through both detectors, as a live call would
        beep.feed(frame)
        if detector.feed(frame) is not None:
            detector, beep = AmdDetector(settings), BeepDetector(settings)
    return (time.process_time() - started) / len(frames) * 1e6


async def run(concurrency: int, folder: Path) -> dict[str, Any]:
    corpus = make_corpus(folder)
    settings = AmdSettings()
    by_number = {f"77{i:03d}": r for i, r in enumerate(corpus)}
    callee = await _callee(by_number)
    caller = SipDialer(_settings(32000, callee.port), SystemClock())
    await caller.start()
    limit = asyncio.Semaphore(concurrency)
    results: dict[str, AmdOutcome | None] = {}

    async def one(number: str) -> None:
        async with limit:
            results[number] = await _one(caller, number, settings)
            found = results[number]
            print(f"{by_number[number].name}: {found}", file=sys.stderr)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    try:
        await asyncio.gather(*(one(number) for number in by_number))
    finally:
        await caller.close()
        await callee.close()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    confusion: dict[str, Counter[str]] = {}
    times, right, beeps, machines = [], 0, 0, 0
    call_seconds = 0.0
    for number, recording in by_number.items():
        found = results.get(number)
        said = found.answered_by if found is not None else "no_answer"
        confusion.setdefault(recording.kind, Counter())[said] += 1
        right += said == recording.expected
        if found is not None:
            times.append(found.amd_ms)
            call_seconds += ((found.beep_ms or found.amd_ms) + 200) / 1000
        if recording.beep_end_s is not None:
            machines += 1
            if found is not None and found.beep_ms is not None:
                beeps += abs(found.beep_ms - recording.beep_end_s * 1000) <= BEEP_TOLERANCE_MS
    ordered = sorted(times)
    return {
        "benchmark": "amd",
        "recordings": len(corpus),
        "accuracy": round(right / len(corpus), 3),
        "correct": right,
        "confusion": {kind: dict(counts) for kind, counts in confusion.items()},
        "decision_ms_median": statistics.median(ordered) if ordered else None,
        "decision_ms_p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        if ordered
        else None,
        "beeps_found": f"{beeps}/{machines}",
        "detectors_us_per_20ms_frame": round(_detector_cost_us(corpus, settings), 1),
        "process_cpu_s": round(cpu_s, 2),
        "process_cpu_ms_per_call_second": round(cpu_s * 1000 / call_seconds, 2)
        if call_seconds
        else None,
        "wall_s": round(wall, 1),
        "concurrency": concurrency,
        "transport": "SIP/RTP G.711 over 127.0.0.1, ringback callee playing each recording",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=5, help="calls at a time")
    args = parser.parse_args()
    if not tools_available():
        raise SystemExit("bench/amd.py needs espeak-ng and sox (apt-get install espeak-ng sox)")
    with tempfile.TemporaryDirectory(prefix="ringback-amd-") as folder:
        result = asyncio.run(run(args.concurrency, Path(folder)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
