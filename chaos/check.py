"""The checks of the chaos suite: pure functions over database rows and truth-log lines.

The truth log (``RINGBACK_SIM_TRUTH_LOG``) is what the simulator really dialled, written by
the worker processes independently of the database; rows are plain dicts as read from the
``tasks``, ``calls`` and ``events`` tables (times in milliseconds, as stored). Each check
returns its figures and a ``violations`` count (0 passes), plus a few examples to look at.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

Row = Mapping[str, Any]
Line = Mapping[str, Any]
EXAMPLES = 5
UNFINISHED = ("scheduled", "executed", "delayed")


def read_truth(directory: Path) -> list[dict[str, Any]]:
    """Every line of every ``dials-<pid>.jsonl`` in ``directory``; a torn last line (the
    process died inside ``write``, which ``O_APPEND`` makes all-or-nothing in practice) is
    skipped."""
    lines: list[dict[str, Any]] = []
    for path in sorted(directory.glob("dials-*.jsonl")):
        for text in path.read_text().splitlines():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue
    return lines


def _legs(truth: Iterable[Line]) -> dict[str, dict[str, Line]]:
    """leg_uuid -> {"originate": line, "answer": line, "hangup": line} (those present)."""
    legs: dict[str, dict[str, Line]] = defaultdict(dict)
    for line in truth:
        legs[str(line["leg_uuid"])][str(line["ev"])] = line
    return legs


def lost_or_stuck(tasks: Sequence[Row]) -> dict[str, Any]:
    """Every seeded task must be finished at the end."""
    open_ = [row for row in tasks if str(row["status"]) != "finished"]
    by_status = Counter(str(row["status"]) for row in open_)
    return {
        "tasks": len(tasks),
        "finished": len(tasks) - len(open_),
        "unfinished_by_status": dict(by_status),
        "violations": len(open_),
        "examples": [
            {
                key: row.get(key)
                for key in ("id", "status", "tries_used", "lease_owner", "lease_until")
            }
            for row in open_[:EXAMPLES]
        ],
    }


def dial_records(truth: Sequence[Line], calls: Sequence[Row]) -> dict[str, Any]:
    """Every dialled leg has exactly one call row; a row whose leg was never dialled must say
    so: state ``interrupted`` (stored, then its worker died before dialling: closed by the
    reaper) or disposition ``not_sent`` (it could not be stored or placed: the database or the
    dialer refused)."""
    dialled = {str(line["leg_uuid"]) for line in truth if line["ev"] == "originate"}
    per_leg = Counter(str(row["leg_uuid"]) for row in calls)
    missing = sorted(dialled - set(per_leg))
    duplicated = sorted(leg for leg, n in per_leg.items() if n > 1)
    phantom = sorted(
        str(row["leg_uuid"])
        for row in calls
        if str(row["leg_uuid"]) not in dialled
        and row.get("state", "") != "interrupted"
        and row.get("hangup_disposition") != "not_sent"
    )
    return {
        "dials": len(dialled),
        "call_rows": len(calls),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "undialled_untruthful": len(phantom),
        "violations": len(missing) + len(duplicated) + len(phantom),
        "examples": (missing + duplicated + phantom)[:EXAMPLES],
    }


def answered_redialled(
    truth: Sequence[Line],
    kill_times: Mapping[int, float],
    may_redial: Iterable[str] = (),
) -> dict[str, Any]:
    """Nobody who answered is rung again. A leg answered and cut by a kill (no hangup line, or
    its process was killed before the hangup was due) followed by another originate to the same
    number is always a violation; after a leg that answered and ended normally, a redial is one
    unless the number is in ``may_redial`` (the task's own policy rings it again, such as the A
    number of a callback whose B leg failed)."""
    allowed = set(may_redial)
    legs = _legs(truth)
    by_number: dict[str, list[dict[str, Line]]] = defaultdict(list)
    for events in legs.values():
        if "originate" in events:
            by_number[str(events["originate"]["to"])].append(events)
    cut_redials: list[str] = []
    normal_redials: list[str] = []
    answered_cut = 0
    for number, numbered in by_number.items():
        numbered.sort(key=lambda ev: float(ev["originate"]["t"]))
        for index, events in enumerate(numbered):
            if "answer" not in events:
                continue
            killed_at = kill_times.get(int(events["originate"]["pid"]))
            hangup = events.get("hangup")
            cut = hangup is None or (killed_at is not None and float(hangup["t"]) > killed_at)
            answered_cut += cut
            later = len(numbered) - index - 1
            if later and cut:
                cut_redials.append(number)
            elif later and number not in allowed:
                normal_redials.append(number)
    return {
        "answered_legs_cut_by_kill": answered_cut,
        "redialled_after_cut": len(set(cut_redials)),
        "redialled_after_normal_answer": len(set(normal_redials)),
        "violations": len(set(cut_redials) | set(normal_redials)),
        "examples": sorted(set(cut_redials) | set(normal_redials))[:EXAMPLES],
    }


def tries_without_leg(tasks: Sequence[Row], calls: Sequence[Row]) -> dict[str, Any]:
    """A try counts only if a leg was written: ``tries_used`` <= distinct attempts with a call
    row."""
    attempts: dict[int, set[int]] = defaultdict(set)
    for row in calls:
        if row["task_id"] is not None and row["attempt"] is not None:
            attempts[int(row["task_id"])].add(int(row["attempt"]))
    bad = [row for row in tasks if int(row["tries_used"]) > len(attempts.get(int(row["id"]), ()))]
    spent = sum(int(row["tries_used"]) - len(attempts.get(int(row["id"]), ())) for row in bad)
    return {
        "tries_used": sum(int(row["tries_used"]) for row in tasks),
        "tasks_with_tries_without_leg": len(bad),
        "tries_without_leg": spent,
        "violations": len(bad),
        "examples": [int(row["id"]) for row in bad[:EXAMPLES]],
    }


def limit_held(
    truth: Sequence[Line],
    kill_times: Mapping[int, float],
    task_of_number: Mapping[str, int],
    queue_of_task: Mapping[int, int],
    limits: Mapping[int, int],
    end_time: float,
    cut: tuple[set[int], float] | None = None,
) -> dict[str, Any]:
    """From the truth log alone: per queue, the number of tasks with a live leg (originate to
    hangup, or to the kill of its process) never exceeds the queue's concurrent_task_limit.

    ``cut``: the workers (pids) of a host cut off the database, and when. Their calls in
    progress go on (as in any outage), but the other hosts take over their tasks' slots once
    the leases run out: the limit is kept among the workers that reach the database, so those
    legs count until the cut only (README, Reliability)."""
    changes: list[tuple[float, int, int, Line]] = []  # (time, +1/-1, task, originate line)
    for events in _legs(truth).values():
        start = events.get("originate")
        if start is None or str(start["to"]) not in task_of_number:
            continue
        task = task_of_number[str(start["to"])]
        hangup = events.get("hangup")
        killed = kill_times.get(int(start["pid"]))
        end = float(hangup["t"]) if hangup is not None else (killed or end_time)
        if killed is not None:
            end = min(end, killed)
        if cut is not None and int(start["pid"]) in cut[0] and float(start["t"]) <= cut[1]:
            end = min(end, cut[1])
        changes.append((float(start["t"]), 1, task, {**start, "end": end}))
        changes.append((end, -1, task, start))
    changes.sort(key=lambda change: (change[0], change[1]))  # ends before starts at a tie
    live_legs: Counter[int] = Counter()
    live: dict[int, dict[int, Line]] = defaultdict(dict)  # queue -> task -> its latest leg
    peak: dict[int, int] = {queue: 0 for queue in limits}
    over: dict[int, dict[str, Any]] = {}  # queue -> the first moment it was over its limit
    for moment, step, task, leg in changes:
        queue = queue_of_task[task]
        before = live_legs[task]
        live_legs[task] += step
        if step > 0:
            live[queue][task] = leg
        elif before == 1:
            live[queue].pop(task, None)
        running = len(live[queue])
        peak[queue] = max(peak.get(queue, 0), running)
        if running > limits[queue] and queue not in over:
            over[queue] = _over_example(queue, moment, live[queue])
    return {
        "max_running_per_queue": {str(q): n for q, n in sorted(peak.items())},
        "limit_per_queue": {str(q): n for q, n in sorted(limits.items())},
        "violations": len(over),
        "examples": [over[queue] for queue in sorted(over)][:EXAMPLES],
    }


def _over_example(queue: int, moment: float, live: Mapping[int, Line]) -> dict[str, Any]:
    """The queue, the moment and the legs live then: the newest started (the one over the
    limit is among them) and the next to end."""

    def leg(task: int, line: Line) -> dict[str, Any]:
        return {
            "task": task,
            "pid": line["pid"],
            "start": round(float(line["t"]), 3),
            "end": round(float(line["end"]), 3),
        }

    legs = [leg(task, line) for task, line in live.items()]
    return {
        "queue": queue,
        "at": round(moment, 3),
        "running": len(legs),
        "newest": sorted(legs, key=lambda x: x["start"])[-3:],
        "ending_first": sorted(legs, key=lambda x: x["end"])[:3],
    }


def sampled_limit(
    samples: Sequence[Mapping[int, int]], limits: Mapping[int, int]
) -> dict[str, Any]:
    """``count(*) where status = 'executed'`` per queue, sampled during the run."""
    peak = {queue: max((s.get(queue, 0) for s in samples), default=0) for queue in limits}
    over = sorted(q for q, n in peak.items() if n > limits[q])
    return {
        "samples": len(samples),
        "max_executed_per_queue": {str(q): n for q, n in sorted(peak.items())},
        "violations": len(over),
        "examples": over[:EXAMPLES],
    }


def events_gap_free(tasks: Sequence[Row], events: Sequence[Row]) -> dict[str, Any]:
    """Per task the event ``seq`` is 1..n without gap or duplicate, and a finished task has
    exactly one ``task.finished``."""
    seqs: dict[int, list[int]] = defaultdict(list)
    finished: Counter[int] = Counter()
    for row in events:
        if row["task_id"] is None:
            continue
        task = int(row["task_id"])
        seqs[task].append(int(row["seq"]))
        if row["type"] == "task.finished":
            finished[task] += 1
    gaps: list[int] = []
    finish_bad: list[int] = []
    for row in tasks:
        task = int(row["id"])
        got = sorted(seqs.get(task, []))
        if got != list(range(1, len(got) + 1)) or not got:
            gaps.append(task)
        expected = 1 if str(row["status"]) == "finished" else 0
        if finished[task] != expected:
            finish_bad.append(task)
    return {
        "events": len(events),
        "tasks_with_gaps": len(gaps),
        "tasks_with_wrong_finished_count": len(finish_bad),
        "violations": len(gaps) + len(finish_bad),
        "examples": (gaps + finish_bad)[:EXAMPLES],
    }


def reaped_without_death(events: Sequence[Row], kills: int) -> dict[str, Any]:
    """Events that say a task's worker was lost (the reaper acted). With no worker killed, the
    only way to lose one is a lease that ran out while the database was unreachable, which the
    reaper must not act on: then each one is a violation."""
    lost = [row for row in events if "worker lost" in json.dumps(row.get("data"))]
    return {
        "worker_lost_events": len(lost),
        "kills": kills,
        "violations": len(lost) if kills == 0 else 0,
        "examples": sorted({int(row["task_id"]) for row in lost if row["task_id"]})[:EXAMPLES],
    }


def webhooks_delivered(events: Sequence[Row], deliveries: Sequence[Row]) -> dict[str, Any]:
    """Every event of the subscribed client reached the receiver; duplicates only as the same
    event id (at-least-once redelivery); first deliveries in ``sequence`` order per task.

    ``deliveries``: what the receiver got, in arrival order: ``event_id``, ``task_id``,
    ``sequence``."""
    event_ids = {str(row["id"]) for row in events}
    got = Counter(str(d["event_id"]) for d in deliveries)
    undelivered = sorted(event_ids - set(got))
    ids_per_slot: dict[tuple[int, int], set[str]] = defaultdict(set)
    for d in deliveries:
        ids_per_slot[(int(d["task_id"]), int(d["sequence"]))].add(str(d["event_id"]))
    conflicting = sorted(slot for slot, ids in ids_per_slot.items() if len(ids) > 1)
    last_first: dict[int, int] = {}
    seen: set[str] = set()
    out_of_order: set[int] = set()
    for d in deliveries:
        event_id = str(d["event_id"])
        if event_id in seen:
            continue
        seen.add(event_id)
        task, sequence = int(d["task_id"]), int(d["sequence"])
        if sequence < last_first.get(task, 0):
            out_of_order.add(task)
        last_first[task] = max(last_first.get(task, 0), sequence)
    return {
        "events": len(event_ids),
        "requests": len(deliveries),
        "redeliveries": sum(n - 1 for n in got.values()),
        "undelivered": len(undelivered),
        "same_sequence_different_id": len(conflicting),
        "tasks_out_of_order": len(out_of_order),
        "violations": len(undelivered) + len(conflicting) + len(out_of_order),
        "examples": [*undelivered[:EXAMPLES], *[str(s) for s in conflicting[:EXAMPLES]]],
    }


def sqlite_integrity(result: Sequence[str]) -> dict[str, Any]:
    """``PRAGMA integrity_check`` answers the single row ``ok``."""
    ok = list(result) == ["ok"]
    return {
        "integrity_check": "ok" if ok else list(result)[:EXAMPLES],
        "violations": 0 if ok else 1,
    }
