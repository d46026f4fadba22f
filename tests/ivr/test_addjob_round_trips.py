"""An IVR's AddJob on PostgreSQL, once its statements are prepared, is two statements each
sent once while the caller waits for JobAdded: what the add checks (the client's allowed
caller ids and the job's queue, one read), and the add (tasks, events, wake-up and the audit
entry); no BEGIN, COMMIT or ROLLBACK (each is one statement, its own transaction).
The job is stored and audited as before."""

from __future__ import annotations

import pytest

from ringback.clock import FakeClock
from ringback.ivr.parse import parse
from ringback.ivr.simulate import simulate_call
from ringback.service import TaskService
from ringback.store.db import Store
from support_round_trips import counting

INNER = "&lt;IVR&gt;&lt;Hangup/&gt;&lt;/IVR&gt;"  # escaped: the XML inside the XML
JOB = (
    '{"type": "ivr_call", "queue": "callbacks", "data": {"calling_number": "0506868000", '
    '"called_number": "{{CallingNumber}}", '
    f'"ivr_xml": {{"type": "inline", "data": "{INNER}"}}}}}}'
)


@pytest.mark.parametrize("backend", ["postgresql"])  # round trips to a server: PostgreSQL's
async def test_an_addjob_on_postgresql_sends_two_statements_and_no_transaction_control(
    store: Store, clock: FakeClock
) -> None:
    client_id = await store.ensure_client("acme", clock.now())
    queue = await store.create_queue(client_id, "callbacks", clock.now(), status="off")
    service = TaskService(store, clock)
    document = parse(f"<IVR><AddJob>{JOB}</AddJob><Speak>{{{{JobAdded}}}}</Speak></IVR>")
    sent = await counting(store)
    await simulate_call(document, clock, client_id=client_id, jobs=service)  # prepares them
    sent.clear()
    result, _ = await simulate_call(document, clock, client_id=client_id, jobs=service)
    assert result.variables["JobAdded"] == "true" and len(result.jobs_added) == 1
    assert len(sent) == 2, sent
    assert "caller_ids" in sent[0] and "queues" in sent[0]  # one read: both
    assert "INSERT INTO audit_log" in sent[-1]  # the entry, in the add's statement
    assert all(line.startswith("bind_execute: ") for line in sent), sent
    [task] = await store.tasks_by_ids(result.jobs_added, clock.now())
    assert task.queue_id == queue.id
    entries = await store.list_audit(client_id, object_type="task")
    assert [(e.object_id, e.channel) for e in entries][:1] == [(str(task.id), "ivr")]
