"""The webhooks repository: subscriptions, client signing keys, fan-out, the delivery table.

Events are fanned out lazily: the dispatcher reads events not yet dispatched
(``dispatched_at IS NULL``), works out their targets, and stores one delivery per (event,
target) while marking the events dispatched, in one transaction (the unique (event, target)
key makes a second dispatcher doing the same harmless). Because the events of one task are
committed in sequence order, a reader that sees event n+1 undispatched also sees event n
(undispatched, or already fanned out), so the deliveries of a task exist in order.

A delivery is claimed with a lease and a fence (like tasks), by each driver's statement
(``Driver.claim_deliveries``: row locks skipped where the database has them, else its single
writer) from the pieces here. It is claimable only while no earlier delivery
(lower ``seq``) of the same task to the same target is still pending: per task and target,
event n+1 waits until event n is delivered or dead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from ringback.domain.credentials import current_secrets
from ringback.domain.rows import (  # shared row types
    ClaimedDelivery,
    DeliveryResult,
    DeliveryRow,
    NewDelivery,
    SubscriptionRow,
    WebhookKeyRow,
)
from ringback.store import schema as t
from ringback.store.driver import Conn
from ringback.store.mappers import loads
from ringback.store.records import Conflict, EventRow, NotFound, from_ms, to_ms
from ringback.store.repository import Repository

DELIVERY_STATUSES = ("pending", "delivered", "dead")


# the claim of due deliveries, completed by each driver (``Driver.claim_deliveries``)
CLAIM_WHERE = (
    "d.status = 'pending' AND d.next_attempt_at <= {now} "
    "AND (d.lease_until IS NULL OR d.lease_until < {now}) "
    "AND (d.subscription_id IS NULL OR s.active) "
    "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.status = 'pending' "
    "AND p.task_id = d.task_id AND p.target_key = d.target_key AND p.seq < d.seq)"
)
CLAIM_FROM = (
    "FROM webhook_deliveries d LEFT JOIN webhook_subscriptions s ON s.id = d.subscription_id "
)
CLAIM_RETURNING = (
    "id, fence, event_id, event_type, target_kind, url, body, attempts, subscription_id, "
    "client_id, created_at"
)
#: a new delivery's columns, in the order of the rows ``Driver.insert_deliveries`` takes
NEW_DELIVERY_COLUMNS = (
    "event_id", "client_id", "task_id", "seq", "event_type", "target_kind", "target_key",
    "subscription_id", "url", "body",
)  # fmt: skip
#: a try's outcome, in the order of the rows ``Driver.finish_deliveries`` takes
FINISH_COLUMNS = ("id", "fence", "status", "next_at", "code", "error", "excerpt")
#: the SET of an outcome: ``r.`` the outcome's columns, ``{now}`` the time (the same for both
#: drivers; each names ``r`` its own way)
FINISH_SET = (
    "status = r.status, attempts = attempts + 1, "
    "next_attempt_at = COALESCE(r.next_at, next_attempt_at), lease_owner = NULL, "
    "lease_until = NULL, last_status_code = r.code, last_error = r.error, "
    "response_excerpt = r.excerpt, updated_at = {now}, "
    "delivered_at = CASE WHEN r.status = 'delivered' THEN {now} ELSE delivered_at END, "
    "dead_at = CASE WHEN r.status = 'dead' THEN {now} ELSE dead_at END"
)


#: events not yet fanned out, oldest first; their data as JSON text, decoded by orjson
#: (``mappers.loads``) rather than by the JSON type (the standard library's decoder, and on
#: PostgreSQL at the protocol level): about 6% of the fan-out's time on SQLite
_UNDISPATCHED = (
    sa.select(
        *(c for c in t.events.c if c.name != "data"),
        sa.cast(t.events.c.data, sa.Text).label("data"),
    )
    .where(t.events.c.dispatched_at.is_(None))
    .order_by(t.events.c.id)
    .limit(sa.bindparam("limit"))
)


class WebhookRepository(Repository):
    """Subscriptions, signing keys, fan-out and delivery of webhook events."""

    # --- subscriptions ----------------------------------------------------------------------

    async def create_subscription(
        self,
        client_id: int,
        *,
        url: str,
        events: list[str],
        secret: str,
        active: bool,
        description: str,
        now: datetime,
    ) -> SubscriptionRow:
        ws = t.webhook_subscriptions
        async with self.driver.write() as conn:
            new_id = (
                await conn.execute(
                    ws.insert()
                    .values(
                        client_id=client_id, url=url, events=events, secret=secret,
                        active=active, description=description, created_at=to_ms(now),
                        updated_at=to_ms(now),
                    )
                    .returning(ws.c.id)
                )
            ).scalar_one()  # fmt: skip
        return await self.get_subscription(int(new_id), client_id)

    async def get_subscription(self, sub_id: int, client_id: int) -> SubscriptionRow:
        rows = await self.list_subscriptions(client_id, sub_id=sub_id)
        if not rows:
            raise NotFound(f"no webhook {sub_id}")
        return rows[0]

    async def list_subscriptions(
        self, client_id: int, *, sub_id: int | None = None
    ) -> list[SubscriptionRow]:
        ws = t.webhook_subscriptions
        where = [ws.c.client_id == client_id]
        if sub_id is not None:
            where.append(ws.c.id == sub_id)
        async with self.driver.read() as conn:
            rows = (await conn.execute(sa.select(ws).where(*where).order_by(ws.c.id))).all()
        return [_subscription(row) for row in rows]

    async def update_subscription(
        self,
        sub_id: int,
        client_id: int,
        changes: dict[str, Any],
        now: datetime,
        *,
        previous_secret_until: datetime | None = None,
    ) -> SubscriptionRow:
        """Change the fields in ``changes`` (url, events, secret, active, description).

        A new ``secret`` keeps the old one valid (signed with too) until
        ``previous_secret_until``; switching ``active`` on clears ``disabled_reason``.
        """
        ws = t.webhook_subscriptions
        values: dict[str, Any] = {**changes, "updated_at": to_ms(now)}
        async with self.driver.write() as conn:
            current = (
                await conn.execute(
                    sa.select(ws.c.secret).where(ws.c.id == sub_id, ws.c.client_id == client_id)
                )
            ).scalar()
            if current is None:
                raise NotFound(f"no webhook {sub_id}")
            if "secret" in changes and changes["secret"] != current:
                values["previous_secret"] = current
                values["previous_secret_until"] = (
                    None if previous_secret_until is None else to_ms(previous_secret_until)
                )
            if changes.get("active"):
                values["disabled_reason"] = None
            await conn.execute(ws.update().where(ws.c.id == sub_id).values(**values))
        return await self.get_subscription(sub_id, client_id)

    async def delete_subscription(self, sub_id: int, client_id: int) -> None:
        """Delete a subscription and its undelivered deliveries (delivered and dead ones stay,
        for the record)."""
        ws, wd = t.webhook_subscriptions, t.webhook_deliveries
        async with self.driver.write() as conn:
            result = await conn.execute(
                ws.delete().where(ws.c.id == sub_id, ws.c.client_id == client_id)
            )
            if result.rowcount == 0:
                raise NotFound(f"no webhook {sub_id}")
            await conn.execute(
                wd.delete().where(wd.c.subscription_id == sub_id, wd.c.status == "pending")
            )

    # --- the client's signing key (seed URLs, job URLs) -------------------------------------

    async def webhook_key(self, client_id: int, new_secret: str, now: datetime) -> WebhookKeyRow:
        """The client's signing key, made with ``new_secret`` if it has none yet."""
        async with self.driver.write() as conn:
            await self._ensure_keys(conn, {client_id: new_secret}, to_ms(now))
        return await self._key(client_id)

    async def rotate_webhook_key(
        self, client_id: int, new_secret: str, now: datetime, previous_until: datetime
    ) -> WebhookKeyRow:
        """A new signing key; the old one signs too until ``previous_until``."""
        wk = t.webhook_keys
        async with self.driver.write() as conn:
            current = (
                await conn.execute(sa.select(wk.c.secret).where(wk.c.client_id == client_id))
            ).scalar()
            if current is None:
                await self._ensure_keys(conn, {client_id: new_secret}, to_ms(now))
            else:
                await conn.execute(
                    wk.update()
                    .where(wk.c.client_id == client_id)
                    .values(
                        secret=new_secret, previous_secret=current,
                        previous_secret_until=to_ms(previous_until), rotated_at=to_ms(now),
                    )
                )  # fmt: skip
        return await self._key(client_id)

    async def _key(self, client_id: int) -> WebhookKeyRow:
        wk = t.webhook_keys
        async with self.driver.read() as conn:
            row = (await conn.execute(sa.select(wk).where(wk.c.client_id == client_id))).one()
        return WebhookKeyRow(
            client_id=row.client_id,
            secret=row.secret,
            previous_secret=row.previous_secret,
            previous_secret_until=from_ms(row.previous_secret_until),
            created_at=from_ms(row.created_at),  # type: ignore[arg-type]
            rotated_at=from_ms(row.rotated_at),
        )

    async def _ensure_keys(self, conn: Conn, secrets: dict[int, str], now_ms: int) -> None:
        if not secrets:
            return
        rows = [
            {"client_id": cid, "secret": secret, "created_at": now_ms}
            for cid, secret in secrets.items()
        ]
        await conn.execute(self.driver.insert_ignoring(t.webhook_keys, ["client_id"]), rows)

    # --- fan-out ----------------------------------------------------------------------------

    async def undispatched_events(self, limit: int) -> list[EventRow]:
        """Events not yet fanned out to their webhook targets, oldest first."""
        async with self.driver.read() as conn:
            rows = (await conn.execute(_UNDISPATCHED, {"limit": limit})).all()
        return [
            EventRow(
                id=row.id, client_id=row.client_id, queue_id=row.queue_id, task_id=row.task_id,
                seq=row.seq, type=row.type,
                occurred_at=from_ms(row.occurred_at),  # type: ignore[arg-type]
                data=loads(row.data),
            )
            for row in rows
        ]  # fmt: skip

    async def active_subscriptions(self, client_ids: Sequence[int]) -> list[SubscriptionRow]:
        ws = t.webhook_subscriptions
        if not client_ids:
            return []
        async with self.driver.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(ws)
                    .where(ws.c.client_id.in_(list(client_ids)), ws.c.active.is_(sa.true()))
                    .order_by(ws.c.id)
                )
            ).all()
        return [_subscription(row) for row in rows]

    async def store_deliveries(
        self,
        deliveries: Sequence[NewDelivery],
        event_ids: Sequence[int],
        key_secrets: dict[int, str],
        now: datetime,
    ) -> int:
        """Store deliveries (once per event and target) and mark their events dispatched;
        make the signing keys of clients that have none (``key_secrets``: candidates)."""
        now_ms = to_ms(now)
        ev = t.events
        async with self.driver.write() as conn:
            await self._ensure_keys(conn, key_secrets, now_ms)
            if deliveries:
                rows = [
                    (
                        d.event_id, d.client_id, d.task_id, d.seq, d.event_type, d.target_kind,
                        d.target_key, d.subscription_id, d.url, d.body,
                    )
                    for d in deliveries
                ]  # fmt: skip
                await self.driver.insert_deliveries(conn, rows, now_ms)
            if event_ids:
                await conn.execute(
                    ev.update()
                    .where(ev.c.id.in_(list(event_ids)), ev.c.dispatched_at.is_(None))
                    .values(dispatched_at=now_ms)
                )
        return len(deliveries)

    # --- delivering -------------------------------------------------------------------------

    async def claim_deliveries(
        self, owner: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries, each the oldest pending one of its task and
        target, with the secrets to sign them."""
        now_ms = to_ms(now)
        lease = now_ms + int(lease_seconds * 1000)
        async with self.driver.write() as conn:
            rows = await self.driver.claim_deliveries(conn, owner, now_ms, limit, lease)
            if not rows:
                return []
            sub_ids = {r[8] for r in rows if r[8] is not None}
            client_ids = {r[9] for r in rows if r[8] is None}
            sub_secrets: dict[int, list[str]] = {}
            key_secrets: dict[int, list[str]] = {}
            ws, wk = t.webhook_subscriptions, t.webhook_keys
            if sub_ids:
                sub_rows: Sequence[Any] = (
                    await conn.execute(
                        sa.select(
                            ws.c.id, ws.c.secret, ws.c.previous_secret, ws.c.previous_secret_until
                        ).where(ws.c.id.in_(sub_ids))
                    )
                ).all()
                for sid, secret, old, until in sub_rows:
                    sub_secrets[sid] = _secrets(secret, old, until, now)
            if client_ids:
                key_rows: Sequence[Any] = (
                    await conn.execute(
                        sa.select(
                            wk.c.client_id, wk.c.secret, wk.c.previous_secret,
                            wk.c.previous_secret_until,
                        ).where(wk.c.client_id.in_(client_ids))
                    )
                ).all()  # fmt: skip
                for cid, secret, old, until in key_rows:
                    key_secrets[cid] = _secrets(secret, old, until, now)
        claimed = []
        for r in sorted(rows, key=lambda r: r[0]):
            secrets = sub_secrets.get(r[8], []) if r[8] is not None else key_secrets.get(r[9], [])
            claimed.append(
                ClaimedDelivery(
                    id=r[0], fence=r[1], event_id=r[2], event_type=r[3], target_kind=r[4],
                    url=r[5], body=r[6], attempts=r[7], subscription_id=r[8], client_id=r[9],
                    created_at_ms=r[10], secrets=secrets,
                )
            )  # fmt: skip
        return claimed

    async def finish_deliveries(self, results: Sequence[DeliveryResult], now: datetime) -> None:
        """Record the outcome of tries whose lease (fence) still holds (others are ignored)."""
        if not results:
            return
        now_ms = to_ms(now)
        rows = [
            (r.id, r.fence, r.status, r.next_attempt_at_ms, r.status_code, r.error, r.excerpt)
            for r in results
        ]
        ws = t.webhook_subscriptions
        async with self.driver.write() as conn:
            await self.driver.finish_deliveries(conn, rows, now_ms)
            for r in results:
                if r.disable_subscription is not None and r.status == "dead":
                    await conn.execute(
                        ws.update()
                        .where(ws.c.id == sa.select(t.webhook_deliveries.c.subscription_id)
                               .where(t.webhook_deliveries.c.id == r.id).scalar_subquery())
                        .values(active=False, disabled_reason=r.disable_subscription,
                                updated_at=now_ms)
                    )  # fmt: skip

    # --- the API's view ---------------------------------------------------------------------

    async def page_deliveries(
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
        wd = t.webhook_deliveries
        order = wd.c.id.desc() if newest_first else wd.c.id
        where = [wd.c.client_id == client_id]
        if status is not None:
            where.append(wd.c.status == status)
        if subscription_id is not None:
            where.append(wd.c.subscription_id == subscription_id)
        if task_id is not None:
            where.append(wd.c.task_id == task_id)
        columns = [c for c in wd.c if c.name not in ("body", "target_key")]
        async with self.driver.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(*columns).where(*where).order_by(order).limit(limit).offset(offset)
                )
            ).all()
            total = (
                await conn.execute(sa.select(sa.func.count()).select_from(wd).where(*where))
            ).scalar_one()
        return [_delivery(row) for row in rows], int(total)

    async def get_delivery(self, delivery_id: int, client_id: int) -> tuple[DeliveryRow, str]:
        """A delivery and its body."""
        wd = t.webhook_deliveries
        async with self.driver.read() as conn:
            row = (
                await conn.execute(
                    sa.select(wd).where(wd.c.id == delivery_id, wd.c.client_id == client_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        return _delivery(row), str(row.body)

    async def redeliver(self, delivery_id: int, client_id: int, now: datetime) -> DeliveryRow:
        """Send a dead delivery again (from now, with a new retry period)."""
        wd, ws = t.webhook_deliveries, t.webhook_subscriptions
        now_ms = to_ms(now)
        async with self.driver.write() as conn:
            row = (
                await conn.execute(
                    sa.select(wd.c.status, wd.c.subscription_id, ws.c.id.label("subscribed"))
                    .select_from(wd.outerjoin(ws, ws.c.id == wd.c.subscription_id))
                    .where(wd.c.id == delivery_id, wd.c.client_id == client_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"no webhook delivery {delivery_id}")
            if row.status != "dead":
                raise Conflict(f"webhook delivery {delivery_id} is {row.status}, not dead")
            if row.subscription_id is not None and row.subscribed is None:
                # never claimed again (see the claim's WHERE): it would stay pending for ever
                raise Conflict(f"the webhook of delivery {delivery_id} was deleted")
            await conn.execute(
                wd.update()
                .where(wd.c.id == delivery_id)
                .values(
                    status="pending", attempts=0, next_attempt_at=now_ms, created_at=now_ms,
                    updated_at=now_ms, dead_at=None, lease_owner=None, lease_until=None,
                    fence=wd.c.fence + 1,
                )
            )  # fmt: skip
        return (await self.get_delivery(delivery_id, client_id))[0]


def _secrets(secret: str, old: str | None, until: int | None, now: datetime) -> list[str]:
    return current_secrets(secret, old, from_ms(until), now)


def _subscription(row: Row[Any]) -> SubscriptionRow:
    return SubscriptionRow(
        id=row.id,
        client_id=row.client_id,
        url=row.url,
        events=list(loads(row.events)),
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_until=from_ms(row.previous_secret_until),
        active=bool(row.active),
        description=row.description,
        disabled_reason=row.disabled_reason,
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
    )


def _delivery(row: Row[Any]) -> DeliveryRow:
    return DeliveryRow(
        id=row.id,
        event_id=row.event_id,
        client_id=row.client_id,
        task_id=row.task_id,
        seq=row.seq,
        event_type=row.event_type,
        target_kind=row.target_kind,
        subscription_id=row.subscription_id,
        url=row.url,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=from_ms(row.next_attempt_at),  # type: ignore[arg-type]
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        response_excerpt=row.response_excerpt,
        created_at=from_ms(row.created_at),  # type: ignore[arg-type]
        updated_at=from_ms(row.updated_at),  # type: ignore[arg-type]
        delivered_at=from_ms(row.delivered_at),
        dead_at=from_ms(row.dead_at),
    )
