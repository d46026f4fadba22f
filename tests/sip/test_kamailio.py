"""Through a real proxy: ringback → Kamailio (Debian ``kamailio``, record-routing) → sipp.

Kamailio adds a Record-Route to the INVITE; ringback must keep it as the dialog's route set,
so its ACK and BYE go back through Kamailio (sipp sees Kamailio's Via on top of ringback's)
instead of straight to sipp's Contact.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_media import HOST, free_udp_ports, require_program, sine, write_wav
from support_sip import request, sip_dialer, sipp_peer

from ringback.domain.model import Outcome
from support import stop_process

pytestmark = pytest.mark.slow  # runs kamailio

MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
listen=udp:{host}:{port}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"

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
    $du = "sip:{host}:{target}";
    t_relay();
}}
"""


@contextlib.contextmanager
def kamailio(tmp_path: Path, target_port: int) -> Iterator[int]:
    """Kamailio on a free UDP port, relaying new calls to ``target_port``; killed by PID."""
    exe = require_program("kamailio", "kamailio")
    port = free_udp_ports(1)
    config = tmp_path / "kamailio.cfg"
    config.write_text(CONFIG.format(host=HOST, port=port, modules=MODULES, target=target_port))
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


async def test_a_call_through_kamailio_keeps_its_record_route_for_ack_and_bye(
    tmp_path: Path,
) -> None:
    wav = write_wav(tmp_path / "prompt.wav", [sine(440, 0.5, 8000)], 8000, 2)
    with (
        sipp_peer(tmp_path, "uas_answer_record_route") as sipp,
        kamailio(tmp_path, sipp.sip_port) as proxy_port,
    ):
        async with sip_dialer(proxy_port) as dialer:
            call = await dialer.originate(request())
            assert await call.wait_answer() is Outcome.ANSWERED
            await call.play(wav)
            await call.hangup()
            record = await call.wait_ended()
        code = await sipp.wait_async(30)
        assert code == 0, sipp.output()
        assert sipp.errors() == ""
    assert record.outcome is Outcome.ANSWERED and record.hangup_disposition == "send_bye"
    assert record.detail["rtp_packets_sent"] >= 20
    # sipp's message log: one block per message, each after a line of dashes
    blocks = sipp.message_file.read_text().split("\n----------")
    for method in ("ACK", "BYE"):
        received = [b for b in blocks if re.search(rf"^{method} sip:", b, flags=re.M)]
        assert received, blocks
        for message in received:  # a retransmitted 200 is ACKed again: every copy
            vias = re.findall(r"^Via: SIP/2.0/UDP ([\d.]+:\d+)", message, flags=re.M)
            assert len(vias) == 2 and vias[0] == f"{HOST}:{proxy_port}", (method, message)
