"""The rules of a webhook subscription's free-text fields, shared by the API's schemas and the
console's forms so that both accept and refuse the same values."""

from __future__ import annotations

import re

#: a subscription's signing secret: 16 to 200 printable ASCII characters, no space
SECRET_MIN = 16
SECRET_MAX = 200
SECRET_PATTERN = r"^[\x21-\x7e]+$"
#: a subscription's description: free text of at most this many characters
DESCRIPTION_MAX = 500


def check_secret(value: str) -> str:
    """``value`` without surrounding whitespace if it can sign webhooks; else ValueError."""
    secret = value.strip()
    if not SECRET_MIN <= len(secret) <= SECRET_MAX or not re.fullmatch(SECRET_PATTERN, secret):
        raise ValueError(f"{SECRET_MIN} to {SECRET_MAX} printable ASCII characters, without spaces")
    return secret


def check_description(value: str) -> str:
    """``value`` without surrounding whitespace if it can be stored; else ValueError."""
    description = value.strip()
    if len(description) > DESCRIPTION_MAX:
        raise ValueError(f"at most {DESCRIPTION_MAX} characters")
    if "\x00" in description:
        raise ValueError("contains a NUL character")
    return description
