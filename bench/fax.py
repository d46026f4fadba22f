"""Fax benchmark (issue 14, point 8): pages per minute and CPU per fax side, concurrent SIP
fax calls from one process, and success rates by packet loss for G.711 and T.38.

The document is a business letter drawn with Pillow (``letter_document``): A4 at fine
resolution (204x196 dpi, what SendFax converts to), 1-bit, ~45 lines of 11 pt text a page.

1. **engine** (in-process, no pacing): a ``--pages``-page letter at 14,400 bit/s with ECM,
   between two ``FaxEndpoint`` s through G.711 µ-law, and between two ``T38Endpoint`` s
   exchanging IFP packets. Line time per page (the sender's fax audio / T.38 session time per
   page), pages per minute of line time, and CPU per page of each side, timed separately with
   ``time.thread_time`` around that side's own calls (G.711: its ``tx`` + encode and decode +
   ``rx``; T.38: its ``tick`` and the ``rx_ifp`` of what it receives). Medians of ``--runs``.
2. **sip**: N concurrent G.711 (PCMU) fax calls placed by one ``SipDialer`` in this process
   (the measured one) to a second process (``python -m bench.fax --receiver``: a ``SipDialer``
   whose inbound calls answer and ``receive_fax``), a ``--sip-pages``-page letter each, in
   real time. This process's CPU (user + sys, % of one core, from the first INVITE to the
   last fax's end), the RTP pacing gap of every call's sent stream over its whole fax
   (``RtpSession.record_send_times``), the faxes that succeeded on each side (code 0 and
   the page count; pages are not compared here), and both sides' jitter buffer counters
   (packets late, frames missing). Beside it, a control process that only wakes every 20 ms
   gives the machine's own scheduling jitter (``control_gap_*``). One run per N
   (``--sip-runs``: medians of the runs).
3. **loss**: at each of ``--levels`` (dropped per datagram, seeded, both directions), runs
   at once in one process: T.38 with redundancy ``--t38-depth`` through the tests' UDPTL
   ``LossyRelay`` (``bench.t38_loss.run_depth``), and G.711: two ringback ``RtpSession`` s,
   each driven by the SIP path's ``FaxDriver`` (jitter buffer, fill-in, the shared 20 ms
   media clock), through the same relay (RTP over UDP; no SIP signalling: the loss is in the
   media). Success: both codes 0 and every page bit for bit.

    .venv/bin/python -m bench.fax                      # the full run (make bench), ~5 minutes
    .venv/bin/python -m bench.fax --parts engine,loss --k-t38 50 --k-g711 20
    .venv/bin/python -m bench.fax --parts sip --sizes 10,50,100 --sip-runs 3

Progress goes to stderr; the last line printed is one JSON object. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench.sip import HOST, cpu_seconds, percentile, say
from bench.t38_loss import run_depth
from PIL import Image, ImageDraw, ImageFont
from tests.fax.support_fax import bitmaps
from tests.fax.support_t38 import LossyRelay

from ringback.clock import SystemClock
from ringback.config import SipSettings
from ringback.domain.model import Outcome
from ringback.telephony.base import OriginateRequest
from ringback.telephony.fax import documents, g711
from ringback.telephony.fax.endpoint import FRAME, RATE, FaxEndpoint
from ringback.telephony.fax.result import FaxResult
from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.sip.call import SipCall
from ringback.telephony.sip.dialer import SipDialer
from ringback.telephony.sip.fax_media import FaxDriver
from ringback.telephony.sip.media import RtpSession

TARGET_CALLS = 50
TARGET_GAP_P99_MS = 25.0
TARGET_T38_AT_1PCT = 0.99
SENDER_RTP = (40000, 45999)
RECEIVER_RTP = (46000, 51999)
LOSS_RTP = (52000, 57999)
_TEXT = (
    "the of and to in we our your for is that with as on this will be by are order invoice "
    "delivery payment account contract please find attached enclosed statement period terms "
    "conditions shipment customer reference number date amount due balance regards sincerely "
    "service agreement schedule confirm received request quotation price total net days within "
    "following items quantity unit description department office meeting review signed copy"
)
WORDS = tuple(_TEXT.split())
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the document


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        with contextlib.suppress(OSError):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def letter_page(index: int, seed: int = 1) -> Image.Image:
    """One A4 page of a business letter at fine resolution: letterhead, address block,
    ~40 lines of 11 pt running text, a signature line (1-bit, 1728 pixels wide)."""
    rng = random.Random(seed * 1000 + index)
    rows = documents.page_length_limit("fine")
    page = Image.new("1", (documents.FAX_WIDTH, rows), 1)
    draw = ImageDraw.Draw(page)
    body, head = _font(31), _font(52)  # 11 pt and 18 pt at 204 dpi
    left, right = 190, documents.FAX_WIDTH - 190
    draw.text((left, 150), "ACME Logistics GmbH", font=head, fill=0)
    draw.text((left, 220), "Hafenstrasse 12 · 20457 Hamburg · +49 40 555 0100", font=body, fill=0)
    draw.line((left, 270, right, 270), fill=0, width=3)
    y = 320
    for line in ("Northwind Traders Ltd.", "Accounts Payable", "4 Market Street",
                 "London EC2A 4NE", "", f"Hamburg, 6 December 2026 — page {index + 1}",
                 "", "Re: invoice 2026-11-4711, delivery schedule"):  # fmt: skip
        draw.text((left, y), line, font=body, fill=0)
        y += 40
    y += 20
    while y < rows - 320:
        words: list[str] = []
        while True:
            candidate = " ".join([*words, rng.choice(WORDS)])
            if draw.textlength(candidate, font=body) > right - left:
                break
            words = candidate.split()
        if rng.random() < 0.12:  # a paragraph ends: a shorter line, then a blank one
            words = words[: rng.randint(3, max(3, len(words) - 2))]
        words[0] = words[0].capitalize()
        draw.text((left, y), " ".join(words) + ".", font=body, fill=0)
        y += 80 if len(words) < 8 else 40
    draw.text((left, rows - 260), "Yours sincerely,", font=body, fill=0)
    draw.text((left, rows - 160), "J. Smith, Accounts", font=body, fill=0)
    return page


def letter_document(path: Path, pages: int) -> Path:
    """A ``pages``-page letter as a ready fax TIFF (G4, fine resolution)."""
    drawn = []
    for index in range(pages):
        page = letter_page(index)
        page.info["dpi"] = (documents.X_DPI, documents.Y_DPI["fine"])
        drawn.append(page)
    documents.write_fax_tiff(drawn, path)
    return path


def same_pages(received: Path, sent: Path) -> bool:
    if not received.is_file():
        return False
    got, want = bitmaps(received), bitmaps(sent)
    return len(got) == len(want) and all(
        np.array_equal(a, b) for a, b in zip(got, want, strict=True)
    )


# ---------------------------------------------------------------- 1. the engine, in-process


def _engine_row(sent: FaxResult, got: FaxResult, cpu: list[float], ok: bool) -> dict[str, Any]:
    pages = max(sent.pages, 1)
    line_s = sent.audio_seconds / pages
    return {
        "ok": ok,
        "codes": [sent.code, got.code],
        "pages": got.pages,
        "bit_rate": sent.bit_rate,
        "ecm": sent.ecm,
        "line_s_per_page": round(line_s, 2),
        "pages_per_min": round(60 / line_s, 2) if line_s > 0 else 0.0,
        "send_cpu_ms_per_page": round(cpu[0] / pages * 1000, 2),
        "receive_cpu_ms_per_page": round(cpu[1] / pages * 1000, 2),
    }


def engine_g711(document: Path, received: Path, max_seconds: float = 600.0) -> dict[str, Any]:
    """Two audio endpoints through G.711 µ-law, each side's calls timed on their own."""
    law: g711.Law = "ulaw"
    cpu = [0.0, 0.0]
    clock = time.thread_time
    with (
        FaxEndpoint(send=document, ecm=True, local_ident="+4940555") as sender,
        FaxEndpoint(receive=received, ecm=True, local_ident="+4420777") as receiver,
    ):
        for _ in range(int(max_seconds * RATE / FRAME)):
            if sender.done and receiver.done:
                break
            t0 = clock()
            a_to_b = g711.encode(sender.tx(FRAME), law)
            t1 = clock()
            b_to_a = g711.encode(receiver.tx(FRAME), law)
            receiver.rx(g711.decode(a_to_b, law))
            t2 = clock()
            sender.rx(g711.decode(b_to_a, law))
            t3 = clock()
            cpu[0] += (t1 - t0) + (t3 - t2)
            cpu[1] += t2 - t1
        sent, got = sender.hang_up(), receiver.hang_up()
    return _engine_row(sent, got, cpu, sent.ok and got.ok and same_pages(received, document))


