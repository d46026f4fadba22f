"""``ringback worker --processes N`` with the sip dialer: every process binds its own SIP port
(the configured one and the ports above it), and each answers SIP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support_media import free_udp_ports

from support import stop_process

pytestmark = pytest.mark.slow  # starts `ringback worker --processes` processes


def _options(port: int) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex
    return (
        f"OPTIONS sip:ringback@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:9;branch={branch}\r\n"
        "From: <sip:probe@127.0.0.1>;tag=probe\r\n"
        f"To: <sip:ringback@127.0.0.1:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@probe\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _answers_options(port: int, deadline: float) -> bool:
    """Send OPTIONS to 127.0.0.1:port until a 200 comes back or the deadline passes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.3)
        while time.monotonic() < deadline:
            probe.sendto(_options(port), ("127.0.0.1", port))
            try:
                answer, _ = probe.recvfrom(65535)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if answer.startswith(b"SIP/2.0 200"):
                return True
    return False


def test_each_worker_process_binds_the_next_sip_port_and_answers_on_it(tmp_path: Path) -> None:
    base = free_udp_ports(3)  # three free ports in a row
    rtp = free_udp_ports(20, even=True)
    env = {
        **os.environ,
        "RINGBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'rb.db'}",
        "RINGBACK_STORAGE_DIR": str(tmp_path / "storage"),
        "RINGBACK_DIALER": "sip",
        "RINGBACK_SIP_PROXY": "127.0.0.1:9",
        "RINGBACK_SIP_LOCAL_PORT": str(base),
        "RINGBACK_SIP_RTP_PORTS": f"{rtp}-{rtp + 19}",
        "RINGBACK_SHUTDOWN_GRACE": "1",
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "ringback", "worker", "--processes", "3"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        answered = [_answers_options(port, deadline) for port in (base, base + 1, base + 2)]
        assert answered == [True, True, True], (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        stop_process(worker, timeout_s=20, group=True)
        log.close()
    assert worker.returncode in (0, -signal.SIGTERM), (tmp_path / "worker.log").read_text()
