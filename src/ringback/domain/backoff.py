"""How long to wait before a retry, from a task's ``backoff`` policy.

A policy is ``{"type": "fixed" | "exponential", "delay": ms, "jitter": j}``; ``jitter`` is
optional (default 0). ``None`` means no policy: retry at once.
"""

from __future__ import annotations

import math
import random
from typing import Any

#: the longest wait any policy can produce: ten days, in milliseconds
MAX_DELAY_MS = 864_000_000

# 2**30 ms already exceeds the cap, so a larger exponent (with delay >= 1 ms) is always capped.
_MAX_SHIFT = 30


def retry_delay_ms(backoff: dict[str, Any] | None, retry_number: int, rng: random.Random) -> int:
    """The wait in milliseconds before retry ``retry_number`` (retry 1 is attempt 2).

    ``fixed`` waits ``delay``; ``exponential`` waits ``round(delay * 2**(n-1))``. Either is capped
    at :data:`MAX_DELAY_MS`. With jitter ``j`` the wait is drawn uniformly from
    ``[d*(1-j), d]`` and rounded to whole milliseconds; ``rng`` is not touched when ``j`` is 0.
    """
    if isinstance(retry_number, bool) or not isinstance(retry_number, int) or retry_number < 1:
        raise ValueError(f"retry_number must be an integer >= 1, got {retry_number!r}")
    if backoff is None:
        return 0
    kind = backoff.get("type")
    delay = _number(backoff, "delay", default=None)
    jitter = _number(backoff, "jitter", default=0)
    if delay < 0:
        raise ValueError(f"backoff delay must be >= 0 ms, got {delay!r}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"backoff jitter must be between 0 and 1, got {jitter!r}")
    if kind == "fixed":
        full = min(delay, MAX_DELAY_MS)
    elif kind == "exponential":
        shift = retry_number - 1
        if delay == 0:
            full = 0
        elif shift >= _MAX_SHIFT:
            full = MAX_DELAY_MS
        else:
            full = min(delay * 2**shift, MAX_DELAY_MS)
    else:
        raise ValueError(f"unknown backoff type {kind!r} (use 'fixed' or 'exponential')")
    full_ms = round(full)
    if jitter == 0:
        return full_ms
    return round(rng.uniform(full_ms * (1 - jitter), full_ms))


def _number(backoff: dict[str, Any], key: str, default: float | None) -> float:
    value = backoff.get(key, default)
    if value is None:
        raise ValueError(f"backoff {key!r} is missing")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"backoff {key!r} must be a finite number, got {value!r}")
    return value
