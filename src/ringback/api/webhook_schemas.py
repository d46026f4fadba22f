"""Request and response bodies of the webhook routes (README: Webhooks)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ringback.domain.rows import DeliveryRow, SubscriptionRow, WebhookKeyRow
from ringback.domain.tasks import EventPattern, format_seed_time
from ringback.domain.urlguard import check_stored_url

SeedTime = str
StoredUrl = Annotated[str, AfterValidator(check_stored_url)]
_URL = Field(max_length=2048, pattern=r"^https?://", description="http(s) URL to POST events to")
_SECRET = Field(
    default=None, min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$",
    description="HMAC-SHA256 signing secret (16 to 200 printable characters); made if omitted",
)  # fmt: skip


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WebhookCreate(_In):
    url: StoredUrl = _URL
    events: list[EventPattern] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=20,
        description="event types or patterns: '*', 'task.*', 'call.*', 'task.finished', …",
    )  # fmt: skip
    secret: str | None = _SECRET
    active: bool = True
    description: str = Field(default="", max_length=500)


class WebhookUpdate(_In):
    url: StoredUrl | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    events: list[EventPattern] | None = Field(default=None, min_length=1, max_length=20)
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$",
        description="a new secret; the old one still signs (a second v1=) for 24 hours",
    )  # fmt: skip
    rotate_secret: bool = Field(
        default=False, description="make a new secret (the old one still signs for 24 hours)"
    )
    active: bool | None = Field(default=None, description="true also clears disabled_reason")
    description: str | None = Field(default=None, max_length=500)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    secret: str = Field(description="the signing secret (keep it: receivers verify with it)")
    previous_secret_valid_until: SeedTime | None = Field(
        description="after a rotation, the old secret also signs until this time"
    )
    active: bool
    disabled_reason: str | None = Field(description="why it was switched off (410 Gone)")
    description: str
    created_at: SeedTime
    updated_at: SeedTime

    @classmethod
    def of(cls, row: SubscriptionRow) -> WebhookOut:
        return cls(
            id=row.id, url=row.url, events=row.events, secret=row.secret,
            previous_secret_valid_until=format_seed_time(row.previous_secret_until),
            active=row.active, disabled_reason=row.disabled_reason,
            description=row.description,
            created_at=format_seed_time(row.created_at) or "",
            updated_at=format_seed_time(row.updated_at) or "",
        )  # fmt: skip


class WebhookListOut(BaseModel):
    webhooks: list[WebhookOut]


class WebhookSecretOut(BaseModel):
    """The client's signing secret for the task URLs (url_before, …) and job webhooks."""

    secret: str
    previous_secret: str | None
    previous_secret_valid_until: SeedTime | None
    created_at: SeedTime
    rotated_at: SeedTime | None

    @classmethod
    def of(cls, row: WebhookKeyRow) -> WebhookSecretOut:
        return cls(
            secret=row.secret, previous_secret=row.previous_secret,
            previous_secret_valid_until=format_seed_time(row.previous_secret_until),
            created_at=format_seed_time(row.created_at) or "",
            rotated_at=format_seed_time(row.rotated_at),
        )  # fmt: skip


DeliveryStatus = Literal["pending", "delivered", "dead"]


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    task_id: int | None
    sequence: int
    target: str = Field(description="url_before, url_before_again, url_success, url_after, job "
                        "or subscription")  # fmt: skip
    webhook_id: int | None = Field(description="the subscription, for target subscription")
    url: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: SeedTime | None = Field(description="pending: when it is tried next")
    last_status_code: int | None
    last_error: str | None
    response_excerpt: str | None = Field(description="the first 512 bytes of the last answer")
    created_at: SeedTime
    delivered_at: SeedTime | None
    dead_at: SeedTime | None
    body: dict[str, Any] | None = Field(default=None, description="what is sent (one delivery)")

    @classmethod
    def of(cls, row: DeliveryRow, body: dict[str, Any] | None = None) -> DeliveryOut:
        return cls(
            id=row.id, event_id=str(row.event_id), event_type=row.event_type,
            task_id=row.task_id, sequence=row.seq, target=row.target_kind,
            webhook_id=row.subscription_id, url=row.url, status=row.status,
            attempts=row.attempts,
            next_attempt_at=format_seed_time(row.next_attempt_at)
            if row.status == "pending" else None,
            last_status_code=row.last_status_code, last_error=row.last_error,
            response_excerpt=row.response_excerpt,
            created_at=format_seed_time(row.created_at) or "",
            delivered_at=format_seed_time(row.delivered_at),
            dead_at=format_seed_time(row.dead_at), body=body,
        )  # fmt: skip


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut]
    total: int
    limit: int
    offset: int
