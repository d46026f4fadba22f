"""The store: the one object through which ringback reads and writes its database.

:class:`Store` composes the repositories of each subject (``access``, ``queues``, ``tasks``,
``leases``, ``calls``, ``numbers``, ``webhooks``, ``status``, ``migrator``) over one driver
(``store/sqlite.py`` or ``store/postgres.py``), which :func:`open_store` picks by the URL.
Every write after an attempt is fenced by the task's ``fence``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from ringback.clock import Clock
from ringback.store import sqlite
from ringback.store.access import AccessRepository
from ringback.store.audit import AuditRepository
from ringback.store.calls import CallRepository
from ringback.store.campaign_rules import CampaignRuleRepository
from ringback.store.driver import Driver, Engine
from ringback.store.exports import ExportRepository
from ringback.store.leases import LeaseRepository
from ringback.store.migrator import MigrationRepository
from ringback.store.numbers import NumberRepository
from ringback.store.queues import QueueRepository
from ringback.store.status import DashboardRepository, StatusRepository
from ringback.store.suppressions import SuppressionRepository
from ringback.store.tasks import TaskFilters, TaskRepository
from ringback.store.webhooks import WebhookRepository

__all__ = ["NOTIFY_CHANNEL", "Store", "TaskFilters", "open_store"]

NOTIFY_CHANNEL = "ringback_wake"


class Store(
    MigrationRepository,
    AccessRepository,
    QueueRepository,
    TaskRepository,
    LeaseRepository,
    CallRepository,
    StatusRepository,
    DashboardRepository,
    NumberRepository,
    WebhookRepository,
    SuppressionRepository,
    CampaignRuleRepository,
    ExportRepository,
    AuditRepository,
):
    """Open with :func:`open_store`; close with :meth:`close`."""

    @property
    def engine(self) -> Engine:
        """The driver's connection pool (tests and benchmarks that fill or inspect a
        database directly)."""
        return self.driver.engine

    @property
    def notify_channel(self) -> str:
        return self.driver.notify_channel

    @property
    def parallel_writes(self) -> int:
        """Write transactions a worker may run at once."""
        return self.driver.parallel_writes

    async def close(self) -> None:
        await self.driver.close()

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after this process commits new or changed work."""
        self._listeners.append(callback)

    async def listen(self, callback: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """Call ``callback`` when any process commits new work (where the database can tell:
        PostgreSQL's LISTEN/NOTIFY; elsewhere only this process's writes, :meth:`on_wake`, and
        workers also poll). Returns an async function that stops listening."""
        return await self.driver.listen(callback)

    async def database_time(self) -> datetime | None:
        """The database server's clock now; None when the database has no clock of its own
        (a file on this host, read by this host's processes only)."""
        return await self.driver.database_time()


async def open_store(
    url: str,
    clock: Clock,
    *,
    migrate: bool = False,
    notify_channel: str = NOTIFY_CHANNEL,
    search_path: str | None = None,
) -> Store:
    """Open a store; with ``migrate`` also apply pending migrations."""
    driver: Driver | None = sqlite.open_driver(url, notify_channel=notify_channel)
    if driver is None:
        from ringback.store import postgres  # asyncpg and SQLAlchemy's asyncio layer: not on SQLite

        driver = postgres.open_driver(
            url, clock, notify_channel=notify_channel, search_path=search_path
        )
    if driver is None:
        raise ValueError(
            f"unsupported database URL {url!r}: use sqlite:///path/to/ringback.db or "
            "postgresql://user@host:port/dbname"
        )
    store = Store(driver, clock)
    if migrate:
        await store.migrate(clock.now())
    return store
