"""Stored tasks are shown as they were stored: a URL rule added since (URLs are checked when
stored, README: the address guard) must not make an older task unreadable."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError
from test_store import msg_task, setup_queue

from ringback.api.schemas import task_out
from ringback.clock import FakeClock
from ringback.domain.model import TaskKind
from ringback.domain.tasks import IvrCallData
from ringback.store.db import Store

OLD_URL = "http://hooks.example/a\x07b"  # stored before control characters were refused


async def test_a_task_stored_before_a_url_rule_is_still_shown(
    store: Store, clock: FakeClock
) -> None:
    payload = {
        "calling_number": "0506868000",
        "called_number": "0901234000",
        "ivr_xml": {"type": "url", "data": OLD_URL},
    }
    with pytest.raises(ValidationError):
        IvrCallData.model_validate(payload)  # new input with that URL is refused
    queue_id = await setup_queue(store, clock)
    client_id = (await store.get_queue(queue_id)).client_id
    old = dataclasses.replace(msg_task(clock), kind=TaskKind.IVR_CALL, payload=payload)
    [task_id] = await store.add_tasks(client_id, queue_id, [old], clock.now())
    shown = task_out(await store.get_task(task_id, store.clock.now()), [])
    assert shown.data is not None
    assert shown.data.model_dump()["ivr_xml"]["data"] == OLD_URL
