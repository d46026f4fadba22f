"""Request and response bodies of the webhook routes (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ringback.domain.rows import DeliveryRow, SubscriptionRow, WebhookKeyRow
from ringback.domain.task_rules import format_seed_time
from ringback.domain.tasks import EventPattern
from ringback.domain.urlguard import check_stored_url
from ringback.domain.webhook_fields import (
    DESCRIPTION_MAX,
    SECRET_MAX,
    SECRET_MIN,
    SECRET_PATTERN,
)

SeedTime = str
StoredUrl = Annotated[str, AfterValidator(check_stored_url)]
_URL = Field(max_length=2048, pattern=r"^https?://", description="http(s) URL to POST events to")
_SECRET = Field(
    default=None, min_length=SECRET_MIN, max_length=SECRET_MAX, pattern=SECRET_PATTERN,
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
    active: bool = Field(default=True, description="false: switched off, it gets no events")
    description: str = Field(
        default="", max_length=DESCRIPTION_MAX, description="free text of yours"
    )


class WebhookUpdate(_In):
    url: StoredUrl | None = Field(
        default=None, max_length=2048, pattern=r"^https?://", description="a new URL"
    )
    events: list[EventPattern] | None = Field(
        default=None, min_length=1, max_length=20, description="new event types or patterns"
    )
    secret: str | None = Field(
        default=None, min_length=SECRET_MIN, max_length=SECRET_MAX, pattern=SECRET_PATTERN,
        description="a new secret; the old one still signs (a second v1=) for 24 hours",
    )  # fmt: skip
    rotate_secret: bool = Field(
        default=False, description="make a new secret (the old one still signs for 24 hours)"
    )
    active: bool | None = Field(default=None, description="true also clears disabled_reason")
    description: str | None = Field(
        default=None, max_length=DESCRIPTION_MAX, description="new free text"
    )


class WebhookOut(BaseModel):
    id: int = Field(description="the subscription's id")
    url: str = Field(description="where events are POSTed")
    events: list[str] = Field(description="event types or patterns it receives")
    secret: str = Field(description="the signing secret (keep it: receivers verify with it)")
    previous_secret_valid_until: SeedTime | None = Field(
        description="after a rotation, the old secret also signs until this time"
    )
    active: bool = Field(description="false: switched off (by you, or by a 410 answer)")
    disabled_reason: str | None = Field(description="why it was switched off (410 Gone)")
    description: str = Field(description="free text of yours")
    created_at: SeedTime = Field(description="UTC, YYYY-MM-DD HH:MM:SS")
    updated_at: SeedTime = Field(description="UTC, YYYY-MM-DD HH:MM:SS")

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
    webhooks: list[WebhookOut] = Field(description="the client's subscriptions")


class WebhookSecretOut(BaseModel):
    """The client's signing secret for the task URLs (url_before, …) and job webhooks."""

    secret: str = Field(description="signs every request (HMAC-SHA256)")
    previous_secret: str | None = Field(description="the secret replaced at the last rotation")
    previous_secret_valid_until: SeedTime | None = Field(
        description="the previous secret also signs until then, UTC, YYYY-MM-DD HH:MM:SS"
    )
    created_at: SeedTime = Field(description="UTC, YYYY-MM-DD HH:MM:SS")
    rotated_at: SeedTime | None = Field(
        description="last rotation, UTC, YYYY-MM-DD HH:MM:SS; null: never"
    )

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
    id: int = Field(description="the delivery (Ringback-Delivery-Id)")
    event_id: str = Field(description="the event (Ringback-Event-Id; the same on every retry)")
    event_type: str = Field(description="e.g. task.finished")
    task_id: int | None = Field(description="the task the event belongs to")
    sequence: int = Field(description="the event's number among its task's events, from 1")
    target: str = Field(description="url_before, url_before_again, url_success, url_after, job "
                        "or subscription")  # fmt: skip
    webhook_id: int | None = Field(description="the subscription, for target subscription")
    url: str = Field(description="where it is POSTed")
    status: DeliveryStatus = Field(
        description="pending (to be sent or retried), delivered (2xx) or dead (given up)"
    )
    attempts: int = Field(description="requests made so far")
    next_attempt_at: SeedTime | None = Field(description="pending: when it is tried next")
    last_status_code: int | None = Field(description="HTTP status of the last answer")
    last_error: str | None = Field(description="why the last try failed (timeout, HTTP 500, …)")
    response_excerpt: str | None = Field(description="the first 512 bytes of the last answer")
    created_at: SeedTime = Field(description="UTC, YYYY-MM-DD HH:MM:SS")
    delivered_at: SeedTime | None = Field(
        description="UTC, YYYY-MM-DD HH:MM:SS; null: not delivered"
    )
    dead_at: SeedTime | None = Field(description="UTC, YYYY-MM-DD HH:MM:SS; null: not dead")
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
    deliveries: list[DeliveryOut] = Field(description="one page of deliveries")
    total: int = Field(description="how many match the filters, all pages")
    limit: int = Field(description="the page size asked")
    offset: int = Field(description="how many matches were skipped")
