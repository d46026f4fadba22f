"""Inbound routing and inbound call records in the store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ringback.clock import FakeClock
from ringback.domain.model import Leg, Outcome
from ringback.store.db import Store
from ringback.store.records import Conflict, NotFound
from ringback.telephony.base import CallRecord


async def test_a_number_routes_to_one_client_and_its_route_can_be_replaced(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    row, created = await store.put_number(
        acme, "0505550001", answer_url=None, ivr_file="menu.xml", notify_completed=False,
        description="main line", now=clock.now(),
    )  # fmt: skip
    assert created and row.ivr_file == "menu.xml" and row.client_id == acme
    clock.advance(5)
    row, created = await store.put_number(
        acme, "0505550001", answer_url="http://a/x,http://b/x", ivr_file=None,
        notify_completed=True, description="", now=clock.now(),
    )  # fmt: skip
    assert not created and row.answer_url == "http://a/x,http://b/x" and row.ivr_file is None
    assert row.updated_at - row.created_at == timedelta(seconds=5)
    assert await store.route_for("0505550001") == row
    assert await store.route_for("0505550002") is None

    with pytest.raises(Conflict):
        await store.put_number(
            other, "0505550001", answer_url=None, ivr_file="x.xml", notify_completed=False,
            description="", now=clock.now(),
        )  # fmt: skip
    with pytest.raises(NotFound):
        await store.get_number(other, "0505550001")
    with pytest.raises(NotFound):
        await store.delete_number(other, "0505550001")
    assert [n.number for n in await store.list_numbers(acme)] == ["0505550001"]
    await store.delete_number(acme, "0505550001")
    assert await store.list_numbers(acme) == []


async def test_an_inbound_call_is_stored_without_a_task_and_read_back_whole(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    record = CallRecord(
        leg_uuid="leg-1", call_uuid="call-1", leg=Leg.MAIN, direction="inbound",
        from_number="09011112222", to_number="0505550001", caller_id_name=None,
        started_at=clock.now(), answered_at=clock.now(), outcome=Outcome.ANSWERED, sip_code=200,
        ended_at=clock.now() + timedelta(seconds=3), hangup_cause="NORMAL_CLEARING",
        played=[{"type": "speak", "text": "hello", "at": clock.now()}], dtmf_received="1#",
        detail={"ivr_trace": ["line 1 Speak: 'hello'"]},
    )  # fmt: skip
    await store.save_calls(acme, [record])
    [row] = await store.calls(call_uuid="call-1")
    assert row.task_id is None and row.direction == "inbound" and row.client_id == acme
    assert row.played[0]["text"] == "hello" and row.dtmf_received == "1#"
    assert row.detail == {"ivr_trace": ["line 1 Speak: 'hello'"]}
    assert row.duration_ms == 3000
    assert row.fax is None


async def test_an_inbound_calls_fax_is_stored_with_it(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    fax = {"operation": "reception", "file": "received_faxes/a.tif", "code": 0, "pages": 1,
           "tiff": "received_faxes/a.tif", "pdf": "received_faxes/a.pdf"}  # fmt: skip
    record = CallRecord(
        leg_uuid="leg-f", call_uuid="call-f", leg=Leg.MAIN, direction="inbound",
        from_number="09011112222", to_number="0505550001", caller_id_name=None,
        started_at=clock.now(), ended_at=clock.now(), fax=fax,
    )  # fmt: skip
    await store.save_calls(acme, [record])
    [row] = await store.calls(call_uuid="call-f")
    assert row.fax == fax


async def test_list_numbers_is_by_number_and_of_one_client(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    for client, number in ((acme, "0505550003"), (other, "0505550002"), (acme, "0505550001")):
        await store.put_number(
            client, number, answer_url=None, ivr_file="menu.xml", notify_completed=False,
            description="", now=clock.now(),
        )  # fmt: skip
    assert [n.number for n in await store.list_numbers(acme)] == ["0505550001", "0505550003"]
    assert [n.number for n in await store.list_numbers(other)] == ["0505550002"]
    route = await store.route_for("0505550002")
    assert route is not None and route.client_id == other
    assert await store.get_number(other, "0505550002") == route


async def test_an_unrouted_number_is_not_found(store: Store, clock: FakeClock) -> None:
    acme = await store.ensure_client("acme", clock.now())
    with pytest.raises(NotFound):
        await store.get_number(acme, "0505559999")
    with pytest.raises(NotFound):
        await store.delete_number(acme, "0505559999")
    assert await store.list_numbers(acme) == []


async def test_a_deleted_number_may_be_routed_by_another_client(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    await store.put_number(
        acme, "0505550001", answer_url=None, ivr_file="a.xml", notify_completed=False,
        description="", now=clock.now(),
    )  # fmt: skip
    await store.delete_number(acme, "0505550001")
    assert await store.route_for("0505550001") is None
    row, created = await store.put_number(
        other, "0505550001", answer_url="http://b/x", ivr_file=None, notify_completed=True,
        description="theirs", now=clock.now(),
    )  # fmt: skip
    assert created and row.client_id == other and row.notify_completed is True
    assert await store.route_for("0505550001") == row
