"""Quiet logging of a component that keeps failing (the database away, a peer down).

One :class:`FaultReporter` per component of a process ("claim", "flush", "heartbeat", "reap",
"listen", "webhook delivery", …). Its owner tells it every outcome; it logs:

- one warning when the component starts failing: the error's type and first line, no
  traceback, any password in a URL replaced by ``***``;
- while it keeps failing, at most one summary every ``summary_every_s`` (10 s), written on the
  next failure after that: ``still failing for 23 s, 57 failures, last error: …``;
- one line when it recovers: ``recovered after 31 s, 88 failures``.

It also says whether the component is failing now, since when, and since when it has been
healthy (``healthy_for``: a reaper acts on expired leases only once the database has answered
for longer than a lease). Time is seconds from an injected callable (the service's clock:
``lambda: clock.now().timestamp()``), so tests move time instead of sleeping. Not
thread-safe: one event loop uses it.

Example (a retry loop)::

    claims = FaultReporter("claim", log=log, monotonic=lambda: clock.now().timestamp())
    while running:
        try:
            claimed = await store.claim(...)
        except Exception as exc:  # the database is away: keep the calls, try again
            claims.failed(exc)
            await clock.sleep(backoff)
            continue
        claims.succeeded()
        ...

    # the reaper: only when the database answered for two leases
    if heartbeat.healthy_for() >= lease_seconds:
        await store.reap(...)
"""

from __future__ import annotations

import re
from collections.abc import Callable

import structlog
from structlog.typing import FilteringBoundLogger

SUMMARY_EVERY_S = 10.0
MAX_ERROR_CHARS = 300

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@", re.IGNORECASE)
_PASSWORD_WORD = re.compile(r"(?P<head>\bpassword\s*[=:]\s*)\S+", re.IGNORECASE)


def describe_error(exc: BaseException) -> str:
    """``Type: first line`` of an error, fit for a log: short, one line, no password.

    SQLAlchemy's wrappers are described by the driver's error they carry (their own text adds
    the SQL and its parameters)."""
    cause = getattr(exc, "orig", None)
    shown = cause if isinstance(cause, BaseException) else exc
    lines = str(shown).strip().splitlines()
    text = f"{type(shown).__name__}: {lines[0]}" if lines else type(shown).__name__
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    text = _PASSWORD_WORD.sub(r"\g<head>***", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


class FaultReporter:
    """The log lines and the state of one component that may fail again and again."""

    def __init__(
        self,
        component: str,
        *,
        log: FilteringBoundLogger | None = None,
        monotonic: Callable[[], float],
        summary_every_s: float = SUMMARY_EVERY_S,
    ) -> None:
        self.component = component
        self._log: FilteringBoundLogger = log or structlog.get_logger("ringback.faults")
        self._monotonic = monotonic
        self._summary_every_s = summary_every_s
        self._failing_since: float | None = None
        self._healthy_since: float = monotonic()
        self._failures = 0
        self._last_summary = 0.0
        self._last_error = ""

    # --- what the owner reports -------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        """One more failure: logs the first one, then a summary at most every 10 s."""
        now = self._monotonic()
        self._failures += 1
        self._last_error = describe_error(exc)
        if self._failing_since is None:
            self._failing_since = self._last_summary = now
            self._log.warning(
                f"{self.component} failing", component=self.component, error=self._last_error
            )
        elif now - self._last_summary >= self._summary_every_s:
            self._last_summary = now
            self._log.warning(
                f"{self.component} still failing for {now - self._failing_since:.0f} s, "
                f"{self._failures} failures, last error: {self._last_error}",
                component=self.component,
            )

    def succeeded(self) -> None:
        """It worked: logs the recovery when it was failing; cheap otherwise."""
        if self._failing_since is None:
            return
        now = self._monotonic()
        self._log.info(
            f"{self.component} recovered after {now - self._failing_since:.0f} s, "
            f"{self._failures} failures",
            component=self.component,
        )
        self._failing_since = None
        self._healthy_since = now
        self._failures = 0

    # --- what others read -------------------------------------------------------------------

    @property
    def failing(self) -> bool:
        return self._failing_since is not None

    @property
    def failing_since(self) -> float | None:
        """Monotonic time of the first failure of the current run of failures, else None."""
        return self._failing_since

    @property
    def healthy_since(self) -> float | None:
        """Monotonic time of the last recovery (or of creation), None while failing."""
        return None if self._failing_since is not None else self._healthy_since

    @property
    def failures(self) -> int:
        """Failures in the current run (0 when healthy)."""
        return self._failures

    def healthy_for(self) -> float:
        """Seconds since the component last recovered (or was created); 0 while failing."""
        if self._failing_since is not None:
            return 0.0
        return self._monotonic() - self._healthy_since
