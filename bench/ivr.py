"""IVR benchmark: parse + validate throughput, and interpreted elements per second.

- parse_validate_per_s (the cold path): distinct typical 50-element documents (menu,
  time-of-day Cond, Switch on the digits, templates, AddJob; each differs in one Speak text)
  parsed and validated from bytes through ``parse``: every one a miss of the parse cache
  (checked: the run's cache hits are reported and must be 0), so hashing and storing are in;
  their elements' attribute sets recur, and the parser checks each set once;
- parse_validate_unseen_attrs_per_s: the same, the parser forgetting the attribute sets it
  has seen before each document (every document from a template of its own);
- parse_validate_recurring_per_s (the recurring path): the same bytes again and again, as
  when every call of a campaign fetches the same IVR: ``parse`` answers from its cache;
- elements_per_s: a menu loop (GetDigits, Switch, Set, If, Speak, GoTo) interpreted on the
  simulator in fast mode (media takes no time), counted from the trace of executed elements.

Every figure is the median of ``--runs`` runs. Progress goes to stderr; the last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time

from ringback.clock import FakeClock
from ringback.ivr.parse import CACHE, forget_attribute_sets, parse
from ringback.ivr.simulate import simulate_call

FLOOR_PARSE_PER_S = 2_000
#: issue 19's target: documents per second, with a cache where the same document recurs
TARGET_PARSE_PER_S = 10_000

TYPICAL = b"""<?xml version="1.0" encoding="UTF-8"?>
<IVR>
  <Answer/>
  <Wait length="0.5"/>
  <Set var="zone" val="Asia/Tokyo"/>
  <Cond>
    <Clause expr="weekday(zone) GE 6">
      <Speak language="en-US" voice="en-US-Standard-C">We are closed on weekends.</Speak>
      <Hangup reason="busy"/>
    </Clause>
    <Clause expr="hour(zone) LT 9 or hour(zone) GE 18">
      <Speak language="en-US">Our office hours are nine to six.</Speak>
      <Hangup/>
    </Clause>
    <Else>
      <Speak language="en-US">Welcome to ACME, {{CallingNumber}}.</Speak>
    </Else>
  </Cond>
  <Section name="menu">
    <GetDigits numDigits="1" validDigits="1239" timeout="5" maxTries="3" finishOnKey="#">
      <Speak language="en-US">For sales press 1, for support 2, for a call back 3.</Speak>
      <Wait length="1"/>
      <Speak purpose="alert" language="en-US">Sorry, that is not an option.</Speak>
    </GetDigits>
    <Switch expr="Digits">
      <Case val="1">
        <Set var="dept" val="sales"/>
        <Speak language="en-US">Connecting you to {{dept}}.</Speak>
        <Play>audio/sales.wav</Play>
      </Case>
      <Case val="2">
        <Set var="dept" val="support"/>
        <If expr="int(CalledNumber[-1:]) % 2 == 0">
          <Then><Speak language="en-US">Support, even line.</Speak></Then>
          <Else><Speak language="en-US">Support, odd line.</Speak></Else>
        </If>
        <Play loop="2">audio/support.wav</Play>
      </Case>
      <Case val="3">
        <AddJob>{"type": "msg_call", "data": {"calling_number": "{{CalledNumber}}",
          "called_number": "{{CallingNumber}}", "audio_file": "callback.wav"},
          "options": {"delay": 10000, "attempts": 3,
                      "backoff": {"type": "fixed", "delay": 60000}}}</AddJob>
        <If expr="JobAdded">
          <Then><Speak language="en-US">We will call you back shortly.</Speak></Then>
          <Else><Speak language="en-US">Sorry, something went wrong.</Speak></Else>
        </If>
      </Case>
      <Case val="9"><GoTo>menu</GoTo></Case>
      <Default>
        <Speak language="en-US">Goodbye.</Speak>
        <Hangup/>
      </Default>
    </Switch>
  </Section>
  <Section name="survey">
    <GetDigits numDigits="1" validDigits="12345"><Speak>Rate us from 1 to 5.</Speak></GetDigits>
    <Set var="score" expr="int(Digits) if Digits else 0"/>
    <Speak>You rated us {{score}}. Thank you.</Speak>
    <Wait length="0.5"/>
  </Section>
  <Hangup/>
</IVR>
"""

LOOP = b"""<IVR>
  <Set var="i" expr="0"/>
  <Section name="menu">
    <GetDigits numDigits="1" validDigits="123"><Speak>Press a key</Speak></GetDigits>
    <Switch expr="Digits">
      <Case val="1"><Set var="i" expr="i + 1"/></Case>
      <Case val="2"><Set var="i" expr="i + 2"/></Case>
      <Default><Speak>Nothing</Speak></Default>
    </Switch>
    <If expr="i LT 600"><Then><Speak>Again {{i}}</Speak><GoTo>menu</GoTo></Then></If>
  </Section>
  <Speak>Done</Speak>
