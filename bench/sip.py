"""SIP benchmark: N concurrent G.711 calls from one ringback process (SipDialer) to sipp.

For each N (default 10, 50, 100, 150, 200, 300, 400) a fresh `sipp -sn uas -rtp_echo` answers
every call and echoes its RTP. The benchmark process places the N calls at once through the real
dialer, then streams audio on all of them (one 20 ms PCMU packet per call, paced by the media
clock, while sipp echoes it back) and measures, over a steady window:

- setup latency: originate() to answered, per call (p50 / p99), and call setups per second
  (N / time from the first INVITE to the last answer), the calls offered at `--cps` per
  second (default 100: twice the floor; sipp's built-in UAS aborts a call when an INVITE
  retransmission reaches it after its 200 OK, which a burst of 150 simultaneous INVITEs
  provokes);
- CPU of this process (user + sys, % of one core), CPU per call, CPU per packet (µs per
  packet sent or received: the figure that stays put when a loaded machine starves the
  process, which then sends fewer packets than it should: ``sent_ratio`` < 1) and the same as
  CPU per call at the full 50 packets a second each way, and the kernel's share of it;
- inter-packet gap of every call's sent stream (p50 / p99 / max, and gaps > 40 ms): the time
  between consecutive RTP sends of a call (the socket send is synchronous; on loopback that is
  when the packet is on the wire);
- packets echoed back, as a check that media really flowed both ways.

Floors (issue 6): with 150 calls in one process, p99 gap <= 25 ms; >= 50 setups/s. Target
(issue 19): the same p99 gap with 400 calls (``target_gap_p99_ok``).
Progress goes to stderr; the last line printed is one JSON object.

``--srtp``: sipp does not speak SRTP, so the far end is another ringback process (this script
with ``--peer``: a dialer with ``srtp=optional`` that answers every call and plays a tone back,
so both directions are protected and checked). Each size runs twice against it, plain RTP
(``rtp_calls_N_*``) and SRTP with SDES keys (``srtp_calls_N_*``, AES_CM_128_HMAC_SHA1_80), and
the JSON has both side by side with the 1-minute load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ringback.clock import SystemClock
from ringback.config import SipSettings
from ringback.domain.model import Outcome
from ringback.telephony.base import OriginateRequest
from ringback.telephony.sip.audio import tone_pcm8k
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer
from ringback.telephony.sip.media import RtpSession

HOST = "127.0.0.1"
FLOOR_GAP_P99_MS = 25.0
FLOOR_SETUPS_PER_S = 50.0
FLOOR_CALLS = 150
TARGET_CALLS = 400  # issue 19: 400 calls in one process at the same p99 gap


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port(even: bool = False) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if not even or port % 2 == 0:
            return port


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class SippUas:
    """`sipp -sn uas -rtp_echo` on free ports, stopped by PID."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("sipp")
        if exe is None:
            raise SystemExit("sipp is not installed (Debian package sip-tester)")
        self.sip_port = free_port()
        self.media_port = free_port(even=True)
        self.log = workdir / f"sipp-{self.sip_port}.out"
        self.errors = workdir / f"sipp-{self.sip_port}.err"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [exe, "-sn", "uas", "-rtp_echo", "-i", HOST, "-p", str(self.sip_port),
                 "-mi", HOST, "-mp", str(self.media_port), "-nostdin", "-max_socket", "4096",
                 "-trace_err", "-error_file", str(self.errors), "-timeout", "600s"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                start_new_session=True,
            )  # fmt: skip
        time.sleep(0.5)
        if self.process.poll() is not None:
            raise SystemExit(f"sipp exited: {self.log.read_text(errors='replace')[-2000:]}")

    def cpu_seconds(self) -> float:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_sys_seconds() -> float:
    """The kernel's share of :func:`cpu_seconds` (the sendto/recvfrom syscalls, epoll)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


class RingbackPeer(SippUas):
    """This script with ``--peer``: a ringback dialer answering with SRTP optional (its
    process is watched and stopped as sipp's is)."""

    def __init__(self, workdir: Path) -> None:
        self.errors = workdir / "peer.err"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--peer"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.errors.open("wb"), start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            raise SystemExit(f"the SRTP peer did not start: {self.errors.read_text()[-2000:]}")
        self.sip_port = int(line)


async def peer_main() -> None:
    """Answer every call (SRTP optional: SDES keys when offered) and play a tone back."""
    settings = SipSettings(proxy_host=HOST, proxy_port=9, local_host=HOST, local_port=0,
                           rtp_ports=(48000, 55999), srtp="optional")  # fmt: skip
    tone = tone_pcm8k(300.0, 10.0, level=0.3)

    async def answer(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        session = call.media
        with contextlib.suppress(Exception):  # the call ended: the session is closed
            while session is not None:
                await session.play_pcm(tone)

    dialer = await SipDialer(settings, SystemClock(), on_inbound=answer).start()
    print(dialer.port, flush=True)
    await asyncio.Event().wait()  # until SIGTERM


async def run_size(
    calls: int,
    cps: float,
    window_s: float,
    warmup_s: float,
    workdir: Path,
    srtp: str | None = None,  # None: sipp; "off" / "required": the ringback peer
) -> dict[str, Any]:
    sipp = SippUas(workdir) if srtp is None else RingbackPeer(workdir)
    settings = SipSettings(proxy_host=HOST, proxy_port=sipp.sip_port, local_host=HOST,
                           local_port=0, rtp_ports=(44000, 47999), srtp=srtp or "off")  # fmt: skip
    dialer = await SipDialer(settings, SystemClock()).start()
    audio = tone_pcm8k(440.0, warmup_s + window_s + 5.0, level=0.3)
    legs: list[SipCall] = []
    players: list[asyncio.Task[None]] = []
    try:
        latencies: list[float] = []

        async def place(i: int) -> SipCall:
            await asyncio.sleep(i / cps)  # offered load: `cps` new calls per second
            started = time.monotonic()
            call = await dialer.originate(
                OriginateRequest(f"{1000 + i}", "0501234000", ring_timeout_s=30, call_uuid=str(i))
            )
            outcome = await call.wait_answer()
            if outcome is not Outcome.ANSWERED:
                raise RuntimeError(f"call {i}: {outcome} {call.record.detail}")
            latencies.append(time.monotonic() - started)
            return call

        first = time.monotonic()
        try:
            async with asyncio.timeout(60):
                legs = list(await asyncio.gather(*(place(i) for i in range(calls))))
        except (RuntimeError, TimeoutError):
            if sipp.errors.exists():
                say(sipp.errors.read_text(errors="replace")[:3000])
            legs = dialer.live_calls()
            raise
        setup_s = max(time.monotonic() - first, 1e-9)
        sessions = [leg.media for leg in legs]
        assert all(isinstance(s, RtpSession) for s in sessions)
        rtp = [s for s in sessions if isinstance(s, RtpSession)]
        players = [asyncio.create_task(s.play_pcm(audio)) for s in rtp]
        await asyncio.sleep(warmup_s)
        for s in rtp:
            s.record_send_times()
        received_before = sum(s.stats["packets_received"] for s in rtp)
        cpu0, sipp0, wall0 = cpu_seconds(), sipp.cpu_seconds(), time.monotonic()
        sys0 = cpu_sys_seconds()
        await asyncio.sleep(window_s)
        cpu1, sipp1, wall1 = cpu_seconds(), sipp.cpu_seconds(), time.monotonic()
        sys1 = cpu_sys_seconds()
        received = sum(s.stats["packets_received"] for s in rtp) - received_before
        gaps: list[float] = []
        for s in rtp:
            times = s.send_times
            gaps.extend((b - a) * 1000 for a, b in itertools.pairwise(times))
            s.record_send_times(False)
    finally:
        for task in players:
            task.cancel()
        await asyncio.gather(*players, return_exceptions=True)
        async with asyncio.timeout(60):
            await asyncio.gather(*(leg.hangup() for leg in legs), return_exceptions=True)
            await dialer.close()
        sipp.stop()
    wall = wall1 - wall0
    cpu_pct = (cpu1 - cpu0) / wall * 100
    expected = calls * wall / 0.020
    sent = len(gaps) + len(rtp)
    # CPU per call at full rate: the CPU of one packet each way (sent, and its echo received)
    # times 50 packets a second. Unlike cpu_per_call_pct it does not shrink when a starved
    # process sends fewer packets than it should (a loaded machine).
    per_packet_s = (cpu1 - cpu0) / max(1, sent + received)
    result = {
        "calls": calls,
        "setup_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "setup_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "setups_per_s": round(calls / setup_s, 1),
        "cpu_pct": round(cpu_pct, 1),
        "cpu_per_call_pct": round(cpu_pct / calls, 3),
        "cpu_us_per_packet": round(per_packet_s * 1e6, 2),
        "cpu_per_call_full_rate_pct": round(per_packet_s * 2 * 50 * 100, 3),
        "cpu_sys_share": round((sys1 - sys0) / max(1e-9, cpu1 - cpu0), 3),
        "sipp_cpu_pct": round((sipp1 - sipp0) / wall * 100, 1),
        "gap_p50_ms": round(percentile(gaps, 50), 2),
        "gap_p99_ms": round(percentile(gaps, 99), 2),
        "gap_max_ms": round(max(gaps, default=float("nan")), 2),
        "gaps_over_40ms": sum(1 for g in gaps if g > 40),
        "packets_sent": sent,
        "sent_ratio": round(sent / expected, 3),
        "echo_received_ratio": round(received / expected, 3),
        "sipp_errors": srtp is None and sipp.errors.exists() and sipp.errors.stat().st_size > 0,
        "packets_unauthenticated": sum(s.stats["packets_unauthenticated"] for s in rtp),
        "srtp_calls": sum(1 for s in rtp if s.stats["srtp"]),
    }
    say(json.dumps(result))
    return result


async def srtp_main(
    sizes: list[int], cps: float, runs: int, window_s: float, warmup_s: float
) -> None:
    """Plain RTP and SRTP side by side, both against the ringback peer."""
    summary: dict[str, Any] = {"bench": "sip-srtp", "date": time.strftime("%Y-%m-%d"),
                               "machine": f"{os.cpu_count()} CPU, Python "
                               f"{platform.python_version()}", "runs": runs,
                               "offered_cps": cps, "window_s": window_s}  # fmt: skip
    keys = ("calls", "setups_per_s", "cpu_pct", "cpu_per_call_pct", "cpu_us_per_packet",
            "gap_p50_ms", "gap_p99_ms",
            "gap_max_ms", "gaps_over_40ms", "echo_received_ratio", "packets_unauthenticated",
            "srtp_calls")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ringback-bench-srtp-") as tmp:
        for n in sizes:
            for mode in ("off", "required"):
                results = []
                for run in range(runs):
                    say(f"run {run + 1}/{runs}: {n} calls, srtp={mode}")
                    results.append(await run_size(n, cps, window_s, warmup_s, Path(tmp), mode))
                    await asyncio.sleep(1.0)
                prefix = f"{'srtp' if mode == 'required' else 'rtp'}_calls_{n}"
                for key in keys[1:]:
                    summary[f"{prefix}_{key}"] = statistics.median(r[key] for r in results)
    summary["load_average_1m"] = round(os.getloadavg()[0], 2)
    if f"srtp_calls_{FLOOR_CALLS}_gap_p99_ms" in summary:
        summary["srtp_floor_gap_p99_ok"] = (
            summary[f"srtp_calls_{FLOOR_CALLS}_gap_p99_ms"] <= FLOOR_GAP_P99_MS
            and summary[f"srtp_calls_{FLOOR_CALLS}_srtp_calls"] == FLOOR_CALLS
        )
    print(json.dumps(summary))


async def main_async(
    sizes: list[int], cps: float, runs: int, window_s: float, warmup_s: float
) -> None:
    with tempfile.TemporaryDirectory(prefix="ringback-bench-sip-") as tmp:
        per_size: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
        for run in range(runs):
            for n in sizes:
                say(f"run {run + 1}/{runs}: {n} calls")
                per_size[n].append(await run_size(n, cps, window_s, warmup_s, Path(tmp)))
                await asyncio.sleep(1.0)  # sipp's sockets and ours wind down
    summary: dict[str, Any] = {
        "bench": "sip",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "runs": runs,
        "offered_cps": cps,
        "window_s": window_s,
    }
    for n, results in per_size.items():
        for key in ("setup_p50_ms", "setup_p99_ms", "setups_per_s", "cpu_pct",
                    "cpu_per_call_pct", "cpu_us_per_packet", "cpu_per_call_full_rate_pct",
                    "cpu_sys_share", "sipp_cpu_pct", "gap_p50_ms", "gap_p99_ms", "gap_max_ms",
                    "gaps_over_40ms", "sent_ratio", "echo_received_ratio"):  # fmt: skip
            summary[f"calls_{n}_{key}"] = statistics.median(r[key] for r in results)
        summary[f"calls_{n}_sipp_errors"] = any(r["sipp_errors"] for r in results)
    reference = FLOOR_CALLS if FLOOR_CALLS in per_size else max(per_size)
    summary["setups_per_s"] = summary[f"calls_{reference}_setups_per_s"]
    if f"calls_{FLOOR_CALLS}_gap_p99_ms" in summary:
        summary["floor_gap_p99_ok"] = summary[f"calls_{FLOOR_CALLS}_gap_p99_ms"] <= FLOOR_GAP_P99_MS
    if f"calls_{TARGET_CALLS}_gap_p99_ms" in summary:  # issue 19's target
        summary["target_gap_p99_ok"] = (
            summary[f"calls_{TARGET_CALLS}_gap_p99_ms"] <= FLOOR_GAP_P99_MS
        )
    summary["load_average_1m"] = round(os.getloadavg()[0], 2)
    summary["floor_setups_ok"] = summary["setups_per_s"] >= FLOOR_SETUPS_PER_S
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sizes", default="10,50,100,150,200,300,400", help="concurrent calls, comma list"
    )
    parser.add_argument("--cps", type=float, default=100.0, help="offered new calls per second")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (median reported)")
    parser.add_argument("--window", type=float, default=8.0, help="measured seconds per size")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--srtp", action="store_true", help="plain RTP vs SRTP, ringback peer")
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(peer_main())
        return
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if not sizes or min(sizes) < 1:
        parser.error("--sizes needs positive call counts")
    run = srtp_main if args.srtp else main_async
    asyncio.run(run(sizes, args.cps, args.runs, args.window, args.warmup))


if __name__ == "__main__":
    main()
