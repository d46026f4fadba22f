import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.model import Outcome
from ringback.domain.outcomes import (
    NEVER_RETRY,
    a_leg_rank,
    cause_for_sip,
    is_retryable,
    outcome_for_cause,
    outcome_for_sip,
)

SIP_CODES = st.integers(100, 699)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, Outcome.ANSWERED),
        (202, Outcome.ANSWERED),
        (299, Outcome.ANSWERED),
        (486, Outcome.BUSY),
        (600, Outcome.BUSY),
        (408, Outcome.NO_ANSWER),
        (480, Outcome.NO_ANSWER),
        (487, Outcome.NO_ANSWER),
        (403, Outcome.REJECTED),
        (603, Outcome.REJECTED),
        (608, Outcome.REJECTED),
        (404, Outcome.INVALID_NUMBER),
        (410, Outcome.INVALID_NUMBER),
        (484, Outcome.INVALID_NUMBER),
        (485, Outcome.INVALID_NUMBER),
        (604, Outcome.INVALID_NUMBER),
    ],
)
def test_sip_code_maps_to_its_outcome(code: int, outcome: Outcome) -> None:
    assert outcome_for_sip(code) is outcome


@pytest.mark.parametrize(
    "code", [100, 180, 183, 302, 400, 401, 402, 407, 488, 500, 502, 503, 504, 606, 699]
)
def test_other_sip_codes_are_failed(code: int) -> None:
    assert outcome_for_sip(code) is Outcome.FAILED


@given(st.integers(200, 299))
def test_every_2xx_is_answered(code: int) -> None:
    assert outcome_for_sip(code) is Outcome.ANSWERED


@given(SIP_CODES)
def test_every_sip_code_maps_to_some_outcome(code: int) -> None:
    assert isinstance(outcome_for_sip(code), Outcome)
    assert isinstance(cause_for_sip(code), str)


@pytest.mark.parametrize("code", [404, 484, 604, 410, 485])
def test_invalid_number_codes_are_never_retryable(code: int) -> None:
    assert not is_retryable(outcome_for_sip(code))


@given(SIP_CODES)
def test_a_sip_code_is_retryable_unless_it_means_invalid_number(code: int) -> None:
    assert is_retryable(outcome_for_sip(code)) == (code not in {404, 410, 484, 485, 604})


@pytest.mark.parametrize("outcome", list(Outcome))
def test_only_invalid_number_is_never_retryable(outcome: Outcome) -> None:
    assert set(NEVER_RETRY) == {Outcome.INVALID_NUMBER}
    assert is_retryable(outcome) == (outcome is not Outcome.INVALID_NUMBER)


@pytest.mark.parametrize(
    ("cause", "outcome"),
    [
        ("NORMAL_CLEARING", Outcome.ANSWERED),
        ("SUCCESS", Outcome.ANSWERED),
        ("USER_BUSY", Outcome.BUSY),
        ("NO_ANSWER", Outcome.NO_ANSWER),
        ("NO_USER_RESPONSE", Outcome.NO_ANSWER),
        ("SUBSCRIBER_ABSENT", Outcome.NO_ANSWER),
        ("CALL_REJECTED", Outcome.REJECTED),
        ("UNALLOCATED_NUMBER", Outcome.INVALID_NUMBER),
        ("NO_ROUTE_DESTINATION", Outcome.INVALID_NUMBER),
        ("INVALID_NUMBER_FORMAT", Outcome.INVALID_NUMBER),
        ("NUMBER_CHANGED", Outcome.INVALID_NUMBER),
        ("NORMAL_TEMPORARY_FAILURE", Outcome.FAILED),
        ("NETWORK_OUT_OF_ORDER", Outcome.FAILED),
        ("RECOVERY_ON_TIMER_EXPIRE", Outcome.FAILED),
        ("SWITCH_CONGESTION", Outcome.FAILED),
        ("ORIGINATOR_CANCEL", Outcome.CANCELED),
        ("LOSE_RACE", Outcome.CANCELED),
    ],
)
def test_hangup_cause_maps_to_its_outcome(cause: str, outcome: Outcome) -> None:
    assert outcome_for_cause(cause) is outcome


@pytest.mark.parametrize("cause", ["", "SOMETHING_NEW", "NORMAL_UNSPECIFIED", "INTERWORKING"])
def test_unknown_hangup_cause_is_failed(cause: str) -> None:
    assert outcome_for_cause(cause) is Outcome.FAILED


def test_hangup_cause_ignores_case_and_surrounding_space() -> None:
    assert outcome_for_cause(" user_busy\n") is Outcome.BUSY


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (200, "NORMAL_CLEARING"),
        (486, "USER_BUSY"),
        (600, "USER_BUSY"),
        (480, "NO_USER_RESPONSE"),
        (408, "RECOVERY_ON_TIMER_EXPIRE"),
        (487, "ORIGINATOR_CANCEL"),
        (404, "UNALLOCATED_NUMBER"),
        (410, "NUMBER_CHANGED"),
        (484, "INVALID_NUMBER_FORMAT"),
        (485, "NO_ROUTE_DESTINATION"),
        (604, "NO_ROUTE_DESTINATION"),
        (403, "CALL_REJECTED"),
        (603, "CALL_REJECTED"),
        (500, "NORMAL_TEMPORARY_FAILURE"),
        (503, "NORMAL_TEMPORARY_FAILURE"),
        (502, "NETWORK_OUT_OF_ORDER"),
        (504, "RECOVERY_ON_TIMER_EXPIRE"),
        (488, "INCOMPATIBLE_DESTINATION"),
    ],
)
def test_sip_code_maps_to_the_usual_q850_cause(code: int, cause: str) -> None:
    assert cause_for_sip(code) == cause


@pytest.mark.parametrize("code", [100, 183, 302, 409, 599, 699])
def test_sip_code_without_a_cause_is_normal_unspecified(code: int) -> None:
    assert cause_for_sip(code) == "NORMAL_UNSPECIFIED"


@given(SIP_CODES.filter(lambda code: code not in {401, 402, 407, 408, 487}))
def test_cause_of_a_sip_code_gives_the_same_outcome_except_documented_codes(code: int) -> None:
    assert outcome_for_cause(cause_for_sip(code)) is outcome_for_sip(code)


def test_a_leg_report_prefers_answered_and_names_invalid_only_when_every_leg_was_invalid() -> None:
    legs = ["invalid_number", "busy", None, "no_answer"]
    assert min(legs, key=a_leg_rank) == "busy"
    assert min(["invalid_number", "invalid_number"], key=a_leg_rank) == "invalid_number"
    assert min(["invalid_number", None], key=a_leg_rank) is None  # no outcome counts as failed
    assert min(["something-new", "canceled"], key=a_leg_rank) == "canceled"
    assert min(["failed", "answered"], key=a_leg_rank) == "answered"
