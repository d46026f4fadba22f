"""Which targets an event goes to, and the JSON body they receive. Pure functions.

Targets of an event of a task:
- the seed's URLs of a callback task (DESIGN §5): ``url_before`` ← ``task.started`` of attempt
  1; ``url_before_again`` ← ``task.started`` of every later attempt; ``url_success`` ←
  ``task.finished`` with result ``success``; ``url_after`` ← ``task.finished`` (any result)
  and ``task.canceled``;
- a job's own URLs (``options.webhooks``: ``[{"url", "events"}]``), for the event types they
  name (patterns as for subscriptions);
- every active subscription of the task's client whose patterns match the event type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: every event type a webhook may receive
EVENT_TYPES: tuple[str, ...] = (
    "task.created",
    "task.started",
    "task.retry_scheduled",
    "task.delayed",
    "task.updated",
    "task.finished",
    "task.canceled",
    "call.answered",
    "call.bridged",
    "call.ended",
)


def valid_pattern(pattern: str) -> bool:
    """``*``, ``task.*``, ``call.*`` or an exact event type."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return any(t.startswith(pattern[:-1]) for t in EVENT_TYPES)
    return pattern in EVENT_TYPES


def matches(patterns: Iterable[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def seed_targets(event_type: str, data: dict[str, Any]) -> list[str]:
    """The seed URL fields (``url_before``, …) that receive this event."""
    if event_type == "task.started":
        return ["url_before" if int(data.get("attempt", 1)) <= 1 else "url_before_again"]
    if event_type == "task.finished":
        found = ["url_success"] if data.get("result") == "success" else []
        return [*found, "url_after"]
    if event_type == "task.canceled":
        return ["url_after"]
    return []


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    url: str
    events: Sequence[str]


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # url_before … url_after, job, subscription
    url: str
    subscription_id: int | None = None

    @property
    def key(self) -> str:
        """Deliveries to one key for one task are made in sequence order."""
        if self.subscription_id is not None:
            return f"subscription {self.subscription_id}"
        return f"{self.kind} {self.url}"


def targets(
    event_type: str,
    data: dict[str, Any],
    payload: dict[str, Any] | None,
    job_webhooks: Sequence[dict[str, Any]] | None,
    subscriptions: Sequence[Subscription],
) -> list[Target]:
    """Every target of one event of a task (``payload``: the task's stored payload)."""
    found: list[Target] = []
    payload = payload or {}
    for field in seed_targets(event_type, data):
        url = payload.get(field)
        if isinstance(url, str) and url:
            found.append(Target(field, url))
    seen: set[str] = set()
    for hook in job_webhooks or ():
        url = hook.get("url")
        if (
            isinstance(url, str)
            and url not in seen
            and matches(hook.get("events", ["*"]), event_type)
        ):
            seen.add(url)
            found.append(Target("job", url))
    found.extend(
        Target("subscription", sub.url, sub.id)
        for sub in subscriptions
        if matches(sub.events, event_type)
    )
    return found


def body(
    *,
    event_id: int,
    event_type: str,
    sequence: int,
    occurred_at: str,
    client_id: int,
    queue_id: int | None,
    task: dict[str, Any] | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The JSON body of a delivery (docs/webhooks.md)."""
    attempt = data.get("attempt", data.get("attempts"))
    if attempt is None and task is not None:
        attempt = task.get("attempt")
    return {
        "id": str(event_id),
        "type": event_type,
        "sequence": sequence,
        "occurred_at": occurred_at,
        "client_id": client_id,
        "queue_id": queue_id,
        "task": task,
        "attempt": attempt,
        "call": data if event_type.startswith("call.") else None,
        "data": data,
    }
