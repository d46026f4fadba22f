"""The work a chaos scenario gives its workers, seeded through the project's own API.

Every task has numbers of its own (one callee = one number = one task), so the truth log's
``to`` says which task a leg belonged to without asking the database. The simulator rules make
legs ring 0.5 to 2 s (kills land while ringing and while answered), answered callees stay on
the line longer than the message, and some numbers are always busy (``…486``) and retried.
"""

from __future__ import annotations

import random
import wave
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ringback.client_files import Storage
from ringback.clock import SystemClock
from ringback.service import TaskService
from ringback.store.db import Store

MESSAGE_SECONDS = 1.0
TALK_SECONDS = 4.0  # longer than the message: answered callees hear it to the end
IVR_XML = "<IVR><Speak>Hello from the chaos suite</Speak></IVR>"  # 1.5 s of speech

#: number prefix -> (ring seconds, SIP code); callback A and B legs have their own prefixes
RING_CLASSES = {
    "0911": (0.5, 200),
    "0912": (1.0, 200),
    "0913": (2.0, 200),
    "0914": (0.5, 486),  # always busy: every try fails and is retried
    "0915": (0.5, 200),  # callback A
    "0916": (1.0, 200),  # callback B
}


def sim_rules_toml() -> str:
    lines = ["[defaults]", "ring_seconds = 1.0", f"talk_seconds = {TALK_SECONDS}", ""]
    for prefix, (ring, code) in RING_CLASSES.items():
        lines += ["[[rules]]", f'prefix = "{prefix}"', f"ring_seconds = {ring}"]
        if code != 200:
            lines.append(f"sip_code = {code}")
        lines.append("")
    return "\n".join(lines)


def write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))


@dataclass
class Seeded:
    client_id: int
    limits: dict[int, int]  # queue id -> concurrent_task_limit
    task_of_number: dict[str, int] = field(default_factory=dict)
    queue_of_task: dict[int, int] = field(default_factory=dict)
    may_redial: set[str] = field(default_factory=set)  # callback A numbers (retried by policy)
    kinds: dict[str, int] = field(default_factory=dict)


async def seed(
    store: Store,
    storage_dir: Path,
    *,
    tasks: int,
    spread_s: float,
    limits: tuple[int, int],
    rng: random.Random,
    webhook_url: str | None = None,
) -> Seeded:
    """``tasks`` tasks over two queues (switched off; the scenario switches them on), due
    spread evenly over ``spread_s`` seconds: 75 % msg_call, 10 % ivr_call, 15 % callback;
    10 % of the msg_call numbers are busy. Every job has 3 tries, fixed backoff 1 s."""
    clock = SystemClock()
    service = TaskService(store, clock)
    client_id = await store.ensure_client("chaos", clock.now())
    write_wav(Storage(storage_dir).resolve(client_id, "msg.wav"), MESSAGE_SECONDS)
    queues = [
        await store.create_queue(client_id, name, clock.now(), concurrent_task_limit=limit)
        for name, limit in (("q1", limits[0]), ("q2", limits[1]))
    ]
    if webhook_url is not None:
        await store.create_subscription(
            client_id,
            url=webhook_url,
            events=["*"],
            secret="chaos-suite-secret-0123456789",
            active=True,
            description="chaos receiver",
            now=clock.now(),
        )
    seeded = Seeded(client_id, {q.id: q.concurrent_task_limit for q in queues})
    jobs: list[tuple[dict[str, Any], list[str]]] = []
    callbacks: list[tuple[int, dict[str, Any], list[str]]] = []
    for i in range(tasks):
        queue = queues[0] if i % 3 else queues[1]
        delay_ms = int(spread_s * 1000 * i / max(1, tasks))
        draw = rng.random()
        options = {
            "attempts": 3,
            "delay": delay_ms,
            "backoff": {"type": "fixed", "delay": 1000},
        }
        if draw < 0.15:
            a, b = f"0915{i:07d}1", f"0916{i:07d}1"
            spec = {
                "a_number": a,
                "b_number": b,
                "try_count": 3,
                "try_again_pause": 1,
                "start_time_utc": _utc(clock.now().timestamp() + delay_ms / 1000),
            }
            callbacks.append((queue.id, spec, [a, b]))
            seeded.may_redial.add(a)
            continue
        ring = rng.choice(("0911", "0912", "0913"))
        if draw < 0.25:
            number = f"{ring}{i:07d}1"
            data: dict[str, Any] = {"ivr_xml": {"type": "inline", "data": IVR_XML}}
            kind = "ivr_call"
        else:
            busy = draw > 0.9
            number = f"0914{i:07d}486" if busy else f"{ring}{i:07d}1"
            data = {"audio_file": "msg.wav"}
            kind = "msg_call"
        job: dict[str, Any] = {
            "type": kind,
            "queue": queue.name,
            "data": {"calling_number": "0506868000", "called_number": number, **data},
            "options": options,
        }
        jobs.append((job, [number]))
    for start in range(0, len(jobs), 500):
        batch = jobs[start : start + 500]
        ids = await service.add_jobs(client_id, [job for job, _ in batch])
        for task_id, (job, numbers) in zip(ids, batch, strict=True):
            _remember(seeded, task_id, queue_id=_queue_id(queues, job["queue"]), numbers=numbers)
            seeded.kinds[job["type"]] = seeded.kinds.get(job["type"], 0) + 1
    for queue_id, spec, numbers in callbacks:
        [task_id] = await service.add_callback_tasks(client_id, queue_id, [spec])
        _remember(seeded, task_id, queue_id=queue_id, numbers=numbers)
        seeded.kinds["callback"] = seeded.kinds.get("callback", 0) + 1
    return seeded


def _utc(unix: float) -> str:
    return datetime.fromtimestamp(unix).astimezone().isoformat()


def _queue_id(queues: list[Any], name: str) -> int:
    return int(next(q.id for q in queues if q.name == name))


def _remember(seeded: Seeded, task_id: int, *, queue_id: int, numbers: list[str]) -> None:
    seeded.queue_of_task[task_id] = queue_id
    for number in numbers:
        seeded.task_of_number[number] = task_id
