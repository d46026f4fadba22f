"""SIP transport benchmark: call setups per second over UDP, TCP and TLS, ringback to ringback.

Debian's sipp is built without TLS, so the far end is a second SipDialer in this process: it
answers every inbound call at once (its own TLS listener, with a certificate the benchmark
makes with the openssl command; the caller verifies it against the benchmark's CA). For each
transport the caller offers N calls at `--cps` per second and measures originate() to answered
per call (p50 / p99) and setups per second (N / time from the first INVITE to the last
answer); then every call is hung up. Both user agents share this process's CPU, so the
figures are a floor for one side. Over TCP and TLS all calls share one connection (reuse).

Progress goes to stderr; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
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
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer

HOST = "127.0.0.1"
TRANSPORTS = ("udp", "tcp", "tls")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 it signs: (ca, cert, key)."""
    exe = shutil.which("openssl")
    if exe is None:
        raise SystemExit("openssl is not installed (Debian package openssl)")
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.pem", "b.key", "b.csr",
                                                          "b.pem"))  # fmt: skip
    ext = directory / "b.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=b"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "1", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run([exe, *map(str, args)], cwd=directory, check=True, capture_output=True)
    return ca, cert, key


async def run_transport(
    transport: str, calls: int, cps: float, certs: tuple[Path, Path, Path]
) -> dict[str, Any]:
    ca, cert, key = certs
    answered: list[SipCall] = []

    async def answer(call: SipCall, called: str, calling: str) -> None:
        await call.answer()
        answered.append(call)
        await call.wait_ended()

    far = SipSettings(proxy_host=HOST, local_host=HOST, local_port=0, rtp_ports=(48000, 51999),
                      transport=transport, tls_cert=str(cert), tls_key=str(key))  # fmt: skip
    callee = await SipDialer(far, SystemClock(), on_inbound=answer).start()
    port = callee.agent.net.tls_port if transport == "tls" else callee.port
    near = SipSettings(proxy_host=HOST, proxy_port=port, local_host=HOST, local_port=0,
                       rtp_ports=(44000, 47999), transport=transport, tls_ca=str(ca))  # fmt: skip
    caller = await SipDialer(near, SystemClock()).start()
    latencies: list[float] = []
    legs: list[SipCall] = []

    async def place(i: int) -> SipCall:
        await asyncio.sleep(i / cps)  # offered load: `cps` new calls per second
        started = time.monotonic()
        request = OriginateRequest(f"{1000 + i}", "0501234000", ring_timeout_s=30)
        call = await caller.originate(request)
        outcome = await call.wait_answer()
        if outcome is not Outcome.ANSWERED:
            raise RuntimeError(f"{transport} call {i}: {outcome} {call.record.detail}")
        latencies.append(time.monotonic() - started)
        return call

    try:
        first = time.monotonic()
        async with asyncio.timeout(120):
            legs = list(await asyncio.gather(*(place(i) for i in range(calls))))
        setup_s = max(time.monotonic() - first, 1e-9)
    finally:
        async with asyncio.timeout(60):
            await asyncio.gather(*(leg.hangup() for leg in legs), return_exceptions=True)
            await caller.close()
            await callee.close()
    result = {
        "transport": transport,
        "calls": calls,
        "setups_per_s": round(calls / setup_s, 1),
        "setup_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "setup_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "answered_by_far_end": len(answered),
    }
    say(json.dumps(result))
    return result


async def main_async(calls: int, cps: float, runs: int) -> None:
    summary: dict[str, Any] = {
        "bench": "sip_tls",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "calls": calls,
        "offered_cps": cps,
        "runs": runs,
    }
    with tempfile.TemporaryDirectory(prefix="ringback-bench-sip-tls-") as tmp:
        certs = make_certificates(Path(tmp))
        for transport in TRANSPORTS:
            results = []
            for run in range(runs):
                say(f"{transport} run {run + 1}/{runs}: {calls} calls")
                results.append(await run_transport(transport, calls, cps, certs))
                await asyncio.sleep(0.5)  # sockets wind down
            for key in ("setups_per_s", "setup_p50_ms", "setup_p99_ms"):
                values = sorted(r[key] for r in results)
                summary[f"{transport}_{key}"] = values[len(values) // 2]
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per run")
    parser.add_argument("--cps", type=float, default=100.0, help="offered new calls per second")
    parser.add_argument("--runs", type=int, default=3, help="runs per transport (median)")
    args = parser.parse_args()
    if args.calls < 1 or args.cps <= 0 or args.runs < 1:
        parser.error("--calls, --cps and --runs must be positive")
    asyncio.run(main_async(args.calls, args.cps, args.runs))


if __name__ == "__main__":
    main()
