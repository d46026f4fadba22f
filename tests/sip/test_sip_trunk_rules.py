"""SIP trunks without calls: the trunks file, trunk selection and limits, SRV ordering (RFC
2782), Retry-After, and RFC 3263 resolution against a local authoritative DNS server."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support_dns import local_dns

from ringback.clock import FakeClock
from ringback.config import ConfigError, SipSettings, sip_settings_from_env
from ringback.telephony.sip.dns import DnsError, SipResolver, Srv, Target, order_srv
from ringback.telephony.sip.retry_after import MAX_RETRY_AFTER_S, retry_after_s
from ringback.telephony.sip.trunk_select import TrunkPool
from ringback.telephony.sip.trunks import Trunk, load_trunks, trunks_for

BASE = SipSettings(proxy_host="", local_host="127.0.0.1", local_port=0, caller_id="100")

srv_records = st.lists(
    st.builds(
        Srv,
        priority=st.integers(0, 3),
        weight=st.integers(0, 100),
        port=st.integers(1, 65535),
        target=st.sampled_from(["a.test", "b.test", "c.test", "d.test"]),
    ),
    max_size=12,
)


@given(srv_records, st.integers(0, 2**32))
@settings(max_examples=200, deadline=None)
def test_srv_order_keeps_every_record_and_tries_lower_priorities_first(
    records: list[Srv], seed: int
) -> None:
    ordered = order_srv(records, random.Random(seed))
    assert Counter(ordered) == Counter(records)
    priorities = [r.priority for r in ordered]
    assert priorities == sorted(priorities)


@given(st.integers(1, 50), st.integers(1, 50))
@settings(max_examples=25, deadline=None)
def test_srv_order_within_a_priority_is_weighted_random_in_proportion_to_the_weights(
    light: int, heavy: int
) -> None:
    rng = random.Random(light * 1000 + heavy)
    records = [Srv(10, light, 5060, "light.test"), Srv(10, light + heavy, 5060, "heavy.test")]
    draws = 3000
    first = Counter(order_srv(records, rng)[0].target for _ in range(draws))
    expected = (light + heavy) / (2 * light + heavy)  # RFC 2782: weight / sum of the weights
    assert abs(first["heavy.test"] / draws - expected) < 0.05


def test_srv_records_of_weight_zero_are_still_chosen_sometimes() -> None:
    rng = random.Random(7)
    records = [Srv(1, 0, 5060, "zero.test"), Srv(1, 1, 5060, "one.test")]
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(400))
    assert firsts["zero.test"] > 0 and firsts["one.test"] > firsts["zero.test"]


@given(st.text(max_size=30))
def test_retry_after_is_a_bounded_number_of_seconds_or_nothing(raw: str) -> None:
    seconds = retry_after_s(raw)
    assert seconds is None or 0 <= seconds <= MAX_RETRY_AFTER_S


def test_retry_after_reads_delta_seconds_with_a_comment_and_parameters() -> None:
    assert retry_after_s("120 (in a meeting);duration=3600") == 120
    assert retry_after_s(" 5") == 5
    assert retry_after_s("99999999") == MAX_RETRY_AFTER_S
    assert retry_after_s("soon") is None and retry_after_s(None) is None


# -- the trunks file -------------------------------------------------------------------------


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trunks.toml"
    path.write_text(text)
    return path


def test_trunks_file_keys_map_onto_the_sip_settings_and_defaults_apply_to_every_trunk(
    tmp_path: Path,
) -> None:
    path = _file(
        tmp_path,
        """
        [defaults]
        options_interval_s = 15
        [trunks.carrier-a]
        proxy = "sip.carrier-a.test"
        username = "acme"
        password = "s3cret"
        t38 = "off"
        t38_ec = "fec"
        rtp_ports = [30000, 30999]
        queues = [4]
        prefixes = ["+33", "+331"]
        max_concurrent_calls = 30
        max_calls_per_second = 5
        caller_id = "+33100000000"
        caller_id_allowed = ["+33"]
        [trunks.backup]
        proxy = "10.0.0.9:5080"
        options_interval_s = 0
        """,
    )
    first, backup = load_trunks(path, BASE)
    assert first.name == "carrier-a" and backup.name == "backup"
    assert first.settings.proxy_host == "sip.carrier-a.test" and first.settings.srv
    assert first.settings.username == "acme" and first.settings.t38 == "off"
    assert first.settings.t38_ec == "fec" and backup.settings.t38_ec == "redundancy"
    assert first.settings.rtp_ports == (30000, 30999)
    assert first.settings.options_interval_s == 15.0 and backup.settings.options_interval_s == 0
    assert first.queues == (4,) and first.prefixes == ("+33", "+331")
    assert first.max_concurrent_calls == 30 and first.max_calls_per_second == 5.0
    assert (backup.settings.proxy_host, backup.settings.proxy_port) == ("10.0.0.9", 5080)
    assert not backup.settings.srv
    assert backup.settings.caller_id == "100"  # from RINGBACK_SIP_CALLER_ID (the base)
    assert first.caller_id("+33999") == "+33999"
    assert first.caller_id("+4930123") == "+33100000000"  # not allowed: rewritten


def test_without_a_trunks_file_the_environment_makes_one_trunk_named_default() -> None:
    settings = SipSettings(proxy_host="192.0.2.1", proxy_port=5070)
    (trunk,) = trunks_for(settings)
    assert trunk.name == "default" and trunk.settings is settings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[trunks.a]\nproxy = "x.test"\nprox_port = 1\n', "trunk 'a', key 'prox_port': unknown"),
        ('[trunks.a]\nproxy = "x.test"\nproxy_port = "5060"\n', "key 'proxy_port': use a whole"),
        ('[trunks.a]\nproxy = "x.test"\nlocal_port = 5062\n', "key 'local_port': a setting of"),
        ('[trunks.a]\nproxy = "x.test"\nt38 = "maybe"\n', "key 't38': use one of"),
        (
            '[trunks.a]\nproxy = "x.test"\nt38_ec = "parity"\n',
            "key 't38_ec': use one of redundancy, fec, none",
        ),
        ('[trunks.a]\nproxy = "x.test"\nqueues = ["q"]\n', "key 'queues': use a list of num"),
        ('[trunks.a]\nproxy = "x.test"\nmax_concurrent_calls = 0\n', "greater than 0"),
        ('[trunks.a]\nproxy = "x.test"\nusername = "u"\n', "key 'password': set both"),
        ("[trunks.a]\nqueues = [1]\n", "trunk 'a', key 'proxy': missing"),
        ('[trunks.a]\nproxy = "x.test:99999"\n', "key 'proxy': the port is not"),
        ('[trunks.a]\nproxy = "x.test"\nrtp_ports = [30000, 20000]\n', "key 'rtp_ports': use two"),
        ('[trunks.a]\nproxy_host = "x.test"\nproxy_port = 0\n', "key 'proxy_port': use a port"),
        ('[trunk.a]\nproxy = "x.test"\n', "unknown table or key 'trunk'"),
        ("[defaults]\n", "no trunk"),
        ("[trunks.a\n", "not valid TOML"),
    ],
)
def test_trunks_file_errors_name_the_file_the_trunk_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_trunks(path, BASE)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_a_missing_trunks_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: cannot read it"):
        load_trunks(tmp_path / "nowhere.toml", BASE)


# -- selection and limits --------------------------------------------------------------------


def _trunk(name: str, **kw: object) -> Trunk:
    return Trunk(name=name, settings=BASE, **kw)  # type: ignore[arg-type]


async def test_selection_prefers_the_queue_then_the_longest_prefix_then_catch_all_trunks() -> None:
    pool = TrunkPool(
        [
            _trunk("fr", prefixes=("+33",)),
            _trunk("paris", prefixes=("+331",)),
            _trunk("campaign", queues=(7,)),
            _trunk("any"),
        ],
        FakeClock(),
    )
    names = lambda number, queue: [t.name for t in pool.candidates(number, queue)]  # noqa: E731
    assert names("+3314567", None) == ["paris", "fr", "any"]
    assert names("+3345678", 7) == ["campaign", "fr", "any"]
    assert names("+4930123", None) == ["any"]
    only_rules = TrunkPool([_trunk("fr", prefixes=("+33",)), _trunk("de", prefixes=("+49",))],
                           FakeClock())  # fmt: skip
    assert [t.name for t in only_rules.candidates("+1555", None)] == ["fr"]  # the first: default


async def test_a_trunk_at_its_concurrency_limit_sends_calls_to_the_next_then_they_wait() -> None:
    clock = FakeClock()
    small, other = _trunk("small", max_concurrent_calls=1), _trunk("other", max_concurrent_calls=1)
    pool = TrunkPool([small, other], clock)
    assert await pool.acquire([small, other], 10) is small
    assert await pool.acquire([small, other], 10) is other
    waiting = asyncio.ensure_future(pool.acquire([small, other], 10))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # both full: it waits (not a third call on a full trunk)
    pool.release(other)
    assert await asyncio.wait_for(waiting, 5) is other
    late = asyncio.ensure_future(pool.acquire([small], 10))
    await asyncio.sleep(0.01)
    clock.advance(11)
    assert await asyncio.wait_for(late, 5) is None  # no room within its ring time


async def test_calls_per_second_and_retry_after_pauses_hold_new_calls_until_their_time() -> None:
    clock = FakeClock()
    paced = _trunk("paced", max_calls_per_second=2)
    pool = TrunkPool([paced], clock)
    assert await pool.acquire([paced], 10) is paced
    second = asyncio.ensure_future(pool.acquire([paced], 10))
    await asyncio.sleep(0.01)
    assert not second.done()
    clock.advance(0.5)
    assert await asyncio.wait_for(second, 5) is paced
    pool.pause(paced, 30)
    clock.advance(1)
    paused = asyncio.ensure_future(pool.acquire([paced], 60))
    await asyncio.sleep(0.01)
    clock.advance(20)
    await asyncio.sleep(0.01)
    assert not paused.done()  # Retry-After 30 s: not before
    clock.advance(10)
    assert await asyncio.wait_for(paused, 5) is paced


# -- RFC 3263 against a local authoritative server -------------------------------------------

ZONE = {
    ("carrier.test.", "NAPTR"): [
        '20 10 "s" "SIP+D2T" "" _sip._tcp.carrier.test.',
        '10 10 "s" "SIP+D2U" "" _sip._udp.carrier.test.',
    ],
    ("_sip._udp.carrier.test.", "SRV"): [
        "20 10 5070 b.carrier.test.",
        "10 10 5060 a.carrier.test.",
    ],
    ("_sip._tcp.carrier.test.", "SRV"): ["10 10 5060 a.carrier.test."],
    ("a.carrier.test.", "A"): ["127.0.0.2"],
    ("b.carrier.test.", "A"): ["127.0.0.3"],
    ("b.carrier.test.", "AAAA"): ["::1"],
    ("plain.test.", "A"): ["127.0.0.4"],
}


async def test_naptr_then_srv_then_addresses_give_targets_in_order_and_blacklisted_last() -> None:
    clock = FakeClock()
    async with local_dns(ZONE) as (server, questions):
        resolver = SipResolver(clock, nameservers=[server], blacklist_s=30)
        first = Target("127.0.0.2", 5060, "udp")
        targets = await resolver.targets("carrier.test")
        assert targets == [first, Target("127.0.0.3", 5070, "udp"), Target("::1", 5070, "udp")]
        assert ("carrier.test.", "NAPTR") in questions.questions  # SIP+D2T skipped: no TCP here
        resolver.blacklist(first)
        assert (await resolver.targets("carrier.test"))[-1] == first
        clock.advance(30)  # the blacklist period is over
        assert (await resolver.targets("carrier.test"))[0] == first
        # no NAPTR / SRV: A on the default port; an explicit port: A only, no SRV asked
        assert await resolver.targets("plain.test") == [Target("127.0.0.4", 5060, "udp")]
        asked = len(questions.questions)
        assert await resolver.targets("a.carrier.test", 5099) == [Target("127.0.0.2", 5099)]
        assert {kind for _, kind in questions.questions[asked:]} <= {"A", "AAAA"}
        with pytest.raises(DnsError, match=r"nowhere\.test"):
            await resolver.targets("nowhere.test")


# -- the RINGBACK_SIP_* variables of trunks and DNS ----------------------------------------


@pytest.mark.parametrize(
    ("proxy", "srv"),
    [("carrier.test", True), ("carrier.test:5060", False), ("192.0.2.7", False),
     ("[2001:db8::1]", False), ("[2001:db8::1]:5070", False)],
)  # fmt: skip
def test_a_proxy_name_without_a_port_is_looked_up_with_naptr_and_srv(
    monkeypatch: pytest.MonkeyPatch, proxy: str, srv: bool
) -> None:
    monkeypatch.setenv("RINGBACK_SIP_PROXY", proxy)
    assert sip_settings_from_env().srv is srv


def test_a_trunks_file_stands_in_for_the_proxy_and_dns_settings_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RINGBACK_SIP_PROXY", raising=False)
    monkeypatch.setenv("RINGBACK_SIP_TRUNKS", str(tmp_path / "trunks.toml"))
    monkeypatch.setenv("RINGBACK_SIP_DNS_SERVERS", "127.0.0.1:5353, 10.0.0.2")
    monkeypatch.setenv("RINGBACK_SIP_OPTIONS_INTERVAL", "15")
    monkeypatch.setenv("RINGBACK_SIP_DNS_BLACKLIST", "60")
    settings = sip_settings_from_env()
    assert settings.trunks_file == tmp_path / "trunks.toml" and settings.proxy_host == ""
    assert settings.dns_servers == (("127.0.0.1", 5353), ("10.0.0.2", 53))
    assert settings.options_interval_s == 15.0 and settings.blacklist_s == 60.0
    monkeypatch.setenv("RINGBACK_SIP_OPTIONS_INTERVAL", "0")
    assert sip_settings_from_env().options_interval_s == 0.0


def test_a_bad_dns_server_or_neither_proxy_nor_trunks_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RINGBACK_SIP_PROXY", raising=False)
    monkeypatch.delenv("RINGBACK_SIP_TRUNKS", raising=False)
    with pytest.raises(ConfigError, match="RINGBACK_SIP_TRUNKS"):
        sip_settings_from_env()
    monkeypatch.setenv("RINGBACK_SIP_PROXY", "192.0.2.7")
    monkeypatch.setenv("RINGBACK_SIP_DNS_SERVERS", "127.0.0.1:dns")
    with pytest.raises(ConfigError, match="RINGBACK_SIP_DNS_SERVERS"):
        sip_settings_from_env()


_KEYS = st.sampled_from(
    ["proxy", "proxy_port", "username", "password", "t38", "t38_ec", "rtp_ports", "queues",
     "prefixes", "max_concurrent_calls", "max_calls_per_second", "caller_id_allowed", "default",
     "srv", "blacklist_s", "options_interval_s", "max_ring_timeout_s", "local_port", "nonsense"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.integers(-5, 70000), st.floats(-5, 1e5, allow_nan=False), st.booleans(),
    st.text(st.characters(codec="ascii", exclude_characters='"\\\n\r'), max_size=12),
)  # fmt: skip
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3))


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


@given(table=st.dictionaries(_KEYS, _VALUES, max_size=6))
@settings(max_examples=150, deadline=None)
def test_any_trunk_table_loads_or_is_refused_with_a_config_error_naming_the_trunk(
    table: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("trunks") / "trunks.toml"
    body = "".join(f"{key} = {_toml(value)}\n" for key, value in table.items())
    path.write_text(f"[trunks.t1]\n{body}")
    try:
        (trunk,) = load_trunks(path, BASE)
    except ConfigError as exc:
        assert str(path) in str(exc)
        return
    assert trunk.name == "t1" and trunk.settings.proxy_host
