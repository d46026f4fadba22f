"""The engine end to end with a fake clock: retries, counters, calling hours, on/off, leases.

Every test runs on SQLite and on PostgreSQL. Calls go to the simulator in fast mode; time is a
FakeClock moved by the test.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ringback.clock import FakeClock
from ringback.domain.model import AttemptResult, Outcome
from ringback.domain.rows import QueueChanges
from ringback.service import InvalidInput, TaskService
from ringback.store.db import Store, open_store
from ringback.store.records import Completion
from ringback.telephony.base import OriginateRequest
from ringback.telephony.sim import SimCall, SimDialer, load_sim_rules
from support import PgSchema, WatchedClock
from worker_env import B_NUMBER, BUSY, CALLER, INVALID, OK, WorkerEnv, until, worker_env


@pytest.fixture
async def env(store: Store, clock: WatchedClock, tmp_path: Path) -> WorkerEnv:
    return await worker_env(store, clock, tmp_path)


async def test_msg_call_plays_the_message_and_finishes_with_success(env: WorkerEnv) -> None:
    task_id = await env.msg_call()
    assert await env.worker.drain() == 1
    task = await env.task(task_id)
    assert (task.status, task.finish_result, task.attempt) == ("finished", "success", 1)
    [call] = await env.store.calls(task_id=task_id)
    assert call.outcome == "answered" and call.sip_code == 200
    assert [p["file"] for p in call.played] == ["hi.wav"]  # the storage name, not a path
    assert task.cdr == call.call_uuid
    events = [e.type for e in await env.store.events_for_task(task_id)]
    assert events == [
        "task.created",
        "task.started",
        "call.answered",
        "call.ended",
        "task.finished",
    ]


async def test_fixed_backoff_waits_the_same_delay_before_every_retry(env: WorkerEnv) -> None:
    task_id = await env.msg_call(BUSY, attempts=3, backoff={"type": "fixed", "delay": 10_000})
    task = await env.run_until_finished(task_id, step_s=0.5)
    assert (task.finish_result, task.attempt, task.tries_used) == ("failed", 3, 3)
    assert "attempts exhausted (3 of 3)" in (task.finish_comment or "")
    assert await env.start_offsets(task_id) == [0.0, 10.0, 20.0]


async def test_exponential_backoff_doubles_the_delay_for_each_retry(env: WorkerEnv) -> None:
    task_id = await env.msg_call(BUSY, attempts=4, backoff={"type": "exponential", "delay": 1000})
    await env.run_until_finished(task_id, step_s=0.25)
    assert await env.start_offsets(task_id) == [0.0, 1.0, 3.0, 7.0]


async def test_jitter_draws_each_pause_within_its_band(env: WorkerEnv) -> None:
    backoff = {"type": "exponential", "delay": 10_000, "jitter": 0.5}
    task_id = await env.msg_call(BUSY, attempts=4, backoff=backoff)
    await env.run_until_finished(task_id, step_s=0.1)
    offsets = await env.start_offsets(task_id)
    pauses = [b - a for a, b in itertools.pairwise(offsets)]
    for n, pause in enumerate(pauses, start=1):
        full = 10 * 2 ** (n - 1)
        assert full * 0.5 - 0.1 <= pause <= full + 0.1, (n, pause)
    assert len(set(pauses)) == 3


async def test_first_try_waits_the_job_delay(env: WorkerEnv) -> None:
    task_id = await env.msg_call(delay=10_000)
    assert await env.worker.drain() == 0
    env.clock.advance(9.999)
    assert await env.worker.drain() == 0
    env.clock.advance(0.001)
    assert await env.worker.drain() == 1
    assert (await env.task(task_id)).finish_result == "success"


async def test_try_again_pause_spaces_callback_retries(env: WorkerEnv) -> None:
    task_id = await env.callback(b_number=BUSY, try_count=3, try_again_pause="45")
    task = await env.run_until_finished(task_id, step_s=1)
    assert (task.finish_result, task.tries_used) == ("failed", 3)
    offsets = await env.start_offsets(task_id)
    assert offsets == [0.0, 45.0, 90.0]


async def test_callback_success_connects_a_and_b(env: WorkerEnv) -> None:
    task_id = await env.callback()
    await env.worker.drain()
    task = await env.task(task_id)
    assert task.finish_result == "success"
    legs = {c.leg: c for c in await env.store.calls(task_id=task_id)}
    assert legs["a"].bridged_at is not None and legs["b"].bridged_at is not None
    assert legs["a"].bridged_with == legs["b"].leg_uuid
    events = [e.type for e in await env.store.events_for_task(task_id)]
    assert events.index("call.bridged") < events.index("task.finished")
    assert events[-1] == "task.finished" and events.count("call.answered") == 2


async def test_try_count_caller_spends_caller_tries_on_a_leg_failures(env: WorkerEnv) -> None:
    # A busy: only the caller counter is spent, with the caller pause; it ends the task.
    task_id = await env.callback(
        a_number=BUSY,
        try_count=10,
        try_again_pause=100,
        try_count_caller=3,
        try_again_pause_caller=20,
    )
    task = await env.run_until_finished(task_id)
    assert (task.caller_tries_used, task.tries_used, task.attempt) == (3, 0, 3)
    assert "caller attempts exhausted (3 of 3)" in (task.finish_comment or "")
    assert await env.start_offsets(task_id) == [0.0, 20.0, 40.0]


async def test_try_count_caller_keeps_counting_when_b_fails(env: WorkerEnv) -> None:
    # A answers, B busy: both counters are spent and the plain pause applies; the caller
    # counter still ends the task before try_count does.
    task_id = await env.callback(
        b_number=BUSY,
        try_count=10,
        try_again_pause=100,
        try_count_caller=2,
        try_again_pause_caller=20,
    )
    task = await env.run_until_finished(task_id)
    assert (task.caller_tries_used, task.tries_used) == (2, 2)
    assert await env.start_offsets(task_id) == [0.0, 100.0]


async def test_try_count_zero_caller_counter_uses_try_count_only(env: WorkerEnv) -> None:
    task_id = await env.callback(a_number=BUSY, try_count=2, try_again_pause=5)
    task = await env.run_until_finished(task_id)
    assert (task.caller_tries_used, task.tries_used, task.attempt) == (0, 2, 2)


async def test_invalid_number_is_never_retried(env: WorkerEnv) -> None:
    task_id = await env.msg_call(INVALID, attempts=5, backoff={"type": "fixed", "delay": 1000})
    await env.worker.drain()
    task = await env.task(task_id)
    assert (task.status, task.finish_result, task.attempt) == ("finished", "failed", 1)
    assert "404" in (task.finish_comment or "") or "invalid" in (task.finish_comment or "")


async def test_try_count_above_50_is_refused_and_nothing_is_stored(env: WorkerEnv) -> None:
    queue = await env.store.ensure_queue(env.client_id, "q", env.clock.now())
    good = {"a_number": OK, "b_number": B_NUMBER}
    with pytest.raises(InvalidInput) as caught:
        await env.service.add_callback_tasks(
            env.client_id, queue.id, [good, {**good, "try_count": 51}]
        )
    assert caught.value.details[0]["loc"] == [1, "try_count"]
    assert await env.store.list_tasks(env.store.clock.now(), client_id=env.client_id) == []


async def test_switched_off_queue_dispatches_nothing_until_switched_on(env: WorkerEnv) -> None:
    task_id = await env.msg_call()
    queue_id = (await env.task(task_id)).queue_id
    await env.store.update_queue(queue_id, QueueChanges(status="off"), env.clock.now())
    env.clock.advance(3600)
    assert await env.worker.drain() == 0
    task = await env.task(task_id)
    assert (task.status, task.blocked_reason) == ("scheduled", "queue_off")
    await env.store.update_queue(queue_id, QueueChanges(status="on"), env.clock.now())
    assert await env.worker.drain() == 1
    assert (await env.task(task_id)).finish_result == "success"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "saturday", "expected_utc"),
    [
        # Europe/Paris: clocks go forward on Sunday 2026-03-29; Monday 09:00 CEST = 07:00 UTC
        ("Europe/Paris", "2026-03-28T12:00:00+00:00", "2026-03-30T07:00:00+00:00"),
        # America/New_York: forward on Sunday 2026-03-08; Monday 09:00 EDT = 13:00 UTC
        ("America/New_York", "2026-03-07T18:00:00+00:00", "2026-03-09T13:00:00+00:00"),
        # Europe/Paris fall back on Sunday 2026-10-25; Monday 09:00 CET = 08:00 UTC
        ("Europe/Paris", "2026-10-24T12:00:00+00:00", "2026-10-26T08:00:00+00:00"),
        # Asia/Tokyo has no DST: Monday 09:00 JST = Sunday 00:00 UTC
        ("Asia/Tokyo", "2026-03-28T12:00:00+00:00", "2026-03-30T00:00:00+00:00"),
    ],
)
async def test_task_outside_calling_hours_waits_for_the_next_window(
    env: WorkerEnv, zone: str, saturday: str, expected_utc: str
) -> None:
    env.clock.set(_at(saturday))
    hours = {"timezone": zone, "windows": [{"days": ["mon-fri"], "start": "09:00", "end": "17:00"}]}
    queue = await env.store.create_queue(
        env.client_id, "hours", env.clock.now(), status="on", calling_hours=hours
    )
    job = {
        "type": "msg_call",
        "queue": "hours",
        "data": {"calling_number": CALLER, "called_number": OK, "audio_file": "hi.wav"},
    }
    [task_id] = await env.service.add_jobs(env.client_id, [job])
    assert queue.id == (await env.task(task_id)).queue_id
    assert await env.worker.drain() == 0
    task = await env.task(task_id)
    assert task.status == "delayed_interval"
    assert task.run_at == _at(expected_utc)
    env.clock.set(_at(expected_utc) - timedelta(seconds=1))
    assert await env.worker.drain() == 0
    env.clock.advance(1)
    assert await env.worker.drain() == 1
    [call] = await env.store.calls(task_id=task_id)
    assert call.started_at == _at(expected_utc)


async def test_a_task_timezone_overrides_the_queues_zone(env: WorkerEnv) -> None:
    env.clock.set(_at("2026-01-05T12:00:00+00:00"))  # Monday: 13:00 Paris, 21:00 Tokyo
    hours = {
        "timezone": "Europe/Paris",
        "windows": [{"days": ["daily"], "start": "09:00", "end": "17:00"}],
    }
    await env.store.create_queue(
        env.client_id, "hours", env.clock.now(), status="on", calling_hours=hours
    )
    data = {"calling_number": CALLER, "called_number": OK, "audio_file": "hi.wav"}
    jobs = [
        {"type": "msg_call", "queue": "hours", "data": data},
        {"type": "msg_call", "queue": "hours", "data": data, "options": {"timezone": "Asia/Tokyo"}},
    ]
    paris, tokyo = await env.service.add_jobs(env.client_id, jobs)
    assert await env.worker.drain() == 1
    assert (await env.task(paris)).finish_result == "success"
    assert (await env.task(tokyo)).run_at == _at("2026-01-06T00:00:00+00:00")


async def test_a_dead_worker_that_stored_no_leg_spends_no_try_and_its_late_write_is_fenced(
    env: WorkerEnv,
) -> None:
    task_id = await env.msg_call(attempts=2, backoff={"type": "fixed", "delay": 5000})
    [held] = (await env.store.claim("dead-worker", env.clock.now(), 10, 30)).tasks
    env.clock.advance(29)
    assert await env.worker.reap() == 0
    env.clock.advance(2)
    assert await env.worker.reap() == 1
    task = await env.task(task_id)
    assert (task.status, task.tries_used, task.attempt) == ("delayed", 0, 0)
    assert task.finish_comment == "worker lost before dialling: no call was placed, no try spent"
    assert task.run_at == env.clock.now()  # tried again at once
    assert await env.worker.drain() == 1
    task = await env.task(task_id)
    assert (task.finish_result, task.attempt, task.tries_used) == ("success", 1, 1)
    # the dead worker wakes up and reports its attempt: refused
    late = Completion(task_id, held.fence, _decision_success(env), [])
    assert await env.store.complete([late], env.store.clock.now()) == [False]
    assert (await env.task(task_id)).attempt == 1


def _decision_success(env: WorkerEnv) -> Any:
    from ringback.domain.decide import decide
    from ringback.domain.model import RetryState, TaskKind

    state = RetryState(TaskKind.MSG_CALL, 1, 0, 0, 1, 0, None, 0.0, 2)
    return decide(state, AttemptResult(True, Outcome.ANSWERED), env.clock.now(), random.Random(1))


async def test_worker_dials_at_the_next_run_at_without_polling(
    env: WorkerEnv, clock: WatchedClock
) -> None:
    env.worker.config.idle_poll_seconds = 3600
    async with env.running():
        task_id = await env.msg_call(delay=5000)
        run_at = (await env.task(task_id)).run_at
        claim_at = run_at - timedelta(seconds=env.worker.config.lookahead_seconds)

        def asleep_until_the_claim() -> bool:
            # the worker saw the task and sleeps until its claim moment: moving the clock
            # before that (it may still be between reading the time and going to sleep) would
            # move the moment it sleeps until too
            margin = timedelta(milliseconds=1)
            return any(abs(wakes - claim_at) <= margin for _, wakes in clock.asked)

        await until(asleep_until_the_claim)
        env.clock.advance(4.9)  # within the claim lookahead: claimed, but not dialed yet
        # the attempt has been claimed and sleeps until run_at: nothing dialled before that
        await until(lambda: env.worker.stats.claimed == 1 and clock.asked_to_wake_at(run_at))
        assert await env.store.calls(task_id=task_id) == []
        env.clock.advance(0.1)
        await _until_finished(env, task_id)
        [call] = await env.store.calls(task_id=task_id)
        assert call.started_at == run_at  # dialed at its run_at exactly


async def test_new_work_wakes_a_sleeping_worker(env: WorkerEnv) -> None:
    env.worker.config.idle_poll_seconds = 3600
    async with env.running():
        await until(lambda: env.clock.sleepers > 0)
        task_id = await env.msg_call()
        await _until_finished(env, task_id)


class _KeepingDialer:
    """The simulator (in real fake-clock time), keeping every call it placed."""

    name = "sim"

    def __init__(self, clock: FakeClock) -> None:
        self.inner = SimDialer(clock, load_sim_rules(None))
        self.calls: list[SimCall] = []

    async def originate(self, request: OriginateRequest) -> SimCall:
        call = await self.inner.originate(request)
        self.calls.append(call)
        return call

    async def close(self) -> None:
        await self.inner.close()


async def timed_call(
    store: Store, clock: FakeClock, tmp_path: Path, *, message_s: float, grace_s: float
) -> tuple[WorkerEnv, _KeepingDialer, int]:
    """A worker with the simulator in real (fake-clock) time, and a msg_call job with two tries
    whose message lasts ``message_s``."""
    dialer = _KeepingDialer(clock)
    env = await worker_env(store, clock, tmp_path, dialer=dialer, wavs={"hi.wav": message_s},
                           owner="w", shutdown_grace_seconds=grace_s)  # fmt: skip
    return env, dialer, await env.msg_call(attempts=2)


async def test_shutdown_lets_a_running_call_end(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    env, _, task_id = await timed_call(store, clock, tmp_path, message_s=2.0, grace_s=60)
    async with env.running() as runner:
        await until(lambda: env.worker.in_flight == 1)
        env.worker.stop()

        async def stopped() -> bool:  # ring 1 s + message 2 s, in fake time
            if runner.done():
                return True
            clock.advance(0.25)
            return False

        await until(stopped, what="the worker to stop after its call")
    task = await store.get_task(task_id, store.clock.now())
    assert (task.status, task.finish_result) == ("finished", "success")


@pytest.mark.parametrize("redial", [False, True])
async def test_shutdown_past_the_grace_hangs_up_and_redials_an_answered_callee_only_by_policy(
    store: Store, clock: FakeClock, tmp_path: Path, redial: bool
) -> None:
    env, dialer, task_id = await timed_call(store, clock, tmp_path, message_s=30.0, grace_s=0.2)
    if redial:
        queue_id = (await store.get_task(task_id, store.clock.now())).queue_id
        await store.update_queue(queue_id, QueueChanges(redial_interrupted=True), clock.now())
    async with env.running():  # on exit: stop, then wait (the grace period is real time)
        await until(lambda: len(dialer.calls) == 1)  # ringing from now, in fake time
        clock.advance(2)  # answered
        await until(lambda: bool(dialer.calls[0].record.played))  # the message is playing
    task = await store.get_task(task_id, store.clock.now())
    if redial:
        assert (task.stored_status, task.attempt, task.tries_used) == ("delayed", 1, 1)
    else:
        assert (task.stored_status, task.finish_result, task.tries_used) == (
            "finished",
            "failed",
            1,
        )
        assert task.finish_comment is not None
        assert "interrupted after the callee answered" in task.finish_comment
        assert "not called again" in task.finish_comment
    [call] = await store.calls(task_id=task_id)
    assert call.ended_at is not None and call.answered_at is not None and call.state == "ended"


async def _until_finished(env: WorkerEnv, task_id: int, within: float = 30.0) -> None:
    async def finished() -> bool:
        return (await env.task(task_id)).stored_status == "finished"

    await until(finished, within, f"task {task_id} finished")


async def test_worker_keeps_running_when_the_database_fails_for_a_while(
    env: WorkerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_claim = env.store.claim
    failures = 3

    async def flaky_claim(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("connection refused")
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(env.store, "claim", flaky_claim)
    task_id = await env.msg_call()
    async with env.running() as runner:

        async def claimed_again() -> bool:  # back off 0.5 s, 1 s, 2 s of fake time, then claim
            if failures == 0 and (await env.task(task_id)).stored_status == "finished":
                return True
            env.clock.advance(0.1)
            return False

        await until(claimed_again, what="a claim after the database came back")
        assert failures == 0 and not runner.done()


async def test_work_added_by_another_process_wakes_a_sleeping_worker_through_notify(
    pg_schema: PgSchema, clock: FakeClock, tmp_path: Path
) -> None:
    """PostgreSQL: LISTEN/NOTIFY wakes the worker at once; it does not wait for its poll."""
    await pg_schema.create()
    ours = await open_store(
        pg_schema.url(), clock, migrate=True, search_path=pg_schema.name,
        notify_channel=pg_schema.name,
    )  # fmt: skip
    theirs = await open_store(
        pg_schema.url(), clock, search_path=pg_schema.name, notify_channel=pg_schema.name
    )
    try:
        env = await worker_env(ours, clock, tmp_path, idle_poll_seconds=3600)
        async with env.running():
            await until(lambda: clock.sleepers > 0)  # asleep for an hour of fake time
            data = {"calling_number": CALLER, "called_number": OK, "audio_file": "hi.wav"}
            jobs = [{"type": "msg_call", "data": data}]
            [task_id] = await TaskService(theirs, clock).add_jobs(env.client_id, jobs)
            await until(lambda: env.worker.stats.completed == 1)  # no clock movement needed
            assert (await ours.get_task(task_id, ours.clock.now())).finish_result == "success"
    finally:
        await ours.close()
        await theirs.close()
        await pg_schema.drop()


class Recorder:
    def __init__(self) -> None:
        self.claims: list[float] = []
        self.lateness: list[float] = []
        self.outcomes: list[str] = []

    def observe_claim(self, seconds: float) -> None:
        self.claims.append(seconds)

    def observe_lateness(self, seconds: float) -> None:
        self.lateness.append(seconds)

    def count_attempt(self, outcome: str) -> None:
        self.outcomes.append(outcome)


async def test_worker_reports_claims_lateness_and_attempt_outcomes(env: WorkerEnv) -> None:
    recorder = Recorder()
    env.worker.metrics = recorder
    await env.msg_call()
    await env.msg_call(BUSY)
    env.clock.advance(2)  # both are 2 s late when claimed
    await env.worker.drain()
    assert recorder.claims and all(seconds >= 0 for seconds in recorder.claims)
    assert recorder.lateness == [2.0, 2.0]
    assert sorted(recorder.outcomes) == ["answered", "busy"]
