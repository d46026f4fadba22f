"""Do-not-call lists in the store, on SQLite and PostgreSQL alike: entries added, upserted,
listed, removed, looked up by a number's prefixes, and checked in the write of every call leg
(a suppressed leg is refused with the entry that matched, and not stored)."""

from __future__ import annotations

from datetime import timedelta

from test_store import msg_task, setup_queue

from ringback.clock import FakeClock
from ringback.domain.model import LegState
from ringback.domain.suppression import SuppressionEntry
from ringback.store.db import Store
from ringback.store.legs_sql import LegWrite
from ringback.store.records import NotFound
from support import leg_record


def _entry(number: str, prefix: bool = False, **fields: object) -> SuppressionEntry:
    return SuppressionEntry(number, prefix, **{"list_name": "dnc", "source": "crm", **fields})  # type: ignore[arg-type]


async def test_entries_are_added_upserted_listed_by_page_and_filtered(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    other = await store.ensure_client("other", clock.now())
    entries = [_entry(f"+3361234{i:04d}") for i in range(30)]
    assert await store.add_suppressions(acme, [*entries, _entry("+3399", True)], clock.now()) == 31
    assert await store.add_suppressions(other, [_entry("+33612340000")], clock.now()) == 1
    later = clock.now() + timedelta(days=1)
    again = [_entry("+33612340000", source="opt-out call", expires_at=later)]
    assert await store.add_suppressions(acme, again, clock.now()) == 1  # replaces, adds nothing
    page, total = await store.list_suppressions(acme, limit=10, offset=0)
    assert total == 31 and len(page) == 10
    assert (page[0].number, page[0].source, page[0].expires_at) == (
        "+33612340000",
        "opt-out call",
        later,
    )
    _, total = await store.list_suppressions(acme, number="+3361234001")
    assert total == 10
    [prefix], total = await store.list_suppressions(acme, number="+339")
    assert (prefix.prefix, total) == (True, 1)
    assert (await store.list_suppressions(acme, list_name="vip"))[1] == 0


async def test_a_number_is_suppressed_by_itself_or_any_prefix_until_the_entry_expires(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    soon = clock.now() + timedelta(hours=1)
    await store.add_suppressions(
        acme,
        [_entry("0312345678"), _entry("+4420", True, list_name="uk"),
         _entry("0999", True, expires_at=soon), _entry("0312", False)],
        clock.now(),
    )  # fmt: skip
    found = await store.suppression_for(acme, "0312345678", clock.now())
    assert found is not None and (found.list_name, found.number, found.prefix) == (
        "dnc",
        "0312345678",
        False,
    )
    assert found.reason() == "suppressed: on list 'dnc' (source crm)"
    by_prefix = await store.suppression_for(acme, "+44 20 7946 0000", clock.now())
    assert (
        by_prefix is not None
        and by_prefix.reason() == "suppressed: on list 'uk' (source crm; prefix +4420)"
    )
    assert (
        await store.suppression_for(acme, "0312999", clock.now()) is None
    )  # "0312" is a number entry
    assert await store.suppression_for(acme, "09991234", clock.now()) is not None
    assert await store.suppression_for(acme, "09991234", soon) is None  # expired
    other = await store.ensure_client("other", clock.now())
    assert await store.suppression_for(other, "0312345678", clock.now()) is None


async def test_entries_are_removed_one_by_id_by_number_or_by_list(
    store: Store, clock: FakeClock
) -> None:
    acme = await store.ensure_client("acme", clock.now())
    await store.add_suppressions(
        acme, [_entry("0311"), _entry("0311", list_name="b"), _entry("0322", list_name="b"),
               _entry("0333")], clock.now(),
    )  # fmt: skip
    assert await store.delete_suppressions(acme, number="0311") == 2
    assert await store.delete_suppressions(acme, list_name="b") == 1
    [left], _ = await store.list_suppressions(acme)
    other = await store.ensure_client("other", clock.now())
    try:
        await store.delete_suppression(other, left.id)
    except NotFound:
        pass
    else:
        raise AssertionError("another client's entry was deleted")
    await store.delete_suppression(acme, left.id)
    assert (await store.list_suppressions(acme))[1] == 0


async def test_a_leg_to_a_suppressed_number_is_refused_with_its_list_and_not_stored(
    store: Store, clock: FakeClock
) -> None:
    queue_id = await setup_queue(store, clock)
    acme = await store.ensure_client("acme", clock.now())
    await store.add_tasks(acme, queue_id, [msg_task(clock), msg_task(clock)], clock.now())
    first, second = (await store.claim("w1", clock.now(), 2, 30)).tasks
    await store.add_suppressions(acme, [_entry("09012", True, source="tps")], clock.now())
    refused = LegWrite(first.id, first.fence, first.attempt, "w1",
                       leg_record(clock, "leg-1", "0901234000"), LegState.DIALING)  # fmt: skip
    allowed = LegWrite(second.id, second.fence, second.attempt, "w1",
                       leg_record(clock, "leg-2", "0801234000"), LegState.DIALING)  # fmt: skip
    opened = await store.write_legs([refused, allowed])
    assert opened == {"leg-2"}
    entry = opened.suppressed["leg-1"]
    assert entry.reason() == "suppressed: on list 'dnc' (source tps; prefix 09012)"
    assert [c.leg_uuid for c in await store.calls(task_id=first.id)] == []
    await store.delete_suppressions(acme, list_name="dnc")
    retry = LegWrite(first.id, first.fence, first.attempt, "w1",
                     leg_record(clock, "leg-3", "0901234000"), LegState.DIALING)  # fmt: skip
    assert await store.write_legs([retry]) == {"leg-3"}
