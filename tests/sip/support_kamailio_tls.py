"""Kamailio (Debian ``kamailio`` + ``kamailio-tls-modules``) as a record-routing proxy that
takes calls over TLS and relays them over UDP to one target port on 127.0.0.1; in-dialog
requests follow its (double) Record-Route back over TLS."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from support_kamailio import LOAD_MODULES, MODULES, ROUTE_START
from support_media import HOST, REQUIRE_SIPP, free_udp_ports, require_program

from support import stop_process
from support_tls import Pem

CONFIG = (
    """#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
enable_tls=yes
listen=udp:{host}:{port}
listen=tls:{host}:{tls_port}
mpath="{modules}"
loadmodule "tls.so"
"""
    + LOAD_MODULES
    + """modparam("tls", "config", "{tls_config}")

"""
    + ROUTE_START
    + """    record_route();
    $du = "sip:{host}:{target};transport=udp";
    t_relay();
}}
"""
)

TLS_CONFIG = """[server:default]
method = TLSv1.2+
private_key = {key}
certificate = {cert}
{client_check}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


@contextlib.contextmanager
def kamailio_tls(
    tmp_path: Path, target_port: int, server: Pem, *, client_ca: Path | None = None
) -> Iterator[int]:
    """Kamailio taking TLS on a free port with ``server``'s certificate, relaying new calls
    over UDP to ``target_port``; with ``client_ca`` it requires a client certificate that CA
    signed. Yields its TLS port; killed by PID."""
    exe = require_program("kamailio", "kamailio")
    if not (Path(MODULES) / "tls.so").exists():
        message = "kamailio's tls module is not installed (Debian package kamailio-tls-modules)"
        if REQUIRE_SIPP:
            pytest.fail(f"{message} (RINGBACK_REQUIRE_SIPP=1)")
        pytest.skip(message)
    tls_config = tmp_path / "kamailio-tls.cfg"
    client_check = (
        f"verify_certificate = yes\nrequire_certificate = yes\nca_list = {client_ca}\n"
        if client_ca is not None
        else "verify_certificate = no\nrequire_certificate = no\n"
    )
    tls_config.write_text(
        TLS_CONFIG.format(key=server.key, cert=server.cert, client_check=client_check)
    )
    for _ in range(BIND_TRIES):  # a free port may be taken before kamailio binds it: again
        started = _start(exe, tmp_path, target_port, tls_config)
        if started is not None:
            break
    else:
        raise AssertionError(f"kamailio found no free ports in {BIND_TRIES} tries")
    process, log, tls_port = started
    try:
        yield tls_port
    finally:
        stop_process(process, group=True)  # kamailio ends its children on SIGTERM
        log.close()


BIND_TRIES = 3


def _start(
    exe: str, tmp_path: Path, target_port: int, tls_config: Path
) -> tuple[subprocess.Popen[bytes], IO[bytes], int] | None:
    """Kamailio started and taking TLS connections, with its log and TLS port; None when a
    port it was given was taken meanwhile (it has then exited)."""
    port = free_udp_ports(1)
    tls_port = _free_tcp_port()  # TLS listens on TCP: free for TCP, not merely for UDP
    config = tmp_path / "kamailio.cfg"
    config.write_text(
        CONFIG.format(
            host=HOST,
            port=port,
            tls_port=tls_port,
            modules=MODULES,
            target=target_port,
            tls_config=tls_config,
        )
    )
    log_path = tmp_path / "kamailio.log"
    log = log_path.open("wb")
    # -DD: stay in the foreground (its children are its own); -E: log to stderr
    process = subprocess.Popen(
        [exe, "-f", str(config), "-DD", "-E", "-m", "32", "-M", "8", "-Y", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:  # the TLS port takes connections once kamailio's TCP process runs
            if "Listening on" in log_path.read_text(errors="replace"):
                try:
                    socket.create_connection((HOST, tls_port), timeout=1).close()
                    return process, log, tls_port
                except OSError:
                    pass
            if process.poll() is not None:
                said = log_path.read_text(errors="replace")
                if "Address already in use" in said:
                    log.close()
                    return None
                raise AssertionError(said)
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
    except BaseException:
        stop_process(process, group=True)
        log.close()
        raise


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
