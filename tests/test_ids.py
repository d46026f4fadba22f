"""Identifiers: canonical version-4 UUIDs, never the same twice."""

from __future__ import annotations

import uuid

from ringback.ids import new_uuid


def test_every_identifier_is_a_canonical_version_4_uuid_and_none_repeats() -> None:
    made = [new_uuid() for _ in range(3000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
