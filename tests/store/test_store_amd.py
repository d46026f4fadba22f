"""A call's answering-machine detection (``calls.amd``, migration 19) on both databases."""

from __future__ import annotations

from datetime import timedelta

from ringback.clock import FakeClock
from ringback.domain.amd import amd_result
from ringback.domain.model import Decision, EventType, NewEvent, Outcome, TaskKind, TaskStatus
from ringback.domain.task_rules import NewTask
from ringback.store.db import Store
from ringback.store.records import Completion
from support import leg_record

AMD = amd_result("machine", "long_greeting", 2160, 8180, "wait_for_beep")


def _task(clock: FakeClock) -> NewTask:
    return NewTask(
        kind=TaskKind.MSG_CALL, name=None,
        payload={"calling_number": "0506868000", "called_number": "0901234000",
                 "audio_file": "hi.wav", "amd": "wait_for_beep"},
        run_at=clock.now(), max_tries=1, backoff=None, max_caller_tries=0, caller_pause_s=0,
        timezone=None, start_time_utc=None,
    )  # fmt: skip


async def test_a_legs_amd_result_is_stored_and_a_leg_without_detection_has_none(
    store: Store, clock: FakeClock
) -> None:
    client = await store.ensure_client("acme", clock.now())
    queue = await store.create_queue(client, "q", clock.now(), status="on")
    ids = await store.add_tasks(client, queue.id, [_task(clock), _task(clock)], clock.now())
    claimed = (await store.claim("w1", clock.now(), 2, 30)).tasks
    completions = []
    for number, task in enumerate(claimed):
        record = leg_record(
            clock, sip_code=200, outcome=Outcome.ANSWERED, answered_at=clock.now(),
            ended_at=clock.now() + timedelta(seconds=30), amd=AMD if number == 0 else None,
        )  # fmt: skip
        record.leg_uuid = record.call_uuid = f"amd-{number}"
        done = Decision(
            status=TaskStatus.FINISHED, run_at=None, tries_used=1, caller_tries_used=0,
            attempt=1, finish_result=None, finish_comment="done",
            events=[NewEvent(EventType.TASK_FINISHED, clock.now(), {"result": "success"})],
        )  # fmt: skip
        completions.append(Completion(task.id, task.fence, done, done.events, [record]))
    assert await store.complete(completions, clock.now()) == [True, True]
    found = {}
    for task_id in ids:
        [call] = await store.calls(task_id=task_id)
        found[call.leg_uuid] = call.amd
    assert found == {"amd-0": AMD, "amd-1": None}
