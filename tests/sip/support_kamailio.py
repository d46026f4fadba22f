"""Kamailio as a record-routing proxy for the SIP tests (Debian ``kamailio``): every new call
goes to one target port on 127.0.0.1; in-dialog requests follow the Record-Route."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from support_media import HOST, free_udp_ports, require_program

from support import stop_process

MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"

#: the modules every configuration here loads (each format()s {host}, {port}, {modules}, …)
LOAD_MODULES = """loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
"""
#: the start of every request route: hop limit, in-dialog requests by their Record-Route,
#: CANCEL matched to its transaction; what follows handles a new request
ROUTE_START = """request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
"""
_HEAD = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
listen=udp:{host}:{port}
mpath="{modules}"
"""

CONFIG = (
    _HEAD
    + LOAD_MODULES
    + "\n"
    + ROUTE_START
    + """    record_route();
    $du = "sip:{host}:{target}";
    t_relay();
}}
"""
)


#: a registrar (usrloc in memory, no database, no authentication) and record-routing proxy:
#: REGISTERs are saved, a new call goes to the contacts registered for its Request-URI user
REGISTRAR_CONFIG = (
    _HEAD
    + LOAD_MODULES
    + """loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)

"""
    + ROUTE_START
    + """    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not registered"); exit; }}
    record_route();
    t_relay();
}}
"""
)


@contextlib.contextmanager
def kamailio(tmp_path: Path, target_port: int) -> Iterator[int]:
    """Kamailio on a free UDP port, relaying new calls to ``target_port``; killed by PID."""
    with _kamailio(tmp_path, CONFIG, target=target_port) as port:
        yield port


@contextlib.contextmanager
def kamailio_registrar(tmp_path: Path) -> Iterator[int]:
    """Kamailio as a registrar and proxy (:data:`REGISTRAR_CONFIG`) on a free UDP port."""
    with _kamailio(tmp_path, REGISTRAR_CONFIG) as port:
        yield port


@contextlib.contextmanager
def _kamailio(tmp_path: Path, template: str, **values: object) -> Iterator[int]:
    exe = require_program("kamailio", "kamailio")
    port = free_udp_ports(1)
    config = tmp_path / "kamailio.cfg"
    config.write_text(template.format(host=HOST, port=port, modules=MODULES, **values))
    log = (tmp_path / "kamailio.log").open("wb")
    # -DD: stay in the foreground (its children are its own); -E: log to stderr
    process = subprocess.Popen(
        [exe, "-f", str(config), "-DD", "-E", "-m", "32", "-M", "4", "-Y", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while "Listening on" not in (tmp_path / "kamailio.log").read_text(errors="replace"):
            assert process.poll() is None, (tmp_path / "kamailio.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "kamailio.log").read_text()
            time.sleep(0.05)
        yield port
    finally:
        stop_process(process, group=True)  # kamailio ends its children on SIGTERM
        log.close()
