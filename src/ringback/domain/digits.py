"""Digits as protocols and settings mean them: ASCII ``0``-``9`` only.

``str.isdigit`` is true for ``²``, ``①`` and ``٣`` too, and ``int()`` then
fails on the first two (or reads the third as 3): every parser of a port,
a count or a tag asks :func:`ascii_digits` instead.
"""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """True when ``text`` is one or more of the ASCII digits ``0``-``9``."""
    return text.isascii() and text.isdigit()
