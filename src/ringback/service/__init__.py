"""The application layer: every use case of ringback, between the edges (the API, the CLI, the
IVR's AddJob, the webhook dispatcher) and the store. One module per subject; :class:`Services`
holds them all over one store and clock.

:class:`NumberService` (numbers run IVRs: the interpreter, lxml) is imported when first asked
for, so that a worker that dials no IVR does not load it; :func:`parse_jobs` and
:func:`parse_callback_tasks` (the intake's models, pydantic) when first asked for, so that a
worker, which adds no task, does not load them."""

from typing import TYPE_CHECKING, Any

from ringback.domain.rows import InvalidInput
from ringback.service.campaign_rules import CampaignRuleService
from ringback.service.clients import (
    TOKEN_LIFETIME_S,
    ClientService,
    NewCredentials,
    SigningKeys,
    token_digest,
)
from ringback.service.history import CallHistory
from ringback.service.inputs import (
    MAX_TASKS_PER_REQUEST,
    calling_hours_with_holidays,
    parse_calling_hours,
)
from ringback.service.queues import QueueService, QueueStats
from ringback.service.responses import StoredResponses
from ringback.service.services import Services, open_services
from ringback.service.suppressions import NewEntry, SuppressionService
from ringback.service.tasks import DEFAULT_QUEUE, AddedTasks, TaskService, TaskView
from ringback.service.webhooks import WebhookService

if TYPE_CHECKING:
    from ringback.service.job_inputs import parse_callback_tasks, parse_jobs
    from ringback.service.numbers import NumberService


def __getattr__(name: str) -> Any:
    if name == "NumberService":
        from ringback.service.numbers import NumberService

        return NumberService
    if name in ("parse_jobs", "parse_callback_tasks"):
        from ringback.service import job_inputs

        return getattr(job_inputs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_QUEUE",
    "MAX_TASKS_PER_REQUEST",
    "TOKEN_LIFETIME_S",
    "AddedTasks",
    "CallHistory",
    "CampaignRuleService",
    "ClientService",
    "InvalidInput",
    "NewCredentials",
    "NewEntry",
    "NumberService",
    "QueueService",
    "QueueStats",
    "Services",
    "SigningKeys",
    "StoredResponses",
    "SuppressionService",
    "TaskService",
    "TaskView",
    "WebhookService",
    "calling_hours_with_holidays",
    "open_services",
    "parse_callback_tasks",
    "parse_calling_hours",
    "parse_jobs",
    "token_digest",
]
