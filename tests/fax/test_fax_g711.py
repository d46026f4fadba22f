"""The fax engine's G.711 tables agree with Python's audioop on every sample."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ringback.telephony.fax import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # present on 3.11 (the project's Python); deprecated, gone in 3.13


ALL = np.arange(-32768, 32768, dtype=np.int16)
BYTES = np.arange(256, dtype=np.uint8)


def test_ulaw_matches_audioop() -> None:
    assert g711.encode(ALL, "ulaw").tobytes() == audioop.lin2ulaw(ALL.tobytes(), 2)
    assert g711.decode(BYTES, "ulaw").tobytes() == audioop.ulaw2lin(BYTES.tobytes(), 2)


def test_alaw_matches_audioop() -> None:
    assert g711.encode(ALL, "alaw").tobytes() == audioop.lin2alaw(ALL.tobytes(), 2)
    assert g711.decode(BYTES, "alaw").tobytes() == audioop.alaw2lin(BYTES.tobytes(), 2)


@pytest.mark.parametrize("law", g711.LAWS)
def test_decode_then_encode_is_the_identity(law: g711.Law) -> None:
    decoded = g711.decode(BYTES, law)
    again = g711.encode(decoded, law)
    # µ-law's two zeros (0x7F, 0xFF) both decode to 0, which encodes as 0xFF
    same = again == BYTES
    assert same.sum() >= 255


def test_an_unknown_law_is_refused() -> None:
    with pytest.raises(ValueError, match="law must be"):
        g711.encode(ALL[:4], "pcm")  # type: ignore[arg-type]
