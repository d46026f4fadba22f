"""The operator's log lines for calls: one when a leg is placed, one when it ends, one when a
leg is not placed because the worker's lease on its task may have run out. Numbers are never
logged; the lines are the worker's (logger ``ringback.worker``)."""

from __future__ import annotations

from ringback.logoutput import logger
from ringback.store import ClaimedTask
from ringback.telephony.base import CallRecord

#: the worker's logger
NAME = "ringback.worker"


def placed(claimed: ClaimedTask, record: CallRecord) -> None:
    logger(NAME).info(
        "call placed", task_id=claimed.id, queue_id=claimed.queue_id, attempt=claimed.attempt,
        leg=record.leg_uuid, call=record.call_uuid, party=record.leg.value,
    )  # fmt: skip


def not_placed_lease_ran_out(claimed: ClaimedTask, record: CallRecord) -> None:
    logger(NAME).warning("call not placed: lease ran out", task_id=claimed.id, leg=record.leg_uuid)


def ended(claimed: ClaimedTask, record: CallRecord) -> None:
    logger(NAME).info(
        "call ended", task_id=claimed.id, queue_id=claimed.queue_id, attempt=claimed.attempt,
        leg=record.leg_uuid, call=record.call_uuid, party=record.leg.value,
        outcome=record.outcome.value if record.outcome else None, sip_code=record.sip_code,
        cause=record.hangup_cause, duration_s=_rounded(record.duration_s),
        talk_s=_rounded(record.billsec),
    )  # fmt: skip


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