</IVR>"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


COLD_DOCUMENTS = 4000  # distinct documents per cold batch (more than the cache holds)


def distinct_documents(count: int, batch: int) -> list[bytes]:
    """``count`` documents like TYPICAL, each different (one Speak text carries a number)."""
    return [TYPICAL.replace(b"Goodbye.", b"Goodbye %d-%d." % (batch, n)) for n in range(count)]


def cold_rate(seconds: float, *, unseen: bool = False) -> tuple[float, float, int]:
    """Distinct documents per second through ``parse`` (all cache misses), per second of wall
    time and per second of CPU time; and the cache hits seen. ``unseen``: the parser forgets
    the attribute sets it has checked before each document (as if each came from a different
    template)."""
    CACHE.clear()
    hits = CACHE.hits
    count, batch, busy, cpu = 0, 0, 0.0, 0.0
    while busy < seconds:
        documents = distinct_documents(COLD_DOCUMENTS, batch)  # made outside the timing
        batch += 1
        started, cpu_started = time.perf_counter(), time.process_time()
        for document in documents:
            if unseen:
                forget_attribute_sets()
            parse(document)
        busy += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        count += len(documents)
    return count / busy, count / cpu, CACHE.hits - hits


def recurring_rate(seconds: float) -> tuple[float, float]:
    """The same document per second (wall time, CPU time)."""
    parse(TYPICAL)
    count = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            parse(TYPICAL)
        count += 100
    return count / elapsed, count / (time.process_time() - cpu_started)


async def element_rate(seconds: float) -> float:
    document = parse(LOOP)
    executed = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        result, _ = await simulate_call(document, FakeClock(), digits="1" * 1000)
        assert result.ok, result.error
        executed += sum(1 for entry in result.trace if entry.line)
    return executed / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run")
    args = parser.parse_args()
    elements = sum(1 for _ in parse(TYPICAL).root.walk())
    log(f"typical document: {elements} elements, {len(TYPICAL)} bytes")
    parse_rates, unseen_rates, recurring_rates, element_rates, cold_hits = [], [], [], [], 0
    cold_cpu_rates, recurring_cpu_rates = [], []
    for run in range(1, args.runs + 1):
        rate, cpu_rate, hits = cold_rate(args.seconds)
        parse_rates.append(rate)
        cold_cpu_rates.append(cpu_rate)
        cold_hits += hits
        log(
            f"run {run}: parse + validate, distinct documents {rate:,.0f}/s ({cpu_rate:,.0f}/CPU s)"
        )
        rate, _, hits = cold_rate(args.seconds, unseen=True)
        unseen_rates.append(rate)
        cold_hits += hits
        log(f"run {run}: parse + validate, distinct documents, attributes unseen {rate:,.0f}/s")
        rate, cpu_rate = recurring_rate(args.seconds)
        recurring_rates.append(rate)
        recurring_cpu_rates.append(cpu_rate)
        log(f"run {run}: parse + validate, the same document {rate:,.0f}/s ({cpu_rate:,.0f}/CPU s)")
        element_rates.append(asyncio.run(element_rate(args.seconds)))
        log(f"run {run}: interpreted {element_rates[-1]:,.0f} elements/s")
    results = {
        "parse_validate_per_s": round(statistics.median(parse_rates)),
        "parse_validate_unseen_attrs_per_s": round(statistics.median(unseen_rates)),
        "parse_validate_recurring_per_s": round(statistics.median(recurring_rates)),
        # per second of this process's CPU time: steadier than wall time on a shared machine
        "parse_validate_per_cpu_s": round(statistics.median(cold_cpu_rates)),
        "parse_validate_recurring_per_cpu_s": round(statistics.median(recurring_cpu_rates)),
        "parse_validate_floor_per_s": FLOOR_PARSE_PER_S,
        "parse_validate_target_per_s": TARGET_PARSE_PER_S,
        "cold_cache_hits": cold_hits,
        "elements_per_s": round(statistics.median(element_rates)),
        "document_elements": elements,
        "document_bytes": len(TYPICAL),
        "runs": args.runs,
        "python": platform.python_version(),
    }
    results["target_recurring_ok"] = results["parse_validate_recurring_per_s"] >= TARGET_PARSE_PER_S
    results["target_distinct_ok"] = results["parse_validate_per_s"] >= TARGET_PARSE_PER_S
    if results["parse_validate_per_s"] < FLOOR_PARSE_PER_S:
        log(f"below the floor of {FLOOR_PARSE_PER_S}/s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
