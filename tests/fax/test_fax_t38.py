"""The T.38 endpoint against itself: IFP packets carried in-process (no UDPTL yet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support_fax import bitmaps, fax_document

from ringback.telephony.fax.t38 import IfpPacket, T38Endpoint, t38_exchange


@pytest.mark.parametrize("ecm", [True, False], ids=["ecm", "no-ecm"])
def test_two_pages_go_through_t38_bit_for_bit(tmp_path: Path, ecm: bool) -> None:
    document = fax_document(tmp_path / "out.tif", pages=2)
    received = tmp_path / "in.tif"
    with (
        T38Endpoint(send=document, ecm=ecm, local_ident="+15550001", header="") as sender,
        T38Endpoint(receive=received, ecm=ecm, local_ident="+15550002") as receiver,
    ):
        sent, got = t38_exchange(sender, receiver, 300)
    assert (sent.code, got.code, sent.pages, got.pages) == (0, 0, 2, 2)
    assert sent.ecm is ecm and got.ecm is ecm
    assert sent.bit_rate == 14400
    assert (sent.remote_ident, got.remote_ident) == ("+15550002", "+15550001")
    for want, have in zip(bitmaps(document), bitmaps(received), strict=True):
        assert np.array_equal(want, have)


def test_ifp_packets_come_out_of_ticks_with_their_repeats(tmp_path: Path) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    with T38Endpoint(send=document) as sender:
        packets: list[IfpPacket] = []
        for _ in range(50):  # 1 s: CNG indicators at least
            packets += sender.tick()
        assert packets
        assert all(isinstance(p.data, bytes) and p.data and p.repeats >= 1 for p in packets)
        assert not sender.done
    assert sender.result is not None and sender.result.code == 49  # closed: dropped


def test_a_dead_t38_link_fails_with_codes(tmp_path: Path) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    with (
        T38Endpoint(send=document) as sender,
        T38Endpoint(receive=tmp_path / "in.tif") as receiver,
    ):
        sent, got = t38_exchange(sender, receiver, 120, lose=lambda direction, _i: direction == 1)
    assert sent.code != 0 and got.code != 0
    assert sent.text != "OK" and got.text != "OK"
