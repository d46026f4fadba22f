"""The store's contract for webhook subscriptions and the clients' signing keys, with tenant
isolation, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ringback.clock import FakeClock
from ringback.domain.rows import NotFound, SubscriptionRow
from ringback.store import Store

SECRET = "s" * 32


async def _subscribe(
    store: Store,
    clock: FakeClock,
    client: int,
    url: str = "https://hooks.example/all",
    **fields: object,
) -> SubscriptionRow:
    values: dict[str, object] = {
        "url": url, "events": ["*"], "secret": SECRET, "active": True, "description": "",
        "now": clock.now(), **fields,
    }  # fmt: skip
    return await store.create_subscription(client, **values)  # type: ignore[arg-type]


# --- subscriptions ------------------------------------------------------------------------------


async def test_create_subscription_stores_its_fields_and_reads_them_back(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    sub = await _subscribe(
        store, clock, acme, events=["task.finished", "call.answered"], active=False,
        description="ops",
    )  # fmt: skip
    assert (sub.client_id, sub.url, sub.events, sub.secret) == (
        acme,
        "https://hooks.example/all",
        ["task.finished", "call.answered"],
        SECRET,
    )
    assert (sub.active, sub.description, sub.disabled_reason) == (False, "ops", None)
    assert (sub.previous_secret, sub.previous_secret_until) == (None, None)
    assert sub.created_at == sub.updated_at == clock.now()
    assert await store.get_subscription(sub.id, acme) == sub
    assert await store.list_subscriptions(acme) == [sub]


async def test_list_subscriptions_is_by_id_and_of_one_client(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    first = await _subscribe(store, clock, acme, "https://a.example/1")
    theirs = await _subscribe(store, clock, other, "https://b.example/1")
    second = await _subscribe(store, clock, acme, "https://a.example/2")
    assert [s.id for s in await store.list_subscriptions(acme)] == [first.id, second.id]
    assert [s.id for s in await store.list_subscriptions(other)] == [theirs.id]
    assert [s.id for s in await store.list_subscriptions(acme, sub_id=second.id)] == [second.id]
    assert await store.list_subscriptions(acme, sub_id=theirs.id) == []


async def test_subscription_of_another_client_is_not_found_to_read_change_or_delete(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    sub = await _subscribe(store, clock, acme)
    with pytest.raises(NotFound):
        await store.get_subscription(sub.id, other)
    with pytest.raises(NotFound):
        await store.update_subscription(sub.id, other, {"url": "https://evil.example"}, clock.now())
    with pytest.raises(NotFound):
        await store.delete_subscription(sub.id, other)
    with pytest.raises(NotFound):
        await store.get_subscription(sub.id + 1000, acme)
    assert await store.get_subscription(sub.id, acme) == sub


async def test_update_subscription_changes_only_the_fields_given(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    sub = await _subscribe(store, clock, acme)
    clock.advance(5)
    changed = await store.update_subscription(
        sub.id, acme, {"url": "https://hooks.example/new", "events": ["task.finished"]},
        clock.now(),
    )  # fmt: skip
    assert (changed.url, changed.events, changed.updated_at) == (
        "https://hooks.example/new",
        ["task.finished"],
        clock.now(),
    )
    assert (changed.secret, changed.active, changed.created_at) == (SECRET, True, sub.created_at)
    assert changed.previous_secret is None
    assert await store.get_subscription(sub.id, acme) == changed


async def test_a_new_subscription_secret_keeps_the_old_one_until_the_time_given(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    sub = await _subscribe(store, clock, acme)
    until = clock.now() + timedelta(hours=1)
    rotated = await store.update_subscription(
        sub.id, acme, {"secret": "n" * 32}, clock.now(), previous_secret_until=until
    )
    assert (rotated.secret, rotated.previous_secret, rotated.previous_secret_until) == (
        "n" * 32,
        SECRET,
        until,
    )
    same = await store.update_subscription(sub.id, acme, {"secret": "n" * 32}, clock.now())
    assert (same.previous_secret, same.previous_secret_until) == (SECRET, until)  # unchanged


async def test_delete_subscription_forgets_it(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    gone = await _subscribe(store, clock, acme, "https://a.example/1")
    kept = await _subscribe(store, clock, acme, "https://a.example/2")
    await store.delete_subscription(gone.id, acme)
    with pytest.raises(NotFound):
        await store.get_subscription(gone.id, acme)
    with pytest.raises(NotFound):
        await store.delete_subscription(gone.id, acme)
    assert await store.list_subscriptions(acme) == [kept]


async def test_active_subscriptions_are_the_switched_on_ones_of_the_clients_named(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    third = await store.ensure_client("third", clock.now())
    on = await _subscribe(store, clock, acme, "https://a.example/on")
    await _subscribe(store, clock, acme, "https://a.example/off", active=False)
    theirs = await _subscribe(store, clock, other, "https://b.example/on")
    await _subscribe(store, clock, third, "https://c.example/on")
    assert [s.id for s in await store.active_subscriptions([acme, other])] == [on.id, theirs.id]
    assert [s.id for s in await store.active_subscriptions([acme])] == [on.id]
    assert await store.active_subscriptions([]) == []
    await store.update_subscription(on.id, acme, {"active": False}, clock.now())
    assert await store.active_subscriptions([acme]) == []


# --- the client's signing key -------------------------------------------------------------------


async def test_webhook_key_is_made_once_and_then_kept(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    made = await store.webhook_key(acme, "k" * 32, clock.now())
    assert (made.client_id, made.secret, made.created_at) == (acme, "k" * 32, clock.now())
    assert (made.previous_secret, made.rotated_at) == (None, None)
    clock.advance(5)
    assert await store.webhook_key(acme, "x" * 32, clock.now()) == made
    other = await store.ensure_client("other", clock.now())
    assert (await store.webhook_key(other, "o" * 32, clock.now())).secret == "o" * 32


async def test_rotate_webhook_key_keeps_the_old_secret_until_the_time_given(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    made = await store.webhook_key(acme, "k" * 32, clock.now())
    clock.advance(5)
    until = clock.now() + timedelta(hours=1)
    rotated = await store.rotate_webhook_key(acme, "n" * 32, clock.now(), until)
    assert (rotated.secret, rotated.previous_secret, rotated.previous_secret_until) == (
        "n" * 32,
        "k" * 32,
        until,
    )
    assert (rotated.rotated_at, rotated.created_at) == (clock.now(), made.created_at)
    assert await store.webhook_key(acme, "x" * 32, clock.now()) == rotated


async def test_rotating_a_key_the_client_lacks_makes_it(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    until = clock.now() + timedelta(hours=1)
    made = await store.rotate_webhook_key(acme, "n" * 32, clock.now(), until)
    assert (made.secret, made.previous_secret, made.rotated_at) == ("n" * 32, None, None)
