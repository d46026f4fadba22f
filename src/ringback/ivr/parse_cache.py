"""A bounded, thread-safe LRU cache of parsed IVR documents, keyed by a hash of their source.

The same IVR document is fetched for every call of a campaign: :func:`ringback.ivr.parse.parse`
looks here first. The key is a BLAKE2b digest of the exact input (bytes and text are kept
apart: a text's XML declaration is dropped before parsing, the bytes' is read) plus the
grammar's document bounds, the only settings that change a parse's result. The values are the
immutable parsed documents; the cache is bounded both by entries and by the total size of the
sources it holds (least recently used dropped first), and a source larger than an eighth of the
budget is not kept at all.

A document is kept from its second parse on: the first only leaves its key in a bounded list
of keys seen (a few bytes each). Documents seen once (every call with a different document)
then cost a hash and no retained tree: holding thousands of trees that never recur would
make the garbage collector walk them again and again, slowing every parse down.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from ringback.ivr.grammar import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_ELEMENTS

V = TypeVar("V")

MAX_ENTRIES = 1024
MAX_SOURCE_BYTES = 16 * 1024 * 1024

_BOUNDS = f"{MAX_DOCUMENT_BYTES}/{MAX_DEPTH}/{MAX_ELEMENTS}".encode()


def document_key(xml: str | bytes) -> bytes:
    """The cache key of a document's source (bytes and text of the same content differ)."""
    if isinstance(xml, str):
        kind, data = b"s", xml.encode("utf-8", "surrogatepass")
    else:
        kind, data = b"b", bytes(xml)
    digest = hashlib.blake2b(data, digest_size=20, person=b"ringback-ivr")
    digest.update(b"\0" + _BOUNDS)
    return kind + digest.digest()


class ParseCache(Generic[V]):
    """Least recently used values, at most ``max_entries`` of them and ``max_bytes`` of
    sources in all."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_SOURCE_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[bytes, tuple[V, int]] = OrderedDict()
        self._seen: OrderedDict[bytes, None] = OrderedDict()  # keys parsed once, not kept
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: bytes, value: V, size: int) -> None:
        """Keep ``value`` if ``key`` was put before (else remember the key only)."""
        if size > self.max_bytes // 8:
            return
        with self._lock:
            if key not in self._seen and key not in self._items:
                self._seen[key] = None
                if len(self._seen) > 4 * self.max_entries:
                    self._seen.popitem(last=False)
                return
            self._seen.pop(key, None)
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._seen.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes
