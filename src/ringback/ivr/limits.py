"""The caps on what one IVR run may hold and produce, in one place.

Every IVR session (API simulate, ``ringback ivr run``, ivr_call tasks, inbound calls) runs
under :data:`LIMITS` unless a caller passes its own :class:`IvrLimits`. Why each cap holds
(docs/ivr.md, "IVR resource caps"): a client's document must not be able to make the server hold,
answer or store much more than the document itself, whatever it loops over.

* a variable's value: at most ``max_value_chars`` characters (items, for lists and dicts);
  the expression evaluator uses the same cap for every intermediate value;
* the variables of a call: at most ``max_variables`` of them, all values together at most
  ``max_variables_chars``;
* a Speak or SendSMS text: at most ``max_text_chars``; all of a call's spoken and SMS text
  together at most ``max_spoken_chars``;
* the trace: each entry's detail is shortened to ``max_trace_detail_chars``; once the trace
  holds ``max_trace_entries`` entries or ``max_trace_bytes`` bytes, later entries are left out
  (one entry says so) except how the call ended (a few entries more: the error or the end,
  the answer-URL notifications, how many entries were left out);
* a call record's ``detail`` (trace included) as stored: at most ``max_detail_bytes`` of JSON.

A value or text over its cap fails the element (an ordinary IVR error, which an error handler
may take over); the call-wide totals stop the call (:class:`IvrLimitError`, like the step and
jump bounds).
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from ringback.ivr.errors import IvrError

KIB = 1024


@dataclass(frozen=True, slots=True)
class IvrLimits:
    max_steps: int = 10_000  # elements executed
    max_jumps: int = 1_000  # GoTo, action, Redirect, error handler
    max_value_chars: int = 64 * KIB
    max_variables: int = 1_000
    max_variables_chars: int = 512 * KIB
    max_text_chars: int = 4 * KIB  # one Speak or SendSMS text
    max_spoken_chars: int = 128 * KIB  # all Speak and SendSMS text of a call
    max_trace_detail_chars: int = 1 * KIB
    max_trace_entries: int = 5_000
    max_trace_bytes: int = 512 * KIB
    max_detail_bytes: int = 1024 * KIB  # a call record's detail, as stored JSON


LIMITS = IvrLimits()


class IvrLimitError(IvrError):
    """A call-wide bound was hit (steps, jumps, variables, spoken text): no error handler can
    take over."""


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most about ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def value_size(value: Any, budget: int) -> int:
    """How big a variable's value is (characters; items, deep, for lists and dicts), counting
    no further than ``budget``."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple | dict):
        total = 1
        items = value.items() if isinstance(value, dict) else value
        for item in items:
            total += value_size(item, budget - total)
            if total > budget:
                return total
        return total
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 1
    return 1


def detail_bytes(detail: MutableMapping[str, Any]) -> int:
    """The size of a call record's ``detail`` as JSON (as the store writes it)."""
    return len(json.dumps(detail, ensure_ascii=False, default=str).encode())


def store_trace(
    detail: MutableMapping[str, Any], lines: list[str], limits: IvrLimits = LIMITS
) -> None:
    """Put the trace ``lines`` into a call record's ``detail["ivr_trace"]`` so that the whole
    detail stays within ``limits.max_detail_bytes``: when it would not, entries from the middle
    are left out (the first ones and the last ones, how the call ended, are kept) and one line
    says how many."""
    detail["ivr_trace"] = lines
    if detail_bytes(detail) <= limits.max_detail_bytes:
        return
    keep_tail = min(5, len(lines))
    head = len(lines) - keep_tail
    while head > 0:
        head //= 2
        left_out = len(lines) - head - keep_tail
        detail["ivr_trace"] = [
            *lines[:head],
            f"… {left_out} trace entries left out (the stored detail is capped at "
            f"{limits.max_detail_bytes} bytes)",
            *lines[len(lines) - keep_tail :],
        ]
        if detail_bytes(detail) <= limits.max_detail_bytes:
            return
    # still too big (other detail keys are large): keep only how the call ended, shortened
    detail["ivr_trace"] = [shorten(line, 200) for line in lines[-keep_tail:]]
