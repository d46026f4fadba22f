"""Webhooks: a client's subscriptions and deliveries (add, change, delete, list, redeliver), and
what the webhook dispatcher asks of the store (events to fan out, deliveries to send, their
outcomes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ringback.clock import Clock
from ringback.domain.credentials import SIGNING_OVERLAP, new_signing_secret
from ringback.domain.rows import (
    CallRow,
    ClaimedDelivery,
    DeliveryResult,
    DeliveryRow,
    EventRow,
    NewDelivery,
    SubscriptionRow,
    TaskRow,
)
from ringback.service.audit import AuditLog, entry
from ringback.store import Store


class WebhookService:
    """A client's webhook subscriptions and deliveries. Every method takes the client's id;
    another client's subscription or delivery is NotFound."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.audit = AuditLog(store, clock)

    async def subscribe(
        self,
        client_id: int,
        *,
        url: str,
        events: list[str],
        secret: str | None,
        active: bool,
        description: str,
    ) -> SubscriptionRow:
        """A new subscription; without ``secret`` one is made."""
        made = await self.store.create_subscription(
            client_id, url=url, events=events, secret=secret or new_signing_secret(),
            active=active, description=description, now=self.clock.now(),
        )  # fmt: skip
        await self.audit.created(client_id, entry(
            "created", "webhook", made.id, url=url, events=events, active=active,
            description=description, secret=secret is not None,
        ))  # fmt: skip
        return made

    async def subscriptions(self, client_id: int) -> list[SubscriptionRow]:
        return await self.store.list_subscriptions(client_id)

    async def subscription(self, client_id: int, sub_id: int) -> SubscriptionRow:
        return await self.store.get_subscription(sub_id, client_id)

    async def change(
        self, client_id: int, sub_id: int, changes: dict[str, Any], *, rotate_secret: bool = False
    ) -> SubscriptionRow:
        """Change the fields in ``changes`` (url, events, secret, active, description), or with
        ``rotate_secret`` make a new secret; a replaced secret keeps signing beside the new one
        for a day."""
        if rotate_secret:
            changes = {**changes, "secret": new_signing_secret()}
        now = self.clock.now()
        with self.audit.change(client_id, entry("changed", "webhook", sub_id, **changes)):
            return await self.store.update_subscription(
                sub_id, client_id, changes, now, previous_secret_until=now + SIGNING_OVERLAP
            )

    async def unsubscribe(self, client_id: int, sub_id: int) -> None:
        """Delete the subscription; its undelivered events are dropped."""
        with self.audit.change(client_id, entry("deleted", "webhook", sub_id)):
            await self.store.delete_subscription(sub_id, client_id)

    async def deliveries(
        self,
        client_id: int,
        *,
        status: str | None = None,
        subscription_id: int | None = None,
        task_id: int | None = None,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = False,
    ) -> tuple[list[DeliveryRow], int]:
        return await self.store.page_deliveries(
            client_id, status=status, subscription_id=subscription_id, task_id=task_id,
            limit=limit, offset=offset, newest_first=newest_first,
        )  # fmt: skip

    async def delivery(self, client_id: int, delivery_id: int) -> tuple[DeliveryRow, str]:
        """The delivery and the body it sends."""
        return await self.store.get_delivery(delivery_id, client_id)

    async def redeliver(self, client_id: int, delivery_id: int) -> DeliveryRow:
        """Send the delivery again (a dead one too), from now."""
        return await self.store.redeliver(delivery_id, client_id, self.clock.now())

    # --- the dispatcher's side ----------------------------------------------------------------

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the store hears of new work (events to fan out)."""
        self.store.on_wake(callback)

    async def tasks(self, task_ids: Sequence[int]) -> dict[int, TaskRow]:
        """The tasks that exist among ``task_ids``, by id (the bodies show them)."""
        return {row.id: row for row in await self.store.tasks_by_ids(task_ids, self.clock.now())}

    async def calls_for_tasks(self, task_ids: Sequence[int]) -> dict[int, list[CallRow]]:
        return await self.store.calls_for_tasks(task_ids)

    async def undispatched_events(self, limit: int) -> list[EventRow]:
        return await self.store.undispatched_events(limit)

    async def active_subscriptions(self, client_ids: Sequence[int]) -> list[SubscriptionRow]:
        return await self.store.active_subscriptions(client_ids)

    async def store_deliveries(
        self,
        deliveries: Sequence[NewDelivery],
        event_ids: Sequence[int],
        key_secrets: dict[int, str],
    ) -> int:
        """Store deliveries (once per event and target) and mark their events dispatched."""
        return await self.store.store_deliveries(
            deliveries, event_ids, key_secrets, self.clock.now()
        )

    async def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        return await self.store.claim_deliveries(owner, self.clock.now(), limit, lease_seconds)

    async def finish_deliveries(self, results: Sequence[DeliveryResult]) -> None:
        await self.store.finish_deliveries(results, self.clock.now())