def engine_t38(document: Path, received: Path, max_seconds: float = 600.0) -> dict[str, Any]:
    """Two T.38 endpoints exchanging IFP packets in 20 ms ticks (``t38_exchange``'s loop,
    every packet delivered as often as T.38 asks), each side's calls timed on their own."""
    cpu = [0.0, 0.0]
    clock = time.thread_time
    with (
        T38Endpoint(send=document, ecm=True, local_ident="+4940555") as sender,
        T38Endpoint(receive=received, ecm=True, local_ident="+4420777") as receiver,
    ):
        endpoints = (sender, receiver)
        seq = [0, 0]
        for _ in range(int(max_seconds * RATE / FRAME)):
            if sender.done and receiver.done:
                break
            for side in (0, 1):
                source, sink = endpoints[side], endpoints[1 - side]
                t0 = clock()
                packets = source.tick(FRAME)
                t1 = clock()
                for packet in packets:
                    for _copy in range(packet.repeats):
                        sink.rx_ifp(packet.data, seq[side])
                    seq[side] = (seq[side] + 1) & 0xFFFF
                t2 = clock()
                cpu[side] += t1 - t0
                cpu[1 - side] += t2 - t1
        sent, got = sender.hang_up(), receiver.hang_up()
    return _engine_row(sent, got, cpu, sent.ok and got.ok and same_pages(received, document))


