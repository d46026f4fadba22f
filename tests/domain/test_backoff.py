import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.backoff import MAX_DELAY_MS, retry_delay_ms

TEN_DAYS_MS = 10 * 24 * 3600 * 1000


def rng() -> random.Random:
    return random.Random(1234)


def test_cap_is_ten_days() -> None:
    assert MAX_DELAY_MS == TEN_DAYS_MS == 864_000_000


@given(st.integers(1, 1000))
def test_no_policy_retries_at_once(retry: int) -> None:
    assert retry_delay_ms(None, retry, rng()) == 0


@given(st.integers(0, MAX_DELAY_MS), st.integers(1, 10_000))
def test_fixed_backoff_waits_the_same_delay_every_retry(delay: int, retry: int) -> None:
    assert retry_delay_ms({"type": "fixed", "delay": delay}, retry, rng()) == delay


def test_exponential_backoff_doubles_each_retry() -> None:
    policy = {"type": "exponential", "delay": 1000}
    waits = [retry_delay_ms(policy, n, rng()) for n in range(1, 6)]
    assert waits == [1000, 2000, 4000, 8000, 16000]


def test_exponential_backoff_rounds_to_whole_milliseconds() -> None:
    policy = {"type": "exponential", "delay": 0.75}
    assert [retry_delay_ms(policy, n, rng()) for n in (1, 2, 3)] == [1, 2, 3]


@given(st.integers(0, 10**7), st.integers(1, 80))
def test_exponential_backoff_is_delay_times_two_to_the_retry_minus_one_capped(
    delay: int, retry: int
) -> None:
    expected = min(delay * 2 ** (retry - 1), MAX_DELAY_MS)
    assert retry_delay_ms({"type": "exponential", "delay": delay}, retry, rng()) == expected


def test_fixed_delay_longer_than_ten_days_is_capped() -> None:
    assert retry_delay_ms({"type": "fixed", "delay": 10**15}, 1, rng()) == MAX_DELAY_MS


@pytest.mark.parametrize("retry", [31, 64, 1025, 10**6, 10**18])
def test_huge_exponents_are_capped_without_overflow(retry: int) -> None:
    policy = {"type": "exponential", "delay": 1, "jitter": 0}
    assert retry_delay_ms(policy, retry, rng()) == MAX_DELAY_MS
    policy["delay"] = 0.5
    assert retry_delay_ms(policy, retry, rng()) == MAX_DELAY_MS


def test_zero_delay_exponential_stays_zero_for_any_retry() -> None:
    assert retry_delay_ms({"type": "exponential", "delay": 0}, 10**9, rng()) == 0


@given(
    kind=st.sampled_from(["fixed", "exponential"]),
    delay=st.integers(0, 10**8),
    retry=st.integers(1, 64),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_jitter_draws_between_delay_times_one_minus_jitter_and_delay(
    kind: str, delay: int, retry: int, jitter: float, seed: int
) -> None:
    full = retry_delay_ms({"type": kind, "delay": delay}, retry, rng())
    got = retry_delay_ms(
        {"type": kind, "delay": delay, "jitter": jitter}, retry, random.Random(seed)
    )
    assert math.floor(full * (1 - jitter)) <= got <= full <= MAX_DELAY_MS


def test_jitter_is_drawn_from_the_given_rng() -> None:
    policy = {"type": "fixed", "delay": 60_000, "jitter": 0.5}
    draws = {retry_delay_ms(policy, 1, random.Random(seed)) for seed in range(50)}
    assert len(draws) > 1
    assert retry_delay_ms(policy, 1, random.Random(7)) == retry_delay_ms(
        policy, 1, random.Random(7)
    )
    expected = round(random.Random(7).uniform(30_000, 60_000))
    assert retry_delay_ms(policy, 1, random.Random(7)) == expected


def test_zero_jitter_is_exact_and_leaves_the_rng_untouched() -> None:
    generator = random.Random(99)
    state = generator.getstate()
    assert retry_delay_ms({"type": "fixed", "delay": 5000, "jitter": 0}, 3, generator) == 5000
    assert generator.getstate() == state


def test_full_jitter_draws_from_zero_to_delay() -> None:
    policy = {"type": "fixed", "delay": 1000, "jitter": 1}
    draws = [retry_delay_ms(policy, 1, random.Random(seed)) for seed in range(200)]
    assert min(draws) >= 0
    assert max(draws) <= 1000
    assert min(draws) < 100


@pytest.mark.parametrize("retry", [0, -1, -100])
def test_retry_number_below_one_is_refused(retry: int) -> None:
    with pytest.raises(ValueError, match="retry_number"):
        retry_delay_ms({"type": "fixed", "delay": 1000}, retry, rng())


def test_retry_number_below_one_is_refused_even_without_a_policy() -> None:
    with pytest.raises(ValueError, match="retry_number"):
        retry_delay_ms(None, 0, rng())


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"type": "linear", "delay": 1000}, "unknown backoff type 'linear'"),
        ({"delay": 1000}, "unknown backoff type None"),
        ({"type": "fixed"}, "'delay' is missing"),
        ({"type": "fixed", "delay": -1}, "delay must be >= 0"),
        ({"type": "fixed", "delay": "1000"}, "'delay' must be a finite number"),
        ({"type": "fixed", "delay": float("nan")}, "'delay' must be a finite number"),
        ({"type": "fixed", "delay": True}, "'delay' must be a finite number"),
        ({"type": "fixed", "delay": 1000, "jitter": 1.5}, "jitter must be between 0 and 1"),
        ({"type": "fixed", "delay": 1000, "jitter": -0.1}, "jitter must be between 0 and 1"),
    ],
)
def test_bad_policy_is_refused_by_name(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retry_delay_ms(policy, 1, rng())
