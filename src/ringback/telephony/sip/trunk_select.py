"""Which trunk a call goes to, and the trunks' limits and state in this process.

Order of the trunks a call may use (:meth:`TrunkPool.candidates`): the trunks listing the
call's queue, then those whose prefix matches the called number (longest prefix first), then
the trunks without selection rules (file order); when none of these exists, the default trunk
(``default = true``, else the first). The call goes to the first of them that has room, the
others are its failover trunks, in that order.

A trunk has room unless it is paused (a ``429`` / ``503`` with ``Retry-After``: no new call
until then), at ``max_concurrent_calls``, or within ``1 / max_calls_per_second`` of its last
call. When no candidate has room, the call waits for one (at most its ring timeout) instead
of going to a trunk it was not chosen for. Trunks an OPTIONS ping found down are tried after
the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ringback.clock import Clock, sleep_or_wake
from ringback.telephony.sip.trunks import Trunk


@dataclass(slots=True)
class TrunkState:
    """What this process knows about one trunk now."""

    trunk: Trunk
    calls: int = 0  # calls placed on it and not ended
    last_call: datetime | None = None
    paused_until: datetime | None = None
    up: bool | None = None  # None: not pinged (yet)
    latency_s: float | None = None  # the last OPTIONS round trip
    checked_at: datetime | None = None
    last_error: str | None = None
    placed: int = 0
    failed_over: int = 0

    def as_dict(self, now: datetime) -> dict[str, object]:
        paused = self.paused_until if self.paused_until and self.paused_until > now else None
        return {
            "name": self.trunk.name,
            "state": "unknown" if self.up is None else ("up" if self.up else "down"),
            "latency_ms": None if self.latency_s is None else round(self.latency_s * 1000, 1),
            "checked_at": self.checked_at,
            "last_error": self.last_error,
            "calls": self.calls,
            "max_concurrent_calls": self.trunk.max_concurrent_calls,
            "paused_until": paused,
            "placed": self.placed,
            "failed_over": self.failed_over,
        }


@dataclass(slots=True)
class TrunkPool:
    trunks: list[Trunk]
    clock: Clock
    states: dict[str, TrunkState] = field(init=False)
    _changed: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.states = {t.name: TrunkState(t) for t in self.trunks}

    @property
    def default(self) -> Trunk:
        return next((t for t in self.trunks if t.default), self.trunks[0])

    def candidates(self, number: str, queue_id: int | None) -> list[Trunk]:
        """The trunks a call may use, in the order to try them (see the module's text)."""
        digits = number.strip()
        by_queue = [t for t in self.trunks if queue_id is not None and queue_id in t.queues]
        prefixed = sorted(
            (
                (max(len(p) for p in t.prefixes if digits.startswith(p)), index, t)
                for index, t in enumerate(self.trunks)
                if any(digits.startswith(p) for p in t.prefixes)
            ),
            key=lambda item: (-item[0], item[1]),
        )
        chosen = by_queue + [t for _, _, t in prefixed] + [t for t in self.trunks if t.catch_all]
        chosen = list(dict.fromkeys(chosen))  # a trunk listed once, at its first place
        if not chosen:
            chosen = [self.default]
        return [t for t in chosen if self.states[t.name].up is not False] + [
            t for t in chosen if self.states[t.name].up is False
        ]

    def wait_s(self, trunk: Trunk) -> float | None:
        """0 when ``trunk`` can take a call now; else seconds until it might (None: when a call
        on it ends)."""
        state, now = self.states[trunk.name], self.clock.now()
        waits: list[float] = []
        if state.paused_until is not None and state.paused_until > now:
            waits.append((state.paused_until - now).total_seconds())
        rate = trunk.max_calls_per_second
        if rate and state.last_call is not None:
            due = state.last_call + timedelta(seconds=1 / rate)
            if due > now:
                waits.append((due - now).total_seconds())
        if trunk.max_concurrent_calls is not None and state.calls >= trunk.max_concurrent_calls:
            return max(waits, default=None)
        return max(waits, default=0.0)

    async def acquire(self, trunks: list[Trunk], within_s: float) -> Trunk | None:
        """The first of ``trunks`` with room, taken (release it when its call ends); waits for
        one at most ``within_s`` seconds; None if none had room by then."""
        deadline = self.clock.now() + timedelta(seconds=within_s)
        while True:
            waits = [self.wait_s(t) for t in trunks]
            for trunk, wait in zip(trunks, waits, strict=True):
                if wait == 0.0:
                    self.take(trunk)
                    return trunk
            left = (deadline - self.clock.now()).total_seconds()
            if left <= 0:
                return None
            timed = [w for w in waits if w is not None]
            nap = min([left, *timed])
            self._changed.clear()
            await sleep_or_wake(self.clock, nap, self._changed)

    def take(self, trunk: Trunk) -> None:
        """Count a call placed on ``trunk`` (release it when the call ends)."""
        state = self.states[trunk.name]
        state.calls += 1
        state.placed += 1
        state.last_call = self.clock.now()

    def release(self, trunk: Trunk) -> None:
        state = self.states[trunk.name]
        state.calls = max(0, state.calls - 1)
        self._changed.set()

    def pause(self, trunk: Trunk, seconds: float) -> None:
        """No new call to ``trunk`` for ``seconds`` (its Retry-After)."""
        until = self.clock.now() + timedelta(seconds=seconds)
        state = self.states[trunk.name]
        if state.paused_until is None or until > state.paused_until:
            state.paused_until = until

    def report(self) -> list[dict[str, object]]:
        now = self.clock.now()
        return [self.states[t.name].as_dict(now) for t in self.trunks]
