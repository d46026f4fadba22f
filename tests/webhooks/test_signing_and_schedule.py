"""The signature, the retry schedule, the address guard and the README's verification snippet."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.domain.urlguard import BlockedAddress, check_literal
from ringback.outbound import OutboundClient
from ringback.webhooks.schedule import RetryPolicy
from ringback.webhooks.signing import signature_header, verify
from ringback.webhooks.targets import matches, seed_targets

README = Path(__file__).parents[2] / "docs" / "webhooks.md"  # the guide's webhooks page
secrets_ = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=16, max_size=64)


@given(secret=secrets_, body=st.binary(max_size=2000), stamp=st.integers(1, 2**40))
def test_a_signature_verifies_with_its_secret_and_time(
    secret: str, body: bytes, stamp: int
) -> None:
    assert verify(signature_header([secret], stamp, body), body, secret, now=stamp)


@given(secret=secrets_, other=secrets_, body=st.binary(min_size=1, max_size=500))
def test_a_signature_fails_for_another_secret_or_a_changed_body(
    secret: str, other: str, body: bytes
) -> None:
    header = signature_header([secret], 1_700_000_000, body)
    if other != secret:
        assert not verify(header, body, other, now=1_700_000_000)
    assert not verify(header, body + b" ", secret, now=1_700_000_000)


@given(new=secrets_, old=secrets_, body=st.binary(max_size=200))
def test_during_rotation_both_secrets_verify(new: str, old: str, body: bytes) -> None:
    header = signature_header([new, old], 1_700_000_000, body)
    assert header.count("v1=") == 2
    assert verify(header, body, new, now=1_700_000_000)
    assert verify(header, body, old, now=1_700_000_000)


def test_an_old_timestamp_is_refused() -> None:
    header = signature_header(["s" * 20], 1_700_000_000, b"{}")
    assert not verify(header, b"{}", "s" * 20, now=1_700_000_000 + 301)


@given(failures=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_retry_waits_grow_exponentially_with_jitter_and_are_capped(
    failures: int, seed: int
) -> None:
    policy = RetryPolicy()
    delay = policy.delay(failures, random.Random(seed))
    full = min(policy.cap_s, policy.base_s * 2 ** (failures - 1))
    assert full * (1 - policy.jitter) <= delay <= full


@given(seed=st.integers(0, 2**32))
def test_retries_go_on_for_about_a_day_then_the_delivery_is_dead(seed: int) -> None:
    policy, rng = RetryPolicy(), random.Random(seed)
    now, failures = 0.0, 0
    while True:
        failures += 1
        when = policy.next_try(failures, 0.0, now, rng)
        if when is None:
            break
        now = when
    assert 86400 - policy.cap_s <= now <= 86400
    assert 20 <= failures <= 60


def test_each_seed_url_maps_to_its_events() -> None:
    assert seed_targets("task.started", {"attempt": 1}) == ["url_before"]
    assert seed_targets("task.started", {"attempt": 2}) == ["url_before_again"]
    assert seed_targets("task.finished", {"result": "success"}) == ["url_success", "url_after"]
    assert seed_targets("task.finished", {"result": "failed"}) == ["url_after"]
    assert seed_targets("task.canceled", {}) == ["url_after"]
    assert seed_targets("call.answered", {}) == []


def test_event_patterns_match_wildcards_and_exact_types() -> None:
    assert matches(["*"], "call.ended") and matches(["task.*"], "task.retry_scheduled")
    assert not matches(["task.*"], "call.ended") and matches(["call.ended"], "call.ended")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
        "http://127.0.0.1/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://224.0.0.1/x",
        "http://0.0.0.0/x",
        "http://[::ffff:127.0.0.1]/x",
    ],
)
def test_address_guard_refuses_other_schemes_credentials_and_private_addresses(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_literal(url, allow_private=False)


async def test_address_guard_refuses_names_that_resolve_to_loopback() -> None:
    with pytest.raises(BlockedAddress):
        await OutboundClient(allow_private=False).resolve("http://localhost:8080/x")
    await OutboundClient(allow_private=True).resolve("http://localhost:8080/x")


def test_address_guard_allows_public_addresses_and_private_ones_when_told() -> None:
    check_literal("https://93.184.215.14/hook", allow_private=False)
    check_literal("http://127.0.0.1:9000/hook", allow_private=True)
    with pytest.raises(BlockedAddress):
        check_literal("http://user@127.0.0.1/hook", allow_private=True)


def _readme_snippet() -> str:
    text = README.read_text()
    found = re.search(r"<!-- signature-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert found, "docs/webhooks.md has no signature snippet"
    return found.group(1)


@given(secret=secrets_, body=st.binary(max_size=500))
def test_the_readme_snippet_verifies_ringback_signatures(secret: str, body: bytes) -> None:
    scope: dict[str, Any] = {}
    exec(_readme_snippet(), scope)
    check = scope["verify_ringback_signature"]
    header = signature_header([secret], int(time.time()), body)
    assert check(body, header, secret)
    assert not check(body + b"x", header, secret)
    assert not check(body, header, secret + "x")
    stale = signature_header([secret], int(time.time()) - 3600, body)
    assert not check(body, stale, secret)
