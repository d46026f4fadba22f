"""The chaos suite's checks (chaos/check.py) on small hand-made rows and truth lines: each one
passes on a clean history and counts the violation it exists for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos import check


def leg(
    leg_uuid: str, to: str, start: float, *, answer: float | None = None,
    end: float | None = None, pid: int = 1,
) -> list[dict[str, Any]]:  # fmt: skip
    lines: list[dict[str, Any]] = [
        {
            "ev": "originate",
            "leg_uuid": leg_uuid,
            "call_uuid": "c",
            "to": to,
            "t": start,
            "pid": pid,
        }
    ]
    if answer is not None:
        lines.append({"ev": "answer", "leg_uuid": leg_uuid, "to": to, "t": answer, "pid": pid})
    if end is not None:
        lines.append(
            {"ev": "hangup", "leg_uuid": leg_uuid, "to": to, "t": end, "pid": pid,
             "disposition": "recv_bye", "cause": "NORMAL_CLEARING"}
        )  # fmt: skip
    return lines


def task(task_id: int, status: str = "finished", tries_used: int = 1) -> dict[str, Any]:
    return {"id": task_id, "status": status, "tries_used": tries_used}


def call(leg_uuid: str, task_id: int = 1, attempt: int = 1, **extra: Any) -> dict[str, Any]:
    return {"leg_uuid": leg_uuid, "task_id": task_id, "attempt": attempt, **extra}


def test_read_truth_reads_every_process_file_and_skips_a_torn_line(tmp_path: Path) -> None:
    (tmp_path / "dials-1.jsonl").write_text(json.dumps(leg("a", "1", 0.0)[0]) + "\n")
    (tmp_path / "dials-2.jsonl").write_text(json.dumps(leg("b", "2", 0.0)[0]) + '\n{"ev": "ori')
    assert [line["leg_uuid"] for line in check.read_truth(tmp_path)] == ["a", "b"]


def test_lost_or_stuck_counts_every_unfinished_task() -> None:
    assert check.lost_or_stuck([task(1), task(2)])["violations"] == 0
    result = check.lost_or_stuck([task(1), task(2, "executed"), task(3, "delayed")])
    assert result["violations"] == 2
    assert result["unfinished_by_status"] == {"executed": 1, "delayed": 1}


def test_dial_records_finds_missing_duplicated_and_undialled_rows() -> None:
    truth = leg("a", "1", 0.0, end=1.0) + leg("b", "2", 0.0, end=1.0)
    assert check.dial_records(truth, [call("a"), call("b")])["violations"] == 0
    missing = check.dial_records(truth, [call("a")])
    assert (missing["missing"], missing["violations"]) == (1, 1)
    duplicated = check.dial_records(truth, [call("a"), call("a"), call("b")])
    assert (duplicated["duplicated"], duplicated["violations"]) == (1, 1)
    # a write-ahead row whose leg was never dialled must say so
    assert (
        check.dial_records(truth, [call("a"), call("b"), call("x", state="interrupted")])[
            "violations"
        ]
        == 0
    )
    assert (
        check.dial_records(truth, [call("a"), call("b"), call("x", state="dialing")])[
            "undialled_untruthful"
        ]
        == 1
    )
    not_sent = call("y", state="ended")
    not_sent["hangup_disposition"] = "not_sent"
    assert check.dial_records(truth, [call("a"), call("b"), not_sent])["violations"] == 0
    sent_claimed = call("z", state="ended")
    assert check.dial_records(truth, [call("a"), call("b"), sent_claimed])["violations"] == 1


def test_answered_redialled_flags_a_redial_after_an_answer_cut_by_a_kill() -> None:
    cut = leg("a", "100", 0.0, answer=1.0, pid=7)  # no hangup: its process died
    redial = leg("b", "100", 10.0, answer=11.0, end=15.0, pid=8)
    result = check.answered_redialled(cut + redial, {7: 2.0})
    assert (result["answered_legs_cut_by_kill"], result["redialled_after_cut"]) == (1, 1)
    assert result["violations"] == 1
    # the policy may ring an answered number again, but never one whose call a kill cut
    assert check.answered_redialled(cut + redial, {7: 2.0}, may_redial={"100"})["violations"] == 1
    # busy, then answered: no violation
    busy = leg("c", "200", 0.0, end=0.5)
    assert (
        check.answered_redialled(busy + leg("d", "200", 2.0, answer=3.0, end=5.0), {})["violations"]
        == 0
    )


def test_answered_redialled_allows_a_policy_redial_after_a_normal_answer() -> None:
    history = leg("a", "300", 0.0, answer=1.0, end=4.0) + leg("b", "300", 6.0, answer=7.0, end=9.0)
    assert check.answered_redialled(history, {})["redialled_after_normal_answer"] == 1
    assert check.answered_redialled(history, {}, may_redial={"300"})["violations"] == 0


def test_tries_without_leg_compares_tries_with_attempts_that_have_a_call_row() -> None:
    calls = [call("a", 1, 1), call("b", 1, 2), call("c", 2, 1)]
    assert check.tries_without_leg([task(1, tries_used=2), task(2)], calls)["violations"] == 0
    result = check.tries_without_leg([task(1, tries_used=3), task(2), task(3)], calls)
    assert (result["violations"], result["tries_without_leg"]) == (2, 2)


def test_limit_held_counts_tasks_with_live_legs_per_queue() -> None:
    numbers = {"1": 1, "2": 2, "3": 3, "4a": 4, "4b": 4}
    queues = {1: 10, 2: 10, 3: 10, 4: 10}
    truth = (
        leg("a", "1", 0.0, end=2.0)
        + leg("b", "2", 2.0, end=4.0)  # starts as a ends: never two at once
        + leg("c", "4a", 5.0, end=9.0)  # a callback: A and B of one task count once
        + leg("d", "4b", 6.0, end=9.0)
    )
    result = check.limit_held(truth, {}, numbers, queues, {10: 1}, end_time=20.0)
    assert (result["violations"], result["max_running_per_queue"]) == (0, {"10": 1})
    overlapping = truth + leg("e", "3", 1.0, end=3.0)
    result = check.limit_held(overlapping, {}, numbers, queues, {10: 1}, end_time=20.0)
    assert (result["violations"], result["max_running_per_queue"]) == (1, {"10": 2})
    (example,) = result["examples"]
    assert (example["queue"], example["at"], example["running"]) == (10, 1.0, 2)
    assert [leg["task"] for leg in example["newest"]] == [1, 3]
    assert example["ending_first"][0] == {"task": 1, "pid": 1, "start": 0.0, "end": 2.0}


def test_limit_held_ends_a_leg_at_the_kill_of_its_process() -> None:
    numbers, queues = {"1": 1, "2": 2}, {1: 10, 2: 10}
    truth = leg("a", "1", 0.0, answer=1.0, pid=5) + leg("b", "2", 3.0, end=4.0, pid=6)
    assert check.limit_held(truth, {5: 2.0}, numbers, queues, {10: 1}, 9.0)["violations"] == 0
    assert check.limit_held(truth, {}, numbers, queues, {10: 1}, 9.0)["violations"] == 1


def test_limit_held_counts_a_cut_off_hosts_legs_until_the_cut_only() -> None:
    numbers, queues = {"1": 1, "2": 2, "3": 3}, {1: 10, 2: 10, 3: 10}
    cut_off = leg("a", "1", 0.0, answer=1.0, end=8.0, pid=5)  # goes on while cut off
    reused = leg("b", "2", 6.0, end=7.0, pid=6)  # the slot taken over after the lease
    later = leg("c", "3", 9.0, end=10.0, pid=5)  # the healed host dials again
    truth = cut_off + reused + later
    assert check.limit_held(truth, {}, numbers, queues, {10: 1}, 20.0)["violations"] == 1
    result = check.limit_held(truth, {}, numbers, queues, {10: 1}, 20.0, cut=({5}, 2.0))
    assert result["violations"] == 0
    # a leg the cut-off host placed after the cut still counts
    again = truth + leg("d", "2", 9.5, end=11.0, pid=6)
    result = check.limit_held(again, {}, numbers, queues, {10: 1}, 20.0, cut=({5}, 2.0))
    assert result["violations"] == 1


def test_sampled_limit() -> None:
    assert check.sampled_limit([{1: 2}, {1: 3}], {1: 3})["violations"] == 0
    assert check.sampled_limit([{1: 2}, {1: 4}], {1: 3})["max_executed_per_queue"] == {"1": 4}


def test_events_gap_free_finds_gaps_duplicates_and_finished_counts() -> None:
    def events(task_id: int, seqs: list[int], last: str = "task.finished") -> list[dict[str, Any]]:
        return [
            {"task_id": task_id, "seq": s, "type": last if s == seqs[-1] else "task.started"}
            for s in seqs
        ]

    assert check.events_gap_free([task(1)], events(1, [1, 2, 3]))["violations"] == 0
    assert check.events_gap_free([task(1)], events(1, [1, 3]))["tasks_with_gaps"] == 1
    assert check.events_gap_free([task(1)], events(1, [1, 2, 2]))["tasks_with_gaps"] == 1
    two_finished = [*events(1, [1, 2]), {"task_id": 1, "seq": 3, "type": "task.finished"}]
    assert check.events_gap_free([task(1)], two_finished)["tasks_with_wrong_finished_count"] == 1
    unfinished = check.events_gap_free([task(1, "executed")], events(1, [1, 2], "task.started"))
    assert unfinished["violations"] == 0


def test_webhooks_delivered() -> None:
    db = [{"id": 1}, {"id": 2}, {"id": 3}]

    def got(event_id: int, task_id: int, sequence: int) -> dict[str, Any]:
        return {"event_id": str(event_id), "task_id": task_id, "sequence": sequence}

    clean = [got(1, 7, 1), got(2, 7, 2), got(2, 7, 2), got(3, 8, 1)]
    result = check.webhooks_delivered(db, clean)
    assert (result["violations"], result["redeliveries"]) == (0, 1)
    assert check.webhooks_delivered(db, clean[:2])["undelivered"] == 1
    reordered = [got(2, 7, 2), got(1, 7, 1), got(3, 8, 1)]
    assert check.webhooks_delivered(db, reordered)["tasks_out_of_order"] == 1
    other_id = [*clean, got(9, 7, 2)]
    assert check.webhooks_delivered(db, other_id)["same_sequence_different_id"] == 1


def test_sqlite_integrity() -> None:
    assert check.sqlite_integrity(["ok"])["violations"] == 0
    assert check.sqlite_integrity(["*** in database main ***", "row 3 missing"])["violations"] == 1


def test_reaped_without_death_counts_worker_lost_only_when_nobody_was_killed() -> None:
    events = [
        {"task_id": 1, "data": {"reason": "no call was placed: worker lost"}},
        {"task_id": 2, "data": {"result": "success"}},
    ]
    assert check.reaped_without_death(events, kills=3)["violations"] == 0
    result = check.reaped_without_death(events, kills=0)
    assert (result["worker_lost_events"], result["violations"]) == (1, 1)
    assert check.reaped_without_death(events[1:], kills=0)["violations"] == 0
