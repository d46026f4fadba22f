"""An IVR's AddJob is refused, as any bad job, when the job names a caller id off the client's
allowed list: JobAdded is false, the trace names the line, the element and the field."""

from __future__ import annotations

from ringback.clock import FakeClock
from ringback.ivr.parse import parse
from ringback.ivr.simulate import simulate_call
from ringback.service import CampaignRuleService, TaskService
from ringback.store.db import Store


async def test_addjob_naming_a_caller_id_off_the_list_is_not_added_and_says_which_field(
    store: Store, clock: FakeClock
) -> None:
    client_id = await store.ensure_client("acme", clock.now())
    await CampaignRuleService(store, clock).set_caller_ids(client_id, ["0506868*"])
    inner = "&lt;IVR&gt;&lt;Hangup/&gt;&lt;/IVR&gt;"  # escaped: the XML inside the XML
    job = ('{"type": "ivr_call", "data": {"calling_number": "0999000000", '
           '"called_number": "{{CallingNumber}}", '
           f'"ivr_xml": {{"type": "inline", "data": "{inner}"}}}}}}')  # fmt: skip
    xml = f"<IVR>\n<Speak>hi</Speak>\n<AddJob>{job}</AddJob>\n<Speak>{{{{JobAdded}}}}</Speak></IVR>"
    service = TaskService(store, clock)
    result, _ = await simulate_call(parse(xml), clock, client_id=client_id, jobs=service)
    assert result.ok and result.jobs_added == []
    assert result.variables["JobAdded"] == "false"
    [entry] = [e for e in result.trace if e.element == "AddJob"]
    assert entry.line == 3
    assert entry.detail.startswith(
        "not added: calling_number: caller id '0999000000' is not on the client's allowed "
        "caller ids"
    )
    allowed = job.replace("0999000000", "0506868000")
    xml = f"<IVR><AddJob>{allowed}</AddJob></IVR>"
    result, _ = await simulate_call(parse(xml), clock, client_id=client_id, jobs=service)
    assert len(result.jobs_added) == 1
