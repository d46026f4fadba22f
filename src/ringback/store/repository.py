"""The repository base: what every subject's repository of the store runs on.

A repository is a class of one subject's queries (queues, tasks, leases, …) over a
:class:`~ringback.store.driver.Driver`; :class:`ringback.store.db.Store` composes them.
"""

from __future__ import annotations

from collections.abc import Callable

from ringback.clock import Clock
from ringback.store.driver import Driver


class Repository:
    """The driver, the clock, and the wake-up callbacks of this process (``Store.on_wake``)."""

    def __init__(self, driver: Driver, clock: Clock) -> None:
        self.driver = driver
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []

    def _woke(self) -> None:
        """This process committed new or changed work: tell its listeners."""
        for callback in self._listeners:
            callback()
