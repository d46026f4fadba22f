"""The store's credential and token contract (revocation), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ringback.clock import FakeClock
from ringback.domain.rows import Credential
from ringback.store.db import Store
from ringback.store.records import NotFound


async def _credential(store: Store, clock: FakeClock, key: str = "rb_one") -> Credential:
    client_id = await store.ensure_client("acme", clock.now())
    await store.add_credential(client_id, key, "scrypt$hash", clock.now())
    found = await store.find_credential(key)
    assert found is not None
    return found


async def _token(store: Store, clock: FakeClock, credential: Credential, name: str) -> str:
    await store.add_token(name, credential, clock.now() + timedelta(hours=1), clock.now())
    return name


async def test_a_new_credential_is_enabled_at_secret_version_one(
    store: Store, clock: FakeClock
) -> None:
    found = await _credential(store, clock)
    assert found.secret_version == 1 and found.disabled_at is None
    [row] = await store.list_credentials()
    assert (row.key, row.client_name, row.secret_version) == ("rb_one", "acme", 1)
    assert row.rotated_at is None and row.disabled_at is None


async def test_a_token_names_its_client_and_credential(store: Store, clock: FakeClock) -> None:
    credential = await _credential(store, clock)
    token = await _token(store, clock, credential, "t1")
    owner = await store.token_owner(token, clock.now())
    assert owner is not None
    assert (owner.client_id, owner.credential_id) == (credential.client_id, credential.id)
    assert await store.token_client(token, clock.now()) == credential.client_id
    clock.advance(seconds=3601)
    assert await store.token_client(token, clock.now()) is None


async def test_token_of_a_disabled_credential_is_refused_until_it_is_enabled(
    store: Store, clock: FakeClock
) -> None:
    credential = await _credential(store, clock)
    token = await _token(store, clock, credential, "t1")
    disabled = await store.set_credential_disabled("rb_one", clock.now())
    assert disabled.disabled_at is not None
    assert await store.token_client(token, clock.now()) is None
    enabled = await store.set_credential_disabled("rb_one", None)
    assert enabled.disabled_at is None
    assert await store.token_client(token, clock.now()) == credential.client_id


async def test_token_issued_before_a_rotation_is_refused_and_a_new_one_works(
    store: Store, clock: FakeClock
) -> None:
    credential = await _credential(store, clock)
    old = await _token(store, clock, credential, "old")
    rotated = await store.rotate_credential("rb_one", "scrypt$new", clock.now())
    assert rotated.secret_version == 2 and rotated.secret_hash == "scrypt$new"
    assert await store.token_client(old, clock.now()) is None
    new = await _token(store, clock, rotated, "new")
    assert await store.token_client(new, clock.now()) == credential.client_id
    [row] = await store.list_credentials(credential.client_id)
    assert row.secret_version == 2 and row.rotated_at == clock.now()


async def test_deleting_a_credential_refuses_its_tokens_and_forgets_it(
    store: Store, clock: FakeClock
) -> None:
    credential = await _credential(store, clock)
    other = await _credential(store, clock, "rb_two")
    token = await _token(store, clock, credential, "t1")
    kept = await _token(store, clock, other, "t2")
    await store.delete_credential("rb_one")
    assert await store.find_credential("rb_one") is None
    assert await store.token_client(token, clock.now()) is None
    assert await store.token_client(kept, clock.now()) == other.client_id
    assert [row.key for row in await store.list_credentials()] == ["rb_two"]


async def test_changing_an_unknown_credential_is_not_found(store: Store, clock: FakeClock) -> None:
    with pytest.raises(NotFound):
        await store.set_credential_disabled("rb_nobody", clock.now())
    with pytest.raises(NotFound):
        await store.rotate_credential("rb_nobody", "scrypt$x", clock.now())
    with pytest.raises(NotFound):
        await store.delete_credential("rb_nobody")


async def test_disabling_twice_keeps_the_time_of_the_first_disabling(
    store: Store, clock: FakeClock
) -> None:
    await _credential(store, clock)
    first = clock.now()
    await store.set_credential_disabled("rb_one", first)
    clock.advance(60)
    again = await store.set_credential_disabled("rb_one", clock.now())
    assert again.disabled_at == first
    [row] = await store.list_credentials()
    assert row.disabled_at == first


async def test_list_credentials_of_a_client_shows_none_of_another_clients(
    store: Store, clock: FakeClock
) -> None:
    mine = await _credential(store, clock)
    other = await store.ensure_client("other", clock.now())
    await store.add_credential(other, "rb_theirs", "scrypt$hash", clock.now())
    assert [row.key for row in await store.list_credentials(mine.client_id)] == ["rb_one"]
    assert [row.key for row in await store.list_credentials(other)] == ["rb_theirs"]
    assert [row.key for row in await store.list_credentials()] == ["rb_one", "rb_theirs"]
    assert await store.find_credential("rb_nobody") is None


async def test_an_unknown_token_has_no_owner(store: Store, clock: FakeClock) -> None:
    credential = await _credential(store, clock)
    await _token(store, clock, credential, "t1")
    assert await store.token_owner("t-unknown", clock.now()) is None
    assert await store.token_client("t-unknown", clock.now()) is None


# --- idempotency keys -------------------------------------------------------------------------


async def test_the_first_response_stored_for_an_idempotency_key_is_kept(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    assert await store.stored_response(acme, "key-1") is None
    kept = await store.store_response(acme, "key-1", "hash-a", 201, '{"id": 1}', clock.now())
    assert (kept.request_hash, kept.status_code, kept.body) == ("hash-a", 201, '{"id": 1}')
    assert await store.stored_response(acme, "key-1") == kept
    second = await store.store_response(acme, "key-1", "hash-b", 409, "{}", clock.now())
    assert second == kept
    assert await store.stored_response(acme, "key-1") == kept


async def test_an_idempotency_key_belongs_to_one_client(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    mine = await store.store_response(acme, "key-1", "hash-a", 201, "{}", clock.now())
    assert await store.stored_response(other, "key-1") is None
    theirs = await store.store_response(other, "key-1", "hash-b", 202, "[]", clock.now())
    assert (theirs.request_hash, theirs.status_code) == ("hash-b", 202)
    assert await store.stored_response(acme, "key-1") == mine


async def test_a_deleted_token_is_refused_at_once_and_its_siblings_stay(
    store: Store, clock: FakeClock
) -> None:
    credential = await _credential(store, clock)
    gone = await _token(store, clock, credential, "t-gone")
    kept = await _token(store, clock, credential, "t-kept")
    assert await store.delete_token(gone) is True
    assert await store.token_client(gone, clock.now()) is None
    assert await store.token_client(kept, clock.now()) == credential.client_id
    assert await store.delete_token(gone) is False
