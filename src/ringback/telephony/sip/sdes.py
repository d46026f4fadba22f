"""SDES key exchange for SRTP (RFC 4568): the SDP ``a=crypto`` attribute, parsed and written.

``a=crypto:<tag> <suite> inline:<base64 master key||salt>[|<lifetime>][|<MKI>:<length>]
[<session parameters>]``

Supported: the suites ``AES_CM_128_HMAC_SHA1_80`` and ``AES_CM_128_HMAC_SHA1_32`` (30 bytes of
key and salt), one ``inline`` key, an optional lifetime, and the ``WSH`` session parameter
(a replay window hint, ignored). Refused with :class:`CryptoError` saying why: other suites,
several keys, an MKI, other session parameters (``UNENCRYPTED_SRTP``, ``KDR``, FEC …).

The key is secret: :class:`CryptoAttribute` leaves it out of its ``repr`` and no error message
quotes it; :func:`redact_sdp` blanks the keys of an SDP body before it is shown anywhere.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

from ringback.domain.digits import ascii_digits

#: the suites ringback speaks, best first (RFC 4568 section 6.2)
SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
KEY_SALT_BYTES = 30  # 128-bit master key + 112-bit master salt
MAX_TAG = 999_999_999
_INLINE = re.compile(r"(inline:)[^\s|;]+", re.IGNORECASE)


class CryptoError(ValueError):
    """An ``a=crypto`` attribute ringback cannot use; the message says why (never the key)."""


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto`` line: a tag, a suite and its master key and salt."""

    tag: int
    suite: str
    key: bytes = field(repr=False)  # master key || master salt, 30 bytes
    lifetime: int | None = None  # packets; None: the suite's maximum

    def line(self) -> str:
        """The attribute's value, for ``a=crypto:`` (the key in base64)."""
        inline = base64.b64encode(self.key).decode("ascii")
        return f"{self.tag} {self.suite} inline:{inline}"


def new_attribute(tag: int, suite: str) -> CryptoAttribute:
    """A fresh random key (``secrets``) for ``suite`` under ``tag``."""
    if suite not in SUITES:
        raise CryptoError(f"SRTP crypto suite {suite!r} is not supported (use {', '.join(SUITES)})")
    return CryptoAttribute(tag, suite, secrets.token_bytes(KEY_SALT_BYTES))


def parse_crypto(value: str) -> CryptoAttribute:
    """The ``a=crypto`` attribute whose value (after ``crypto:``) is ``value``."""
    fields = value.split()
    if len(fields) < 3:
        raise CryptoError("a=crypto needs a tag, a crypto suite and key parameters")
    tag_text, suite, key_params, *session_params = fields
    if not ascii_digits(tag_text) or len(tag_text) > 9:
        raise CryptoError(f"a=crypto tag {tag_text[:12]!r} is not a number of 1 to 9 digits")
    if suite not in SUITES:
        raise CryptoError(
            f"SRTP crypto suite {suite[:40]!r} is not supported (use {', '.join(SUITES)})"
        )
    for param in session_params:
        name = param.partition("=")[0]
        if name != "WSH":
            raise CryptoError(f"SRTP session parameter {name[:30]!r} is not supported")
    if ";" in key_params:
        raise CryptoError("several SRTP master keys in one a=crypto line are not supported")
    method, _, rest = key_params.partition(":")
    if method.lower() != "inline" or not rest:
        raise CryptoError("a=crypto key parameters must be 'inline:<key>' (the only method)")
    key_text, *extras = rest.split("|")
    key = _key(key_text)
    lifetime: int | None = None
    for extra in extras:
        if ":" in extra:
            raise CryptoError("SRTP master key identifiers (MKI) are not supported")
        if lifetime is not None:
            raise CryptoError("a=crypto key parameters give more than one lifetime")
        lifetime = _lifetime(extra)
    return CryptoAttribute(int(tag_text), suite, key, lifetime)


def redact_sdp(text: str) -> str:
    """``text`` (an SDP body or a SIP message) with every ``inline:`` key replaced."""
    return _INLINE.sub(r"\1[redacted]", text)


def _key(text: str) -> bytes:
    if len(text) != 40:  # 30 bytes in base64, no padding needed
        raise CryptoError(
            f"an SRTP inline key must be {KEY_SALT_BYTES} bytes in base64 (40 characters), "
            f"not {len(text)} characters"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("an SRTP inline key is not valid base64") from None


def _lifetime(text: str) -> int:
    if text.startswith("2^"):
        exponent = text[2:]
        if not ascii_digits(exponent) or not 1 <= int(exponent) <= 48:
            raise CryptoError(f"SRTP key lifetime {text[:12]!r} is not 2^1 to 2^48")
        return 1 << int(exponent)
    if not ascii_digits(text) or not 1 <= int(text) <= 1 << 48:
        raise CryptoError(f"SRTP key lifetime {text[:16]!r} is not a number of packets")
    return int(text)
