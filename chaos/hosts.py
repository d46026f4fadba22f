"""Several hosts on one machine: network namespaces joined by veth pairs, one PostgreSQL.

    with hosts(2, prefix="rbchaos") as net:
        proc = net.spawn("h1", [".venv/bin/ringback", "worker"],
                         env={**os.environ, "RINGBACK_DATABASE_URL": net.db_url_for("h1")})
        net.partition("h1")   # h1 loses the database
        net.heal("h1")

The layout of one run (``run`` = ``<pid of this process>x<4 hex>``, unique per run)::

    <prefix>-<run>-db   PostgreSQL (chaos.pgcluster), listening on 10.231.X.1, .5, .9, …
      | h1 10.231.X.1/30 ── db0 10.231.X.2/30 |  <prefix>-<run>-h1
      | h2 10.231.X.5/30 ── db0 10.231.X.6/30 |  <prefix>-<run>-h2

Each host namespace reaches only the database namespace (no default route, nothing else).
The orchestrator in the root namespace uses ``db_socket_url``: the server's unix socket is a
file, reachable from every network namespace. The veth pairs are created directly inside the
namespaces, so nothing is ever added to the root namespace.

On exit, also after an error or Ctrl-C (and SIGTERM, turned into SystemExit while the network
is up in the main thread): the processes spawned in the hosts are stopped by PID (and any
other process left in the namespaces), the cluster is stopped, the namespaces deleted. A run
that died without that is cleaned up by the next ``hosts()`` with the same prefix: namespaces
``<prefix>-<pid>x…`` whose pid is no longer alive are emptied and deleted.

If the machine refuses namespaces, ``NetnsUnavailable`` carries the exact error of ``ip``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from chaos.pgcluster import PgCluster, find_pg_bin

__all__ = ["Host", "NetnsError", "NetnsUnavailable", "Network", "cleanup_stale", "hosts"]

DB_LINK = "db0"  # the name of a host's link to the database, inside its namespace
_MAX_HOSTS = 63  # /30 subnets in one /24


class NetnsError(RuntimeError):
    """An ``ip`` command failed; ``stderr`` is its exact error output."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"`{' '.join(argv)}` failed (exit {returncode}): {stderr.strip()}")


class NetnsUnavailable(NetnsError):
    """``ip netns add`` was refused: this machine (or this user) cannot make namespaces."""