def median_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": len(rows), "ok": sum(r["ok"] for r in rows)}
    for key in ("line_s_per_page", "pages_per_min", "send_cpu_ms_per_page",
                "receive_cpu_ms_per_page"):  # fmt: skip
        out[key] = statistics.median(r[key] for r in rows)
    out["bit_rate"] = rows[0]["bit_rate"]
    out["ecm"] = rows[0]["ecm"]
    out["pages"] = rows[0]["pages"]
    out["codes"] = sorted({tuple(r["codes"]) for r in rows})
    return out


def bench_engine(document: Path, workdir: Path, runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    kinds: dict[str, Callable[[Path, Path], dict[str, Any]]] = {
        "g711": engine_g711,
        "t38": engine_t38,
    }
    for name, run in kinds.items():
        rows = []
        for i in range(runs):
            row = run(document, workdir / f"engine-{name}-{i}.tif")
            say(f"engine {name} run {i + 1}/{runs}: {json.dumps(row)}")
            rows.append(row)
        result[name] = median_rows(rows)
    return result


# ---------------------------------------------------------------- 2. concurrent SIP faxes


async def receiver_main(timeout_s: float) -> None:
    """The far end of part 2 (its own process): answers every call and receives the fax;
    one JSON line per fax, a first line with its SIP port and a last one with its CPU."""
    settings = SipSettings(proxy_host=HOST, proxy_port=9, local_host=HOST, local_port=0,
                           rtp_ports=RECEIVER_RTP)  # fmt: skip

    async def on_inbound(call: SipCall, _called: str, _calling: str) -> None:
        await call.answer()
        got = await call.receive_fax(timeout_s)
        await call.hangup()
        media = call.record.detail.get("fax_media", [{}])[0]
        jitter = media.get("jitter", {})
        print(json.dumps({"fax": [got.result.code, got.result.pages],
                          "cpu_ms": media.get("cpu_ms"),
                          "late": jitter.get("late", 0),
                          "missing": jitter.get("missing", 0)}), flush=True)  # fmt: skip

    dialer = await SipDialer(settings, SystemClock(), on_inbound=on_inbound).start()
    print(json.dumps({"port": dialer.port}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    await dialer.close()
    print(json.dumps({"cpu_s": round(cpu_seconds(), 3)}), flush=True)


#: A control for the pacing gaps, in a process of its own: a bare loop waking every 20 ms on
#: absolute deadlines (as the media clock does) until its stdin closes; prints its gaps'
#: p50 / p99 / max. What it sees is the machine's scheduling jitter, not ringback's.
CONTROL = """
import json, select, sys, time
gaps, last = [], time.monotonic()
deadline = last
while True:
    deadline += 0.02
    ready, _, _ = select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
    now = time.monotonic()
    if ready:
        break
    gaps.append((now - last) * 1000)
    last = now
gaps.sort()
pick = lambda q: round(gaps[round(q * (len(gaps) - 1))], 2) if gaps else None
print(json.dumps({"p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)}))
"""


async def start_control() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", CONTROL, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def stop_control(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdin is not None
    process.stdin.close()
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    try:
        return dict(json.loads(out))
    except ValueError:
        return {"error": out.decode(errors="replace")[-200:]}


class Receiver:
    """``python -m bench.fax --receiver`` in a child process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.faxes: list[tuple[int, int]] = []
        self.engine_cpu_ms: list[float] = []
        self.late = 0  # packets its jitter buffers dropped as late, all calls
        self.missing = 0  # frames filled in, all calls
        self.cpu_s = float("nan")
        self.port = 0
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, timeout_s: float) -> Receiver:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.fax", "--receiver", "--receive-timeout", str(timeout_s),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )  # fmt: skip
        self = cls(process)
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        self.port = int(json.loads(first)["port"])
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if "fax" in data:
                    self.faxes.append((int(data["fax"][0]), int(data["fax"][1])))
                    self.late += int(data.get("late", 0))
                    self.missing += int(data.get("missing", 0))
                    self._arrived.set()
                    if data.get("cpu_ms") is not None:
                        self.engine_cpu_ms.append(float(data["cpu_ms"]))
                if "cpu_s" in data:
                    self.cpu_s = float(data["cpu_s"])

    async def wait_faxes(self, count: int, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while len(self.faxes) < count:
                    self._arrived.clear()
                    await self._arrived.wait()

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


async def sip_run(calls: int, document: Path, pages: int, cps: float) -> dict[str, Any]:
    receiver = await Receiver.start(timeout_s=60.0 + 60.0 * pages)
    settings = SipSettings(proxy_host=HOST, proxy_port=receiver.port, local_host=HOST,
                           local_port=0, rtp_ports=SENDER_RTP)  # fmt: skip
    dialer = await SipDialer(settings, SystemClock()).start()
    results: list[tuple[int, int]] = []
    gaps: list[float] = []
    engine_ms: list[float] = []
    failures: list[str] = []
    jitter = {"late": 0, "missing": 0}

    async def one(i: int) -> None:
        await asyncio.sleep(i / cps)
        call = await dialer.originate(
            OriginateRequest(f"{1000 + i}", "5550300", ring_timeout_s=30, call_uuid=f"fax-{i}")
        )
        try:
            if await call.wait_answer() is not Outcome.ANSWERED:
                failures.append(f"call {i}: not answered ({call.record.detail})")
                return
            session = call.media
            if isinstance(session, RtpSession):
                session.record_send_times()
            result = await call.send_fax(document, ident="+4940555", name="letter.tif")
            results.append((result.code, result.pages))
            if isinstance(session, RtpSession):
                gaps.extend((b - a) * 1000 for a, b in itertools.pairwise(session.send_times))
            media = call.record.detail.get("fax_media", [{}])[0]
            if media.get("cpu_ms") is not None:
                engine_ms.append(float(media["cpu_ms"]))
            for key in jitter:
                jitter[key] += int(media.get("jitter", {}).get(key, 0))
        finally:
            await call.hangup()

    control = await start_control()
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    try:
        async with asyncio.timeout(120.0 + 90.0 * pages):
            outcomes = await asyncio.gather(*(one(i) for i in range(calls)), return_exceptions=True)
    finally:
        cpu1, wall1 = cpu_seconds(), time.monotonic()
        control_gaps = await stop_control(control)
        await dialer.close()
        await receiver.wait_faxes(calls, 60.0)
        await receiver.stop()
    failures += [repr(o) for o in outcomes if isinstance(o, BaseException)]
    wall = wall1 - wall0
    sent_ok = sum(1 for code, got in results if (code, got) == (0, pages))
    received_ok = sum(1 for code, got in receiver.faxes if (code, got) == (0, pages))
    row = {
        "calls": calls,
        "wall_s": round(wall, 1),
        "cpu_pct": round((cpu1 - cpu0) / wall * 100, 1),
        "cpu_pct_per_call": round((cpu1 - cpu0) / wall * 100 / calls, 3),
        "engine_cpu_ms_per_fax_send": round(statistics.median(engine_ms), 1) if engine_ms else None,
        "engine_cpu_ms_per_fax_receive": round(statistics.median(receiver.engine_cpu_ms), 1)
        if receiver.engine_cpu_ms
        else None,
        "receiver_process_cpu_s": receiver.cpu_s,
        "gap_p50_ms": round(percentile(gaps, 50), 2),
        "gap_p99_ms": round(percentile(gaps, 99), 2),
        "gap_max_ms": round(max(gaps, default=float("nan")), 2),
        "gaps_over_40ms": sum(1 for g in gaps if g > 40),
        "control_gap_p50_ms": control_gaps.get("p50"),
        "control_gap_p99_ms": control_gaps.get("p99"),
        "control_gap_max_ms": control_gaps.get("max"),
        "packets": len(gaps) + len(results),
        "sender_jitter_late": jitter["late"],
        "sender_jitter_missing": jitter["missing"],
        "receiver_jitter_late": receiver.late,
        "receiver_jitter_missing": receiver.missing,
        "sent_ok": sent_ok,
        "received_ok": received_ok,
        "sender_codes": sorted({c for c, _ in results}),
        "receiver_codes": sorted({c for c, _ in receiver.faxes}),
        "failures": failures[:5],
    }
    say(f"sip {calls} calls: {json.dumps(row)}")
    return row


async def bench_sip(
    document: Path, pages: int, sizes: list[int], runs: int, cps: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"pages_per_fax": pages, "runs": runs, "offered_cps": cps}
    for n in sizes:
        rows = []
        for run in range(runs):
            say(f"sip: {n} concurrent faxes, run {run + 1}/{runs}")
            rows.append(await sip_run(n, document, pages, cps))
            await asyncio.sleep(1.0)
        row: dict[str, Any] = {"calls": n}
        for key in ("wall_s", "cpu_pct", "cpu_pct_per_call", "gap_p50_ms", "gap_p99_ms",
                    "gap_max_ms", "gaps_over_40ms", "control_gap_p50_ms", "control_gap_p99_ms",
                    "control_gap_max_ms", "sent_ok", "received_ok"):  # fmt: skip
            row[key] = statistics.median(r[key] for r in rows)
        for key in ("engine_cpu_ms_per_fax_send", "engine_cpu_ms_per_fax_receive",
                    "receiver_process_cpu_s", "sender_jitter_late", "sender_jitter_missing",
                    "receiver_jitter_late", "receiver_jitter_missing", "sender_codes",
                    "receiver_codes", "failures"):  # fmt: skip
            row[key] = rows[-1][key]
        out[f"calls_{n}"] = row
    return out


# ---------------------------------------------------------------- 3. success rate by loss


async def g711_through_relay(
    document: Path, received: Path, *, loss: float, seed: int, max_seconds: float
) -> tuple[FaxResult, FaxResult, dict[str, Any]]:
    """One fax between two ringback ``RtpSession`` s, each driven by a ``FaxDriver`` (the
    SIP path's media: jitter buffer, fill-in, the shared media clock), PCMU, through a
    ``LossyRelay``."""
    relay = LossyRelay(loss, seed)
    to_a_side, to_b_side = await relay.start()
    a = await RtpSession.open(HOST, LOSS_RTP)
    b = await RtpSession.open(HOST, LOSS_RTP)
    a.connect(to_a_side, "PCMU", 0, None)
    b.connect(to_b_side, "PCMU", 0, None)
    relay.connect((HOST, a.local_port), (HOST, b.local_port))
    frames = round(max_seconds * RATE / FRAME)
    try:
        with (
            FaxEndpoint(send=document, local_ident="+4940555") as tx,
            FaxEndpoint(receive=received, local_ident="+4420777") as rx,
        ):
            send, receive = FaxDriver(a, tx, frames), FaxDriver(b, rx, frames)
            await asyncio.gather(a.drive(send), b.drive(receive))
            # as in a call: whoever ends first hangs up; the other hears the call end
            results = [e.hang_up() if e.done else e.call_ended() for e in (tx, rx)]
            return results[0], results[1], receive.stats()["jitter"]
    finally:
        await a.close()
        await b.close()
        relay.close()


async def g711_loss(
    document: Path, workdir: Path, levels: list[float], k: int, pages: int
) -> dict[str, Any]:
    runs = [(loss, seed) for loss in levels for seed in range(k)]
    started, cpu = time.monotonic(), time.process_time()
    results = await asyncio.gather(
        *(
            g711_through_relay(document, workdir / f"g711-{loss}-{seed}.tif", loss=loss,
                               seed=seed, max_seconds=60.0 + 40.0 * pages)
            for loss, seed in runs
        ),
        return_exceptions=True,
    )  # fmt: skip
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    by_loss: dict[str, dict[str, Any]] = {}
    for (loss, seed), run in zip(runs, results, strict=True):
        row = by_loss.setdefault(str(loss), {"ok": 0, "runs": 0, "failures": []})
        row["runs"] += 1
        if isinstance(run, BaseException):
            row["failures"].append([seed, repr(run)])
            continue
        sent, got, _jitter = run
        ok = (sent.code, got.code, got.pages) == (0, 0, pages) and same_pages(
            workdir / f"g711-{loss}-{seed}.tif", document
        )
        row["ok"] += ok
        if not ok:
            row["failures"].append([seed, sent.code, got.code])
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 2), "loss": by_loss}


async def bench_loss(
    document: Path, workdir: Path, levels: list[float], k_t38: int, k_g711: int, depth: int,
    pages: int,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"levels": levels, "pages_per_fax": pages}
    if k_t38 > 0:
        say(f"loss: T.38, redundancy {depth}, {k_t38} runs per level, all at once")
        out["t38"] = await run_depth(document, workdir, levels, k_t38, depth, pages)
        out["t38"]["k"] = k_t38
        for loss, row in out["t38"]["loss"].items():
            say(f"  T.38 loss {float(loss):.1%}: {row['ok']}/{row['runs']}")
    else:
        out["t38"] = {"skipped": "--k-t38 0"}
    if k_g711 > 0:
        say(f"loss: G.711 over RTP, {k_g711} runs per level, all at once")
        out["g711"] = await g711_loss(document, workdir, levels, k_g711, pages)
        out["g711"]["k"] = k_g711
        for loss, row in out["g711"]["loss"].items():
            say(f"  G.711 loss {float(loss):.1%}: {row['ok']}/{row['runs']}")
    else:
        out["g711"] = {"skipped": "--k-g711 0"}
    return out


# ---------------------------------------------------------------- main


def targets(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sip = report.get("sip", {})
    key = f"calls_{TARGET_CALLS}"
    if key in sip:
        row = sip[key]
        out["sip_50_calls_all_ok"] = row["sent_ok"] == row["received_ok"] == TARGET_CALLS
        out["sip_50_calls_gap_p99_ok"] = row["gap_p99_ms"] <= TARGET_GAP_P99_MS
    else:
        out["sip_50_calls"] = "not run"
    t38 = report.get("loss", {}).get("t38", {}).get("loss", {})
    if "0.01" in t38:
        row = t38["0.01"]
        out["t38_1pct_success"] = round(row["ok"] / row["runs"], 3)
        out["t38_1pct_ok"] = row["ok"] / row["runs"] >= TARGET_T38_AT_1PCT
    else:
        out["t38_1pct"] = "not run"
    return out


async def main_async(args: argparse.Namespace) -> None:
    parts = set(args.parts.split(","))
    started = time.monotonic()
    report: dict[str, Any] = {
        "bench": "fax",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "load_avg_start": [round(x, 1) for x in os.getloadavg()],
        "document": "business letter, A4, fine (204x196 dpi), 11 pt text",
    }
    with tempfile.TemporaryDirectory(prefix="ringback-bench-fax-") as tmp:
        workdir = Path(tmp)
        if "engine" in parts:
            document = letter_document(workdir / "letter.tif", args.pages)
            say(f"engine: {args.pages}-page letter, {args.runs} runs each")
            report["engine"] = {"pages": args.pages, **bench_engine(document, workdir, args.runs)}
        one = letter_document(workdir / "letter-sip.tif", args.sip_pages)
        if "sip" in parts:
            sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
            report["sip"] = await bench_sip(one, args.sip_pages, sizes, args.sip_runs, args.cps)
        if "loss" in parts:
            levels = [float(x) for x in args.levels.split(",")]
            report["loss"] = await bench_loss(
                one, workdir, levels, args.k_t38, args.k_g711, args.t38_depth, args.sip_pages
            )
    report["targets"] = targets(report)
    report["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    report["run_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parts", default="engine,sip,loss", help="comma list of the parts")
    parser.add_argument("--pages", type=int, default=3, help="pages of the engine's letter")
    parser.add_argument("--runs", type=int, default=3, help="engine runs (medians)")
    parser.add_argument("--sizes", default="10,50", help="concurrent SIP faxes, comma list")
    parser.add_argument("--sip-runs", type=int, default=1, help="runs per size (medians)")
    parser.add_argument("--sip-pages", type=int, default=1, help="pages per SIP / loss fax")
    parser.add_argument("--cps", type=float, default=25.0, help="SIP calls offered per second")
    parser.add_argument("--levels", default="0,0.005,0.01,0.02", help="loss levels")
    parser.add_argument("--k-t38", type=int, default=20, help="T.38 runs per loss level")
    parser.add_argument("--k-g711", type=int, default=10, help="G.711 runs per loss level")
    parser.add_argument("--t38-depth", type=int, default=3, help="UDPTL redundancy depth")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--receive-timeout", type=float, default=120.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receiver_main(args.receive_timeout))
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
