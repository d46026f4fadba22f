"""The application layer in one object: :class:`Services`, what every edge (the API, the CLI,
the IVR's AddJob through :class:`TaskService`, the webhook dispatcher) calls. Built once by a
composition root (``ringback serve``, a CLI command, a test) over one store and clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ringback.client_files import Storage
from ringback.clock import AlignedClock, Clock
from ringback.config import Settings
from ringback.domain.rows import MetricsCounts, StatusReport
from ringback.service.audit import AuditLog
from ringback.service.call_files import CallFiles
from ringback.service.campaign_rules import CampaignRuleService
from ringback.service.clients import ClientService, SigningKeys, Verify
from ringback.service.dashboard import Dashboard
from ringback.service.exports import Exports
from ringback.service.history import CallHistory
from ringback.service.queues import QueueService
from ringback.service.responses import StoredResponses
from ringback.service.suppressions import SuppressionService
from ringback.service.tasks import TaskService
from ringback.service.webhooks import WebhookService
from ringback.store import Store, open_store
from ringback.telephony.base import Dialer

if TYPE_CHECKING:  # numbers and inbound calls run IVRs: imported when first used
    from ringback.service.inbound import InboundHandler
    from ringback.service.numbers import NumberService

log = structlog.get_logger("ringback")

#: a host clock this far off the database's is worth a warning (leases and schedules use the
#: database's clock, so nothing breaks, but the host's logs and the rows disagree)
CLOCK_WARNING_S = 1.0


class Services:
    """Tasks, queues, clients, call history, numbers, webhooks and kept answers over one store.

    ``storage``: the clients' files; jobs naming a file are checked when added, and numbers
    (which run IVRs) need it. ``store`` is for the composition root only (the engine's workers
    and the webhook dispatcher are built over it); edges call the services.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        storage: Storage | None = None,
        settings: Settings | None = None,
        verify: Verify | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.storage = storage
        self.settings = settings or Settings()
        self.tasks = TaskService(store, clock, storage)
        self.queues = QueueService(store, clock)
        self.clients = ClientService(store, clock, verify)
        self.signing = SigningKeys(self.clients)
        self.history = CallHistory(store)
        self.dashboard = Dashboard(store, clock)
        self.webhooks = WebhookService(store, clock)
        self.responses = StoredResponses(store, clock)
        self.suppressions = SuppressionService(store, clock)  # do-not-call lists
        self.campaign_rules = CampaignRuleService(store, clock)  # caps, caller ids
        self.exports = Exports(store, clock)  # CSV of tasks and calls
        self.audit = AuditLog(store, clock)  # who changed what
        self._numbers: NumberService | None = None  # made when first used
        self._call_files: CallFiles | None = None
        if storage is not None:
            self._call_files = CallFiles(store, storage)

    @property
    def numbers(self) -> NumberService:
        if self.storage is None:
            raise RuntimeError("numbers run IVRs from the clients' files: give Services a storage")
        if self._numbers is None:
            from ringback.service.numbers import NumberService

            self._numbers = NumberService(
                self.store, self.clock, self.storage, self.settings, self.tasks, self.signing
            )
        return self._numbers

    @property
    def call_files(self) -> CallFiles:
        if self._call_files is None:
            raise RuntimeError("calls' files are in the clients' storage: give Services a storage")
        return self._call_files

    def inbound_handler(self, dialer: Dialer) -> InboundHandler:
        """What the SIP dialer runs for each inbound call (see :func:`inbound_handler`)."""
        if self.storage is None:
            raise RuntimeError("inbound calls run IVRs from the clients' files: give a storage")
        from ringback.service.inbound import inbound_handler

        return inbound_handler(self.store, self.storage, dialer, self.clock, self.settings)

    async def status(self, client_id: int | None = None) -> StatusReport:
        """Tasks by status, finished today by result, next due (one client's, or everyone's)."""
        return await self.store.status_report(self.clock.now(), client_id)

    async def metrics_counts(self) -> MetricsCounts:
        """Tasks by queue and status, webhook deliveries by client and status (everyone's)."""
        return await self.store.metrics_counts()

    async def schema_version(self) -> int:
        """The database's schema version (0: not migrated); raises when it does not answer."""
        return await self.store.schema_version()

    async def align_clock(self) -> None:
        """Put an :class:`AlignedClock` on the database server's time; warn when this host's
        clock is far off. Other clocks are left alone."""
        clock = self.clock
        if not isinstance(clock, AlignedClock):
            return
        before = clock.offset
        offset = (await clock.align(self.store.database_time)).total_seconds()
        if abs(offset) >= CLOCK_WARNING_S and abs(offset - before.total_seconds()) >= 0.5:
            log.warning(
                "this host's clock differs from the database server's; ringback keeps the "
                "database's time (check NTP on both)",
                offset_s=round(offset, 3),
            )

    async def close(self) -> None:
        await self.store.close()


async def open_services(
    settings: Settings,
    clock: Clock,
    *,
    storage: Storage | None = None,
    migrate: bool = True,
) -> Services:
    """Open the database ``settings`` names (migrating it), with the clock on its time."""
    store = await open_store(settings.database_url, clock, migrate=migrate)
    services = Services(store, clock, storage=storage, settings=settings)
    try:
        await services.align_clock()
    except BaseException:
        await store.close()
        raise
    return services
