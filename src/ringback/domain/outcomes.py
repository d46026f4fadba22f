"""SIP response codes and Q.850 / FreeSWITCH hangup causes, normalised to an :class:`Outcome`.

When both are known, prefer the SIP code: a cause name can lose what happened. Two cases are
deliberately not the composition ``outcome_for_cause(cause_for_sip(code))``:

* 408 is ``NO_ANSWER`` (the far end rang out), but its cause ``RECOVERY_ON_TIMER_EXPIRE`` on its
  own means a signalling timer expired, so the cause alone is ``FAILED``;
* 487 is ``NO_ANSWER`` (ringback cancelled the INVITE when its ring timeout ran out), but the
  cause ``ORIGINATOR_CANCEL`` on its own means the call was called off: ``CANCELED``;

and 401, 402 and 407 are ``FAILED`` (ringback's own credentials or account were refused, which
no person decided), although the usual table turns them into ``CALL_REJECTED``.
"""

from __future__ import annotations

from ringback.domain.model import Outcome

_SIP_OUTCOMES: dict[int, Outcome] = {
    486: Outcome.BUSY,
    600: Outcome.BUSY,
    408: Outcome.NO_ANSWER,
    480: Outcome.NO_ANSWER,
    487: Outcome.NO_ANSWER,
    403: Outcome.REJECTED,
    603: Outcome.REJECTED,
    608: Outcome.REJECTED,
    404: Outcome.INVALID_NUMBER,
    410: Outcome.INVALID_NUMBER,
    484: Outcome.INVALID_NUMBER,
    485: Outcome.INVALID_NUMBER,
    604: Outcome.INVALID_NUMBER,
}

_CAUSE_OUTCOMES: dict[str, Outcome] = {
    "NORMAL_CLEARING": Outcome.ANSWERED,
    "SUCCESS": Outcome.ANSWERED,
    "USER_BUSY": Outcome.BUSY,
    "NO_ANSWER": Outcome.NO_ANSWER,
    "NO_USER_RESPONSE": Outcome.NO_ANSWER,
    "SUBSCRIBER_ABSENT": Outcome.NO_ANSWER,
    "CALL_REJECTED": Outcome.REJECTED,
    "UNALLOCATED_NUMBER": Outcome.INVALID_NUMBER,
    "NO_ROUTE_DESTINATION": Outcome.INVALID_NUMBER,
    "INVALID_NUMBER_FORMAT": Outcome.INVALID_NUMBER,
    "NUMBER_CHANGED": Outcome.INVALID_NUMBER,
    "ORIGINATOR_CANCEL": Outcome.CANCELED,
    "LOSE_RACE": Outcome.CANCELED,
    # NORMAL_TEMPORARY_FAILURE, NETWORK_OUT_OF_ORDER, RECOVERY_ON_TIMER_EXPIRE,
    # SWITCH_CONGESTION and every other cause are FAILED.
}

# SIP final response -> Q.850 cause name, as FreeSWITCH's mod_sofia maps them (after RFC 3398
# and RFC 4497); 608 follows RFC 8688.
_SIP_CAUSES: dict[int, str] = {
    400: "NORMAL_TEMPORARY_FAILURE",
    401: "CALL_REJECTED",
    402: "CALL_REJECTED",
    403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER",
    405: "SERVICE_UNAVAILABLE",
    406: "SERVICE_NOT_IMPLEMENTED",
    407: "CALL_REJECTED",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    410: "NUMBER_CHANGED",
    413: "INTERWORKING",
    414: "INTERWORKING",
    415: "SERVICE_NOT_IMPLEMENTED",
    416: "INTERWORKING",
    420: "INTERWORKING",
    421: "INTERWORKING",
    423: "INTERWORKING",
    480: "NO_USER_RESPONSE",
    481: "NORMAL_TEMPORARY_FAILURE",
    482: "EXCHANGE_ROUTING_ERROR",
    483: "EXCHANGE_ROUTING_ERROR",
    484: "INVALID_NUMBER_FORMAT",
    485: "NO_ROUTE_DESTINATION",
    486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL",
    488: "INCOMPATIBLE_DESTINATION",
    500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED",
    502: "NETWORK_OUT_OF_ORDER",
    503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE",
    505: "INTERWORKING",
    513: "INTERWORKING",
    600: "USER_BUSY",
    603: "CALL_REJECTED",
    604: "NO_ROUTE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
    608: "CALL_REJECTED",
}

#: outcomes no retry can change
NEVER_RETRY: frozenset[Outcome] = frozenset({Outcome.INVALID_NUMBER})


def outcome_for_sip(code: int) -> Outcome:
    """The outcome of a call that ended with SIP response ``code``.

    2xx is ANSWERED; 486 and 600 BUSY; 408, 480 and 487 NO_ANSWER; 403, 603 and 608 REJECTED
    (the callee or its network refused the call: Forbidden, Decline, Rejected); 404, 410, 484,
    485 and 604 INVALID_NUMBER; anything else FAILED.
    """
    if 200 <= code <= 299:
        return Outcome.ANSWERED
    return _SIP_OUTCOMES.get(code, Outcome.FAILED)


def outcome_for_cause(cause: str) -> Outcome:
    """The outcome for a Q.850 / FreeSWITCH hangup cause name (any case); unknown is FAILED."""
    return _CAUSE_OUTCOMES.get(cause.strip().upper(), Outcome.FAILED)


def cause_for_sip(code: int) -> str:
    """The Q.850 cause name for SIP response ``code``; ``NORMAL_UNSPECIFIED`` if none fits."""
    if 200 <= code <= 299:
        return "NORMAL_CLEARING"
    return _SIP_CAUSES.get(code, "NORMAL_UNSPECIFIED")


def is_retryable(outcome: Outcome) -> bool:
    """False for outcomes no retry can change (see :data:`NEVER_RETRY`).

    This says nothing about success: an answered call is finished by the caller, not here.
    """
    return outcome not in NEVER_RETRY


#: which outcome of the A legs a callback reports when none answered: the first in this order
#: that any A leg had (so invalid_number only when every A number was invalid)
A_OUTCOME_PREFERENCE: tuple[Outcome, ...] = (
    Outcome.ANSWERED,
    Outcome.BUSY,
    Outcome.NO_ANSWER,
    Outcome.REJECTED,
    Outcome.FAILED,
    Outcome.CANCELED,
    Outcome.INVALID_NUMBER,
)


def a_leg_rank(outcome: str | None) -> int:
    """Where an A leg's outcome stands in :data:`A_OUTCOME_PREFERENCE` (no outcome counts as
    failed; an unknown one comes last): the leg with the lowest rank is the one reported."""
    try:
        return A_OUTCOME_PREFERENCE.index(Outcome(outcome or Outcome.FAILED))
    except ValueError:
        return len(A_OUTCOME_PREFERENCE)
