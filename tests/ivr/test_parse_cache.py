"""The parse cache: the same document is parsed once and shared; runs never share state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback.clock import FakeClock
from ringback.ivr.errors import IvrError
from ringback.ivr.parse import CACHE, parse, parse_uncached
from ringback.ivr.parse_cache import ParseCache, document_key
from ringback.ivr.simulate import simulate_call

DOCUMENT = b"<IVR><Section name='a'><Speak>hello {{x}}</Speak><GoTo>a</GoTo></Section></IVR>"


def test_the_same_bytes_give_the_same_cached_tree_equal_to_a_fresh_parse() -> None:
    parse(DOCUMENT)  # seen once: remembered, kept from the second parse on
    second = parse(bytes(DOCUMENT))
    assert parse(bytes(DOCUMENT)) is second and parse(DOCUMENT) is second
    assert second == parse_uncached(DOCUMENT)


def test_a_document_seen_once_is_not_kept_only_its_key() -> None:
    cache: ParseCache[str] = ParseCache(max_entries=2, max_bytes=1000)
    cache.put(b"a", "A", 10)
    assert cache.get(b"a") is None and len(cache) == 0 and cache.size_bytes == 0
    cache.put(b"a", "A", 10)
    assert cache.get(b"a") == "A"
    for n in range(20):  # the keys seen once are bounded too (4 x entries)
        cache.put(bytes([n]), "x", 1)
    assert len(cache._seen) <= 8


def test_text_and_bytes_of_a_document_are_cached_apart() -> None:
    assert document_key("<IVR/>") != document_key(b"<IVR/>")
    text = '<?xml version="1.0" encoding="UTF-8"?><IVR><Answer/></IVR>'
    assert parse(text) == parse_uncached(text)
    assert parse(text.encode()) == parse_uncached(text.encode())


def test_the_cached_tree_cannot_be_changed() -> None:
    document = parse(DOCUMENT)
    node = document.root.children[0]
    with pytest.raises(AttributeError):
        node.text = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        node.attrs["name"] = "b"  # type: ignore[index]
    with pytest.raises(TypeError):
        document.sections["b"] = 0  # type: ignore[index]


@pytest.mark.parametrize(
    "xml",
    [
        b"<IVR>\n<Speak studio='x'>hi</Speak></IVR>",
        b"<IVR>\n\n<GoTo>nowhere</GoTo></IVR>",
        b"<IVR><Answer>",
        "<IVR>\n<Wait length='0'/></IVR>",
    ],
)
def test_a_bad_document_fails_each_time_with_the_same_line_and_message(xml: str | bytes) -> None:
    with pytest.raises(IvrError) as fresh:
        parse_uncached(xml)
    for _ in range(2):
        with pytest.raises(IvrError) as cached:
            parse(xml)
        assert str(cached.value) == str(fresh.value)
        assert cached.value.args == fresh.value.args


async def test_two_runs_of_a_cached_document_do_not_see_each_others_variables() -> None:
    xml = (
        b"<IVR><If expr='seen'><Then><Set var='again' val='yes'/></Then></If>"
        b"<Set var='seen' expr='True'/><Set var='n' expr='int(start) + 1'/></IVR>"
    )
    parse(xml)
    document = parse(xml)
    first, _ = await simulate_call(document, FakeClock(), variables={"seen": "", "start": "1"})
    second, _ = await simulate_call(parse(xml), FakeClock(), variables={"seen": "", "start": "5"})
    assert first.ok and second.ok
    assert first.variables["n"] == 2 and second.variables["n"] == 6
    assert "again" not in first.variables and "again" not in second.variables
    assert parse(xml) is document and document == parse_uncached(xml)


def test_the_cache_drops_the_least_recently_used_past_its_entry_bound() -> None:
    cache: ParseCache[str] = ParseCache(max_entries=2, max_bytes=1000)
    for key in (b"a", b"b", b"a", b"b"):  # each kept from its second put
        cache.put(key, key.decode().upper(), 10)
    assert cache.get(b"a") == "A"  # a is now the most recent
    cache.put(b"c", "C", 10)
    cache.put(b"c", "C", 10)
    assert cache.get(b"b") is None and cache.get(b"a") == "A" and cache.get(b"c") == "C"


def test_the_cache_holds_at_most_its_byte_budget_and_skips_huge_sources() -> None:
    cache: ParseCache[str] = ParseCache(max_entries=100, max_bytes=800)
    cache.put(b"huge", "H", 101)  # over an eighth of the budget: not kept
    assert cache.get(b"huge") is None
    for n in range(20):
        cache.put(bytes([n]), str(n), 100)
        cache.put(bytes([n]), str(n), 100)
    assert cache.size_bytes <= 800 and len(cache) == 8
    assert cache.get(bytes([19])) == "19" and cache.get(bytes([0])) is None


@given(st.lists(st.tuples(st.binary(max_size=3), st.integers(0, 150)), max_size=60))
def test_the_cache_size_is_the_sum_of_what_it_holds_whatever_the_order(
    puts: list[tuple[bytes, int]],
) -> None:
    cache: ParseCache[int] = ParseCache(max_entries=5, max_bytes=1000)
    held: dict[bytes, int] = {}
    for key, size in puts:
        cache.put(key, size, size)
        cache.put(key, size, size)
        if size <= 125:
            held[key] = size
    assert len(cache) <= 5 and cache.size_bytes <= 1000
    kept = {key: size for key, size in held.items() if cache.get(key) is not None}
    assert cache.size_bytes == sum(kept.values()) and len(kept) == len(cache)


def test_the_module_cache_is_bounded() -> None:
    assert CACHE.max_entries > 0 and CACHE.max_bytes > 0
