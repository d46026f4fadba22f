"""When a failed delivery is tried again, and when it is given up (dead). Pure functions.

Retry n (n = attempts failed so far, from 1) waits ``min(cap, base * 2^(n-1))`` seconds,
drawn uniformly from the top fifth of that (``[0.8 d, d]``: jitter spreads retries of many
events to one receiver). A delivery is dead once its next try would come later than
``give_up_after`` seconds after the event was first due (about a day by default).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 5.0
    cap_s: float = 3600.0
    give_up_after_s: float = 86400.0
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failed try (1-based)."""
        exponent = min(max(failures, 1) - 1, 60)
        full = min(self.cap_s, self.base_s * 2.0**exponent)
        return rng.uniform(full * (1 - self.jitter), full)

    def next_try(
        self, failures: int, first_due_s: float, now_s: float, rng: random.Random
    ) -> float | None:
        """The time (s) of the next try, or None when the delivery is to be given up."""
        when = now_s + self.delay(failures, rng)
        if when - first_due_s > self.give_up_after_s:
            return None
        return when
