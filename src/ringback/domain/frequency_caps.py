"""Frequency caps per callee and allowed caller ids: the pure rules of a client's campaign
settings. The store checks both in the write of every call leg, right before it is dialled
(``store/campaign_rules.py``), so they hold across queues and worker processes.

**Frequency caps.** A rule "at most ``max_calls`` calls to one number per ``window_seconds``"
counts the legs already placed to that number for the client (every leg stored for it: answered
or not, any queue, any task, A or B leg; a leg refused before dialling, by a do-not-call list,
a cap or the caller-id list, and a leg the dialer refused to place, ``not_sent``, do not count)
whose ``started_at`` lies in the window ending now, ``(now - W, now]``. A client may have
several rules (3 per 24 h and 1 per hour): a call must fit every one. A call that would exceed
a rule is not placed; its task waits until the first moment allowed and spends no try.

The first moment allowed: with ``n`` counted calls in a rule's window (oldest first, times
``t[0] <= … <= t[n-1]``) and ``n >= max_calls``, a new call fits once the window holds at most
``max_calls - 1`` of them, that is once ``t[n - max_calls]`` has left it: at
``t[n - max_calls] + W``. With several rules, the latest of their moments (counts only go down
as time passes, so the other rules still hold then).

**Caller ids.** An allowed list per client of numbers and prefixes (``+3361*``), written and
matched as do-not-call entries are (``ringback.domain.suppression``). An empty list allows any
caller id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ringback.domain.suppression import matches, parse_entry_number

MAX_RULES = 10
MAX_CALLS = 1000
MAX_WINDOW_SECONDS = 366 * 86400
MAX_CALLER_IDS = 1000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: how the comment of a task waiting for a cap starts
CAP_REASON = "frequency cap: "
_RULE_RE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]*)\s*([smhd])\s*")


@dataclass(frozen=True, slots=True, order=True)
class CapRule:
    """At most ``max_calls`` calls to one number per ``window_seconds``."""

    max_calls: int
    window_seconds: int

    def describe(self) -> str:
        return f"{self.max_calls} per {_window_text(self.window_seconds)}"


def _window_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def check_rule(max_calls: int, window_seconds: int) -> CapRule:
    """A rule, or ValueError saying which value is out of range."""
    if not 1 <= max_calls <= MAX_CALLS:
        raise ValueError(f"max_calls is 1 to {MAX_CALLS}")
    if not 1 <= window_seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"window_seconds is 1 to {MAX_WINDOW_SECONDS} (366 days)")
    return CapRule(max_calls, window_seconds)


def check_rules(rules: Iterable[CapRule]) -> list[CapRule]:
    """Rules sorted by window; ValueError for more than :data:`MAX_RULES` or two rules of one
    window."""
    result = sorted(rules, key=lambda r: (r.window_seconds, r.max_calls))
    if len(result) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} rules")
    windows = [r.window_seconds for r in result]
    if len(set(windows)) != len(windows):
        raise ValueError("two rules have the same window_seconds: keep one per window")
    return result


def parse_rule(text: str) -> CapRule:
    """A rule as a person writes it: ``3/24h``, ``1/1h``, ``5/30m``, ``2/90s``, ``10/7d``
    (``1/h`` is ``1/1h``). ValueError says what is wrong."""
    found = _RULE_RE.fullmatch(text)
    if found is None:
        raise ValueError(
            f"{text.strip()!r} is not a cap: write CALLS/WINDOW, e.g. 3/24h, 1/1h, 5/30m, 10/7d"
        )
    calls, count, unit = found.groups()
    return check_rule(int(calls), int(count or 1) * _UNITS[unit])


@dataclass(frozen=True, slots=True)
class CapDelay:
    """Why a call to ``number`` may not be placed before ``until``: the rule that decided."""

    number: str
    rule: CapRule
    until: datetime

    def reason(self) -> str:
        """The task's comment while it waits."""
        at = self.until.strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"{CAP_REASON}{self.number} was called {self.rule.describe()} already; "
            f"next call allowed at {at}"
        )


def first_allowed(rule: CapRule, starts: Sequence[datetime], now: datetime) -> datetime | None:
    """When a new call fits ``rule``, given the start times of the calls already placed to the
    number (any order, any age); None when it fits now."""
    window = timedelta(seconds=rule.window_seconds)
    counted = sorted(s for s in starts if now - window < s <= now)
    if len(counted) < rule.max_calls:
        return None
    return counted[len(counted) - rule.max_calls] + window


def cap_delay(
    number: str, rules: Sequence[CapRule], starts: Sequence[datetime], now: datetime
) -> CapDelay | None:
    """The delay of a call to ``number`` now under ``rules`` (see the module docstring), or None
    when every rule allows it."""
    delay: CapDelay | None = None
    for rule in rules:
        until = first_allowed(rule, starts, now)
        if until is not None and (delay is None or until > delay.until):
            delay = CapDelay(number, rule, until)
    return delay


# --- caller ids ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerIdEntry:
    """An allowed caller id: a number, or a prefix (``prefix``) every number under it."""

    number: str
    prefix: bool

    def text(self) -> str:
        return f"{self.number}*" if self.prefix else self.number


def parse_caller_id(text: str) -> CallerIdEntry:
    """An allowed caller id as written: a number, or a prefix ending in ``*``."""
    number, prefix = parse_entry_number(text)
    return CallerIdEntry(number, prefix)


def caller_id_allowed(allowed: Sequence[CallerIdEntry], caller_id: str) -> bool:
    """Whether ``caller_id`` may be shown: any when the list is empty."""
    return not allowed or any(matches(e.number, e.prefix, caller_id) for e in allowed)


@dataclass(frozen=True, slots=True)
class CallerIdRefused:
    """A leg whose caller id is not on its client's allowed list."""

    caller_id: str

    def reason(self) -> str:
        return f"caller id {self.caller_id} is not on the client's allowed caller ids"


def not_allowed_message(caller_id: str) -> str:
    """The intake error of a field naming a caller id that is not allowed."""
    return (
        f"caller id {caller_id!r} is not on the client's allowed caller ids "
        "(GET /client/{client_id}/caller_ids/ lists them)"
    )
