"""``ringback status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ringback.cli.common import (
    ClientOpt,
    JsonOpt,
    escape,
    find_client,
    make_table,
    out,
    print_table,
    run,
    seed_time,
    unknown_client,
)
from ringback.cli.queues import queue_dict
from ringback.config import Settings

if TYPE_CHECKING:
    from ringback.service import Services


def status(client: ClientOpt = "default", as_json: JsonOpt = False) -> None:
    """Counts by status, calls in flight, the next due task."""

    async def work(services: Services, _s: Settings) -> dict[str, Any]:
        client_id = await find_client(services, client)
        if client_id is None:
            if client != "default":
                raise unknown_client(client)
            return {"counts": {}, "in_flight": 0, "next_due": None, "queues": []}
        report = await services.status(client_id)
        return {
            "counts": report.counts,
            "in_flight": report.in_flight,
            "next_due": seed_time(report.next_due) or None,
            "queues": [queue_dict(q) for q in report.queues],
        }

    view = run(work)
    if as_json:
        out.print_json(data=view)
        return
    table = make_table("status", "tasks")
    for key in sorted(view["counts"]):
        table.add_row(key, str(view["counts"][key]))
    print_table(table)
    queues = ", ".join(f"{q['name']} {q['status']}" for q in view["queues"]) or "none"
    out.print(f"queues: {escape(queues)}")
    out.print(f"in flight: {view['in_flight']}; next due: {view['next_due'] or 'nothing'}")
