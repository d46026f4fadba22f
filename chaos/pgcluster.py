"""A throw-away PostgreSQL server of its own, for tests that take the database down.

``PgCluster(root)`` runs ``initdb`` into ``root/data`` and ``pg_ctl`` on it, as the ``postgres``
user (initdb and postgres refuse to run as root), optionally inside a network namespace
(``netns``). The unix socket lives in ``root/sock``: sockets are files, so ``socket_url`` works
from every network namespace, while ``url`` (TCP) works only where ``listen`` is reachable.

    with pg_cluster(Path("/tmp/rbpg-x")) as pg:
        url = pg.create_database("chaos")
        pg.stop("immediate")   # a crash: no shutdown checkpoint, recovery on the next start
        pg.start()

The server binaries come from ``RINGBACK_PG_BIN`` or the newest /usr/lib/postgresql/*/bin.
``root`` must be reachable by the postgres user (every parent directory searchable: pytest's
``tmp_path``, under a 0700 /tmp/pytest-of-root, is not) and short (a unix socket path has at
most 107 bytes).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["PgCluster", "PgClusterError", "find_pg_bin", "pg_cluster"]

PG_USER = "postgres"
_SOCKET_PATH_MAX = 107
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PgClusterError(RuntimeError):
    """initdb, pg_ctl or psql failed; the message carries their output."""


def find_pg_bin() -> Path:
    """The directory of pg_ctl/initdb: ``RINGBACK_PG_BIN``, else the newest installed version."""
    configured = os.environ.get("RINGBACK_PG_BIN")
    if configured:
        return Path(configured)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PgClusterError(
            "no PostgreSQL binaries in /usr/lib/postgresql/*/bin (RINGBACK_PG_BIN)"
        )
    return versions[-1]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now (in this network namespace)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _listen_addresses(listen: str) -> list[str]:
    return [part.strip() for part in listen.split(",") if part.strip()]


class PgCluster:
    """One PostgreSQL server in ``root`` (data in ``root/data``, socket in ``root/sock``,
    log in ``root/postgres.log``), started inside ``netns`` when given."""

    def __init__(
        self,
        root: Path,
        *,
        netns: str | None = None,
        listen: str = "127.0.0.1",
        trust: Sequence[str] = (),
        max_connections: int = 100,
        start_timeout_s: float = 30.0,
    ) -> None:
        """``listen``: PostgreSQL's listen_addresses ("127.0.0.1", "*", or "a,b").
        ``trust``: extra client networks (CIDR) given trust authentication, beside loopback
        and the /24 of each listen address."""
        self.root = Path(root).absolute()
        self.netns = netns
        self.listen = listen
        self.trust = list(trust)
        self.max_connections = max_connections
        self.start_timeout_s = start_timeout_s
        self.bin = find_pg_bin()
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = 0
        self._running = False

    # -- addresses ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The TCP address ``url`` uses: the first listen address (127.0.0.1 for "*")."""
        first = _listen_addresses(self.listen)[0]
        return "127.0.0.1" if first in ("*", "0.0.0.0", "localhost") else first

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    @property
    def socket_url(self) -> str:
        return self.socket_database_url("postgres")

    def database_url(self, name: str) -> str:
        """The TCP URL of database ``name`` (reachable where ``host`` is)."""
        return f"postgresql+asyncpg://{PG_USER}@{self.host}:{self.port}/{name}"

    def url_at(self, address: str, name: str = "postgres") -> str:
        """The TCP URL of database ``name`` at another of the server's addresses."""
        return f"postgresql+asyncpg://{PG_USER}@{address}:{self.port}/{name}"

    def socket_database_url(self, name: str) -> str:
        """The unix-socket URL of database ``name`` (usable from any network namespace)."""
        return f"postgresql+asyncpg://{PG_USER}@/{name}?host={self.socket_dir}&port={self.port}"

    @property
    def running(self) -> bool:
        return self._running

    # -- life cycle --------------------------------------------------------------------------

    def init(self) -> None:
        """initdb into ``root/data`` as postgres, with trust auth, fsync on, small buffers."""
        socket_file = self.socket_dir / ".s.PGSQL.65535"
        if len(str(socket_file)) > _SOCKET_PATH_MAX:
            raise PgClusterError(
                f"{self.root} is too long for a unix socket path ({socket_file}: "
                f"{len(str(socket_file))} > {_SOCKET_PATH_MAX} bytes); use a shorter root"
            )
        if self.data.exists():
            raise PgClusterError(f"{self.data} exists already")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root, PG_USER, PG_USER)
        shutil.chown(self.socket_dir, PG_USER, PG_USER)
        os.chmod(self.socket_dir, 0o755)
        reach = subprocess.run(
            ["runuser", "-u", PG_USER, "--", "test", "-w", str(self.root)],
            capture_output=True,
            check=False,
        )
        if reach.returncode != 0:
            raise PgClusterError(
                f"the {PG_USER} user cannot write {self.root}: a parent directory is not "
                "searchable by it (pytest's tmp_path under /tmp/pytest-of-root is 0700); "
                "use a directory such as tempfile.mkdtemp(dir='/tmp')"
            )
        self.port = free_port("127.0.0.1")
        self._as_postgres(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # initdb's own files only; the server runs with fsync on
            ],
            what="initdb",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(self._settings())
        (self.data / "pg_hba.conf").write_text(self._hba())

    def _settings(self) -> str:
        listen = ",".join(_listen_addresses(self.listen))
        return (
            "\n# chaos.pgcluster\n"
            f"listen_addresses = '{listen}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            f"max_connections = {self.max_connections}\n"
            "shared_buffers = 16MB\n"
            "fsync = on\n"
            "synchronous_commit = on\n"
            "full_page_writes = on\n"
            "huge_pages = off\n"
            # connections of a killed or cut-off host go away within seconds
            "tcp_keepalives_idle = 5\n"
            "tcp_keepalives_interval = 2\n"
            "tcp_keepalives_count = 3\n"
        )

    def _trusted_networks(self) -> list[str]:
        networks = ["127.0.0.0/8", "::1/128"]
        for address in _listen_addresses(self.listen):
            with contextlib.suppress(ValueError):
                ip = ipaddress.ip_address(address)
                prefix = 24 if ip.version == 4 else 64
                networks.append(str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False)))
        for network in self.trust:
            networks.append(str(ipaddress.ip_network(network, strict=False)))
        return list(dict.fromkeys(networks))

    def _hba(self) -> str:
        lines = ["# chaos.pgcluster: trust, for a throw-away server", "local all all trust"]
        lines += [f"host all all {network} trust" for network in self._trusted_networks()]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """pg_ctl start (inside the namespace), then wait until it accepts connections."""
        if not self.port:
            raise PgClusterError("init() first")
        self._as_postgres(
            [
                str(self.bin / "pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(round(self.start_timeout_s)),
            ],
            what="pg_ctl start",
            netns=self.netns,
            timeout_s=self.start_timeout_s + 10,
        )
        self._running = True
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            ready = subprocess.run(
                [
                    str(self.bin / "pg_isready"),
                    "-q",
                    "-h",
                    str(self.socket_dir),
                    "-p",
                    str(self.port),
                    "-U",
                    PG_USER,
                    "-t",
                    "2",
                ],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PgClusterError(
                    f"PostgreSQL in {self.root} not accepting connections after "
                    f"{self.start_timeout_s} s; log:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m fast|smart|immediate ("immediate": a crash, recovery on next start)."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"stop mode {mode!r}: smart, fast or immediate")
        if not self._pid_file_present():
            self._running = False
            return
        self._as_postgres(
            [str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "30"],
            what=f"pg_ctl stop -m {mode}",
            timeout_s=40,
        )
        self._running = False

    def _pid_file_present(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        """Stop the server if it runs, and remove ``root``."""
        if self.data.exists() and self._pid_file_present():
            try:
                self.stop("fast")
            except PgClusterError:
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------------

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` through psql over the unix socket; its output (unaligned, tuples only)."""
        result = subprocess.run(
            [
                str(self.bin / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise PgClusterError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; its TCP URL (see ``socket_database_url`` for the socket)."""
        if not _NAME.match(name):
            raise ValueError(f"database name {name!r}: lower-case letters, digits, _")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    # -- helpers -----------------------------------------------------------------------------

    def _as_postgres(
        self, argv: list[str], *, what: str, netns: str | None = None, timeout_s: float = 120
    ) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        command = [*prefix, "runuser", "-u", PG_USER, "--", *argv]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                cwd=self.root,
                timeout=timeout_s,
                # pg_ctl's server must not hold our pipes open after it daemonises
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise PgClusterError(f"{what} did not finish within {timeout_s} s") from exc
        if result.returncode != 0:
            raise PgClusterError(
                f"{what} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}\n{self.log_tail(10)}"
            )


@contextlib.contextmanager
def pg_cluster(
    root: Path,
    *,
    netns: str | None = None,
    listen: str = "127.0.0.1",
    trust: Sequence[str] = (),
    max_connections: int = 100,
) -> Iterator[PgCluster]:
    """An initialised, started cluster; destroyed (stopped, directory removed) on exit."""
    cluster = PgCluster(
        root, netns=netns, listen=listen, trust=trust, max_connections=max_connections
    )
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
