"""T.38 over real UDP: two :class:`T38Session` s on 127.0.0.1 through a lossy relay.

A one-page fax is ~20 s of real time (T.38 is paced like the modems it stands for), so the
loss levels run at once, in one event loop, in one test."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import pytest
from support_fax import bitmaps, fax_document
from support_t38 import fax_through_relay

from ringback.telephony.fax.t38 import T38Endpoint
from ringback.telephony.fax.t38_session import T38Session
from ringback.telephony.fax.udptl import UdptlPacket, encode

#: real seconds a one-page fax may take here (it takes ~21)
RUN_TIMEOUT = 90


@pytest.mark.slow
async def test_t38_over_udptl_goes_through_bit_for_bit_and_survives_loss_with_redundancy(
    tmp_path: Path,
) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    runs = [(0.0, 0), (0.01, 1), (0.01, 2), (0.02, 3), (0.02, 4)]
    async with asyncio.timeout(RUN_TIMEOUT):
        results = await asyncio.gather(
            *(
                fax_through_relay(document, tmp_path / f"in-{i}.tif", loss=loss, seed=seed)
                for i, (loss, seed) in enumerate(runs)
            )
        )
    for i, ((loss, _seed), run) in enumerate(zip(runs, results, strict=True)):
        assert (run.sent.code, run.received.code, run.received.pages) == (0, 0, 1), (loss, run)
        assert run.sent.bit_rate == 14400 and run.sent.ecm
        assert (run.sent.remote_ident, run.received.remote_ident) == ("+15550002", "+15550001")
        for want, have in zip(bitmaps(document), bitmaps(tmp_path / f"in-{i}.tif"), strict=True):
            assert np.array_equal(want, have)
        if loss:
            assert run.relay.dropped > 0  # the relay did lose datagrams
        else:
            assert run.relay.dropped == 0
            assert "udptl_recovered" not in run.receiver_stats
    # with loss, the redundancy is what carried the lost packets
    lossy = [run for (loss, _), run in zip(runs, results, strict=True) if loss]
    assert sum(r.receiver_stats.get("udptl_recovered", 0) for r in lossy) > 0


@pytest.mark.slow
async def test_t38_over_udptl_with_fec_goes_through_bit_for_bit_at_1_and_2_percent_loss(
    tmp_path: Path,
) -> None:
    document = fax_document(tmp_path / "out.tif", pages=1)
    runs = [(0.01, 11), (0.01, 12), (0.02, 13)]
    async with asyncio.timeout(RUN_TIMEOUT):
        results = await asyncio.gather(
            *(
                fax_through_relay(
                    document, tmp_path / f"in-{i}.tif", loss=loss, seed=seed, fec=True
                )
                for i, (loss, seed) in enumerate(runs)
            )
        )
    for i, ((loss, _seed), run) in enumerate(zip(runs, results, strict=True)):
        assert (run.sent.code, run.received.code, run.received.pages) == (0, 0, 1), (loss, run)
        assert run.sender_stats["error_correction"] == "fec"
        assert run.relay.dropped > 0
        for want, have in zip(bitmaps(document), bitmaps(tmp_path / f"in-{i}.tif"), strict=True):
            assert np.array_equal(want, have)
    # the FEC entries are what rebuilt the lost packets (no secondaries were sent)
    stats = [s for run in results for s in (run.sender_stats, run.receiver_stats)]
    assert sum(s.get("udptl_fec_recovered", 0) for s in stats) > 0
    assert all(s.get("udptl_recovered", 0) == s.get("udptl_fec_recovered", 0) for s in stats)


async def test_a_session_counts_garbage_and_foreign_datagrams_and_keeps_going(
    tmp_path: Path,
) -> None:
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.setblocking(False)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    endpoint = T38Endpoint(receive=tmp_path / "in.tif")
    session = await T38Session.open(endpoint, far.getsockname(), max_seconds=60)
    try:
        arrived: list[bytes] = []
        all_three = asyncio.Event()
        on_datagram = session._on_datagram

        def counting(data: bytes, addr: tuple[str, int]) -> None:
            on_datagram(data, addr)
            arrived.append(data)
            if len(arrived) == 3:
                all_three.set()

        session._on_datagram = counting  # type: ignore[method-assign]
        runner = asyncio.ensure_future(session.run())
        far.sendto(b"\x00\x01\xff", session.local_address)  # truncated
        stranger.sendto(encode(UdptlPacket(0, b"\x00")), session.local_address)
        far.sendto(encode(UdptlPacket(0, b"\x00")), session.local_address)  # no-signal
        async with asyncio.timeout(10):
            await all_three.wait()
        stats = session.stats()
        assert (stats["udptl_malformed"], stats["ifp_received"], stats["foreign"]) == (1, 1, 1)
        async with asyncio.timeout(10):  # it answers (CED, DIS): its datagrams reach the far end
            data = await asyncio.get_running_loop().sock_recv(far, 2048)
        assert data[:2] == b"\x00\x00"  # UDPTL seq-number 0
        assert not runner.done()
        result = session.hang_up()
        assert result.code == 49
        assert (await runner).code == 49
    finally:
        session.close()
        endpoint.close()
        far.close()
        stranger.close()
