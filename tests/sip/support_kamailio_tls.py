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

import pytest
from support_kamailio import MODULES
from support_media import HOST, REQUIRE_SIPP, free_udp_ports, require_program
from support_tls import Pem

from support import stop_process

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
enable_tls=yes
listen=udp:{host}:{port}
listen=tls:{host}:{tls_port}
mpath="{modules}"
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("tls", "config", "{tls_config}")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    record_route();
    $du = "sip:{host}:{target};transport=udp";
    t_relay();
}}
"""

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
    port = free_udp_ports(1)
    tls_port = free_udp_ports(1)
    tls_config = tmp_path / "kamailio-tls.cfg"
    client_check = (
        f"verify_certificate = yes\nrequire_certificate = yes\nca_list = {client_ca}\n"
        if client_ca is not None
        else "verify_certificate = no\nrequire_certificate = no\n"
    )
    tls_config.write_text(
        TLS_CONFIG.format(key=server.key, cert=server.cert, client_check=client_check)
    )
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
        while "Listening on" not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        while True:  # the TLS port takes connections once kamailio's TCP process runs
            try:
                socket.create_connection((HOST, tls_port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
        yield tls_port
    finally:
        stop_process(process, group=True)  # kamailio ends its children on SIGTERM
        log.close()
