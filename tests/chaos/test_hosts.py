"""chaos.hosts: two hosts in network namespaces write to one PostgreSQL in a third; a
partition cuts one off; nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import asyncpg
import pytest

from chaos.hosts import _namespaces, cleanup_stale, hosts

pytestmark = pytest.mark.slow

PREFIX = "rbtest"

# connects to the database URL in argv[1], writes (argv[2], its pid), prints its pid
WRITER = """
import asyncio, os, sys
import asyncpg

async def main() -> None:
    dsn = sys.argv[1].replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5)
    await conn.execute("INSERT INTO marks (host, pid) VALUES ($1, $2)", sys.argv[2], os.getpid())
    await conn.close()
    print(os.getpid())

asyncio.run(main())
"""

PROBE = """
import socket, sys
address, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((address, port), timeout=2).close()
    print("reached")
except OSError as exc:
    print(f"refused: {exc}")
"""


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_two_hosts_write_to_one_database_and_leave_nothing_behind(pg_root: object) -> None:
    began = time.monotonic()
    with hosts(2, prefix=PREFIX) as net:
        names = [net.db_netns, *(h.netns for h in net.hosts.values())]
        assert set(names) <= set(_namespaces())
        assert net.db_url_for("h1") != net.db_url_for("h2")
        admin = await asyncpg.connect(_dsn(net.db_socket_url), timeout=5)
        try:
            await admin.execute("CREATE TABLE marks (host text, pid int)")
            procs = {
                host: net.spawn(
                    host,
                    [sys.executable, "-c", WRITER, net.db_url_for(host), host],
                    env=dict(os.environ),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for host in ("h1", "h2")
            }
            for host, proc in procs.items():
                out, err = proc.communicate(timeout=30)
                assert proc.returncode == 0, err.decode()
                assert int(out) == proc.pid  # ip netns exec execs: the PID is the program's
                assert net.pid_host[proc.pid] == host
            rows = await admin.fetch("SELECT host, pid FROM marks ORDER BY host")
            assert [(r["host"], r["pid"]) for r in rows] == [
                ("h1", procs["h1"].pid),
                ("h2", procs["h2"].pid),
            ]
        finally:
            await admin.close()

        # a partition cuts h1 off, h2 still reaches the database; heal brings h1 back
        port = str(net.cluster.port)
        net.partition("h1")
        probe = [sys.executable, "-c", PROBE]
        assert net.run("h1", [*probe, net.host("h1").db_address, port]).startswith("refused")
        assert net.run("h2", [*probe, net.host("h2").db_address, port]).strip() == "reached"
        net.heal("h1")
        assert net.run("h1", [*probe, net.host("h1").db_address, port]).strip() == "reached"
        # a host reaches only its own link to the database, not the other host
        assert net.run("h1", [*probe, net.host("h2").address, "22"]).startswith("refused")

        root = net.root
        sleeper = net.spawn("h2", ["sleep", "300"])
    assert sleeper.poll() is not None  # stopped by PID at the exit
    assert not set(names) & set(_namespaces())
    assert not root.exists()
    assert time.monotonic() - began < 30


def test_a_dead_run_is_cleaned_up(pg_root: object) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{PREFIX}-{dead.pid}x0000-h1"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        assert stale in cleanup_stale(PREFIX)
        assert stale not in _namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)


def test_refused_namespaces_are_a_clear_error(pg_root: object) -> None:
    """Without CAP_SYS_ADMIN ``ip netns add`` fails: the error carries ip's own words."""
    script = (
        "from chaos.hosts import hosts, NetnsUnavailable\n"
        "try:\n"
        "    with hosts(1, prefix='rbnocap'):\n"
        "        pass\n"
        "except NetnsUnavailable as exc:\n"
        "    print('UNAVAILABLE', exc.stderr.strip())\n"
    )
    result = subprocess.run(
        ["setpriv", "--bounding-set", "-sys_admin", "--", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=30,
        check=False,
    )
    assert result.stdout.startswith("UNAVAILABLE "), result.stderr
    assert "Operation not permitted" in result.stdout  # ip's words, e.g. "mount --make-shared
    # /run/netns failed: Operation not permitted"
    assert not [n for n in _namespaces() if n.startswith("rbnocap-")]