def _ip(*args: str, netns: str | None = None) -> str:
    argv = ["ip", "netns", "exec", netns, "ip", *args] if netns else ["ip", *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except FileNotFoundError as exc:
        raise NetnsError(argv, 127, f"{exc}") from exc
    if result.returncode != 0:
        raise NetnsError(argv, result.returncode, result.stderr)
    return result.stdout


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _namespace_pids(netns: str) -> list[int]:
    try:
        return [int(p) for p in _ip("netns", "pids", netns).split()]
    except NetnsError:
        return []


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (one that ended but is not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _kill_pids(pids: Sequence[int], timeout_s: float = 5.0) -> None:
    """SIGTERM to each PID, then SIGKILL to those still alive after ``timeout_s``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stale_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}-(\d+)x[0-9a-f]+-")


def cleanup_stale(prefix: str) -> list[str]:
    """Delete the namespaces (and cluster directories) of dead runs with ``prefix``: those
    named ``<prefix>-<pid>x…`` whose pid is not alive. Runs still alive are left alone.
    The names deleted."""
    pattern = _stale_pattern(prefix)
    removed = []
    for name in _namespaces():
        match = pattern.match(name)
        if not match or _alive(int(match.group(1))):
            continue
        run_prefix = name[: match.end() - 1]
        data = Path(tempfile.gettempdir()) / run_prefix / "pg" / "data"
        if name.endswith("-db") and (data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                stop = [str(find_pg_bin() / "pg_ctl"), "stop", "-m", "immediate", "-D", str(data)]
                subprocess.run(
                    ["runuser", "-u", "postgres", "--", *stop, "-w", "-t", "20"],
                    capture_output=True,
                    check=False,
                    timeout=30,
                )
        _kill_pids(_namespace_pids(name), timeout_s=2.0)
        with contextlib.suppress(NetnsError):
            _ip("netns", "del", name)
            removed.append(name)
        shutil.rmtree(Path(tempfile.gettempdir()) / run_prefix, ignore_errors=True)
    return removed


@dataclass(frozen=True, slots=True)
class Host:
    """One host: its namespace, its address, and the database's address as it sees it."""

    name: str  # "h1", "h2", …
    netns: str
    address: str  # the host's end of its veth pair
    db_address: str  # the database namespace's end
    db_link: str  # the database namespace's end, by name (in the db namespace)


@dataclass
class Network:
    """The namespaces of one run, the cluster in the database namespace, and what was
    spawned in the hosts (``pid_host``: PID → host name, for every process ever spawned)."""

    prefix: str
    run_id: str
    db_netns: str
    hosts: dict[str, Host]
    cluster: PgCluster
    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pid_host: dict[int, str] = field(default_factory=dict)
    partitioned: set[str] = field(default_factory=set)

    @property
    def host_names(self) -> list[str]:
        return list(self.hosts)

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise KeyError(f"no host {name!r}: {', '.join(self.hosts)}") from None

    def db_url_for(self, host: str, database: str = "postgres") -> str:
        """The database over TCP, at the address ``host`` reaches it by."""
        return self.cluster.url_at(self.host(host).db_address, database)

    @property
    def db_socket_url(self) -> str:
        """The database over its unix socket: for the orchestrator in the root namespace."""
        return self.cluster.socket_url

    def db_socket_url_of(self, database: str) -> str:
        return self.cluster.socket_database_url(database)

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; its unix-socket URL (``db_url_for(host, name)`` for TCP)."""
        self.cluster.create_database(name)
        return self.cluster.socket_database_url(name)

    def spawn(
        self,
        host: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        stdout: IO[Any] | int | None = None,
        stderr: IO[Any] | int | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``host``'s namespace (``ip netns exec`` execs it: the Popen's PID
        is the program's own). Stopped by PID when the network is torn down."""
        netns = self.host(host).netns
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # Ctrl-C reaches the orchestrator, which stops them in order
        )
        self.processes.append(proc)
        self.pid_host[proc.pid] = host
        return proc

    def run(self, host: str, argv: Sequence[str], timeout_s: float = 60.0) -> str:
        """Run ``argv`` in ``host`` to its end; its stdout (NetnsError when it fails)."""
        command = ["ip", "netns", "exec", self.host(host).netns, *argv]
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=timeout_s
        )
        if result.returncode != 0:
            raise NetnsError(command, result.returncode, result.stderr)
        return result.stdout

    def partition(self, host: str) -> None:
        """Cut ``host`` off the database: its link goes down (the db end loses its carrier)."""
        _ip("link", "set", "dev", DB_LINK, "down", netns=self.host(host).netns)
        self.partitioned.add(host)

    def heal(self, host: str) -> None:
        """Bring ``host``'s link up again (its address and route come back with it)."""
        _ip("link", "set", "dev", DB_LINK, "up", netns=self.host(host).netns)
        self.partitioned.discard(host)

    def stop_processes(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (then SIGKILL) every spawned process still running, then any other process
        left in the host namespaces; reap them."""
        running = [p for p in self.processes if p.poll() is None]
        _kill_pids([p.pid for p in running], timeout_s=timeout_s)
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)
        for host in self.hosts.values():
            _kill_pids(_namespace_pids(host.netns), timeout_s=2.0)


def _addresses(octet: int, index: int) -> tuple[str, str]:
    """The database's and the host's address on host ``index``'s /30 (index from 1)."""
    base = ipaddress.ip_address(f"10.231.{octet}.0") + 4 * (index - 1)
    return str(base + 1), str(base + 2)


def _add_namespace(name: str) -> None:
    try:
        _ip("netns", "add", name)
    except NetnsError as exc:
        raise NetnsUnavailable(exc.argv, exc.returncode, exc.stderr) from None


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """In the main thread, SIGTERM raises SystemExit so that the teardown runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the teardown is over (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    saved = {
        sig: signal.signal(sig, lambda signum, _f: caught.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if signal.SIGINT in caught:
            raise KeyboardInterrupt
        if signal.SIGTERM in caught:
            raise SystemExit(128 + signal.SIGTERM)


def _teardown(net: Network | None, names: list[str], root: Path, cluster: PgCluster | None) -> None:
    problems: list[str] = []
    with _deferred_interrupts():
        if net is not None:
            try:
                net.stop_processes()
            except Exception as exc:
                problems.append(f"stopping processes: {exc}")
        if cluster is not None:
            try:
                cluster.destroy()
            except Exception as exc:
                problems.append(f"stopping the cluster: {exc}")
        for name in names:
            _kill_pids(_namespace_pids(name), timeout_s=2.0)
            try:
                _ip("netns", "del", name)
            except NetnsError as exc:
                problems.append(str(exc))
        shutil.rmtree(root, ignore_errors=True)
    if problems:
        raise RuntimeError("teardown of the hosts network: " + "; ".join(problems))


@contextlib.contextmanager
def hosts(
    n: int,
    *,
    prefix: str,
    octet: int = 0,
    max_connections: int = 200,
) -> Iterator[Network]:
    """``n`` host namespaces and a database namespace running PostgreSQL (see the module's
    docstring); everything is removed on exit. ``octet``: the X of 10.231.X.0/24."""
    if not 1 <= n <= _MAX_HOSTS:
        raise ValueError(f"hosts(n={n}): between 1 and {_MAX_HOSTS}")
    if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", prefix):
        raise ValueError(f"prefix {prefix!r}: a lower-case letter, then up to 15 letters/digits")
    if not 0 <= octet <= 255:
        raise ValueError(f"octet {octet}: 0-255")
    cleanup_stale(prefix)
    run = f"{os.getpid()}x{secrets.token_hex(2)}"
    base = f"{prefix}-{run}"
    db_netns = f"{base}-db"
    host_list = []
    for index in range(1, n + 1):
        db_address, address = _addresses(octet, index)
        host_list.append(Host(f"h{index}", f"{base}-h{index}", address, db_address, f"h{index}"))
    root = Path(tempfile.gettempdir()) / base
    created: list[str] = []
    cluster: PgCluster | None = None
    net: Network | None = None
    with _sigterm_as_exit():
        try:
            for name in [db_netns, *(h.netns for h in host_list)]:
                _add_namespace(name)
                created.append(name)
                _ip("link", "set", "dev", "lo", "up", netns=name)
            for h in host_list:
                _ip(
                    "link", "add", "name", h.db_link, "netns", db_netns, "type", "veth",
                    "peer", "name", DB_LINK, "netns", h.netns,
                )  # fmt: skip
                _ip("addr", "add", f"{h.db_address}/30", "dev", h.db_link, netns=db_netns)
                _ip("link", "set", "dev", h.db_link, "up", netns=db_netns)
                _ip("addr", "add", f"{h.address}/30", "dev", DB_LINK, netns=h.netns)
                _ip("link", "set", "dev", DB_LINK, "up", netns=h.netns)
            root.mkdir(mode=0o755)
            root.chmod(0o755)
            cluster = PgCluster(
                root / "pg",
                netns=db_netns,
                listen=",".join(["127.0.0.1", *(h.db_address for h in host_list)]),
                trust=[f"10.231.{octet}.0/24"],
                max_connections=max_connections,
            )
            cluster.init()
            cluster.start()
            net = Network(prefix, run, db_netns, {h.name: h for h in host_list}, cluster, root)
            yield net
        finally:
            _teardown(net, created, root, cluster)
